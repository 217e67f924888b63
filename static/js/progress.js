// Show a progress indicator while a long form submission (import) is being processed.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-progress]")) return;
  const bar = form.querySelector("progress");
  if (bar) bar.hidden = false;
  const status = document.createElement("p");
  status.setAttribute("role", "status");
  status.textContent = form.dataset.progress;
  form.append(status);
  form.querySelectorAll("button[type=submit]").forEach((button) => { button.disabled = true; });
});

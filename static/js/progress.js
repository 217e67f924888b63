// Show a progress indicator while a long form submission is processed (an import; sealing the
// copies of a large grant). `data-progress-submitter` limits it to one button (Allow, not Deny).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-progress]")) return;
  const only = form.dataset.progressSubmitter;
  if (only && (!event.submitter || event.submitter.name !== only)) return;
  if (form.dataset.submitting) {
    event.preventDefault(); // a second click would send the same request again
    return;
  }
  form.dataset.submitting = "1";
  form.setAttribute("aria-busy", "true");
  const bar = form.querySelector("progress");
  if (bar) bar.hidden = false;
  const status = document.createElement("p");
  status.setAttribute("role", "status");
  status.textContent = form.dataset.progress;
  form.append(status);
  // After the browser has read the form, so the button that was clicked is still sent.
  setTimeout(() => {
    form.querySelectorAll("button[type=submit]").forEach((button) => { button.disabled = true; });
  }, 0);
});

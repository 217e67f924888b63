// Show a progress indicator while a long form submission is processed (an import; sealing the
// copies of a large grant). `data-progress-submitter` limits it to one button (Allow, not Deny).
// A form marked `data-upload` sends its file with XMLHttpRequest, so the bar shows how much of
// the file has gone up, then "Checking…" while the server reads it; without a file chosen it is
// an ordinary submission (the server says what is missing) and nothing animates.

function showAnswer(xhr) {
  const answer = new DOMParser().parseFromString(xhr.responseText, "text/html");
  document.title = answer.title;
  document.body.replaceWith(document.adoptNode(answer.body));
  if (xhr.responseURL) history.replaceState(null, "", xhr.responseURL);
  window.scrollTo(0, 0);
}

function upload(form, bar, status) {
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action || window.location.href);
  bar.value = 0;
  status.textContent = "Uploading your file: 0 %";
  xhr.upload.addEventListener("progress", (event) => {
    if (!event.lengthComputable) return;
    const percent = Math.round((event.loaded * 100) / event.total);
    bar.value = percent;
    status.textContent = `Uploading your file: ${percent} %`;
  });
  xhr.upload.addEventListener("load", () => {
    bar.removeAttribute("value"); // indeterminate while the server checks the file
    status.textContent = form.dataset.progress;
  });
  xhr.addEventListener("load", () => showAnswer(xhr));
  xhr.addEventListener("error", () => {
    bar.hidden = true;
    status.textContent = "The upload failed. Check your connection and try again.";
    delete form.dataset.submitting;
    form.removeAttribute("aria-busy");
    form.querySelectorAll("button[type=submit]").forEach((button) => { button.disabled = false; });
  });
  xhr.send(new FormData(form));
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-progress]")) return;
  const only = form.dataset.progressSubmitter;
  if (only && (!event.submitter || event.submitter.name !== only)) return;
  if (form.dataset.submitting) {
    event.preventDefault(); // a second click would send the same request again
    return;
  }
  const file = form.querySelector("input[type=file]");
  if ("upload" in form.dataset && file && file.files.length === 0) return;
  form.dataset.submitting = "1";
  form.setAttribute("aria-busy", "true");
  const bar = form.querySelector("progress");
  if (bar) bar.hidden = false;
  const status = document.createElement("p");
  status.setAttribute("role", "status");
  status.textContent = form.dataset.progress;
  form.append(status);
  if ("upload" in form.dataset && bar) {
    event.preventDefault();
    upload(form, bar, status);
  }
  // After the browser has read the form, so the button that was clicked is still sent.
  setTimeout(() => {
    form.querySelectorAll("button[type=submit]").forEach((button) => { button.disabled = true; });
  }, 0);
});

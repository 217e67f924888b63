// Copy buttons: `<button data-copy="ID" hidden>` copies the value of the field with that id.
// The buttons stay hidden without JavaScript (the field is still there to select and copy).
document.addEventListener("DOMContentLoaded", () => {
  const status = document.querySelector("[data-copy-status]");
  const say = (text) => { if (status) status.textContent = text; };
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    const field = document.getElementById(button.dataset.copy);
    if (!field) return;
    const label = document.querySelector(`label[for="${field.id}"]`);
    const what = label ? label.textContent.trim() : "It";
    button.setAttribute("aria-label", `Copy the ${what.toLowerCase()}`);
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        say(`${what} copied to the clipboard.`);
        button.textContent = "Copied";
        setTimeout(() => { button.textContent = "Copy"; }, 2000);
      } catch {
        // No clipboard access (an insecure origin, a refused permission): select it for Ctrl+C.
        field.focus();
        field.select();
        say(`Could not copy automatically: ${what.toLowerCase()} is selected, press Ctrl+C (or ⌘C).`);
      }
    });
  });
});

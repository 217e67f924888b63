// Keep the consent page's "What changes if you press Allow" list in step with the form: each
// item names the field and value it depends on (data-field, data-value) and whether it happens
// when that value is chosen or when it is not (data-when). The server rendered the first state.
document.addEventListener("DOMContentLoaded", () => {
  const list = document.querySelector("[data-changes]");
  if (!list) return;
  const form = list.closest("form");
  const chosen = (field, value) =>
    Array.from(form.elements).some((el) => el.name === field &&
      (el.tagName === "SELECT" ? el.value === value : el.checked && el.value === value));
  const update = () => {
    let shown = 0;
    list.querySelectorAll("li[data-field]").forEach((item) => {
      const happens = chosen(item.dataset.field, item.dataset.value) === (item.dataset.when === "chosen");
      item.hidden = !happens;
    });
    list.querySelectorAll("li:not([data-none])").forEach((item) => { if (!item.hidden) shown += 1; });
    list.querySelector("[data-none]").hidden = shown > 0;
  };
  form.addEventListener("change", update);
  update();
});

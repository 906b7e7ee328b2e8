// The A/B form: each subject field is mirrored into its inbox row as the editor types.
"use strict";
document.querySelectorAll("[data-ab-subject]").forEach((input) => {
  const n = input.getAttribute("data-ab-subject");
  const preview = document.querySelector(`[data-ab-preview="${n}"]`);
  const row = document.querySelector(`[data-ab-row="${n}"]`);
  if (!preview || !row) return;
  const show = () => {
    preview.textContent = input.value;
    row.hidden = input.value.trim() === "";
  };
  input.addEventListener("input", show);
  show();
});

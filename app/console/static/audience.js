// The newsletter switcher reloads on change; the segment builder counts as the editor types.
"use strict";
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form && select.form.submit());
});

(function () {
  const form = document.querySelector("[data-segment-builder]");
  if (!form) return;
  const filter = form.querySelector("[data-segment-filter]");
  const newsletter = form.querySelector("[data-segment-newsletter]");
  const status = form.querySelector("[data-segment-status]");
  const error = form.querySelector("[data-segment-error]");
  const sample = form.querySelector("[data-segment-sample]");
  let timer = null;
  let inflight = null;

  function show(body) {
    error.hidden = true;
    sample.hidden = true;
    sample.textContent = "";
    if (body.error) {
      status.textContent = "This filter does not read yet.";
      error.textContent = body.error;
      error.hidden = false;
      filter.setAttribute("aria-invalid", "true");
      return;
    }
    filter.removeAttribute("aria-invalid");
    const n = body.count.toLocaleString("en");
    status.textContent = n + (body.count === 1 ? " reader matches now" : " readers match now") +
      (body.count > body.sample.length && body.sample.length ? "; the first " + body.sample.length + ":" : body.sample.length ? ":" : ".");
    body.sample.forEach((address) => {
      const li = document.createElement("li");
      li.textContent = address;
      sample.appendChild(li);
    });
    sample.hidden = body.sample.length === 0;
  }

  function ask() {
    const text = filter.value.trim();
    if (!text) {
      status.textContent = "Type a filter to see who it reaches now.";
      error.hidden = true;
      sample.hidden = true;
      return;
    }
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const query = new URLSearchParams({ filter: text, newsletter: newsletter ? newsletter.value : "" });
    status.textContent = "Counting…";
    fetch("/editor/segments/preview.json?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal: inflight.signal,
    })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(String(r.status)))))
      .then(show)
      .catch((e) => {
        if (e.name !== "AbortError") status.textContent = "The count is not available right now.";
      });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(ask, 300); // debounce: one request per pause in typing
  }
  filter.addEventListener("input", soon);
  if (newsletter) newsletter.addEventListener("change", ask);
  if (filter.value.trim()) ask();
})();

// On the issue page: choosing a segment or typing a filter picks that audience's radio, so
// the send never silently goes to everyone after the editor chose someone narrower.
document.querySelectorAll("[data-picks]").forEach((input) => {
  const radio = document.querySelector(`input[type=radio][name=audience][value="${input.getAttribute("data-picks")}"]`);
  if (!radio) return;
  const pick = () => { radio.checked = true; };
  input.addEventListener("change", pick);
  input.addEventListener("input", pick);
  input.addEventListener("focus", pick);
});

// The console's only script: live Markdown preview and live send progress. Everything works
// without it (the Preview button, reloading the page); no inline script anywhere (CSP).
(function () {
  "use strict";

  // Live preview: post the Markdown into the preview frame a moment after typing stops.
  function livePreview(textarea) {
    var frameName = textarea.getAttribute("data-live-preview");
    var form = textarea.form;
    var button = form.querySelector("button[formtarget='" + frameName + "']");
    if (!button) return;
    var timer = null;
    function refresh() {
      var action = form.getAttribute("action");
      var target = form.getAttribute("target");
      form.setAttribute("action", button.getAttribute("formaction"));
      form.setAttribute("target", frameName);
      form.submit();
      form.setAttribute("action", action);
      if (target === null) form.removeAttribute("target"); else form.setAttribute("target", target);
    }
    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 700);
    });
    refresh();
  }

  // Live progress: ask for counts, rate and ETA every few seconds while anything is sending.
  function duration(s) {
    if (s === null || s === undefined) return "—";
    s = Math.round(s);
    if (s >= 3600) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    if (s >= 60) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return s + " s";
  }
  function pollProgress(boxes) {
    var ids = boxes.map(function (b) { return b.getAttribute("data-progress"); });
    function set(box, field, text) {
      var el = box.querySelector("[data-field='" + field + "']");
      if (el) el.textContent = text;
    }
    function tick() {
      fetch("/editor/progress.json?ids=" + ids.join(","), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          var active = false;
          boxes.forEach(function (box) {
            var st = data[box.getAttribute("data-progress")];
            if (!st) return;
            var bar = box.querySelector("progress");
            bar.max = st.recipients || 1;
            bar.value = st.done;
            set(box, "done", st.done.toLocaleString());
            set(box, "recipients", st.recipients.toLocaleString());
            set(box, "rate", st.rate_per_second);
            set(box, "eta", duration(st.eta_seconds));
            set(box, "failed", st.failed);
            if (st.status === "sending" || st.status === "paused") active = true;
            else box.setAttribute("data-finished", st.status);
          });
          if (active) setTimeout(tick, 3000);
          else if (document.querySelector("[data-finished]")) { var u = new URL(window.location.href); u.searchParams.delete("done"); window.location.replace(u.toString()); }
        })
        .catch(function () { setTimeout(tick, 10000); });
    }
    setTimeout(tick, 3000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    // On a phone the tabs scroll sideways: bring the current one into view.
    var current = document.querySelector(".nav [aria-current='page']");
    var nav = current && current.parentElement;
    if (nav && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
    // The fade on the right says "more tabs"; at the end of the scroll it goes.
    var tabs = document.querySelector(".nav");
    if (tabs) {
      var fade = function () {
        tabs.classList.toggle("at-end", tabs.scrollLeft + tabs.clientWidth >= tabs.scrollWidth - 2);
      };
      tabs.addEventListener("scroll", fade, { passive: true });
      window.addEventListener("resize", fade);
      fade();
    }
    document.querySelectorAll("textarea[data-live-preview]").forEach(livePreview);
    // Times are typed in UTC; say what that is on the editor's own clock.
    document.querySelectorAll("input[data-utc-hint]").forEach(function (input) {
      var hint = document.getElementById(input.getAttribute("data-utc-hint"));
      function show() {
        var value = input.value.length === 16 ? input.value + ":00" : input.value;
        var when = value ? new Date(value + "Z") : null;
        hint.textContent = when && !isNaN(when)
          ? "That is " + when.toLocaleString([], { dateStyle: "full", timeStyle: "short" }) +
            " where you are (" + Intl.DateTimeFormat().resolvedOptions().timeZone + ")."
          : "";
      }
      input.addEventListener("input", show);
      show();
    });
    // A long upload shows that it is working (the browser's own spinner is easy to miss).
    document.querySelectorAll("form[data-busy]").forEach(function (form) {
      form.addEventListener("submit", function () {
        var busy = document.getElementById(form.getAttribute("data-busy"));
        if (busy) busy.hidden = false;
        var button = form.querySelector("button[type='submit']");
        if (button) button.disabled = true;
      });
    });
    // The results page refreshes its bar with its tiles and table (live.js).
    // "Select all on this page" ticks every box of its name.
    document.querySelectorAll("input[data-check-all]").forEach(function (all) {
      var name = all.getAttribute("data-check-all");
      all.addEventListener("change", function () {
        all.form.querySelectorAll("input[name='" + name + "']").forEach(function (box) {
          box.checked = all.checked;
        });
      });
    });
    var boxes = Array.prototype.slice.call(document.querySelectorAll("[data-progress]"))
      .filter(function (b) { return !b.closest("[data-results-live]"); });
    if (boxes.length) pollProgress(boxes);
  });
})();

// The results page while a send runs: the bar, the tiles, the clicks and the table are
// refreshed together from one reading of the server (results.json), so they always agree.
(function () {
  "use strict";
  var ACTIVE = ["sending", "paused", "scheduled"];

  function duration(s) {
    if (s === null || s === undefined) return "—";
    s = Math.round(s);
    if (s >= 3600) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    if (s >= 60) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return s + " s";
  }

  function apply(root, data) {
    var p = data.progress;
    var box = root.querySelector(".progress");
    if (box) {
      var bar = box.querySelector("progress");
      bar.max = p.recipients || 1;
      bar.value = p.done;
      var set = function (field, text) {
        var el = box.querySelector("[data-field='" + field + "']");
        if (el) el.textContent = text;
      };
      set("done", p.done.toLocaleString("en"));
      set("recipients", p.recipients.toLocaleString("en"));
      set("rate", p.rate_per_second);
      set("eta", duration(p.eta_seconds));
      set("failed", p.failed);
    }
    ["tiles", "rows", "clicks"].forEach(function (part) {
      var el = root.querySelector("[data-live='" + part + "']");
      if (el) el.innerHTML = data[part]; // server-rendered and escaped by the template
    });
  }

  function follow(root) {
    var url = root.getAttribute("data-results-live");
    var started = root.getAttribute("data-status");
    if (ACTIVE.indexOf(started) < 0) return;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { setTimeout(tick, 10000); return; }
          apply(root, data);
          if (ACTIVE.indexOf(data.status) >= 0) { setTimeout(tick, 1500); return; }
          // Finished: load the page once more for its badge, times and alerts.
          var u = new URL(window.location.href);
          u.searchParams.delete("done");
          window.location.replace(u.toString());
        })
        .catch(function () { setTimeout(tick, 10000); });
    }
    setTimeout(tick, 1500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-results-live]").forEach(follow);
  });
})();

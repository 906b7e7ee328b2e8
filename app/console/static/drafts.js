// Nothing typed is lost: the Markdown editor saves as you type (to the server, and to this
// browser while the server cannot take it), and leaving a page with unsaved changes asks first.
// Without this script the forms still work; no inline script anywhere (CSP).
(function () {
  "use strict";

  var dirty = [];
  var leaving = false;
  function markDirty(form) { if (dirty.indexOf(form) < 0) dirty.push(form); }
  function markClean(form) { dirty = dirty.filter(function (f) { return f !== form; }); }
  window.addEventListener("beforeunload", function (event) {
    if (leaving || !dirty.length) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers need a value to ask
  });
  window.addEventListener("pageshow", function () { leaving = false; });

  function isLeavingSubmit(event) {
    // "Preview" posts into the frame beside the text: the page stays.
    var by = event.submitter;
    return !(by && by.hasAttribute("formtarget"));
  }

  function guard(form) {
    form.addEventListener("input", function () { markDirty(form); });
    form.addEventListener("submit", function (event) { if (isLeavingSubmit(event)) leaving = true; });
  }

  function store(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* private mode or full: the server copy still counts */ }
  }
  function load(key) {
    try { return JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }

  // After a save went through, the copies this browser kept for it are stale.
  function dropSubmitted() {
    if (!/[?&]done=(created|saved)\b/.test(window.location.search)) return;
    try {
      Object.keys(window.localStorage).forEach(function (k) {
        if (k.indexOf("mp-draft:") === 0 && (load(k) || {}).submitted) store(k, null);
      });
    } catch (e) { /* no storage */ }
  }

  function autosave(form) {
    var textarea = form.querySelector("textarea[name='markdown']");
    var status = document.getElementById("autosave-status");
    var banner = document.getElementById("session-ended");
    var key = "mp-draft:" + form.getAttribute("data-draft-key");
    var timer = null;
    var busy = false;
    var again = false;
    var waiting; // the submit held back while the draft is being created

    function say(text, problem) {
      if (!status) return;
      status.textContent = text;
      status.classList.toggle("problem", !!problem);
    }
    function clock() { return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); }
    function keep() {
      store(key, { text: textarea.value, at: Date.now(), base: form.getAttribute("data-base") });
    }

    var kept = load(key);
    if (form.hasAttribute("data-kept")) {
      markDirty(form); // text brought back after sign-in: not saved yet
      keep();
      setTimeout(save, 300);
    } else if (kept && kept.base === form.getAttribute("data-base") && kept.text !== textarea.value) {
      textarea.value = kept.text;
      markDirty(form);
      say("Restored the text you had not saved yet (kept in this browser at " +
        new Date(kept.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + ").", true);
      setTimeout(save, 300);
    } else if (kept) {
      store(key, null); // the server moved on since: that copy is older than what is shown
    }

    function save() {
      if (busy) { again = true; return; }
      busy = true;
      var sent = textarea.value;
      var body = new FormData(form);
      fetch(form.getAttribute("data-autosave"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": String(body.get("csrf_token") || ""), "Accept": "application/json" }
      })
        .then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
        .then(function (result) {
          var code = result[0], b = result[1];
          if (code === 403 && b.error === "session_ended") {
            if (banner) banner.hidden = false;
            say("Not saved: your session has ended. Your text is kept in this browser.", true);
            return;
          }
          if (!b.saved) {
            say("Not saved yet: " + (b.problem || "the server refused it.") + " Your text is kept in this browser.", true);
            return;
          }
          if (form.getAttribute("data-draft-key") === "new" && b.id) {
            // The draft exists now: this page is its editor from here on.
            store(key, null);
            key = "mp-draft:issue-" + b.id;
            form.setAttribute("data-draft-key", "issue-" + b.id);
            form.setAttribute("action", b.edit_url);
            form.setAttribute("data-autosave", b.autosave_url);
            window.history.replaceState(null, "", b.edit_url);
            var revisions = document.getElementById("revisions-link");
            if (revisions) {
              revisions.setAttribute("href", b.edit_url.replace(/\/edit$/, "/revisions"));
              revisions.hidden = false;
            }
          }
          if (b.applied) form.setAttribute("data-base", b.updated_at);
          if (b.version !== undefined && form.elements.version) form.elements.version.value = b.version;
          if (textarea.value === sent) {
            if (b.applied) { markClean(form); store(key, null); } else keep();
          }
          say(b.applied ? "Saved at " + clock() + "." : "Kept as a revision at " + clock() + ". " + b.problem, !b.applied);
        })
        .catch(function () {
          say("Not saved: the server did not answer. Your text is kept in this browser.", true);
        })
        .then(function () {
          busy = false;
          if (waiting !== undefined) {
            var by = waiting;
            waiting = undefined;
            if (by) form.requestSubmit(by); else form.requestSubmit();
            return;
          }
          if (again) { again = false; save(); }
        });
    }

    textarea.addEventListener("input", function () {
      markDirty(form);
      keep();
      clearTimeout(timer);
      timer = setTimeout(save, 1200);
    });
    form.addEventListener("submit", function (event) {
      if (!isLeavingSubmit(event)) return;
      clearTimeout(timer);
      if (busy && form.getAttribute("data-draft-key") === "new") {
        // An autosave is creating this draft right now: wait for it, then save into it
        // (posting the new-draft form as well would make a second draft).
        event.preventDefault();
        waiting = event.submitter || null;
        return;
      }
      leaving = true;
      var copy = load(key);
      if (copy) { copy.submitted = true; store(key, copy); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    dropSubmitted();
    document.querySelectorAll("form[data-autosave]").forEach(autosave);
    document.querySelectorAll("form[data-guard]").forEach(guard);
  });
})();

// Image upload in the Markdown editor: button, drag-and-drop or paste. Each image is posted to
// /editor/media (session cookie + CSRF header), then `![alt](url)` goes in at the cursor. The
// alt text is asked for; without one a visible placeholder goes in, which the preflight flags.
(function () {
  "use strict";
  var PLACEHOLDER = "DESCRIBE THIS IMAGE";
  var TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];

  function setup(box) {
    var textarea = document.getElementById(box.getAttribute("data-upload-for"));
    if (!textarea) return;
    var csrf = box.getAttribute("data-csrf");
    var input = box.querySelector("[data-upload-input]");
    var status = box.querySelector("[data-upload-status]");
    box.hidden = false;

    function say(text, bad) {
      status.textContent = text;
      status.classList.toggle("bad-text", !!bad);
    }

    function insert(markdown, start, end) {
      textarea.focus();
      textarea.setSelectionRange(start, end);
      // A paragraph of its own: blank lines around the image, none doubled.
      var before = textarea.value.slice(0, start), after = textarea.value.slice(end);
      var lead = !before || /\n\n$/.test(before) ? "" : /\n$/.test(before) ? "\n" : "\n\n";
      var trail = !after ? "\n" : /^\n\n/.test(after) ? "" : /^\n/.test(after) ? "\n" : "\n\n";
      textarea.setRangeText(lead + markdown + trail, start, end, "end");
      textarea.dispatchEvent(new Event("input", { bubbles: true })); // live preview, autosave
    }

    function upload(file) {
      if (TYPES.indexOf(file.type) < 0 && file.type) {
        say(file.name + " is not a JPEG, PNG, GIF or WebP image.", true);
        return;
      }
      var start = textarea.selectionStart, end = textarea.selectionEnd;
      var alt = window.prompt("Describe " + (file.name || "the image") +
        " for readers who cannot see it (alt text):", "");
      alt = (alt || "").replace(/[\[\]\r\n]+/g, " ").trim() || PLACEHOLDER;
      var form = new FormData();
      form.append("file", file, file.name || "pasted-image");
      say("Uploading " + (file.name || "the image") + "…");
      fetch("/editor/media", {
        method: "POST",
        body: form,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
      }).then(function (r) {
        return r.json().catch(function () { return { detail: "The upload failed (" + r.status + ")." }; })
          .then(function (data) { return { ok: r.ok, data: data }; });
      }).then(function (res) {
        if (!res.ok) { say(res.data.detail || "The upload failed.", true); return; }
        insert("![" + alt + "](" + res.data.url + ")", start, end);
        say(alt === PLACEHOLDER
          ? "Image added. Replace " + PLACEHOLDER + " with a description before sending."
          : "Image added (" + res.data.width + "×" + res.data.height + " px).");
      }).catch(function () { say("The upload failed: the server did not answer.", true); });
    }

    function images(list) {
      return Array.prototype.filter.call(list || [], function (f) { return /^image\//.test(f.type); });
    }

    box.querySelector("[data-upload-button]").addEventListener("click", function () { input.click(); });
    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, upload);
      input.value = "";
    });
    textarea.addEventListener("dragover", function (e) {
      if (e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types, "Files") >= 0) {
        e.preventDefault();
        textarea.classList.add("dropping");
      }
    });
    textarea.addEventListener("dragleave", function () { textarea.classList.remove("dropping"); });
    textarea.addEventListener("drop", function (e) {
      textarea.classList.remove("dropping");
      var files = images(e.dataTransfer && e.dataTransfer.files);
      if (!files.length) return;
      e.preventDefault();
      files.forEach(upload);
    });
    textarea.addEventListener("paste", function (e) {
      var files = images(e.clipboardData && e.clipboardData.files);
      if (!files.length) return;
      e.preventDefault();
      files.forEach(upload);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-upload-for]").forEach(setup);
  });
})();

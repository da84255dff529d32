// The dashboard's live refresh: every few seconds, fetch the page again and
// swap in each part marked data-live. Nothing else depends on it: every page
// works with plain links and forms when scripts are off. It only ever moves
// server-rendered (escaped) markup from one document to another.
"use strict";

(function () {
  var EVERY_MS = 3000;
  var parts = document.querySelectorAll("[data-live]");
  if (parts.length === 0 || !window.fetch || !window.DOMParser) {
    return;
  }
  var status = document.createElement("p");
  status.className = "live";
  status.textContent = "Live: refreshed every " + EVERY_MS / 1000 + " s";
  document.querySelector("main").prepend(status);

  function refresh() {
    if (document.hidden) {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (part) {
          var name = part.getAttribute("data-live");
          var next = fresh.querySelector('[data-live="' + CSS.escape(name) + '"]');
          if (next) {
            part.replaceWith(document.importNode(next, true));
          }
        });
        status.textContent = "Live: updated " + new Date().toLocaleTimeString();
        status.classList.remove("bad");
      })
      .catch(function (error) {
        status.textContent = "Live refresh failed (" + error.message + "); retrying";
        status.classList.add("bad");
      });
  }

  window.setInterval(refresh, EVERY_MS);
})();

// turing web: each element with data-live is redrawn from its URL every second (the URL answers
// the page's live fragment as HTML); no reload, no library. A form field being typed in is left
// alone until it loses focus.
(function () {
  "use strict";
  var PERIOD_MS = 1000;
  var busy = false;
  function typing(el) {
    var a = document.activeElement;
    return a && el.contains(a) && (a.tagName === "INPUT" || a.tagName === "SELECT" ||
                                   a.tagName === "TEXTAREA");
  }
  function refresh() {
    if (busy || document.hidden) { return; }
    var targets = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    busy = true;
    Promise.all(targets.map(function (el) {
      return fetch(el.getAttribute("data-live"), {credentials: "same-origin"})
        .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
        .then(function (html) {
          if (html !== null && !typing(el)) {
            el.innerHTML = html;
            document.body.setAttribute("data-refreshed", String(Date.now()));
          }
        });
    })).catch(function () { /* the next round tries again */ })
      .then(function () { busy = false; });
  }
  setInterval(refresh, PERIOD_MS);
})();

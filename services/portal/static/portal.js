// Small progressive enhancements; every page works without them. Served as a file so the
// Content-Security-Policy needs no 'unsafe-inline'.
(function () {
  "use strict";
  // A field the person corrects loses its error message at once (the server re-checks on
  // submit; this only stops a fixed field from still looking wrong).
  document.querySelectorAll(".field.has-error").forEach(function (box) {
    var clear = function () {
      box.classList.remove("has-error");
      box.querySelectorAll(".error").forEach(function (e) { e.remove(); });
      box.querySelectorAll("[aria-invalid]").forEach(function (i) {
        i.removeAttribute("aria-invalid");
        var ids = (i.getAttribute("aria-describedby") || "").split(" ")
          .filter(function (id) { return id && id.indexOf("e-") !== 0; });
        if (ids.length) { i.setAttribute("aria-describedby", ids.join(" ")); }
        else { i.removeAttribute("aria-describedby"); }
      });
    };
    box.querySelectorAll("input, select, textarea").forEach(function (input) {
      input.addEventListener("change", clear, { once: true });
      input.addEventListener("input", clear, { once: true });
    });
  });
  // After a refused submit, move focus to the list of problems so it is read first.
  var summary = document.getElementById("ringkasan-kesalahan");
  if (summary) { summary.focus(); }
})();

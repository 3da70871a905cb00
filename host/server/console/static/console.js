// Hall console: the only script, loaded from the console itself (the
// Content-Security-Policy forbids inline script). The pages work without
// it; it only prevents a double submission of an answer.
"use strict";
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (form.dataset.sent === "1") {
    ev.preventDefault();
    return;
  }
  form.dataset.sent = "1";
});
document.addEventListener("DOMContentLoaded", function () {
  var token = document.getElementById("token");
  if (token) token.focus();
});

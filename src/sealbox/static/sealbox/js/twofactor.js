// Two-factor pages: count down the "Send a new code" cooldown. Without this script the
// server still refuses an early request and says how long to wait.
(function () {
  "use strict";

  function countDown(button) {
    var seconds = parseInt(button.getAttribute("data-cooldown"), 10) || 0;
    var noteId = button.getAttribute("aria-describedby");
    var note = noteId ? document.getElementById(noteId) : null;
    var template = note ? note.getAttribute("data-cooldown-text") || "" : "";
    if (seconds <= 0) {
      return;
    }
    button.disabled = true;
    function tick() {
      if (seconds <= 0) {
        button.disabled = false;
        if (note) {
          note.textContent = "";
        }
        return;
      }
      if (note && template) {
        note.textContent = template.replace("__N__", String(seconds));
      }
      seconds -= 1;
      window.setTimeout(tick, 1000);
    }
    tick();
  }

  function start() {
    var buttons = document.querySelectorAll("button[data-cooldown]");
    for (var i = 0; i < buttons.length; i += 1) {
      countDown(buttons[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

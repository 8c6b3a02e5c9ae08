// Duet's app: the little the pages need beyond HTML. When the store changes (the partner's
// device, or `duet` on this one), the server sends an event on /events and the page's
// main content and status line are fetched again, unless the user is typing in a form
// (the keyboard's place is kept).
// The print button of the report page opens the report and prints it.
"use strict";

(function () {
  function typing() {
    var el = document.activeElement;
    if (el && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)) {
      return true;
    }
    // Changed from what the page came with (edit forms come filled in).
    var fields = document.querySelectorAll("main textarea, main input:not([type=hidden]):not([name=once]):not([type=radio]):not([type=checkbox])");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== fields[i].defaultValue) {
        return true;
      }
    }
    var boxes = document.querySelectorAll("main input[type=radio], main input[type=checkbox]");
    for (var j = 0; j < boxes.length; j++) {
      if (boxes[j].checked !== boxes[j].defaultChecked) {
        return true;
      }
    }
    return false;
  }

  // Where the keyboard was in `main`, to put it back in the fresh copy: the element
  // with the same id, or else the one of the same kind, words and target nearest to
  // where it was among main's focusable elements (a goal added above moves it down).
  var FOCUSABLE = "a[href], button, input:not([type=hidden]):not([name=once]), select, textarea, summary";
  function key(el) {
    var form = el.form || el.closest("form");
    return [el.tagName, el.getAttribute("href") || (form && form.getAttribute("action")) || "",
      (el.textContent || "").trim(), el.name || ""].join("|");
  }
  function focusPlace(main) {
    var el = document.activeElement;
    if (!main || !el || el === main || !main.contains(el)) {
      return null;
    }
    var all = Array.prototype.slice.call(main.querySelectorAll(FOCUSABLE));
    return { id: el.id, key: key(el), index: all.indexOf(el), result: el.hasAttribute("data-result") };
  }
  function refocus(main, place) {
    if (!place || !main) {
      return;
    }
    if (place.result && focusResult()) {
      return;
    }
    var el = place.id ? main.querySelector("#" + CSS.escape(place.id)) : null;
    if (!el) {
      var best = -1;
      Array.prototype.slice.call(main.querySelectorAll(FOCUSABLE)).forEach(function (c, i) {
        if (key(c) === place.key && (!el || Math.abs(i - place.index) < Math.abs(best - place.index))) {
          el = c;
          best = i;
        }
      });
    }
    // Gone from the page: the keyboard stays in main, not back at the page's start.
    (el || main).focus({ preventScroll: true });
  }

  // Says `text` in the page's live region (read out by a screen reader, politely).
  function tell(text) {
    var region = document.getElementById("updates");
    if (region && region.textContent !== text) {
      region.textContent = text;
    }
  }
  var WAITING = "Something changed (your partner, or another window): this page shows it " +
    "once you have sent or cleared what you are writing.";

  var pending = false;
  function reload() {
    // A refusal answering a form (at an address that is also a page, such as
    // /reflections) stays: reading that page again in its place would wipe the reason
    // and the words kept with it.
    if (document.querySelector("main [data-form-answer]")) {
      return;
    }
    if (typing()) {
      pending = true;
      tell(WAITING);
      return;
    }
    pending = false;
    fetch(window.location.href, { credentials: "same-origin" })
      // A page that answered a form (a confirmation, a refusal showing what was typed)
      // has no page of its own to read again: its address leads elsewhere.
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (text) {
        if (!text) {
          return;
        }
        // The user may have started typing while the page was fetched.
        if (typing()) {
          pending = true;
          tell(WAITING);
          return;
        }
        var doc = new DOMParser().parseFromString(text, "text/html");
        var place = focusPlace(document.querySelector("main"));
        var freshMain = doc.querySelector("main");
        var oldMain = document.querySelector("main");
        // By what it reads, not its markup: each copy carries fresh one-use form tokens.
        var changed = freshMain && oldMain && freshMain.textContent !== oldMain.textContent;
        ["main", "#status"].forEach(function (sel) {
          var fresh = doc.querySelector(sel);
          var old = document.querySelector(sel);
          if (fresh && old) {
            old.replaceWith(fresh);
          }
        });
        refocus(document.querySelector("main"), place);
        // Said only when what the page shows changed (not at every reconnection).
        tell(changed ? "This page now shows the latest changes." : "");
        showPrint();
        document.dispatchEvent(new Event("duet:fresh"));
        document.documentElement.setAttribute("data-updated", String(Date.now()));
      })
      .catch(function () {});
  }

  // Beside this script: under the path the page was served at (`/s/SCOPE/`, where the
  // browser sends the session cookie).
  var script = document.currentScript;
  var eventsUrl = script ? script.src.replace(/static\/app\.js.*$/, "events") : "/events";
  // Each word from the server is marked on the page (`data-heard`), reloaded or not.
  function heard() {
    document.documentElement.setAttribute("data-heard", String(Date.now()));
    reload();
  }
  if (window.EventSource) {
    var events = new EventSource(eventsUrl);
    events.addEventListener("change", heard);
    // A change made between this page's answer and the stream's (re)connection is told
    // to nobody: read the page again once the stream is open.
    events.addEventListener("open", heard);
  }
  // A change heard while typing is shown once the user leaves the form (a field left
  // changed keeps it waiting, and the live region says so: the words typed are kept).
  document.addEventListener("focusout", function () {
    if (pending) {
      setTimeout(reload, 0);
    }
  });

  // A form that cannot be taken back (withdrawing a reflection, closing a check-in)
  // asks first; without script the server asks on a page of its own.
  document.addEventListener("submit", function (e) {
    var ask = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (!ask) {
      return;
    }
    if (!window.confirm(ask)) {
      e.preventDefault();
      return;
    }
    // Answered here: the server need not ask again.
    var confirmed = e.target.querySelector("input[name=confirm]");
    if (confirmed) {
      confirmed.value = "yes";
    }
  });

  // The print button works only with script: shown once the page is read, and again
  // after a reload brings a fresh copy of it (the click is heard on the document, so
  // the fresh copy needs no handler of its own).
  function showPrint() {
    var buttons = document.querySelectorAll("button[data-print]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = false;
    }
  }
  document.addEventListener("click", function (e) {
    var button = e.target && e.target.closest && e.target.closest("button[data-print]");
    if (!button) {
      return;
    }
    var w = window.open(button.getAttribute("data-print"));
    if (w) {
      w.addEventListener("load", function () { w.print(); });
    }
  });
  document.addEventListener("DOMContentLoaded", showPrint);

  // Back shows a form's page again, read anew (nothing is cached), with what was typed
  // filled back in by the browser; its `once` value must come back too, or sending it
  // again unchanged writes a copy. A browser fills a text field back in only when its
  // value differs from the one the page came with: so the value is kept and the page's
  // own emptied, on every page and fresh copy (a value filled back in is kept as it is).
  function keepOnce() {
    var onces = document.querySelectorAll("input[name=once]");
    for (var i = 0; i < onces.length; i++) {
      var v = onces[i].value;
      onces[i].value = v;
      onces[i].defaultValue = "";
    }
  }
  document.addEventListener("DOMContentLoaded", keepOnce);
  document.addEventListener("duet:fresh", keepOnce);

  // A code is copied with one button (a keyboard cannot select a paragraph's text):
  // shown only with script, as the clipboard needs it; what happened is said beside it.
  function showCopy() {
    var buttons = document.querySelectorAll("button[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = false;
    }
  }
  document.addEventListener("click", function (e) {
    var button = e.target && e.target.closest && e.target.closest("button[data-copy]");
    if (!button) {
      return;
    }
    var code = document.getElementById(button.getAttribute("data-copy"));
    var said = document.getElementById(button.getAttribute("data-copy") + "-copied");
    var say = function (words) { if (said) { said.textContent = words; } };
    if (!code || !navigator.clipboard) {
      say("This browser does not let the page copy: select the code and copy it.");
      return;
    }
    navigator.clipboard.writeText(code.textContent.trim()).then(
      function () { say("Copied."); },
      function () { say("This browser did not let the page copy: select the code and copy it."); }
    );
  });
  document.addEventListener("DOMContentLoaded", showCopy);

  // What a form did (or why it was refused) is where the keyboard starts on the page
  // it leads to: a screen reader reads it, which it does not for a status already on
  // the page when it loads; the next Tab goes on from there. A fresh copy of the page
  // puts it back there (`refocus`).
  function focusResult() {
    var said = document.querySelector("main [data-result]");
    if (said) {
      said.setAttribute("tabindex", "-1");
      said.focus();
    }
    return !!said;
  }
  document.addEventListener("DOMContentLoaded", focusResult);
  document.addEventListener("duet:fresh", showCopy);
})();

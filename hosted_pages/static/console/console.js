/* Flint's console, with JavaScript on (docs/api.md 15). Every page works without this file: it only
   - asks first before a form marked data-confirm is sent (the browser's confirm dialog); a form that also
     names data-confirmed-action (Cancel order) then posts there at once, since without JavaScript that
     form leads to a page that asks instead;
   - adds a Copy button after each read-only box marked data-copy (its value is the button's name);
   - pauses the lists htmx refreshes (data-live) while the tab is hidden or the person is in one of them
     (a focused button, selected text), so nothing moves under their hand;
   - loads whole the page an htmx request was sent to instead (signed out: the sign-in page), and hands
     htmx a whole page's answer without its <head> (see below).
   Served by Flint with an SRI hash, like htmx; the CSP allows no inline handler, so all is wired here. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (!question || event.defaultPrevented) return;
    if (!window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var action = form.getAttribute("data-confirmed-action");
    if (!action) return;
    event.preventDefault();
    var post = document.createElement("form");
    post.method = "post";
    post.action = action;
    post.hidden = true;
    var token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = form.getAttribute("data-confirmed-token") || "";
    post.appendChild(token);
    document.body.appendChild(post);
    post.submit();
  });

  function said(status, text) {
    status.textContent = "";
    // A fresh text in a live region is read out, even the same words twice in a row.
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  function copyButtons(root) {
    var boxes = root.querySelectorAll("[data-copy]");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (box.hasAttribute("data-copy-ready")) continue;
      box.setAttribute("data-copy-ready", "");
      var row = document.createElement("div");
      row.className = "copy-row";
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy";
      button.setAttribute("aria-label", box.getAttribute("data-copy"));
      var status = document.createElement("span");
      status.className = "copied";
      // Read out when it changes (a live region; not role=status, which names a page's own message).
      status.setAttribute("aria-live", "polite");
      row.appendChild(button);
      row.appendChild(status);
      box.insertAdjacentElement("afterend", row);
      button.addEventListener("click", copier(box, status));
    }
  }

  function copier(box, status) {
    return function () {
      var selectIt = function () {
        box.focus();
        box.select();
        said(status, "Selected: press Ctrl+C (⌘C on a Mac) to copy");
      };
      if (!navigator.clipboard || !navigator.clipboard.writeText) return selectIt();
      navigator.clipboard.writeText(box.value).then(function () { said(status, "Copied"); }, selectIt);
    };
  }

  function holds(region) {
    var active = document.activeElement;
    if (active && active !== document.body && region.contains(active)) return true;
    var selection = window.getSelection && window.getSelection();
    return !!(selection && !selection.isCollapsed && selection.anchorNode && region.contains(selection.anchorNode));
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!event.detail.elt.hasAttribute("data-live")) return;
    if (document.hidden) return event.preventDefault();
    var regions = document.querySelectorAll("[data-live-region]");
    for (var i = 0; i < regions.length; i++) {
      if (holds(regions[i])) return event.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    var xhr = detail.xhr;
    var asked = detail.requestConfig && detail.requestConfig.path;
    if (xhr && xhr.responseURL && asked) {
      var landed = new URL(xhr.responseURL);
      if (landed.pathname !== new URL(asked, window.location.href).pathname) {
        detail.shouldSwap = false;
        window.location.assign(landed.href);
        return;
      }
    }
    // A whole page's answer: htmx needs only its body. Its <head> holds a stylesheet with that answer's
    // nonce, and parsing it (Chromium's Document.parseHTMLUnsafe) checks it against this page's CSP, which
    // refuses it: nothing would be applied, but the refusal is reported. So the head goes before parsing.
    if (typeof detail.serverResponse === "string") {
      detail.serverResponse = detail.serverResponse.replace(/<head[\s>][\s\S]*?<\/head>/i, "");
    }
  });

  function ready() { copyButtons(document); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
  document.addEventListener("htmx:load", function (event) { copyButtons(event.detail.elt); });
})();

/*
 * Flint's widget loader: the one script tag a merchant pastes.
 *
 *   <script src="https://flint.example/widget/v1/flint.js" data-client-token="..."
 *           data-target="#checkout" async></script>
 *
 * or, from code: Flint.mount(target, {clientToken, appearance, redirect, readyTimeout}).
 *
 * It frames Flint's card form in an iframe on Flint's origin, so the merchant's page never sees a
 * card number, and talks to that frame only through the envelope in widget/PROTOCOL.md.
 * No framework, no dependencies: one IIFE (the Plausible tracker's shape).
 */
(function (window, document) {
  "use strict";

  var NS = "flint";
  var VERSION = 1;
  var DEFAULT_READY_TIMEOUT = 8000; // ms for the frame to report ready before the hosted fallback
  var SILENT_FRAME_GRACE = 1500; // ms after the frame's load event with no word from its script

  var script = document.currentScript;

  // Idempotent load (stripe-js's shared.ts): a second copy of this file reuses the first Flint, so
  // widgets mounted by either keep one registry; its own data attributes still mount.
  var Flint = window.Flint;
  if (!Flint || !Flint.__flint) {
    Flint = createFlint(script ? new URL(script.src, document.baseURI).origin : null);
    window.Flint = Flint;
  }
  function warn(message) {
    if (window.console) window.console.warn("Flint: " + message);
  }

  // -- appearance: a short list of CSS custom properties, each value checked ------------------------
  var COLOR = /^(#[0-9a-f]{3,8}|(rgb|hsl)a?\(\s*[0-9.%,\s/]+\))$/i;
  var LENGTH = /^\d{1,3}(\.\d{1,3})?(px|rem|em)$/;
  var FONT = /^[a-z0-9 ,"'-]{1,120}$/i;
  var APPEARANCE = {
    colorPrimary: COLOR, colorBackground: COLOR, colorText: COLOR, colorDanger: COLOR,
    borderRadius: LENGTH, fontFamily: FONT
  };

  function cleanAppearance(input) {
    var out = {};
    if (!input || typeof input !== "object") return out;
    var variables = input.variables && typeof input.variables === "object" ? input.variables : input;
    for (var name in variables) {
      if (!Object.prototype.hasOwnProperty.call(variables, name)) continue;
      var value = variables[name];
      if (APPEARANCE[name] && typeof value === "string" && APPEARANCE[name].test(value.trim())) out[name] = value.trim();
      else warn("appearance." + name + " ignored");
    }
    return out;
  }

  function createFlint(flintOrigin) {
    var widgets = [];

    function mount(target, options) {
      options = options || {};
      var element = typeof target === "string" ? document.querySelector(target) : target;
      if (!element || element.nodeType !== 1) return Promise.reject(new Error("mount target not found"));
      if (typeof options.clientToken !== "string" || !options.clientToken) {
        return Promise.reject(new Error("clientToken is required"));
      }
      if (!flintOrigin) return Promise.reject(new Error("load flint.js from Flint with a script tag"));
      for (var i = 0; i < widgets.length; i++) {
        if (widgets[i].element === element) widgets[i].destroy(); // one widget per element
      }
      var widget = new Widget(element, options, flintOrigin, function () {
        var at = widgets.indexOf(widget);
        if (at >= 0) widgets.splice(at, 1);
      });
      widgets.push(widget);
      return widget.start();
    }

    return { __flint: true, version: VERSION, mount: mount };
  }

  function Widget(element, options, flintOrigin, forget) {
    this.element = element;
    this.token = options.clientToken;
    this.appearance = cleanAppearance(options.appearance);
    this.redirect = options.redirect !== false;
    this.readyTimeout = options.readyTimeout > 0 ? options.readyTimeout : DEFAULT_READY_TIMEOUT;
    this.flint = flintOrigin;
    this.forget = forget;
    this.state = "loading"; // loading | framed | ready | complete | fallback | error | destroyed
    this.nodes = [];
    this.timers = [];
    this.heard = false;
    this.interacted = false;
    this.onMessage = this.receive.bind(this);
    this.onPageHide = this.leave.bind(this);
    var self = this;
    this.handle = { destroy: function () { self.destroy(); } };
    Object.defineProperty(this.handle, "state", { get: function () { return self.state; } });
  }

  Widget.prototype.api = function (method, path, body) {
    return fetch(this.flint + path, {
      method: method,
      mode: "cors",
      credentials: "omit",
      keepalive: method === "POST",
      headers: body ? { Authorization: "Bearer " + this.token, "Content-Type": "application/json" }
        : { Authorization: "Bearer " + this.token },
      body: body ? JSON.stringify(body) : undefined
    });
  };

  Widget.prototype.start = function () {
    var self = this;
    return this.api("GET", "/v1/checkout/sessions/client").then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; },
        function () { return { ok: false, body: {} }; });
    }).then(function (answer) {
      if (self.state === "destroyed") return self.handle;
      var session = answer.body || {};
      if (!answer.ok) self.fail(session.code || "client_session_failed", session.detail || "");
      else if (!session.payable) self.fail(session.unavailable.code, session.unavailable.message);
      else self.frame(session);
      return self.handle;
    }, function () {
      if (self.state !== "destroyed") self.fail("network_error", "Flint could not be reached.");
      return self.handle;
    });
  };

  Widget.prototype.frame = function (session) {
    var self = this;
    this.session = session;
    this.state = "framed";
    var iframe = document.createElement("iframe");
    // The frame is on Flint's origin (the loader's), named by the session; the merchant page's own
    // origin rides in the fragment (never sent to a server) for the frame to check against its list.
    iframe.src = this.flint + "/widget/v1/frame/" + encodeURIComponent(session.id) +
      "#origin=" + encodeURIComponent(window.location.origin);
    iframe.title = "Secure card payment";
    iframe.setAttribute("allow", "payment");
    iframe.setAttribute("scrolling", "no");
    iframe.style.cssText = "display:block;width:100%;min-width:240px;height:420px;border:0;overflow:hidden;background:transparent";
    iframe.addEventListener("load", function () {
      // A frame refused by its frame-ancestors policy (or replaced by a browser error page) still
      // fires load, but its script never speaks.
      self.later(function () { if (!self.heard) self.fallback("frame_blocked"); }, SILENT_FRAME_GRACE);
    });
    iframe.addEventListener("error", function () { self.fallback("frame_error"); });
    window.addEventListener("message", this.onMessage);
    window.addEventListener("pagehide", this.onPageHide);
    this.later(function () { if (self.state === "framed") self.fallback("timeout"); }, this.readyTimeout);
    this.iframe = iframe;
    this.show(iframe);
  };

  // Checked in this order (penpal's WindowMessenger): source, exact origin, then shape.
  Widget.prototype.receive = function (event) {
    if (!this.iframe || event.source !== this.iframe.contentWindow) return;
    if (event.origin !== this.flint) return;
    var message = event.data;
    if (!message || message.ns !== NS || message.v !== VERSION || typeof message.type !== "string") return;
    var payload = message.payload && typeof message.payload === "object" ? message.payload : {};
    this.heard = true;
    switch (message.type) {
      case "hello":
        // Only now, to the pinned origin, does the token reach the frame.
        this.post("init", { clientToken: this.token, appearance: this.appearance });
        break;
      case "ready":
        if (this.state !== "framed") return;
        this.state = "ready";
        this.clearTimers();
        this.resize(payload.height);
        this.emit("flint:ready", { session_id: this.session.id });
        break;
      case "resize":
        this.resize(payload.height);
        break;
      case "interacted":
        this.interacted = true;
        break;
      case "complete":
        this.complete(payload);
        break;
      case "error":
        if (typeof payload.code === "string") this.emit("flint:error", { code: payload.code, message: String(payload.message || "") });
        break;
      case "fallback":
        this.fallback(typeof payload.reason === "string" ? payload.reason : "requested");
        break;
    }
  };

  Widget.prototype.post = function (type, payload) {
    if (!this.iframe || !this.iframe.contentWindow) return;
    this.seq = (this.seq || 0) + 1;
    // Never "*": the token goes only to a window that is on Flint's origin.
    this.iframe.contentWindow.postMessage({ ns: NS, v: VERSION, type: type, id: "l" + this.seq, payload: payload }, this.flint);
  };

  Widget.prototype.resize = function (height) {
    if (this.iframe && typeof height === "number" && height > 0) {
      this.iframe.style.height = Math.min(Math.ceil(height), 4000) + "px";
    }
  };

  Widget.prototype.complete = function (payload) {
    if (this.state !== "ready") return;
    this.state = "complete";
    var proceed = this.emit("flint:complete", { order_id: payload.order_id, payment_id: payload.payment_id });
    var url = String(payload.success_url || "");
    // A listener may call preventDefault() to stay on the page (as may redirect: false).
    if (proceed && this.redirect && /^https?:\/\//i.test(url)) window.location.assign(url);
  };

  Widget.prototype.fallback = function (reason) {
    if (this.state !== "framed" && this.state !== "ready") return;
    this.state = "fallback";
    this.clearTimers();
    this.unlisten();
    this.clear();
    var url = this.session.url;
    var box = document.createElement("p");
    box.setAttribute("role", "status");
    box.style.cssText = "margin:0;padding:12px 0;font:inherit";
    box.appendChild(document.createTextNode("The payment form could not load here. "));
    var link = document.createElement("a");
    link.href = url;
    link.textContent = "Continue to secure checkout";
    box.appendChild(link);
    this.show(box);
    this.emit("flint:fallback", { url: url, reason: reason });
    // Tell Flint (it records checkout.session.fallback_used); the buyer's path does not wait on it.
    this.api("POST", "/v1/checkout/sessions/" + encodeURIComponent(this.session.id) + "/fallback",
      { reason: reason })["catch"](function () {});
  };

  Widget.prototype.fail = function (code, message) {
    this.state = "error";
    var box = document.createElement("p");
    box.setAttribute("role", "alert");
    box.style.cssText = "margin:0;padding:12px 0;font:inherit";
    box.textContent = message || "This checkout cannot be shown.";
    this.show(box);
    this.emit("flint:error", { code: code, message: message || "" });
  };

  // The buyer typed in the card form and is leaving unpaid: a beacon for drop-off recovery.
  // text/plain keeps it a CORS simple request, which an unloading page can still send.
  Widget.prototype.leave = function () {
    if (!this.interacted || this.state === "complete" || this.state === "destroyed" || !this.session) return;
    var body = JSON.stringify({ client_token: this.token, type: "left" });
    var url = this.flint + "/v1/checkout/sessions/" + encodeURIComponent(this.session.id) + "/beacon";
    if (navigator.sendBeacon) navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }));
  };

  Widget.prototype.emit = function (name, detail) {
    var event = new CustomEvent(name, { detail: detail, bubbles: true, cancelable: name === "flint:complete" });
    return this.element.dispatchEvent(event);
  };

  Widget.prototype.show = function (node) {
    this.nodes.push(node);
    this.element.appendChild(node);
  };

  Widget.prototype.clear = function () {
    for (var i = 0; i < this.nodes.length; i++) {
      if (this.nodes[i].parentNode) this.nodes[i].parentNode.removeChild(this.nodes[i]);
    }
    this.nodes = [];
    this.iframe = null;
  };

  Widget.prototype.later = function (fn, ms) {
    this.timers.push(window.setTimeout(fn, ms));
  };

  Widget.prototype.clearTimers = function () {
    for (var i = 0; i < this.timers.length; i++) window.clearTimeout(this.timers[i]);
    this.timers = [];
  };

  Widget.prototype.unlisten = function () {
    window.removeEventListener("message", this.onMessage);
  };

  // Safe to call any number of times; leaves no frame, node, timer or listener behind.
  Widget.prototype.destroy = function () {
    if (this.state === "destroyed") return;
    this.state = "destroyed";
    this.clearTimers();
    this.unlisten();
    window.removeEventListener("pagehide", this.onPageHide);
    this.clear();
    this.forget();
  };

  // Mount from the script tag's own data attributes (after the definitions above exist).
  if (script && script.getAttribute("data-client-token") && !script.__flintMounted) {
    script.__flintMounted = true;
    var target = script.getAttribute("data-target");
    var timeout = parseInt(script.getAttribute("data-ready-timeout") || "", 10);
    var mountOptions = {
      clientToken: script.getAttribute("data-client-token"),
      redirect: script.getAttribute("data-redirect") !== "false",
      readyTimeout: timeout > 0 ? timeout : undefined
    };
    var start = function () {
      var element = target ? document.querySelector(target) : null;
      if (!element) {
        // No target: the widget goes where the script tag is.
        element = document.createElement("div");
        script.parentNode.insertBefore(element, script.nextSibling);
      }
      Flint.mount(element, mountOptions)["catch"](function (error) { warn(error.message); });
    };
    // Mount at once when the target is already parsed; wait for the rest of the page only if not.
    if (target && !document.querySelector(target) && document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", start, { once: true });
    } else start();
  }
})(window, document);

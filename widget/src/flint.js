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
 * No framework, no dependencies: esbuild bundles this module and ./shared.js into one IIFE.
 */
import { VERSION, cleanAppearance, envelope, isFrom, payloadOf } from "./shared.js";

const DEFAULT_READY_TIMEOUT = 8000; // ms for the frame to report ready before the hosted fallback
const SILENT_FRAME_GRACE = 1500; // ms after the frame's load event with no word from its script
const MAX_HEIGHT = 4000; // px: a frame cannot grow the merchant's page without bound

// The server sends the loader's words in the buyer's language (`messages` of the client session).
// These English ones stand in when there is no such answer: Flint unreachable, a token refused.
const BUILT_IN_TEXTS = {
  frame_title: "Secure card payment",
  fallback_text: "The payment form could not load here.",
  fallback_link: "Continue to secure checkout",
  unavailable: "This checkout cannot be shown.",
  network_error: "Flint could not be reached.",
};

// state -> event -> next state. An event its state does not list is ignored, never applied: the
// answer that arrives for a widget destroyed meanwhile, a second complete, a fallback after payment.
const FLOW = {
  loading: { frame: "framed", fail: "error", destroy: "destroyed" },
  framed: { ready: "ready", fallback: "fallback", destroy: "destroyed" },
  ready: { complete: "complete", fallback: "fallback", destroy: "destroyed" },
  complete: { destroy: "destroyed" },
  fallback: { destroy: "destroyed" },
  error: { destroy: "destroyed" },
  destroyed: {},
};

const warn = (message) => window.console?.warn(`Flint: ${message}`);

class Widget {
  constructor(element, options, flintOrigin, forget) {
    this.element = element;
    this.token = options.clientToken;
    this.appearance = cleanAppearance(options.appearance, (name) => warn(`appearance.${name} ignored`));
    this.redirect = options.redirect !== false;
    this.readyTimeout = options.readyTimeout > 0 ? options.readyTimeout : DEFAULT_READY_TIMEOUT;
    this.flint = flintOrigin;
    this.forget = forget;
    this.state = "loading";
    this.text = BUILT_IN_TEXTS;
    this.nodes = [];
    this.timers = [];
    this.sent = 0;
    this.heard = false;
    this.interacted = false;
    this.onMessage = (event) => this.receive(event);
    this.onPageHide = () => this.leave();
    const widget = this;
    this.handle = { destroy: () => this.destroy(), get state() { return widget.state; } };
  }

  // The only place the state changes: false (and nothing changes) when `event` is not allowed now.
  transition(event) {
    const next = FLOW[this.state][event];
    if (next) this.state = next;
    return !!next;
  }

  api(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(this.flint + path, {
      method, mode: "cors", credentials: "omit", keepalive: method === "POST", headers,
      body: body && JSON.stringify(body),
    });
  }

  async start() {
    let response;
    try {
      response = await this.api("GET", "/v1/checkout/sessions/client");
    } catch {
      this.fail("network_error", this.text.network_error);
      return this.handle;
    }
    const session = await response.json().catch(() => null);
    if (!response.ok || !session) {
      this.fail(session?.code || "client_session_failed", session?.detail);
      return this.handle;
    }
    this.text = { ...BUILT_IN_TEXTS, ...session.messages };
    const closed = session.unavailable;
    if (!session.payable) this.fail(closed?.code, this.text[closed?.code] || closed?.message);
    else this.frame(session);
    return this.handle;
  }

  frame(session) {
    if (!this.transition("frame")) return;
    this.session = session;
    const iframe = document.createElement("iframe");
    // The frame is on Flint's origin (the loader's), named by the session; the merchant page's own
    // origin rides in the fragment (never sent to a server) for the frame to check against its list.
    iframe.src = `${this.flint}/widget/v1/frame/${encodeURIComponent(session.id)}` +
      `#origin=${encodeURIComponent(window.location.origin)}`;
    iframe.title = this.text.frame_title;
    iframe.setAttribute("allow", "payment");
    iframe.setAttribute("scrolling", "no");
    iframe.style.cssText = "display:block;width:100%;min-width:240px;height:420px;border:0;overflow:hidden;background:transparent";
    // A frame refused by its frame-ancestors policy (or replaced by a browser error page) still
    // fires load, but its script never speaks.
    iframe.addEventListener("load", () => this.later(() => this.heard || this.fallback("frame_blocked"), SILENT_FRAME_GRACE));
    iframe.addEventListener("error", () => this.fallback("frame_error"));
    window.addEventListener("message", this.onMessage);
    window.addEventListener("pagehide", this.onPageHide);
    this.later(() => this.fallback("timeout"), this.readyTimeout); // cleared by ready
    this.iframe = iframe;
    this.show(iframe);
  }

  receive(event) {
    if (!isFrom(event, this.iframe?.contentWindow, this.flint)) return;
    const payload = payloadOf(event.data);
    this.heard = true;
    switch (event.data.type) {
      case "hello":
        // Only now, to the pinned origin, does the token reach the frame.
        this.post("init", { clientToken: this.token, appearance: this.appearance });
        break;
      case "ready":
        if (!this.transition("ready")) return;
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
  }

  post(type, payload) {
    // Never "*": the token goes only to a window that is on Flint's origin.
    this.iframe?.contentWindow?.postMessage(envelope(type, `l${++this.sent}`, payload), this.flint);
  }

  resize(height) {
    if (this.iframe && typeof height === "number" && height > 0) {
      this.iframe.style.height = `${Math.min(Math.ceil(height), MAX_HEIGHT)}px`;
    }
  }

  complete(payload) {
    if (!this.transition("complete")) return;
    const proceed = this.emit("flint:complete", { order_id: payload.order_id, payment_id: payload.payment_id });
    const url = String(payload.success_url || "");
    // A listener may call preventDefault() to stay on the page (as may redirect: false).
    if (proceed && this.redirect && /^https?:\/\//i.test(url)) window.location.assign(url);
  }

  fallback(reason) {
    if (!this.transition("fallback")) return;
    this.clearTimers();
    this.unlisten();
    this.clear();
    const url = this.session.url;
    const link = document.createElement("a");
    link.href = url;
    link.textContent = this.text.fallback_link;
    this.show(this.note("status", `${this.text.fallback_text} `, link));
    this.emit("flint:fallback", { url, reason });
    // Tell Flint (it records checkout.session.fallback_used); the buyer's path does not wait on it.
    this.api("POST", `/v1/checkout/sessions/${encodeURIComponent(this.session.id)}/fallback`, { reason }).catch(() => {});
  }

  fail(code, message) {
    if (!this.transition("fail")) return;
    this.show(this.note("alert", message || this.text.unavailable));
    this.emit("flint:error", { code, message: message || "" });
  }

  // The buyer typed in the card form and is leaving unpaid: a beacon for drop-off recovery.
  // text/plain keeps it a CORS simple request, which an unloading page can still send.
  leave() {
    if (!this.interacted || !this.session || this.state === "complete" || this.state === "destroyed") return;
    const body = JSON.stringify({ client_token: this.token, type: "left" });
    const url = `${this.flint}/v1/checkout/sessions/${encodeURIComponent(this.session.id)}/beacon`;
    navigator.sendBeacon?.(url, new Blob([body], { type: "text/plain" }));
  }

  emit(name, detail) {
    return this.element.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, cancelable: name === "flint:complete" }));
  }

  note(role, ...content) {
    const box = document.createElement("p");
    box.setAttribute("role", role);
    box.style.cssText = "margin:0;padding:12px 0;font:inherit";
    box.append(...content);
    return box;
  }

  show(node) {
    this.nodes.push(node);
    this.element.appendChild(node);
  }

  clear() {
    for (const node of this.nodes) node.remove();
    this.nodes = [];
    this.iframe = null;
  }

  later(fn, ms) {
    this.timers.push(window.setTimeout(fn, ms));
  }

  clearTimers() {
    this.timers.forEach((timer) => window.clearTimeout(timer));
    this.timers = [];
  }

  unlisten() {
    window.removeEventListener("message", this.onMessage);
  }

  // Safe to call any number of times; leaves no frame, node, timer or listener behind.
  destroy() {
    if (!this.transition("destroy")) return;
    this.clearTimers();
    this.unlisten();
    window.removeEventListener("pagehide", this.onPageHide);
    this.clear();
    this.forget();
  }
}

const createFlint = (flintOrigin) => {
  const widgets = new Set();
  // async: every refusal, a bad selector's SyntaxError too, is a rejected promise, never a throw.
  const mount = async (target, options) => {
    options = options || {};
    const element = typeof target === "string" ? document.querySelector(target) : target;
    if (element?.nodeType !== 1) throw new Error("mount target not found");
    if (typeof options.clientToken !== "string" || !options.clientToken) throw new Error("clientToken is required");
    if (!flintOrigin) throw new Error("load flint.js from Flint with a script tag");
    for (const other of widgets) if (other.element === element) other.destroy(); // one widget per element
    const widget = new Widget(element, options, flintOrigin, () => widgets.delete(widget));
    widgets.add(widget);
    return widget.start();
  };
  return { __flint: true, version: VERSION, mount };
};

const script = document.currentScript;

// Idempotent load (stripe-js's shared.ts): a second copy of this file reuses the first Flint, so
// widgets mounted by either keep one registry; its own data attributes still mount.
let Flint = window.Flint;
if (!Flint?.__flint) {
  Flint = createFlint(script ? new URL(script.src, document.baseURI).origin : null);
  window.Flint = Flint;
}

// Mount from the script tag's own data attributes.
if (script?.dataset.clientToken && !script.__flintMounted) {
  script.__flintMounted = true;
  const data = script.dataset;
  const target = data.target;
  const timeout = parseInt(data.readyTimeout || "", 10);
  const options = { clientToken: data.clientToken, redirect: data.redirect !== "false", readyTimeout: timeout > 0 ? timeout : undefined };
  const start = () => {
    let element = target && document.querySelector(target);
    if (!element) {
      // No target: the widget goes where the script tag is.
      element = document.createElement("div");
      script.after(element);
    }
    Flint.mount(element, options).catch((error) => warn(error.message));
  };
  // Mount at once when the target is already parsed; wait for the rest of the page only if not.
  if (target && !document.querySelector(target) && document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  } else start();
}

/*
 * The card frame's script (served at /widget/v1/frame.js, run by /widget/v1/frame/{session}).
 *
 * The frame holds the hosted checkout's form: the buyer's details (./fields.js), then the card. This
 * script checks who framed it, takes the client_token from the loader through the envelope of
 * widget/PROTOCOL.md, validates the card as the buyer types (./card.js), sends card and details to
 * Flint's buyer confirm API on this origin, marks every field Flint refused, runs the 3-D Secure
 * challenge in place, and tells the loader what happened. Card data and the buyer's details never leave
 * this window except in the confirm request to Flint.
 */
import { checkCvc, checkExpiry, checkNumber, cvcLength, digitsOf, expiryAsTyped, expiryOf, brandOf, spaced } from "./card.js";
import { buyerInputs, checkField, detailsOf, fitAddress } from "./fields.js";
import { cssVariables, envelope, isFrom, payloadOf } from "./shared.js";

const config = JSON.parse(document.getElementById("flint-frame-config").textContent);
const text = config.messages; // every text this script shows, in the buyer's language, by id

const $ = (id) => document.getElementById(id);
const form = $("card-form");
const number = $("card_number");
const expiry = $("expiry");
const cvc = $("cvc");
const pay = $("pay");
const alertBox = $("frame-alert");

// Answers that close the session for this frame: nothing more can be paid here.
const CLOSING = /^(session_expired|order_already_paid|order_authorized|order_canceled|session_not_open)$/;

// state -> event -> next state. What a state does not list is ignored: an init replayed, a click
// while a payment is on its way, an answer after the session closed.
const FLOW = {
  waiting: { init: "form", unavailable: "closed" },
  form: { pay: "paying" },
  challenge: { answer: "answering" },
  paying: { paid: "done", action: "challenge", declined: "form", offline: "form", closed: "closed" },
  answering: { paid: "done", action: "challenge", declined: "form", offline: "challenge", closed: "closed" },
  done: {},
  closed: {},
};
// The view each settled state shows ("" = none); paying and answering keep theirs, its buttons busy.
const VIEWS = { form: "pay-view", challenge: "challenge-view", done: "done-view", closed: "" };
let state = "waiting";

const transition = (event) => {
  const next = FLOW[state][event];
  if (!next) return false;
  state = next;
  const busy = state === "paying" || state === "answering";
  for (const button of [pay, $("approve"), $("deny")]) {
    button.disabled = busy;
    if (busy) button.setAttribute("aria-busy", "true");
    else button.removeAttribute("aria-busy");
  }
  const view = VIEWS[state];
  if (view !== undefined) for (const id of ["pay-view", "challenge-view", "done-view"]) $(id).hidden = id !== view;
  return true;
};

// -- who framed us -----------------------------------------------------------------------------
// CSP frame-ancestors already limits the parents to the merchant's registered origins; the frame
// checks again and pins that one origin for every message it sends.
const claimed = new URLSearchParams(window.location.hash.slice(1)).get("origin");
const ancestors = window.location.ancestorOrigins;
const parentOrigin = ancestors?.length ? ancestors[0] : claimed;
if (window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search);
const framed = window.parent !== window && parentOrigin && (!claimed || claimed === parentOrigin) &&
  config.origins.includes(parentOrigin);

let token = null;
let sent = 0;
let idempotencyKey = null;
let challenged = null;

const send = (type, payload) => window.parent.postMessage(envelope(type, `f${++sent}`, payload), parentOrigin);

const height = () => Math.ceil(document.documentElement.getBoundingClientRect().height);

const watchHeight = () => {
  let last = 0;
  let pending = false;
  const report = () => {
    pending = false;
    const now = height();
    if (now !== last) {
      last = now;
      send("resize", { height: now });
    }
  };
  new ResizeObserver(() => {
    if (!pending) {
      pending = true;
      window.requestAnimationFrame(report);
    }
  }).observe(document.body);
};

const receive = (event) => {
  if (!isFrom(event, window.parent, parentOrigin) || event.data.type !== "init") return;
  const payload = payloadOf(event.data);
  if (typeof payload.clientToken !== "string" || !transition(config.unavailable ? "unavailable" : "init")) return;
  token = payload.clientToken;
  const styles = cssVariables(payload.appearance);
  for (const property in styles) document.documentElement.style.setProperty(property, styles[property]);
  if (config.unavailable) {
    showAlert(text[config.unavailable.code] || config.unavailable.message);
    send("error", config.unavailable);
  }
  send("ready", { height: height() });
  watchHeight();
};

// -- the card, as typed --------------------------------------------------------------------------
const CHECKS = [
  { input: number, check: () => checkNumber(digitsOf(number.value)) },
  { input: expiry, check: () => checkExpiry(expiry.value) },
  { input: cvc, check: () => checkCvc(digitsOf(number.value), digitsOf(cvc.value)) },
];

// Where Flint's answer puts a card problem (param) on the form; every other param is its input's name,
// whose id is the name with "-" for "." (docs/api.md 14).
const CARD_INPUTS = { "card.number": "card_number", "card.exp_month": "expiry", "card.exp_year": "expiry", "card.cvc": "cvc" };
const inputOf = (param) => {
  const input = $((CARD_INPUTS[param] || String(param)).replace(/\./g, "-"));
  return input && form.contains(input) && input.name ? input : null;
};

// A field's message: our words for a code we know, else Flint's (an app's field_error is its own, as text).
const wordsFor = (code, message) => (code !== "field_error" && text[code]) || message || code;

// Marks a field invalid with its message in `<id>-error` (aria-invalid + aria-describedby, next to a
// hint it already had), or clears it (code null).
const mark = (input, code, message) => {
  const box = $(`${input.id}-error`);
  const hint = (input.dataset.hint ??= input.getAttribute("aria-describedby")?.replace(box.id, "").trim() || "");
  box.textContent = code ? wordsFor(code, message) : "";
  box.hidden = !code;
  if (code) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", `${hint} ${box.id}`.trim());
  } else {
    input.removeAttribute("aria-invalid");
    if (hint) input.setAttribute("aria-describedby", hint);
    else input.removeAttribute("aria-describedby");
  }
};

const focusFirstInvalid = () => form.querySelector('[aria-invalid="true"]')?.focus();

const watchCard = () => {
  number.addEventListener("input", () => {
    const digits = digitsOf(number.value).slice(0, 19);
    number.value = spaced(digits);
    $("card-brand").textContent = brandOf(digits)?.name ?? "";
    cvc.maxLength = cvcLength(digits);
  });
  expiry.addEventListener("input", (event) => {
    expiry.value = expiryAsTyped(digitsOf(expiry.value).slice(0, 4), event.inputType?.startsWith("delete"));
  });
  cvc.addEventListener("input", () => {
    cvc.value = digitsOf(cvc.value).slice(0, 4);
  });
  let touched = false;
  form.addEventListener("input", () => {
    idempotencyKey = null; // new details, a new attempt
    if (!touched) {
      touched = true;
      send("interacted");
    }
  });
  for (const field of CHECKS) {
    // Judge a field when the buyer leaves it, and clear the message as soon as it is right.
    const input = field.input;
    input.addEventListener("blur", () => input.value && mark(input, field.check()));
    input.addEventListener("input", () => input.getAttribute("aria-invalid") && mark(input, field.check()));
  }
  for (const input of buyerInputs(form)) {
    // The same for the buyer's details, with what the frame can judge (Flint's own message, e.g. a postal
    // code, goes as soon as the buyer changes the field: Flint judges it again on Pay).
    input.addEventListener("blur", () => input.value && input.type !== "checkbox" && mark(input, checkField(input)));
    input.addEventListener("input", () => input.getAttribute("aria-invalid") && mark(input, checkField(input)));
  }
  const rules = JSON.parse($("flint-country-fields")?.textContent || "{}");
  for (const select of form.querySelectorAll('select[name$="_address.country"]')) {
    fitAddress(form, select, rules);
    select.addEventListener("change", () => fitAddress(form, select, rules));
  }
};

// -- paying --------------------------------------------------------------------------------------
const showAlert = (message) => {
  alertBox.textContent = message || "";
  alertBox.hidden = !message;
};

const call = async (url, body) => {
  idempotencyKey ||= `frame-${window.crypto.randomUUID?.() ?? `${Date.now()}-${Math.random()}`}`;
  const response = await fetch(url, {
    method: "POST",
    credentials: "omit",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Idempotency-Key": idempotencyKey },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
};

const complete = (payment) => {
  if (!transition("paid")) return;
  showAlert("");
  // Capture "manual" (docs/api.md 17): the card is only authorized, so the buyer is not told "paid".
  $("done-text").textContent = payment.status === "authorized" ? text.authorized : text.paid;
  $("done-text").focus();
  send("complete", { order_id: payment.order_id, payment_id: payment.id, success_url: config.successUrl });
};

const challenge = (payment) => {
  if (!transition("action")) return;
  challenged = payment;
  showAlert("");
  $("challenge-text").textContent = text.challenge_text.replace("{amount}", config.amount)
    .replace("{last4}", payment.card?.last4 ?? "");
  $("challenge-title").focus();
};

const handle = (answer) => {
  const body = answer.body || {};
  idempotencyKey = null; // an answer closes this attempt; the next click is a new one
  if (answer.status === 200 && (body.status === "succeeded" || body.status === "authorized")) return complete(body);
  if (answer.status === 200 && body.status === "requires_action") return challenge(body);
  const code = body.code || "payment_failed";
  const closes = answer.status === 401 || CLOSING.test(code);
  if (!transition(closes ? "closed" : "declined")) return;
  if (answer.status === 400 && Array.isArray(body.errors)) {
    // Refused before any attempt: every bad field at once, each message at its field; one with no
    // field on this form (none should be) is said in the alert.
    const loose = [];
    for (const problem of body.errors) {
      const input = inputOf(problem?.param);
      if (!input) loose.push(wordsFor(problem?.code, problem?.message));
      else if (!input.getAttribute("aria-invalid")) {
        mark(input, problem.code || "invalid_field", problem.message);
        input.closest("[data-field]")?.removeAttribute("hidden"); // Flint's word wins over the format's
      }
    }
    showAlert([text.invalid_field, ...loose].join(" "));
    focusFirstInvalid();
    return;
  }
  if (code === "route_to_hosted") {
    // Flint (an installed app's hook) asks for the hosted page: the loader swaps in its link.
    send("fallback", { reason: "requested" });
    return;
  }
  if (code === "too_many_attempts") {
    // A card testing limit (429): say when to try again, in whole minutes rounded up.
    const minutes = Math.max(1, Math.ceil((+body.retry_after || 60) / 60));
    showAlert(text[`too_many_attempts_${minutes === 1 ? "one" : "other"}`].replace("%(count)s", minutes));
    return;
  }
  showAlert(text[code] || body.detail || text.payment_failed);
  if (closes) send("error", { code, message: text[code] || body.detail || "" });
};

const offline = () => {
  transition("offline");
  showAlert(text.network_error);
};

const answerChallenge = (result) => {
  if (!challenged || !transition("answer")) return;
  call(config.challengeUrl, { payment: challenged.id, result }).then(handle, offline);
};

const submit = (event) => {
  event.preventDefault(); // with this script the card goes to the confirm API, not the hosted page
  if (!FLOW[state].pay) return;
  // Every field judged at once (the buyer's, then the card's), each marked; the first bad one gets focus.
  let bad = false;
  for (const input of buyerInputs(form)) {
    const code = checkField(input);
    mark(input, code);
    bad ||= !!code;
  }
  for (const field of CHECKS) {
    const code = field.check();
    mark(field.input, code);
    bad ||= !!code;
  }
  if (bad) {
    focusFirstInvalid(); // nothing is sent for a form that cannot be right
    return;
  }
  const expires = expiryOf(expiry.value);
  showAlert("");
  transition("pay");
  call(config.confirmUrl, {
    card: { number: digitsOf(number.value), exp_month: expires.month, exp_year: expires.year, cvc: digitsOf(cvc.value) },
    ...detailsOf(form),
  }).then(handle, offline);
};

if (framed) {
  window.addEventListener("message", receive);
  send("hello");
  watchCard();
  $("approve").addEventListener("click", () => answerChallenge("approve"));
  $("deny").addEventListener("click", () => answerChallenge("deny"));
  form.addEventListener("submit", submit);
} else {
  // Opened on its own or framed by a page Flint does not know: the hosted link, and not a word sent.
  $("pay-view").hidden = true;
  $("blocked-view").hidden = false;
}

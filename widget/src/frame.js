/*
 * The card frame's script (served at /widget/v1/frame.js, run by /widget/v1/frame/{session}).
 *
 * The frame holds the hosted checkout's card form. This script checks who framed it, takes the
 * client_token from the loader through the envelope of widget/PROTOCOL.md, validates the card as
 * the buyer types (spacing, brand, Luhn, expiry, CVC), sends it to Flint's buyer confirm API on
 * this origin, runs the 3-D Secure challenge in place, and tells the loader what happened. Card
 * data never leaves this window except in the confirm request to Flint.
 */
(function (window, document) {
  "use strict";

  var NS = "flint";
  var VERSION = 1;
  var config = JSON.parse(document.getElementById("flint-frame-config").textContent);
  var text = config.messages;

  function $(id) { return document.getElementById(id); }

  var form = $("card-form");
  var number = $("card_number");
  var expiry = $("expiry");
  var cvc = $("cvc");
  var pay = $("pay");
  var alertBox = $("frame-alert");

  // -- who framed us -----------------------------------------------------------------------------
  // CSP frame-ancestors already limits the parents to the merchant's registered origins; the frame
  // checks again and pins that one origin for every message it sends.
  var claimed = new URLSearchParams(window.location.hash.slice(1)).get("origin");
  var ancestors = window.location.ancestorOrigins;
  var parentOrigin = ancestors && ancestors.length ? ancestors[0] : claimed;
  if (window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search);
  var framed = window.parent !== window && parentOrigin && (!claimed || claimed === parentOrigin) &&
    config.origins.indexOf(parentOrigin) >= 0;
  if (!framed) {
    $("pay-view").hidden = true;
    $("blocked-view").hidden = false;
    return;
  }

  var token = null;
  var sent = 0;
  function send(type, payload) {
    sent += 1;
    window.parent.postMessage({ ns: NS, v: VERSION, type: type, id: "f" + sent, payload: payload || {} }, parentOrigin);
  }

  function height() {
    return Math.ceil(document.documentElement.getBoundingClientRect().height);
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || event.origin !== parentOrigin) return;
    var message = event.data;
    if (!message || message.ns !== NS || message.v !== VERSION || message.type !== "init") return;
    var payload = message.payload;
    if (token || !payload || typeof payload.clientToken !== "string") return;
    token = payload.clientToken;
    applyAppearance(payload.appearance);
    if (config.unavailable) {
      showAlert(text[config.unavailable.code] || config.unavailable.message);
      $("pay-view").hidden = true;
      send("error", config.unavailable);
    }
    send("ready", { height: height() });
    watchHeight();
  });
  send("hello", {});

  // -- appearance (validated again here: the frame trusts nothing it is sent) ------------------------
  var COLOR = /^(#[0-9a-f]{3,8}|(rgb|hsl)a?\(\s*[0-9.%,\s/]+\))$/i;
  var LENGTH = /^\d{1,3}(\.\d{1,3})?(px|rem|em)$/;
  var FONT = /^[a-z0-9 ,"'-]{1,120}$/i;
  var PROPERTIES = {
    colorPrimary: ["--brand", COLOR], colorBackground: ["--bg", COLOR], colorText: ["--text", COLOR],
    colorDanger: ["--danger", COLOR], borderRadius: ["--radius", LENGTH], fontFamily: ["--font", FONT]
  };
  function applyAppearance(appearance) {
    if (!appearance || typeof appearance !== "object") return;
    for (var name in PROPERTIES) {
      var value = appearance[name];
      if (typeof value === "string" && PROPERTIES[name][1].test(value)) {
        document.documentElement.style.setProperty(PROPERTIES[name][0], value);
      }
    }
  }

  function watchHeight() {
    var last = 0;
    var pending = false;
    var report = function () {
      pending = false;
      var now = height();
      if (now !== last) { last = now; send("resize", { height: now }); }
    };
    new ResizeObserver(function () {
      if (!pending) { pending = true; window.requestAnimationFrame(report); }
    }).observe(document.body);
  }

  // -- the card, as typed --------------------------------------------------------------------------
  var BRANDS = [
    ["amex", "American Express", /^3[47]/, 15, 4],
    ["visa", "Visa", /^4/, 16, 3],
    ["mastercard", "Mastercard", /^(5[1-5]|2[2-7])/, 16, 3],
    ["discover", "Discover", /^(6011|65|64[4-9])/, 16, 3],
    ["diners", "Diners Club", /^3(0[0-5]|[689])/, 14, 3],
    ["jcb", "JCB", /^35/, 16, 3],
    ["unionpay", "UnionPay", /^62/, 16, 3]
  ];
  function brandOf(digits) {
    for (var i = 0; i < BRANDS.length; i++) if (BRANDS[i][2].test(digits)) return BRANDS[i];
    return null;
  }
  function luhn(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = +digits.charAt(digits.length - 1 - i);
      if (i % 2) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }
  function digitsOf(input) { return input.value.replace(/\D/g, ""); }

  number.addEventListener("input", function () {
    var digits = digitsOf(number).slice(0, 19);
    var brand = brandOf(digits);
    // American Express groups 4-6-5; the rest 4-4-4-4(-3).
    number.value = brand && brand[0] === "amex"
      ? digits.replace(/^(\d{4})(\d{1,6})?(\d{1,5})?$/, function (_, a, b, c) { return [a, b, c].filter(Boolean).join(" "); })
      : digits.replace(/(\d{4})(?=\d)/g, "$1 ");
    $("card-brand").textContent = brand ? brand[1] : "";
    cvc.maxLength = brand && brand[4] === 4 ? 4 : 3;
  });
  expiry.addEventListener("input", function (event) {
    var digits = digitsOf(expiry).slice(0, 4);
    if (digits.length === 1 && +digits > 1) digits = "0" + digits; // "4" means April
    var deleting = event.inputType && event.inputType.indexOf("delete") === 0;
    expiry.value = digits.length > 2 || (digits.length === 2 && !deleting) ? digits.slice(0, 2) + " / " + digits.slice(2) : digits;
  });
  cvc.addEventListener("input", function () { cvc.value = digitsOf(cvc).slice(0, 4); });

  var touched = false;
  form.addEventListener("input", function () {
    idempotencyKey = null; // new details, a new attempt
    if (!touched) { touched = true; send("interacted", {}); }
  });

  function checkNumber() {
    var digits = digitsOf(number);
    var brand = brandOf(digits);
    if (digits.length < (brand ? brand[3] : 12)) return "card_number_incomplete";
    return luhn(digits) ? null : "invalid_card_number";
  }
  function checkExpiry() {
    var match = /^(\d{2}) \/ (\d{2})$/.exec(expiry.value.trim());
    if (!match || +match[1] < 1 || +match[1] > 12) return "expiry_incomplete";
    var now = new Date();
    var year = 2000 + +match[2];
    var month = +match[1];
    if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) return "expiry_past";
    return null;
  }
  function checkCvc() {
    var brand = brandOf(digitsOf(number));
    return digitsOf(cvc).length === (brand ? brand[4] : 3) ? null : "cvc_incomplete";
  }
  var CHECKS = [[number, checkNumber], [expiry, checkExpiry], [cvc, checkCvc]];

  function mark(input, code) {
    var box = $(input.id + "-error");
    var hint = input.id === "card_number" ? "card-hint " : "";
    box.textContent = code ? text[code] || code : "";
    box.hidden = !code;
    if (code) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", hint + box.id);
    } else {
      input.removeAttribute("aria-invalid");
      if (hint) input.setAttribute("aria-describedby", "card-hint"); else input.removeAttribute("aria-describedby");
    }
  }
  CHECKS.forEach(function (pair) {
    // Judge a field when the buyer leaves it, and clear the message as soon as it is right.
    pair[0].addEventListener("blur", function () { if (pair[0].value) mark(pair[0], pair[1]()); });
    pair[0].addEventListener("input", function () { if (pair[0].getAttribute("aria-invalid")) mark(pair[0], pair[1]()); });
  });

  // -- paying --------------------------------------------------------------------------------------
  var idempotencyKey = null;
  var busy = false;

  function showAlert(message) {
    alertBox.textContent = message || "";
    alertBox.hidden = !message;
  }

  function setBusy(on) {
    busy = on;
    [pay, $("approve"), $("deny")].forEach(function (button) {
      button.disabled = on;
      if (on) button.setAttribute("aria-busy", "true"); else button.removeAttribute("aria-busy");
    });
  }

  function call(url, body) {
    if (!idempotencyKey) idempotencyKey = "frame-" + (window.crypto.randomUUID ? window.crypto.randomUUID() : Date.now() + "-" + Math.random());
    return fetch(url, {
      method: "POST",
      credentials: "omit",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json", "Idempotency-Key": idempotencyKey },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return { status: response.status, body: data }; });
    });
  }

  function handle(answer) {
    var body = answer.body || {};
    idempotencyKey = null; // an answer closes this attempt; the next click is a new one
    if (answer.status === 200 && body.status === "succeeded") return complete(body);
    if (answer.status === 200 && body.status === "requires_action") return challenge(body);
    setBusy(false);
    showView("pay-view");
    var code = body.code || "payment_failed";
    if (code === "route_to_hosted") {
      // Flint (an installed app's hook) asks for the hosted page: the loader swaps in its link.
      send("fallback", { reason: "requested" });
      return;
    }
    if (code === "invalid_card_number") mark(number, code);
    if (code === "too_many_attempts") {
      // A card testing limit (429): say when to try again, in whole minutes rounded up.
      var minutes = Math.max(1, Math.ceil((+body.retry_after || 60) / 60));
      return showAlert(text["too_many_attempts_" + (minutes === 1 ? "one" : "other")].replace("%(count)s", minutes));
    }
    showAlert(text[code] || body.detail || text.payment_failed);
    if (answer.status === 401 || /^(session_expired|order_already_paid|order_canceled|session_not_open)$/.test(code)) {
      send("error", { code: code, message: text[code] || body.detail || "" });
      $("pay-view").hidden = true;
    }
  }

  function networkFailed() {
    setBusy(false);
    showAlert(text.network_error);
  }

  function showView(id) {
    ["pay-view", "challenge-view", "done-view"].forEach(function (view) { $(view).hidden = view !== id; });
  }

  function complete(payment) {
    showAlert("");
    showView("done-view");
    $("done-text").textContent = text.paid;
    $("done-text").focus();
    send("complete", { order_id: payment.order_id, payment_id: payment.id, success_url: config.successUrl });
  }

  var challenged = null;
  function challenge(payment) {
    challenged = payment;
    setBusy(false);
    showAlert("");
    $("challenge-text").textContent = text.challenge_text.replace("{amount}", config.amount)
      .replace("{last4}", payment.card ? payment.card.last4 : "");
    showView("challenge-view");
    $("challenge-title").focus();
  }

  function answerChallenge(result) {
    if (busy || !challenged) return;
    setBusy(true);
    call(config.challengeUrl, { payment: challenged.id, result: result }).then(handle, networkFailed);
  }
  $("approve").addEventListener("click", function () { answerChallenge("approve"); });
  $("deny").addEventListener("click", function () { answerChallenge("deny"); });

  form.addEventListener("submit", function (event) {
    event.preventDefault(); // with this script the card goes to the confirm API, not the hosted page
    if (busy || !token) return;
    var firstBad = null;
    CHECKS.forEach(function (pair) {
      var code = pair[1]();
      mark(pair[0], code);
      if (code && !firstBad) firstBad = pair[0];
    });
    if (firstBad) { firstBad.focus(); return; } // nothing is sent for a card that cannot be right
    var parts = /^(\d{2}) \/ (\d{2})$/.exec(expiry.value.trim());
    showAlert("");
    setBusy(true);
    call(config.confirmUrl, {
      card: { number: digitsOf(number), exp_month: +parts[1], exp_year: 2000 + +parts[2], cvc: digitsOf(cvc) }
    }).then(handle, networkFailed);
  });
})(window, document);

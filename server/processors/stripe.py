"""The Stripe connector, on the official ``stripe`` package (optional: ``pip install flint-checkout[stripe]``).

PaymentIntents with ``capture_method`` (automatic | manual), confirmed at once with the card Flint's
buyer entered. Flint's payment id is the idempotency key of the PaymentIntent (and, suffixed, of its
PaymentMethod, capture and cancel) and is kept in the PaymentIntent's metadata, so an attempt whose
answer was lost is found again by ``lookup``. Every answer is read tolerantly (a field may be missing);
a network failure, a timeout, a 5xx, a 429, an idempotency conflict or a status this module does not
know is UNKNOWN, never FAILED.

Sending card numbers to Stripe from a server needs Stripe to enable raw card data APIs on the account
(for PCI DSS SAQ D compliant businesses only): docs/processors.md says what that means.
"""
from __future__ import annotations

import logging
from typing import Any

import stripe

from flint.processors.base import (
    ALREADY_CAPTURED,
    AUTHORIZATION_EXPIRED,
    AUTHORIZED,
    AUTOMATIC,
    CANCELED,
    FAILED,
    INVALID_AMOUNT,
    MANUAL,
    NOT_FOUND,
    REQUIRES_ACTION,
    SUCCEEDED,
    UNKNOWN,
    ChargeRequest,
    ChargeResult,
    ProcessorUnavailable,
    RefundResult,
)

log = logging.getLogger("flint.processors.stripe")

METADATA_KEY = "flint_payment_id"
# Stripe's decline codes (and error codes) that Flint's buyer pages have a message for; any other
# decline is "card_declined".
KNOWN_DECLINES = ("insufficient_funds", "expired_card", "incorrect_cvc", "processing_error", "card_declined")


def _plain(obj: Any) -> dict:
    """A Stripe object as a plain dict (missing fields are simply absent)."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _decline_code(error: dict | None) -> str:
    error = error or {}
    for key in ("decline_code", "code"):
        if error.get(key) in KNOWN_DECLINES:
            return error[key]
    if error.get("code") == "payment_intent_authentication_failure":
        return "authentication_failed"
    return "card_declined"


def map_payment_intent(intent: Any) -> ChargeResult:
    """A PaymentIntent -> Flint's status. Anything not understood is UNKNOWN (settle later)."""
    pi = _plain(intent)
    ref = pi.get("id") if isinstance(pi.get("id"), str) else None
    status = pi.get("status")
    amount = _int(pi.get("amount"))
    if status == "succeeded":
        # amount_received is what was captured (absent on some servers): else the amount.
        received = _int(pi.get("amount_received"))
        return ChargeResult(SUCCEEDED, ref, None, received if received else amount)
    if status == "requires_capture":
        capturable = _int(pi.get("amount_capturable"))
        return ChargeResult(AUTHORIZED, ref, None, capturable if capturable else amount)
    if status == "requires_action":
        return ChargeResult(REQUIRES_ACTION, ref)
    if status == "canceled":
        # Stripe cancels an uncaptured PaymentIntent itself when its authorization lapses ("automatic").
        reason = pi.get("cancellation_reason")
        return ChargeResult(CANCELED, ref, AUTHORIZATION_EXPIRED if reason in ("automatic", "expired") else None)
    if status == "requires_payment_method":
        # The last attempt failed (a decline, or a failed 3-D Secure check).
        error = pi.get("last_payment_error")
        if error:
            return ChargeResult(FAILED, ref, _decline_code(error))
        return ChargeResult(UNKNOWN, ref)
    # processing, requires_confirmation, a status added after this was written, or no status at all.
    return ChargeResult(UNKNOWN, ref)


def _error_body(error: stripe.StripeError) -> dict:
    body = error.json_body if isinstance(getattr(error, "json_body", None), dict) else {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else {}


def _unknown_outcome(error: Exception) -> bool:
    """Errors after which the request may or may not have taken effect."""
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError, stripe.IdempotencyError)):
        return True
    if isinstance(error, stripe.StripeError):
        status = error.http_status
        return status is None or status >= 500 or status == 409
    return True


class StripeProcessor:
    name = "stripe"

    def __init__(self, secret_key: str, *, api_base: str | None = None, timeout_seconds: float = 20.0,
                 max_network_retries: int = 0) -> None:
        # Retries are Flint's (the sweeper looks up and re-drives under the same idempotency keys); the
        # client's own would only stretch a call past Flint's processor timeout.
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        bases: dict = {"api": api_base.rstrip("/")} if api_base else {}
        self._client = stripe.StripeClient(secret_key, base_addresses=bases, http_client=self._http,
                                           max_network_retries=max_network_retries)
        self._v1 = self._client.v1

    async def aclose(self) -> None:
        close = getattr(self._http, "close_async", None)
        if close is not None:
            await close()

    # -- charge -----------------------------------------------------------------------------------
    async def charge(self, request: ChargeRequest) -> ChargeResult:
        card = request.card
        try:
            # A PaymentMethod first, then the PaymentIntent confirmed with it: the same on Stripe and on
            # servers that do not take payment_method_data (localstripe). Both under Flint's payment id.
            method = await self._v1.payment_methods.create_async(
                {"type": "card", "card": {"number": card.number, "exp_month": card.exp_month,
                                          "exp_year": card.exp_year, "cvc": card.cvc}},
                {"idempotency_key": f"{request.payment_id}:pm"})
            intent = await self._v1.payment_intents.create_async(
                {"amount": request.amount, "currency": request.currency.lower(),
                 "capture_method": MANUAL if request.capture == MANUAL else AUTOMATIC,
                 "payment_method": _plain(method).get("id"), "payment_method_types": ["card"],
                 "confirm": True, "metadata": {METADATA_KEY: request.payment_id}},
                {"idempotency_key": request.payment_id})
        except stripe.CardError as error:
            # A decline: the PaymentIntent (when the answer names it) stays requires_payment_method.
            body = _error_body(error)
            intent_ref = _plain(body.get("payment_intent")).get("id") if body.get("payment_intent") else None
            return ChargeResult(FAILED, intent_ref, _decline_code(body or {"code": error.code}))
        except Exception as error:  # noqa: BLE001 (every failure is mapped: unknown or a refusal)
            return self._failed_call("charge", request.payment_id, error, None)
        return map_payment_intent(intent)

    async def complete_action(self, processor_ref: str, approved: bool, capture: str = AUTOMATIC) -> ChargeResult:
        """The buyer's 3-D Secure answer. On Stripe the check itself happens between the buyer's browser
        and the card issuer (Stripe.js); Flint only reads where the PaymentIntent stands afterwards, and
        cancels it when the buyer gave up."""
        try:
            if not approved:
                intent = await self._v1.payment_intents.cancel_async(processor_ref, {},
                                                                      {"idempotency_key": f"{processor_ref}:deny"})
                result = map_payment_intent(intent)
                if result.status == CANCELED:
                    return ChargeResult(FAILED, result.processor_ref, "authentication_failed")
                return result
            intent = await self._v1.payment_intents.retrieve_async(processor_ref)
        except Exception as error:  # noqa: BLE001
            return self._failed_call("complete_action", processor_ref, error, processor_ref)
        return map_payment_intent(intent)

    # -- capture and void -------------------------------------------------------------------------
    async def capture(self, payment_id: str, processor_ref: str | None, amount: int, currency: str) -> ChargeResult:
        ref = processor_ref or await self._find(payment_id)
        if ref is None or ref == UNKNOWN:
            return ChargeResult(UNKNOWN if ref == UNKNOWN else FAILED, None, None if ref == UNKNOWN else NOT_FOUND)
        if amount <= 0:
            return ChargeResult(FAILED, ref, INVALID_AMOUNT)
        try:
            intent = await self._v1.payment_intents.capture_async(
                ref, {"amount_to_capture": amount}, {"idempotency_key": f"{payment_id}:capture"})
        except Exception as error:  # noqa: BLE001
            if _unknown_outcome(error):
                return self._failed_call("capture", payment_id, error, ref)
            # Refused (400): say why from where the PaymentIntent stands now.
            now = await self.lookup(payment_id, ref)
            if now.status == SUCCEEDED:
                return now  # captured already (a retry after its answer was lost, past the key's life)
            if now.status == CANCELED:
                return ChargeResult(FAILED, ref, AUTHORIZATION_EXPIRED)
            if now.status == UNKNOWN:
                return now
            if now.status == AUTHORIZED and now.amount is not None and amount > now.amount:
                return ChargeResult(FAILED, ref, INVALID_AMOUNT)
            return ChargeResult(FAILED, ref, "processing_error")
        result = map_payment_intent(intent)
        if result.status == SUCCEEDED:
            if result.amount is not None and result.amount > amount:
                # Some servers (localstripe) keep the authorized amount on a partial capture: Flint's is the truth.
                return ChargeResult(SUCCEEDED, result.processor_ref, None, amount)
            return result
        if result.status == CANCELED:  # the authorization is gone: nothing can be captured
            return ChargeResult(FAILED, result.processor_ref or ref, AUTHORIZATION_EXPIRED)
        if result.status in (FAILED, REQUIRES_ACTION):
            return ChargeResult(FAILED, result.processor_ref or ref, result.failure_code or "processing_error")
        # Still authorized after a capture that answered 200, or a status not understood: settle later.
        return ChargeResult(UNKNOWN, result.processor_ref or ref)

    async def void(self, payment_id: str, processor_ref: str | None) -> ChargeResult:
        ref = processor_ref or await self._find(payment_id)
        if ref == UNKNOWN:
            return ChargeResult(UNKNOWN)
        if ref is None:
            return ChargeResult(CANCELED, None)  # nothing is held under this payment id
        try:
            intent = await self._v1.payment_intents.cancel_async(ref, {}, {"idempotency_key": f"{payment_id}:void"})
        except Exception as error:  # noqa: BLE001
            if _unknown_outcome(error):
                return self._failed_call("void", payment_id, error, ref)
            now = await self.lookup(payment_id, ref)
            if now.status in (CANCELED, FAILED):
                return ChargeResult(CANCELED, ref)  # already released, or nothing held
            if now.status == SUCCEEDED:
                return ChargeResult(FAILED, ref, ALREADY_CAPTURED)
            return ChargeResult(UNKNOWN if now.status == UNKNOWN else FAILED, ref, now.failure_code)
        result = map_payment_intent(intent)
        return ChargeResult(CANCELED, result.processor_ref or ref) if result.status == CANCELED else result

    # -- refunds ----------------------------------------------------------------------------------
    async def refund(self, processor_ref: str, amount: int, currency: str, refund_id: str) -> RefundResult:
        try:
            refund = await self._v1.refunds.create_async({"payment_intent": processor_ref, "amount": amount},
                                                         {"idempotency_key": refund_id})
        except Exception as error:  # noqa: BLE001
            if _unknown_outcome(error):
                raise ProcessorUnavailable(f"stripe refund {refund_id}: {type(error).__name__}") from error
            return RefundResult(FAILED, None, "refund_failed")
        data = _plain(refund)
        status = data.get("status")
        if status in ("failed", "canceled"):
            return RefundResult(FAILED, data.get("id"), "refund_failed")
        if status in ("succeeded", "pending", "requires_action"):
            # "pending": Stripe has taken the refund and sends the money; it rarely fails later.
            return RefundResult(SUCCEEDED, data.get("id"))
        if status is None and data.get("id"):
            return RefundResult(SUCCEEDED, data.get("id"))  # servers that do not say (an id means it was made)
        raise ProcessorUnavailable(f"stripe refund {refund_id}: status {status!r}")

    # -- look-up ----------------------------------------------------------------------------------
    async def lookup(self, payment_id: str, processor_ref: str | None) -> ChargeResult:
        ref = processor_ref or await self._find(payment_id)
        if ref == UNKNOWN:
            return ChargeResult(UNKNOWN)
        if ref is None:
            return ChargeResult(FAILED, None, NOT_FOUND)
        try:
            intent = await self._v1.payment_intents.retrieve_async(ref)
        except Exception as error:  # noqa: BLE001
            if isinstance(error, stripe.InvalidRequestError) and error.http_status == 404:
                return ChargeResult(FAILED, None, NOT_FOUND)
            return ChargeResult(UNKNOWN, ref)
        return map_payment_intent(intent)

    async def _find(self, payment_id: str) -> str | None:
        """The PaymentIntent made under Flint's payment id: its id, None when there is none, UNKNOWN when
        Stripe could not be asked. Search first (Stripe's index lags by up to about a minute: Flint looks
        up only after an attempt's lease lapsed), then the newest PaymentIntents listed (consistent; also
        what servers without search, such as localstripe, offer)."""
        try:
            found = await self._v1.payment_intents.search_async(
                {"query": f"metadata['{METADATA_KEY}']:'{payment_id}'", "limit": 1})
            for intent in _plain(found).get("data") or []:
                if isinstance(intent, dict) and isinstance(intent.get("id"), str):
                    return intent["id"]
        except Exception as error:  # noqa: BLE001
            if isinstance(error, stripe.APIConnectionError):
                return UNKNOWN
        try:
            listed = await self._v1.payment_intents.list_async({"limit": 100})
        except Exception:  # noqa: BLE001
            return UNKNOWN
        for intent in _plain(listed).get("data") or []:
            if isinstance(intent, dict) and (intent.get("metadata") or {}).get(METADATA_KEY) == payment_id:
                return intent.get("id")
        return None

    def _failed_call(self, what: str, key: str, error: Exception, ref: str | None) -> ChargeResult:
        if _unknown_outcome(error):
            log.warning("stripe %s: outcome unknown (%s)", what, type(error).__name__, extra={"payment_id": key})
            return ChargeResult(UNKNOWN, ref)
        # A 4xx other than a decline: Stripe refused the request, so nothing was done.
        log.warning("stripe %s refused: %s", what, getattr(error, "code", None) or type(error).__name__,
                    extra={"payment_id": key})
        return ChargeResult(FAILED, ref, "processing_error")

"""The processor interface and the built-in simulated processor.

Processors return results, not exceptions (a decline is an outcome, not an error). The
simulated processor is a real, stateless implementation: it decides by card number like
Stripe's test cards and carries what it must remember (3-D Secure pending, refunds that
fail) in its own opaque reference, as a real processor keeps it on its side.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from flint.cards import Card

SUCCEEDED, FAILED, REQUIRES_ACTION = "succeeded", "failed", "requires_action"
# Issue 18: a manual-capture charge only authorizes; a void answers "canceled"; an outcome a connector
# cannot map is "unknown" (settle later by look-up), never a decline.
AUTHORIZED, CANCELED, UNKNOWN = "authorized", "canceled", "unknown"
AUTOMATIC, MANUAL = "automatic", "manual"

def N_(text: str) -> str:
    """Marks a buyer-facing text for the hosted pages' translation catalogues (gettext_noop): the
    API answers in English, buyer pages translate these by their English text."""
    return text


FAILURE_MESSAGES = {
    "card_declined": N_("Your card was declined."),
    "insufficient_funds": N_("Your card has insufficient funds."),
    "expired_card": N_("Your card has expired."),
    "incorrect_cvc": N_("Your card's security code is incorrect."),
    "processing_error": N_("An error occurred while processing your card. Please try again."),
    "authentication_failed": N_("We could not authenticate your payment. Please try another card."),
    "authentication_abandoned": N_("The card check was not completed, so this attempt was cancelled."),
    "payment_attempt_expired": N_("This payment attempt did not finish in time."),
    "payment_attempt_superseded": N_("Another payment attempt for this order took over."),
    "refund_failed": N_("The refund could not be processed."),
}


@dataclass(frozen=True)
class ChargeRequest:
    payment_id: str  # also the processor idempotency key
    amount: int
    currency: str
    card: Card
    capture: str = AUTOMATIC  # "manual": authorize only; capture later (issue 18)


@dataclass(frozen=True)
class ChargeResult:
    status: str  # succeeded | failed | requires_action
    processor_ref: str | None = None
    failure_code: str | None = None

    @property
    def failure_message(self) -> str | None:
        return FAILURE_MESSAGES.get(self.failure_code or "", None) if self.failure_code else None


@dataclass(frozen=True)
class RefundResult:
    status: str  # succeeded | failed
    processor_ref: str | None = None
    failure_code: str | None = None


class Processor(Protocol):
    name: str

    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

    async def complete_action(self, processor_ref: str, approved: bool, capture: str = AUTOMATIC) -> ChargeResult: ...

    async def capture(self, payment_id: str, processor_ref: str | None, amount: int, currency: str) -> ChargeResult: ...

    async def refund(self, processor_ref: str, amount: int, currency: str, refund_id: str) -> RefundResult: ...

    async def void(self, payment_id: str, processor_ref: str | None) -> ChargeResult | None: ...


# docs/api.md 6: the test-card table.
DECLINES = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
}
THREE_D_SECURE = "4000002760003184"
REFUND_FAILS = "4000000000005126"


class SimulatedProcessor:
    name = "simulated"

    @staticmethod
    def _ref(kind: str) -> str:
        return f"sim_{kind}_{secrets.token_hex(12)}"

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        number = request.card.number
        if number in DECLINES:
            return ChargeResult(FAILED, self._ref("ch"), DECLINES[number])
        if number == THREE_D_SECURE:
            return ChargeResult(REQUIRES_ACTION, self._ref("3ds"))
        if request.capture == MANUAL:
            # The authorization's ref says what its capture will become (chnr: its refunds fail).
            return ChargeResult(AUTHORIZED, self._ref("authnr" if number == REFUND_FAILS else "auth"))
        if number == REFUND_FAILS:
            return ChargeResult(SUCCEEDED, self._ref("chnr"))
        return ChargeResult(SUCCEEDED, self._ref("ch"))

    async def complete_action(self, processor_ref: str, approved: bool, capture: str = AUTOMATIC) -> ChargeResult:
        if not processor_ref.startswith("sim_3ds_"):
            return ChargeResult(FAILED, processor_ref, "processing_error")
        if not approved:
            return ChargeResult(FAILED, processor_ref, "authentication_failed")
        if capture == MANUAL:
            return ChargeResult(AUTHORIZED, "sim_auth_" + processor_ref[len("sim_3ds_"):])
        return ChargeResult(SUCCEEDED, "sim_ch_" + processor_ref[len("sim_3ds_"):])

    async def capture(self, payment_id: str, processor_ref: str | None, amount: int, currency: str) -> ChargeResult:
        # Stateless like the rest: the capture's ref is derived from the authorization's, so capturing
        # again (a retry under the same payment id) answers the same.
        ref = processor_ref or ""
        if ref.startswith("sim_authnr_"):
            return ChargeResult(SUCCEEDED, "sim_chnr_" + ref[len("sim_authnr_"):])
        if ref.startswith("sim_auth_"):
            return ChargeResult(SUCCEEDED, "sim_ch_" + ref[len("sim_auth_"):])
        return ChargeResult(FAILED, processor_ref, "processing_error")

    async def refund(self, processor_ref: str, amount: int, currency: str, refund_id: str) -> RefundResult:
        if processor_ref.startswith("sim_chnr_"):
            return RefundResult(FAILED, None, "refund_failed")
        return RefundResult(SUCCEEDED, self._ref("re"))

    async def void(self, payment_id: str, processor_ref: str | None) -> ChargeResult:
        # Nothing is held on a simulated card; a real processor cancels the authorisation
        # made under this payment id (its idempotency key).
        return ChargeResult(CANCELED, processor_ref)

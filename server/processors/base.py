"""The connector interface every processor implements, and Flint's statuses it maps to.

Connectors return results, not exceptions: a decline is an outcome, not an error. Each one maps its
processor's answer to Flint's statuses; an answer it cannot map (a timeout, a 5xx, a status it does not
know) is UNKNOWN, which Flint settles later with ``lookup`` under its own payment id, and never FAILED:
calling a charge that went through "declined" would let the buyer pay twice. docs/processors.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flint.cards import Card

SUCCEEDED, FAILED, REQUIRES_ACTION = "succeeded", "failed", "requires_action"
# Issue 18: a manual-capture charge only authorizes; a void answers "canceled"; an outcome a connector
# cannot map is "unknown" (settle later by look-up), never a decline.
AUTHORIZED, CANCELED, UNKNOWN = "authorized", "canceled", "unknown"
AUTOMATIC, MANUAL = "automatic", "manual"
CAPTURE_METHODS = (AUTOMATIC, MANUAL)

# Failure codes a capture or a void may answer with (merchant-facing, so not in FAILURE_MESSAGES):
# the authorization is gone at the processor (it expired or was canceled there): nothing can be captured.
AUTHORIZATION_EXPIRED = "authorization_expired"
# Voiding what was already captured: a refund is the way back.
ALREADY_CAPTURED = "already_captured"
# A capture for more than was authorized (or for nothing).
INVALID_AMOUNT = "invalid_amount"
# Lookup: the processor holds nothing under this payment id, so nothing was charged or held.
NOT_FOUND = "not_found"


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
    # succeeded | authorized | failed | requires_action | canceled | unknown
    status: str
    processor_ref: str | None = None
    failure_code: str | None = None
    # What the processor says the amount is, when it says: authorized (capturable) for AUTHORIZED,
    # captured for SUCCEEDED. None when it does not say (Flint keeps its own figure).
    amount: int | None = None

    @property
    def failure_message(self) -> str | None:
        return FAILURE_MESSAGES.get(self.failure_code or "", None) if self.failure_code else None

    @property
    def settled(self) -> bool:
        """False for UNKNOWN: the call may or may not have happened; look it up later."""
        return self.status != UNKNOWN


@dataclass(frozen=True)
class RefundResult:
    status: str  # succeeded | failed
    processor_ref: str | None = None
    failure_code: str | None = None


class ProcessorUnavailable(Exception):
    """A refund whose outcome is unknown (the processor did not answer, or answered 5xx). The refund
    service treats any exception so: the refund stays pending and is asked again under its id."""


class Processor(Protocol):
    """The connector interface (docs/processors.md). Every call carries Flint's payment id, the
    processor's idempotency key, so a retry never charges, captures or refunds twice."""
    name: str

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """automatic -> SUCCEEDED (captured); manual -> AUTHORIZED; or REQUIRES_ACTION, FAILED, UNKNOWN."""

    async def complete_action(self, processor_ref: str, approved: bool, capture: str = AUTOMATIC) -> ChargeResult:
        """The buyer's 3-D Secure answer: SUCCEEDED / AUTHORIZED (by ``capture``), FAILED, UNKNOWN."""

    async def capture(self, payment_id: str, processor_ref: str | None, amount: int, currency: str) -> ChargeResult:
        """Captures ``amount`` (at most what was authorized; the rest is released): SUCCEEDED, FAILED
        (``authorization_expired`` when the processor let it lapse) or UNKNOWN."""

    async def void(self, payment_id: str, processor_ref: str | None) -> ChargeResult | None:
        """Releases an authorization: CANCELED (also when nothing is held), FAILED or UNKNOWN."""

    async def refund(self, processor_ref: str, amount: int, currency: str, refund_id: str) -> RefundResult:
        """SUCCEEDED or FAILED; raises (ProcessorUnavailable) when the outcome is unknown."""

    async def lookup(self, payment_id: str, processor_ref: str | None) -> ChargeResult:
        """What the processor says now about Flint's payment id: SUCCEEDED, AUTHORIZED, FAILED
        (``not_found``: it holds nothing under that id), CANCELED, REQUIRES_ACTION or UNKNOWN."""

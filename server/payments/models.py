from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flint import clock

# "processing" is Flint's addition to the API reference's statuses: the attempt holds the order guard
# and the processor has not answered yet. It lasts milliseconds unless a process dies.
PROCESSING, REQUIRES_ACTION, SUCCEEDED, FAILED = "processing", "requires_action", "succeeded", "failed"
# Authorize now, capture later (docs/api.md 17): a manual-capture success is `authorized` until it is
# captured (-> succeeded) or voided / expired (-> canceled).
AUTHORIZED, CANCELED = "authorized", "canceled"
AUTOMATIC, MANUAL = "automatic", "manual"
CAPTURE_METHODS = (AUTOMATIC, MANUAL)
# An authorization's pending action (payments.pending_action): claimed under the order's lock before the
# processor is called; the first claim wins.
CAPTURE, VOID, EXPIRE = "capture", "void", "expire"


@dataclass
class Payment:
    id: str
    merchant_id: str
    order_id: str
    checkout_session_id: str | None
    payment_link_id: str | None
    channel: str
    status: str
    amount: int
    currency: str
    card_brand: str
    card_last4: str
    card_exp_month: int
    card_exp_year: int
    failure_code: str | None
    failure_message: str | None
    processor_ref: str | None
    amount_refunded: int
    amount_refund_pending: int
    created_at: str
    updated_at: str
    capture_method: str = AUTOMATIC
    amount_authorized: int | None = None  # manual capture only; ``amount`` is what was captured once it is
    authorized_at: str | None = None
    captured_at: str | None = None
    canceled_at: str | None = None
    pending_action: str | None = None  # capture | void | expire, while the processor is asked
    pending_amount: int | None = None
    pending_since: str | None = None

    @property
    def amount_capturable(self) -> int:
        return (self.amount_authorized or self.amount) if self.status == AUTHORIZED else 0

    @property
    def amount_captured(self) -> int:
        return self.amount if self.status == SUCCEEDED else 0

    @property
    def amount_refundable(self) -> int:
        if self.status != SUCCEEDED:
            return 0
        return self.amount - self.amount_refunded - self.amount_refund_pending

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment",
            "order_id": self.order_id,
            "checkout_session_id": self.checkout_session_id,
            "payment_link_id": self.payment_link_id,
            "channel": self.channel,
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "amount_refunded": self.amount_refunded,
            "capture_method": self.capture_method,
            "amount_authorized": self.amount_authorized if self.amount_authorized is not None else (
                self.amount if self.status == SUCCEEDED else 0),
            "amount_capturable": self.amount_capturable,
            "amount_captured": self.amount_captured,
            "card": {
                "brand": self.card_brand,
                "last4": self.card_last4,
                "exp_month": self.card_exp_month,
                "exp_year": self.card_exp_year,
            },
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "authorized_at": clock.public(self.authorized_at),
            "captured_at": clock.public(self.captured_at),
            "canceled_at": clock.public(self.canceled_at),
            "created_at": clock.public(self.created_at),
        }

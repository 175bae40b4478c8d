from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flint import clock

# "processing" is Flint's addition to the API reference's statuses: the attempt holds the order guard
# and the processor has not answered yet. It lasts milliseconds unless a process dies.
PROCESSING, REQUIRES_ACTION, SUCCEEDED, FAILED = "processing", "requires_action", "succeeded", "failed"


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
            "card": {
                "brand": self.card_brand,
                "last4": self.card_last4,
                "exp_month": self.card_exp_month,
                "exp_year": self.card_exp_year,
            },
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "created_at": clock.public(self.created_at),
        }

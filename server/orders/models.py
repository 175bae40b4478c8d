from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint import clock
from flint.actors import created_by

OPEN, PAID, PARTIALLY_REFUNDED, REFUNDED, CANCELED = (
    "open", "paid", "partially_refunded", "refunded", "canceled",
)


@dataclass
class Order:
    id: str
    merchant_id: str
    status: str
    currency: str
    amount_total: int
    amount_paid: int
    amount_refunded: int
    line_items: str  # JSON
    customer_email: str | None
    reference: str | None
    metadata: str  # JSON
    extension_data: str  # JSON
    event_seq: int
    attempt_payment_id: str | None
    attempt_expires_at: str | None
    created_at: str
    updated_at: str
    created_by_type: str | None = None
    created_by_id: str | None = None

    @property
    def amount_due(self) -> int:
        """What a payment attempt charges: the total less what is already paid."""
        return self.amount_total - self.amount_paid

    @property
    def amount_refundable(self) -> int:
        return self.amount_paid - self.amount_refunded

    def attempt_live(self, now: str) -> bool:
        """Whether a payment attempt holds the order guard and its lease has not lapsed."""
        return self.attempt_payment_id is not None and (self.attempt_expires_at or "") > now

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "order",
            "status": self.status,
            "currency": self.currency,
            "amount_total": self.amount_total,
            "amount_paid": self.amount_paid,
            "amount_refunded": self.amount_refunded,
            "amount_refundable": self.amount_refundable,
            "line_items": json.loads(self.line_items),
            "customer_email": self.customer_email,
            "reference": self.reference,
            "metadata": json.loads(self.metadata),
            "extension_data": json.loads(self.extension_data),
            "created_by": created_by(self.created_by_type, self.created_by_id),
            "created_at": clock.public(self.created_at),
        }

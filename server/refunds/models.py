from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flint import clock
from flint.actors import created_by

# "pending" is Flint's addition: money reserved while the processor call is under way.
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
REASONS = ("requested_by_customer", "duplicate", "fraudulent")


@dataclass
class Refund:
    id: str
    merchant_id: str
    payment_id: str
    order_id: str
    amount: int
    currency: str
    status: str
    reason: str | None
    failure_code: str | None
    processor_ref: str | None
    created_at: str
    updated_at: str
    created_by_type: str | None = None
    created_by_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "refund",
            "payment_id": self.payment_id,
            "order_id": self.order_id,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "reason": self.reason,
            "failure_code": self.failure_code,
            "created_by": created_by(self.created_by_type, self.created_by_id),
            "created_at": clock.public(self.created_at),
        }

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flint import clock, money
from flint.actors import Actor, created_by
from flint.errors import invalid
from flint.ids import new_id

OPEN, PAID, PARTIALLY_REFUNDED, REFUNDED, CANCELED = (
    "open", "paid", "partially_refunded", "refunded", "canceled",
)
# Authorize now, capture later (docs/api.md 17): a manual-capture payment holds the buyer's money; the
# order is `paid` on capture, back to `open` on void or expiry.
AUTHORIZED = "authorized"
STATUSES = (OPEN, AUTHORIZED, PAID, PARTIALLY_REFUNDED, REFUNDED, CANCELED)


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
    # What the buyer gave at checkout (docs/api.md 14): JSON, personal data that redact() erases.
    customer: str | None = None
    custom_fields: str = "{}"
    redacted_at: str | None = None

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
            "customer": json.loads(self.customer) if self.customer else None,
            "custom_fields": json.loads(self.custom_fields),
            "redacted_at": clock.public(self.redacted_at),
            "created_by": created_by(self.created_by_type, self.created_by_id),
            "created_at": clock.public(self.created_at),
        }


@dataclass
class LineItem:
    name: str
    quantity: int
    unit_amount: int


@dataclass
class NewOrder:
    currency: str
    line_items: list[LineItem]
    customer_email: str | None = None
    reference: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def build_order(merchant_id: str, new: NewOrder, actor: Actor, param_prefix: str = "") -> Order:
    """Validate the business rules (currency, totals) and build the row."""
    currency = money.check_currency(new.currency, param_prefix + "currency")
    if not new.line_items:
        raise invalid("line_items_empty", "An order needs at least one line item.", param_prefix + "line_items")
    items: list[dict[str, Any]] = []
    total = 0
    for i, item in enumerate(new.line_items):
        where = f"{param_prefix}line_items[{i}]"
        if item.quantity < 1:
            raise invalid("quantity_invalid", "Quantities must be at least 1.", where + ".quantity")
        if item.unit_amount < 0:
            raise invalid("amount_too_small", "Amounts may not be negative.", where + ".unit_amount")
        line_total = item.quantity * item.unit_amount
        if line_total > money.MAX_AMOUNT:
            raise invalid("amount_too_large", f"A line may not exceed {money.MAX_AMOUNT} minor units.", where)
        total += line_total
        items.append({"name": item.name, "quantity": item.quantity, "unit_amount": item.unit_amount,
                      "amount_total": line_total})
    for key, value in new.metadata.items():
        if not 1 <= len(key) <= 40 or len(value) > 500:
            raise invalid("metadata_invalid", "Metadata keys are 1-40 characters, values at most 500.",
                          f"{param_prefix}metadata.{key}")
    if len(new.metadata) > 50:
        raise invalid("metadata_invalid", "At most 50 metadata keys.", f"{param_prefix}metadata")
    if total <= 0:
        raise invalid("amount_too_small", "An order's total must be above zero.", param_prefix + "line_items")
    if total > money.MAX_AMOUNT:
        raise invalid("amount_too_large", f"An order's total may not exceed {money.MAX_AMOUNT} minor units.",
                      param_prefix + "line_items")
    now = clock.now_iso()
    return Order(
        id=new_id("ord"), merchant_id=merchant_id, status=OPEN, currency=currency,
        amount_total=total, amount_paid=0, amount_refunded=0,
        line_items=json.dumps(items), customer_email=new.customer_email, reference=new.reference,
        metadata=json.dumps(new.metadata, sort_keys=True), extension_data="{}", event_seq=0,
        attempt_payment_id=None, attempt_expires_at=None, created_at=now, updated_at=now,
        created_by_type=actor.type, created_by_id=actor.id,
    )

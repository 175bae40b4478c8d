from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from flint import money
from flint.api.schemas.buyers import Customer
from flint.api.schemas.common import CreatedBy, ListQuery
from flint.http.validation import Body, Query
from flint.orders import models


class CreateOrderLineItem(Body):
    name: str = Field(min_length=1, max_length=250, examples=["Mug"])
    quantity: int = Field(ge=1, le=10_000, examples=[2])
    unit_amount: int = Field(ge=0, le=money.MAX_AMOUNT, description="Minor units of the order's currency.",
                             examples=[1200])


class CreateOrderRequest(Body):
    """The fields of a new order (createOrder's body, or a checkout session's inline order)."""
    # The enum documents the supported list; money.check_currency enforces it (400 currency_invalid).
    currency: str = Field(pattern=r"^[a-z]{3}$", description="Lowercase ISO 4217 code.", examples=["usd"],
                          json_schema_extra={"enum": sorted(money.supported_currencies())})
    # "contains" is the zero-total rule (build_order: 400 amount_too_small) as JSON Schema says it:
    # quantities are at least 1, so the total is above zero exactly when some unit_amount is.
    line_items: list[CreateOrderLineItem] = Field(min_length=1, max_length=100, json_schema_extra={
        "contains": {"type": "object", "required": ["unit_amount"], "properties": {"unit_amount": {"minimum": 1}}},
    })
    # \u0085 and \uFEFF spelled out: pydantic's (Rust) \s has the first and not the second, a JSON
    # Schema (ECMA-262) \s the reverse; so validator and document agree on every string.
    customer_email: str | None = Field(None, max_length=254,
                                       pattern=r"^[^@\s\u0085\uFEFF]+@[^@\s\u0085\uFEFF]+$")
    reference: str | None = Field(None, max_length=200)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50, json_schema_extra={
        # Enforced by to_new_order (400 metadata_invalid); documented here.
        "propertyNames": {"minLength": 1, "maxLength": 40},
        "additionalProperties": {"type": "string", "maxLength": 500},
    })

    def to_new_order(self):
        return models.NewOrder(
            currency=self.currency,
            line_items=[models.LineItem(i.name, i.quantity, i.unit_amount) for i in self.line_items],
            customer_email=self.customer_email, reference=self.reference, metadata=dict(self.metadata),
        )


class LineItem(BaseModel):
    name: str
    quantity: int
    unit_amount: int
    amount_total: int


class Order(BaseModel):
    """What the buyer pays: line items and totals in minor units, and where the order stands."""
    id: str
    object: Literal["order"]
    status: Literal["open", "authorized", "paid", "partially_refunded", "refunded", "canceled"]
    currency: str
    amount_total: int
    amount_paid: int
    amount_refunded: int
    amount_refundable: int
    line_items: list[LineItem]
    customer_email: str | None
    reference: str | None
    metadata: dict[str, str]
    extension_data: dict[str, Any] = Field(description="Apps' data by app id: their annotations, and under "
                                                       "`fields` what the buyer gave their checkout fields.")
    customer: Customer | None = Field(description="What the buyer gave at checkout (docs/api.md 14).")
    custom_fields: dict[str, Any] = Field(description="The merchant's custom fields' values by key.")
    redacted_at: str | None = Field(description="When the buyer's personal data was erased (POST .../redact).")
    created_by: CreatedBy | None = Field(description="Who created it: the merchant, an app (docs/api.md 12), "
                                                           "a staff member or Flint itself.")
    created_at: str


class OrderList(BaseModel):
    object: Literal["list"]
    data: list[Order]
    has_more: bool


class OrderEventsQuery(Query):
    after: int = Field(0, ge=0, le=2**62, description="Return events with a greater sequence.")
    limit: int = Field(100, ge=1, le=100)


__all__ = ["CreateOrderRequest", "ListQuery", "Order", "OrderEventsQuery", "OrderList"]

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flint import money
from flint.api.schemas.common import CreatedBy
from flint.http.validation import Body


class CreateRefundRequest(Body):
    # Exactly one of payment / order (else 400 refund_target_invalid), as JSON Schema says it: with a
    # payment, no order; without one, an order. Not as a top-level oneOf, which SDK generators read as
    # two request types, each without amount and reason.
    model_config = ConfigDict(json_schema_extra={
        "if": {"required": ["payment"], "properties": {"payment": {"type": "string"}}},
        "then": {"properties": {"order": {"type": "null"}}},
        "else": {"required": ["order"], "properties": {"order": {"type": "string"}}},
    })

    payment: str | None = Field(None, min_length=1, max_length=64)
    order: str | None = Field(None, min_length=1, max_length=64)
    amount: int | None = Field(None, ge=1, le=money.MAX_AMOUNT, description="Default: all that is refundable.")
    reason: Literal["requested_by_customer", "duplicate", "fraudulent"] | None = None


class Refund(BaseModel):
    """Money given back from a succeeded payment."""
    id: str
    object: Literal["refund"]
    payment_id: str
    order_id: str
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    reason: str | None
    failure_code: str | None
    created_by: CreatedBy | None = Field(description="Who created it: the merchant, an app (docs/api.md 12), "
                                                           "a staff member or Flint itself.")
    created_at: str


class RefundList(BaseModel):
    object: Literal["list"]
    data: list[Refund]
    has_more: bool

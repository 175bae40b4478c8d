from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flint import money
from flint.api.schemas.common import CreatedBy
from flint.http.validation import Body


class CreateRefund(Body):
    # Exactly one of payment / order (else 400 refund_target_invalid), as JSON Schema says it.
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["payment"], "properties": {"payment": {"type": "string"}}},
        {"required": ["order"], "properties": {"order": {"type": "string"}}},
    ]})

    payment: str | None = Field(None, min_length=1, max_length=64)
    order: str | None = Field(None, min_length=1, max_length=64)
    amount: int | None = Field(None, ge=1, le=money.MAX_AMOUNT, description="Default: all that is refundable.")
    reason: Literal["requested_by_customer", "duplicate", "fraudulent"] | None = None


class RefundOut(BaseModel):
    id: str
    object: Literal["refund"]
    payment_id: str
    order_id: str
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    reason: str | None
    failure_code: str | None
    created_by: CreatedBy | None = Field(description="Who created it: the merchant, an app (API.md 12), "
                                                           "a staff member or Flint itself.")
    created_at: str


class RefundList(BaseModel):
    object: Literal["list"]
    data: list[RefundOut]
    has_more: bool

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint.api.schemas.common import ListQuery


class Card(BaseModel):
    """The card a payment used: never more than its brand, last four digits and expiry."""
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class Payment(BaseModel):
    """One card payment attempt for an order."""
    id: str
    object: Literal["payment"]
    order_id: str
    checkout_session_id: str | None
    payment_link_id: str | None
    channel: Literal["embedded", "hosted", "payment_link"]
    status: Literal["processing", "requires_action", "succeeded", "failed"]
    amount: int
    currency: str
    amount_refunded: int
    card: Card
    failure_code: str | None
    failure_message: str | None
    created_at: str


class PaymentList(BaseModel):
    object: Literal["list"]
    data: list[Payment]
    has_more: bool


class PaymentListQuery(ListQuery):
    order: str | None = Field(None, min_length=1, max_length=64, description="Only payments of this order.")

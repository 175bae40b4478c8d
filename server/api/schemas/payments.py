from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint import money
from flint.api.schemas.common import ListQuery
from flint.http.validation import Body


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
    status: Literal["processing", "requires_action", "authorized", "succeeded", "failed", "canceled"]
    amount: int = Field(description="What the payment is for; once an authorization is captured, what was "
                                    "captured.")
    currency: str
    amount_refunded: int
    capture_method: Literal["automatic", "manual"]
    amount_authorized: int = Field(description="What the card was authorized for (manual capture).")
    amount_capturable: int = Field(description="What can still be captured: all of it while authorized, else 0.")
    amount_captured: int
    card: Card
    failure_code: str | None
    failure_message: str | None
    authorized_at: str | None
    captured_at: str | None
    canceled_at: str | None = Field(description="When the authorization was voided or expired.")
    created_at: str


class CapturePaymentRequest(Body):
    amount: int | None = Field(None, ge=1, le=money.MAX_AMOUNT,
                               description="At most the authorized amount (default: all of it); the rest is "
                                           "released.")


class PaymentList(BaseModel):
    object: Literal["list"]
    data: list[Payment]
    has_more: bool


class PaymentListQuery(ListQuery):
    order: str | None = Field(None, min_length=1, max_length=64, description="Only payments of this order.")

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..api.validation import Body
from ..orders.schemas import OrderFields
from ..payments.schemas import PaymentOut
from . import service


class RecoveryIn(Body):
    enabled: bool
    abandon_after: int = Field(service.DEFAULT_ABANDON_AFTER, ge=5, le=86400,
                               description="Seconds of buyer inactivity before the session counts as abandoned.")


class CreateSession(Body):
    order: str | OrderFields = Field(description="An existing order id (ord_...) or the fields of a new order.")
    mode: Literal["embedded", "hosted"]
    success_url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    cancel_url: str | None = Field(None, min_length=8, max_length=2048, pattern=r"^https?://")
    expires_in: int = Field(service.DEFAULT_EXPIRES_IN, ge=service.MIN_EXPIRES_IN, le=service.MAX_EXPIRES_IN)
    recovery: RecoveryIn | None = None

    def to_new_session(self) -> service.NewSession:
        recovery = self.recovery or RecoveryIn(enabled=False)
        return service.NewSession(
            mode=self.mode, success_url=self.success_url, cancel_url=self.cancel_url,
            order_id=self.order if isinstance(self.order, str) else None,
            inline_order=None if isinstance(self.order, str) else self.order.to_new_order(),
            expires_in=self.expires_in, recovery_enabled=recovery.enabled, abandon_after=recovery.abandon_after,
        )


class RecoveryOut(BaseModel):
    enabled: bool
    abandon_after: int
    payment_link_id: str | None


class SessionOut(BaseModel):
    id: str
    object: Literal["checkout.session"]
    order_id: str
    mode: Literal["embedded", "hosted"]
    status: Literal["open", "complete", "expired"]
    url: str
    client_token: str | None = Field(description="For the embedded widget; null once the session is closed.")
    expires_at: str
    success_url: str
    cancel_url: str | None
    recovery: RecoveryOut
    created_at: str


class SessionList(BaseModel):
    object: Literal["list"]
    data: list[SessionOut]
    has_more: bool


class CardIn(Body):
    number: str = Field(min_length=1, max_length=32)
    exp_month: int = Field(ge=-(2**31), le=2**31)
    exp_year: int = Field(ge=-(2**31), le=2**31)
    cvc: str = Field(min_length=1, max_length=8)


class ConfirmRequest(Body):
    """Card details exist only in this request: they are never stored, logged or echoed."""
    card: CardIn


class NextAction(BaseModel):
    type: Literal["three_d_secure_challenge"]
    payment_id: str


class ConfirmOut(PaymentOut):
    next_action: NextAction | None


class ChallengeRequest(Body):
    payment: str = Field(min_length=1, max_length=64)
    result: Literal["approve", "deny"]

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint.api.schemas.buyers import CheckoutField, CollectSettings
from flint.api.schemas.common import CreatedBy, ListQuery
from flint.http.validation import Body, Query
from flint.links import service


class CreatePaymentLinkRequest(Body):
    order: str = Field(min_length=1, max_length=64, description="The open order (ord_...) the link pays.")
    expires_in: int | None = Field(None, ge=service.MIN_EXPIRES_IN, le=service.MAX_EXPIRES_IN,
                                   description="Seconds until the link stops working (default 30 days).")
    collect: CollectSettings | None = Field(None, description="Which built-in buyer fields to show (docs/api.md 14).")
    custom_fields: list[CheckoutField] | None = Field(None, max_length=5,
                                                      description="Fields of the merchant's own, at most 5.")
    capture: Literal["automatic", "manual"] = Field(
        "automatic", description="manual: the buyer's payment is only authorized; capture it with "
                                 "POST /v1/payments/{id}/capture or void it (docs/api.md 17).")


class PaymentLink(BaseModel):
    """A hosted page that pays one order."""
    id: str
    object: Literal["payment_link"]
    order_id: str
    url: str = Field(description="The hosted page that pays this order (unguessable).")
    active: bool
    source: Literal["manual", "recovery", "app"]
    checkout_session_id: str | None = Field(description="For a recovery link: the session the buyer left.")
    expires_at: str | None
    capture: Literal["automatic", "manual"] = Field(description="How its payment is captured (docs/api.md 17).")
    deactivated_at: str | None
    collect: CollectSettings
    custom_fields: list[CheckoutField]
    created_by: CreatedBy | None = Field(description="Who created it: the merchant, an app (docs/api.md 12), "
                                                           "a staff member or Flint itself.")
    created_at: str


class PaymentLinkList(BaseModel):
    object: Literal["list"]
    data: list[PaymentLink]
    has_more: bool


class PaymentLinkListQuery(ListQuery):
    order: str | None = Field(None, min_length=1, max_length=64, description="Only links of this order.")


class RecoverySummaryQuery(Query):
    since: str | None = Field(None, alias="from", max_length=40,
                              description="Start (RFC 3339 or YYYY-MM-DD, inclusive); default: 30 days before `to`.")
    until: str | None = Field(None, alias="to", max_length=40,
                              description="End (RFC 3339 or YYYY-MM-DD, exclusive); default: now.")


class RecoveryDropOffs(BaseModel):
    total: int
    left: int = Field(description="The buyer typed in the card form and left the page.")
    idle: int = Field(description="No buyer activity for abandon_after seconds.")
    expired: int = Field(description="The session expired unpaid.")


class RecoveredAmount(BaseModel):
    currency: str
    amount: int


class RecoverySummary(BaseModel):
    """The drop-off recovery funnel over a range of time."""
    object: Literal["recovery_summary"]
    from_: str = Field(alias="from")
    to: str
    drop_offs: RecoveryDropOffs = Field(description="Sessions with recovery that dropped off in the range.")
    links_created: int = Field(description="Recovery links created in the range.")
    links_paid: int = Field(description="Of those, the links through which the order was paid.")
    recovery_rate: float | None
    amount_recovered: list[RecoveredAmount] = Field(description="Paid through those links, per currency.")
    median_time_to_recovery_seconds: int | None = Field(description="From the link's creation to its payment.")
    recovered_in_original_session: int = Field(description="Dropped-off sessions the buyer came back to and paid.")

"""Email to buyers (docs/api.md 16): the Email object, its list, and a payment link sent by email."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint.api.schemas.common import ListQuery
from flint.http.validation import Body


class SendPaymentLinkRequest(Body):
    email: str = Field(min_length=3, max_length=254, examples=["buyer@example.com"],
                       json_schema_extra={"format": "email"},
                       description="Where to send the link (checked for syntax, not DNS: 400 email_invalid).")
    locale: Literal["en", "de", "fr"] | None = Field(None, description="The mail's language (default en).")


class Email(BaseModel):
    """A mail to a buyer in the outbox: what was sent or is waiting, never its body."""
    id: str
    object: Literal["email"]
    kind: Literal["receipt", "recovery", "payment_link"]
    to: str
    status: Literal["pending", "sending", "sent", "failed", "suppressed"] = Field(
        description="pending (waiting for its first or next attempt), sending, sent (the SMTP server took it), "
                    "failed (given up), suppressed (the buyer unsubscribed before it went).")
    attempts: int
    order: str | None = Field(description="The order it is about (ord_...).")
    payment_link: str | None = Field(description="The payment link it carries (plink_...), if any.")
    locale: Literal["en", "de", "fr"]
    last_error: str | None = Field(description="Why the last attempt failed, as the SMTP server said it.")
    created_at: str
    sent_at: str | None


class EmailList(BaseModel):
    object: Literal["list"]
    data: list[Email]
    has_more: bool


class EmailListQuery(ListQuery):
    order: str | None = Field(None, min_length=1, max_length=64, description="Only the emails of this order.")

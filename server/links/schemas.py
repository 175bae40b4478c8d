from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..api.schemas import ListQuery
from ..api.validation import Body
from . import service


class CreateLink(Body):
    order: str = Field(min_length=1, max_length=64, description="The open order (ord_...) the link pays.")
    expires_in: int | None = Field(None, ge=service.MIN_EXPIRES_IN, le=service.MAX_EXPIRES_IN,
                                   description="Seconds until the link stops working (default 30 days).")


class LinkOut(BaseModel):
    id: str
    object: Literal["payment_link"]
    order_id: str
    url: str = Field(description="The hosted page that pays this order (unguessable).")
    active: bool
    source: Literal["manual", "recovery", "app"]
    checkout_session_id: str | None = Field(description="For a recovery link: the session the buyer left.")
    expires_at: str | None
    deactivated_at: str | None
    created_at: str


class LinkList(BaseModel):
    object: Literal["list"]
    data: list[LinkOut]
    has_more: bool


class LinkListQuery(ListQuery):
    order: str | None = Field(None, min_length=1, max_length=64, description="Only links of this order.")

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from flint.api.schemas.common import ListQuery


class HookCallListQuery(ListQuery):
    order: str | None = Field(None, min_length=1, max_length=64, description="Only calls about this order.")


class HookCall(BaseModel):
    """One call of an installed app's checkout.before_payment hook."""
    id: str
    object: Literal["hook_call"]
    hook: Literal["checkout.before_payment"]
    app_id: str
    installation_id: str
    order_id: str
    channel: Literal["embedded", "hosted", "payment_link"]
    checkout_session_id: str | None
    payment_link_id: str | None
    outcome: Literal["answered", "timeout", "error", "invalid"]
    status_code: int | None
    latency_ms: int
    actions: list[dict[str, Any]] = Field(description="The valid actions the app answered.")
    ignored: list[Any] = Field(description="What it answered that Flint ignores (other action types, other fields).")
    applied: list[str] = Field(description="What Flint did because of this call.")
    error: str | None
    created_at: str


class HookCallList(BaseModel):
    object: Literal["list"]
    data: list[HookCall]
    has_more: bool

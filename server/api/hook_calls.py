"""The merchant's view of its apps' checkout hook calls."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import ListQuery, page
from flint.hooks import service
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.validation import query_args

bp = Blueprint("hooks", __name__, url_prefix="/v1/hook_calls")


class HookCallQuery(ListQuery):
    order: str | None = Field(None, min_length=1, max_length=64, description="Only calls about this order.")


class HookCallOut(BaseModel):
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
    data: list[HookCallOut]
    has_more: bool


@bp.get("")
@scope("orders:read")
@document_response(HookCallList)
@query_args(HookCallQuery)
async def get_hook_calls(query: HookCallQuery):
    """Every checkout.before_payment call made for this merchant, newest first: which app, how long
    it took, what it answered and what Flint applied."""
    calls, has_more = await service.list_calls(runtime(), principal().merchant_id, query.order, query.limit,
                                               query.starting_after)
    return page(calls, has_more, lambda call: call)

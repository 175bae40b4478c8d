"""The merchant's view of its apps' checkout hook calls."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import page
from flint.api.schemas.hook_calls import HookCallList, HookCallListQuery
from flint.hooks import service
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import query_args

bp = Blueprint("hooks", __name__, url_prefix="/v1/hook_calls")


@bp.get("")
@operation("listHookCalls", "Hook calls")
@scope("orders:read")
@document_response(HookCallList)
@query_args(HookCallListQuery)
async def get_hook_calls(query: HookCallListQuery):
    """Every checkout.before_payment call made for this merchant, newest first: which app, how long
    it took, what it answered and what Flint applied."""
    calls, has_more = await service.list_calls(runtime(), principal().merchant_id, query.order, query.limit,
                                               query.starting_after)
    return page(calls, has_more)

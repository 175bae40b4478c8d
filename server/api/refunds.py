"""Refunds: by payment or by order, full or partial."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import ListQuery, page
from flint.api.schemas.refunds import CreateRefundRequest, Refund, RefundList
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import json_body, query_args
from flint.refunds import service

bp = Blueprint("refunds", __name__, url_prefix="/v1/refunds")


@bp.post("")
@operation("createRefund", "Refunds")
@scope("refunds:write")
@document_response(Refund)
@json_body(CreateRefundRequest)
async def post_refund(body: CreateRefundRequest):
    """Refund a payment (or an order's payment). A declined refund is returned with status ``failed``."""
    me = principal()
    new = service.NewRefund(payment_id=body.payment, order_id=body.order, amount=body.amount, reason=body.reason)
    refund = await service.issue_refund(runtime(), me.merchant_id, new, me.actor)
    return refund.to_dict()


@bp.get("")
@operation("listRefunds", "Refunds")
@scope("payments:read")
@document_response(RefundList)
@query_args(ListQuery)
async def get_refunds(query: ListQuery):
    """List refunds, newest first."""
    refunds, has_more = await service.list_refunds(runtime(), principal().merchant_id, query.limit, query.starting_after)
    return page(refunds, has_more)


@bp.get("/<refund_id>")
@operation("retrieveRefund", "Refunds")
@scope("payments:read")
@document_response(Refund)
async def get_refund(refund_id: str):
    """Retrieve a refund."""
    return (await service.get_refund(runtime(), principal().merchant_id, refund_id)).to_dict()

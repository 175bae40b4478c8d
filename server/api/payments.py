"""Payments, read-only for merchants: buyers create them through the checkout surfaces."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import page
from flint.api.schemas.payments import Payment, PaymentList, PaymentListQuery
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import query_args
from flint.payments import service

bp = Blueprint("payments", __name__, url_prefix="/v1/payments")


@bp.get("")
@operation("listPayments", "Payments")
@scope("payments:read")
@document_response(PaymentList)
@query_args(PaymentListQuery)
async def get_payments(query: PaymentListQuery):
    """List payments, newest first; ``order`` narrows to one order's attempts."""
    payments, has_more = await service.list_payments(
        runtime(), principal().merchant_id, query.order, query.limit, query.starting_after)
    return page(payments, has_more)


@bp.get("/<payment_id>")
@operation("retrievePayment", "Payments")
@scope("payments:read")
@document_response(Payment)
async def get_payment(payment_id: str):
    """Retrieve a payment."""
    return (await service.get_payment(runtime(), principal().merchant_id, payment_id)).to_dict()

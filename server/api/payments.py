"""Payments: buyers create them through the checkout surfaces; merchants read them, and capture or void
an authorized one (docs/api.md 17)."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import page
from flint.api.schemas.payments import CapturePaymentRequest, Payment, PaymentList, PaymentListQuery
from flint.collect import capture
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import json_body, no_body, query_args
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


@bp.post("/<payment_id>/capture")
@operation("capturePayment", "Payments")
@scope("payments:write")
@document_response(Payment)
@json_body(CapturePaymentRequest)
async def post_capture(payment_id: str, body: CapturePaymentRequest):
    """Capture an authorized payment, all of it or ``amount`` (the rest is released): the payment
    succeeds for what was captured and the order is paid. 409 ``payment_not_capturable`` otherwise."""
    me = principal()
    return (await capture.capture_payment(runtime(), me.merchant_id, payment_id, me.actor, body.amount)).to_dict()


@bp.post("/<payment_id>/void")
@operation("voidPayment", "Payments")
@scope("payments:write")
@document_response(Payment)
@no_body
async def post_void(payment_id: str):
    """Void an authorized payment: nothing is taken and the order is open again. 409
    ``payment_not_voidable`` otherwise."""
    me = principal()
    return (await capture.void_payment(runtime(), me.merchant_id, payment_id, me.actor)).to_dict()

"""Payment links (docs/api.md 7)."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import page
from flint.api.schemas.emails import Email, SendPaymentLinkRequest
from flint.api.schemas.links import (
    CreatePaymentLinkRequest,
    PaymentLink,
    PaymentLinkList,
    PaymentLinkListQuery,
    RecoverySummary,
    RecoverySummaryQuery,
)
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import json_body, no_body, query_args
from flint.links import emails, service, summary

bp = Blueprint("links", __name__, url_prefix="/v1/payment_links")
recovery_bp = Blueprint("recovery", __name__, url_prefix="/v1/recovery")


@bp.post("")
@operation("createPaymentLink", "Payment links")
@scope("payment_links:write")
@document_response(PaymentLink)
@json_body(CreatePaymentLinkRequest)
async def post_link(body: CreatePaymentLinkRequest):
    """Create a payment link that pays this open order (and nothing else)."""
    me, rt = principal(), runtime()
    link = await service.create_link(rt, me.merchant_id, body.order, expires_in=body.expires_in, actor=me.actor,
                                     collect=body.collect.model_dump() if body.collect else None,
                                     custom_fields=[f.model_dump(exclude_none=True) for f in body.custom_fields]
                                     if body.custom_fields else None, capture=body.capture)
    return link.to_dict(rt.config.public_url)


@bp.get("")
@operation("listPaymentLinks", "Payment links")
@scope("orders:read")
@document_response(PaymentLinkList)
@query_args(PaymentLinkListQuery)
async def get_links(query: PaymentLinkListQuery):
    """List payment links, newest first; ``order`` narrows to one order's links."""
    rt = runtime()
    links, has_more = await service.list_links(rt, principal().merchant_id, query.order, query.limit,
                                               query.starting_after)
    return page(links, has_more, lambda link: link.to_dict(rt.config.public_url))


@bp.get("/<link_id>")
@operation("retrievePaymentLink", "Payment links")
@scope("orders:read")
@document_response(PaymentLink)
async def get_link(link_id: str):
    """Retrieve a payment link."""
    rt = runtime()
    return (await service.get_link(rt, principal().merchant_id, link_id)).to_dict(rt.config.public_url)


@bp.post("/<link_id>/deactivate")
@operation("deactivatePaymentLink", "Payment links")
@scope("payment_links:write")
@document_response(PaymentLink)
@no_body
async def post_deactivate(link_id: str):
    """Stop a link from taking payments (its page then says so)."""
    me, rt = principal(), runtime()
    return (await service.deactivate_link(rt, me.merchant_id, link_id, me.actor)).to_dict(rt.config.public_url)


@bp.post("/<link_id>/send")
@operation("sendPaymentLink", "Payment links")
@scope("payment_links:write")
@document_response(Email, status_code=202)
@json_body(SendPaymentLinkRequest)
async def post_send(link_id: str, body: SendPaymentLinkRequest):
    """Email this link to a buyer (docs/api.md 16). Answers 202 with the Email, which the mail worker then
    sends: its status says when it went. 409 ``mail_not_configured`` without SMTP settings; 409 when the
    link cannot be paid (``payment_link_inactive``, ``payment_link_expired``, ``order_already_paid``,
    ``order_canceled``); 400 ``email_invalid``."""
    me, rt = principal(), runtime()
    email = await emails.send_link(rt, me.merchant_id, link_id, to=body.email, actor=me.actor, locale=body.locale)
    return email.to_dict(), 202


@recovery_bp.get("/summary")
@operation("retrieveRecoverySummary", "Recovery")
@scope("orders:read")
@document_response(RecoverySummary)
@query_args(RecoverySummaryQuery)
async def get_summary(query: RecoverySummaryQuery):
    """The recovery funnel over a range: drop-offs (by kind), recovery links made, links paid, the
    amount recovered per currency, and the median time from link to payment."""
    since = summary.parse_bound(query.since, "from")
    until = summary.parse_bound(query.until, "to")
    return await summary.summary(runtime(), principal().merchant_id, since, until)

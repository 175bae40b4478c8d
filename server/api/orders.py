"""Orders: create, read, list, cancel, redact, and the per-order event cursor."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import ListQuery, page
from flint.api.schemas.events import EventList
from flint.api.schemas.orders import CreateOrderRequest, Order, OrderEventsQuery, OrderList
from flint.closing import service as closing
from flint.events.service import readable_types
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import json_body, no_body, query_args
from flint.orders import service

bp = Blueprint("orders", __name__, url_prefix="/v1/orders")


@bp.post("")
@operation("createOrder", "Orders")
@scope("orders:write")
@document_response(Order)
@json_body(CreateOrderRequest)
async def post_order(body: CreateOrderRequest):
    """Create an order."""
    me = principal()
    return (await service.create_order(runtime(), me.merchant_id, body.to_new_order(), me.actor)).to_dict()


@bp.get("")
@operation("listOrders", "Orders")
@scope("orders:read")
@document_response(OrderList)
@query_args(ListQuery)
async def get_orders(query: ListQuery):
    """List orders, newest first."""
    orders, has_more = await service.list_orders(runtime(), principal().merchant_id, query.limit, query.starting_after)
    return page(orders, has_more)


@bp.get("/<order_id>")
@operation("retrieveOrder", "Orders")
@scope("orders:read")
@document_response(Order)
async def get_order(order_id: str):
    """Retrieve an order."""
    return (await service.get_order(runtime(), principal().merchant_id, order_id)).to_dict()


@bp.post("/<order_id>/cancel")
@operation("cancelOrder", "Orders")
@scope("orders:write")
@document_response(Order)
@no_body
async def post_order_cancel(order_id: str):
    """Cancel an open order with no payment in flight (409 otherwise)."""
    me = principal()
    return (await closing.cancel_order(runtime(), me.merchant_id, order_id, me.actor)).to_dict()


@bp.post("/<order_id>/redact")
@operation("redactOrder", "Orders")
@scope("orders:write")
@document_response(Order)
@no_body
async def post_order_redact(order_id: str):
    """Erase the buyer's personal data (right to erasure) from the order and its events, in any status:
    customer, customer_email, custom field and app field values, and the addresses of the order's mails
    (waiting ones are not sent). Amounts, statuses, reference and metadata stay. Records
    ``order.redacted``; redacting again returns the order with no new event."""
    me = principal()
    return (await closing.redact_order(runtime(), me.merchant_id, order_id, me.actor)).to_dict()


@bp.get("/<order_id>/events")
@operation("listOrderEvents", "Orders")
@scope("orders:read")
@document_response(EventList)
@query_args(OrderEventsQuery)
async def get_order_events(order_id: str, query: OrderEventsQuery):
    """The order's own events in sequence order: a catch-up cursor (``after`` = last seen sequence)."""
    me = principal()
    events, has_more = await service.list_order_events(runtime(), me.merchant_id, order_id, query.after, query.limit,
                                                       readable_types(me.scopes))
    return page(events, has_more)

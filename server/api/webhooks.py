"""Webhook endpoints and deliveries (docs/api.md 9)."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.common import ListQuery, page
from flint.api.schemas.webhooks import (
    CreateWebhookEndpointRequest,
    UpdateWebhookEndpointRequest,
    WebhookAttemptList,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointList,
)
from flint.http.auth import principal, scope
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import json_body, no_body, query_args
from flint.webhooks import service

bp = Blueprint("webhooks", __name__, url_prefix="/v1")


def _owner() -> service.Owner:
    """A merchant key manages the merchant's endpoints; an app token (webhooks:write) only those its own
    installation made (docs/api.md 12)."""
    me = principal()
    if me.kind != "app":
        return service.MERCHANT
    return service.Owner(installation_id=me.installation_id, app_id=me.actor.id,
                         scopes=tuple(sorted(me.installation_scopes or ())))


@bp.post("/webhook_endpoints")
@operation("createWebhookEndpoint", "Webhook endpoints")
@scope("webhooks:write")
@document_response(WebhookEndpoint)
@json_body(CreateWebhookEndpointRequest)
async def post_endpoint(body: CreateWebhookEndpointRequest):
    """Create a webhook endpoint. Its signing ``secret`` is in this response only."""
    me = principal()
    endpoint, secret = await service.create_endpoint(runtime(), me.merchant_id, url=body.url, events=body.events,
                                                     description=body.description, actor=me.actor, owner=_owner())
    return endpoint.to_dict(secret)


@bp.get("/webhook_endpoints")
@operation("listWebhookEndpoints", "Webhook endpoints")
@scope("webhooks:write")
@document_response(WebhookEndpointList)
@query_args(ListQuery)
async def get_endpoints(query: ListQuery):
    """List webhook endpoints, newest first."""
    endpoints, has_more = await service.list_endpoints(runtime(), principal().merchant_id, query.limit,
                                                       query.starting_after, _owner())
    return page(endpoints, has_more)


@bp.get("/webhook_endpoints/<endpoint_id>")
@operation("retrieveWebhookEndpoint", "Webhook endpoints")
@scope("webhooks:write")
@document_response(WebhookEndpoint)
async def get_endpoint(endpoint_id: str):
    """Retrieve a webhook endpoint (never its secret)."""
    return (await service.get_endpoint(runtime(), principal().merchant_id, endpoint_id, _owner())).to_dict()


@bp.post("/webhook_endpoints/<endpoint_id>")
@operation("updateWebhookEndpoint", "Webhook endpoints")
@scope("webhooks:write")
@document_response(WebhookEndpoint)
@json_body(UpdateWebhookEndpointRequest)
async def post_endpoint_update(endpoint_id: str, body: UpdateWebhookEndpointRequest):
    """Change an endpoint's URL, events or description, or disable / re-enable it."""
    return (await service.update_endpoint(runtime(), principal().merchant_id, endpoint_id, url=body.url,
                                          events=body.events, description=body.description,
                                          status=body.status, owner=_owner())).to_dict()


@bp.delete("/webhook_endpoints/<endpoint_id>")
@operation("deleteWebhookEndpoint", "Webhook endpoints")
@scope("webhooks:write")
@document_response(WebhookEndpoint)
async def delete_endpoint(endpoint_id: str):
    """Delete an endpoint: nothing more is sent to it; its pending deliveries fail."""
    return (await service.delete_endpoint(runtime(), principal().merchant_id, endpoint_id, _owner())).to_dict()


@bp.post("/webhook_endpoints/<endpoint_id>/rotate_secret")
@operation("rotateWebhookEndpointSecret", "Webhook endpoints")
@scope("webhooks:write")
@document_response(WebhookEndpoint)
@no_body
async def post_rotate_secret(endpoint_id: str):
    """A new signing secret (in this response only). For 24 hours deliveries carry signatures by both
    the new and the previous secret, so a receiver holding either verifies them."""
    me = principal()
    endpoint, secret = await service.rotate_secret(runtime(), me.merchant_id, endpoint_id, _owner(), me.actor)
    return endpoint.to_dict(secret)


@bp.get("/webhook_endpoints/<endpoint_id>/deliveries")
@operation("listWebhookDeliveries", "Webhook deliveries")
@scope("webhooks:write")
@document_response(WebhookDeliveryList)
@query_args(ListQuery)
async def get_deliveries(endpoint_id: str, query: ListQuery):
    """An endpoint's deliveries, newest first."""
    deliveries, has_more = await service.list_deliveries(runtime(), principal().merchant_id, endpoint_id,
                                                         query.limit, query.starting_after, _owner())
    return page(deliveries, has_more)


@bp.get("/webhook_deliveries/<delivery_id>")
@operation("retrieveWebhookDelivery", "Webhook deliveries")
@scope("webhooks:write")
@document_response(WebhookDelivery)
async def get_delivery(delivery_id: str):
    """Retrieve a delivery."""
    return (await service.get_delivery(runtime(), principal().merchant_id, delivery_id, _owner())).to_dict()


@bp.get("/webhook_deliveries/<delivery_id>/attempts")
@operation("listWebhookDeliveryAttempts", "Webhook deliveries")
@scope("webhooks:write")
@document_response(WebhookAttemptList)
async def get_attempts(delivery_id: str):
    """Every attempt of a delivery, oldest first: when, the HTTP status or the error, how long."""
    attempts = await service.list_attempts(runtime(), principal().merchant_id, delivery_id, _owner())
    return page(attempts, False)


@bp.post("/webhook_deliveries/<delivery_id>/retry")
@operation("retryWebhookDelivery", "Webhook deliveries")
@scope("webhooks:write")
@document_response(WebhookDelivery)
@no_body
async def post_retry(delivery_id: str):
    """Send a delivery again now: a pending one is brought forward; a failed or succeeded one gets one
    more attempt outside the retry schedule."""
    me = principal()
    return (await service.retry_delivery(runtime(), me.merchant_id, delivery_id, _owner(), me.actor)).to_dict()

"""Partner app registration (docs/api.md 10). Only a merchant key may register or manage apps: the
merchant is the app's developer, and no app token may manage apps, whatever it was granted."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.apps import App, AppList, CreateAppRequest, UpdateAppRequest
from flint.api.schemas.common import ListQuery, page
from flint.apps import service
from flint.http.auth import merchant_only, principal
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import json_body, no_body, query_args
from flint.oauth.service import follow_app_change

bp = Blueprint("apps", __name__, url_prefix="/v1")


@bp.post("/apps")
@operation("createApp", "Apps")
@merchant_only
@document_response(App)
@json_body(CreateAppRequest)
async def post_app(body: CreateAppRequest):
    """Register an app. Its ``client_secret`` and ``webhook_secret`` are in this response only."""
    app, client_secret, webhook_secret = await service.create_app(
        runtime(), principal().merchant_id, name=body.name, description=body.description,
        redirect_uris=body.redirect_uris, scopes=body.scopes, webhook_url=body.webhook_url,
        webhook_events=body.webhook_events, hook_url=body.hook_url, hooks=body.hooks,
        hook_failure_mode=body.hook_failure_mode,
        checkout_fields=[f.model_dump(exclude_none=True) for f in body.checkout_fields])
    return app.to_dict(client_secret=client_secret, webhook_secret=webhook_secret)


@bp.get("/apps")
@operation("listApps", "Apps")
@merchant_only
@document_response(AppList)
@query_args(ListQuery)
async def get_apps(query: ListQuery):
    """List the apps this merchant registered, newest first (never their secrets)."""
    apps, has_more = await service.list_apps(runtime(), principal().merchant_id, query.limit, query.starting_after)
    return page(apps, has_more)


@bp.get("/apps/<app_id>")
@operation("retrieveApp", "Apps")
@merchant_only
@document_response(App)
async def get_app(app_id: str):
    """Retrieve one of this merchant's apps (never its secrets)."""
    return (await service.get_app(runtime(), principal().merchant_id, app_id)).to_dict()


@bp.post("/apps/<app_id>")
@operation("updateApp", "Apps")
@merchant_only
@document_response(App)
@json_body(UpdateAppRequest)
async def post_app_update(app_id: str, body: UpdateAppRequest):
    """Change an app's settings. A change that widens ``scopes``, ``webhook_events`` or ``hooks`` reaches
    each earlier installation only once its merchant approves it (``pending_update``); one that narrows
    them applies at once. ``null`` removes ``webhook_url``, ``hook_url`` or ``description``."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if body.checkout_fields is not None:
        changes["checkout_fields"] = [f.model_dump(exclude_none=True) for f in body.checkout_fields]
    return (await service.update_app(runtime(), principal().merchant_id, app_id, changes,
                                     follow_app_change)).to_dict()


@bp.post("/apps/<app_id>/rotate_secret")
@operation("rotateAppSecret", "Apps")
@merchant_only
@document_response(App)
@no_body
async def post_rotate_secret(app_id: str):
    """A new ``client_secret`` (in this response only). The previous one stops working at once."""
    app, secret = await service.rotate_client_secret(runtime(), principal().merchant_id, app_id)
    return app.to_dict(client_secret=secret)


@bp.post("/apps/<app_id>/rotate_webhook_secret")
@operation("rotateAppWebhookSecret", "Apps")
@merchant_only
@document_response(App)
@no_body
async def post_rotate_webhook_secret(app_id: str):
    """A new ``webhook_secret`` (in this response only). For 24 hours deliveries and hook calls carry
    signatures by both the new and the previous secret, so the app verifies with either."""
    app, secret = await service.rotate_webhook_secret(runtime(), principal().merchant_id, app_id)
    return app.to_dict(webhook_secret=secret)

"""Webhook endpoints and their deliveries: the merchant's side of docs/api.md 9.

Deliveries are created by ``fan_out`` inside the transaction that records the events (the outbox:
no event without its deliveries, no delivery without its event); the worker (worker.py) sends them.

Rolling an endpoint's secret and retrying a delivery are recorded in the audit trail (flint.audit) with
who did it: they cannot be events (events sit above this domain, and fan out through it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Protocol

from flint import clock
from flint.actors import Actor
from flint.audit import service as audit
from flint.db import Conn
from flint.errors import conflict, invalid, not_found
from flint.event_types import EVENT_TYPES
from flint.ids import new_id
from flint.merchants import store as merchant_store
from flint.runtime import Runtime
from flint.scopes import APP_LIFECYCLE_PREFIX, readable
from flint.webhooks import egress, signing, store
from flint.webhooks.models import (
    DELETED,
    DISABLED,
    ENABLED,
    OWNER_APP,
    OWNER_INSTALLATION,
    OWNER_MERCHANT,
    PENDING,
    Delivery,
    Endpoint,
)

# A rotated-out secret keeps signing beside the new one this long (Standard Webhooks allows
# several signatures), so receivers can switch without losing a delivery.
ROTATION_OVERLAP_SECONDS = 24 * 3600
MAX_FILTERS = 64
# Endpoints per merchant, and per installation of an app (docs/api.md 13): one tenant cannot take the
# worker's delivery slots (each endpoint may have 16 attempts in flight).
MAX_ENDPOINTS = 16


def check_filters(events: list[str]) -> list[str]:
    if not events:
        raise invalid("events_invalid", 'Subscribe to at least one event type, or "*".', "events")
    if len(events) > MAX_FILTERS:
        raise invalid("events_invalid", f"At most {MAX_FILTERS} event filters.", "events")
    for i, name in enumerate(events):
        known = (name == "*" or name in EVENT_TYPES or
                 (name.endswith(".*") and any(t.startswith(name[:-1]) for t in EVENT_TYPES)))
        if not known:
            raise invalid("event_type_unknown",
                          f"'{name}' is not an event type, a prefix like 'payment.*', or '*'.", f"events[{i}]")
    return sorted(set(events))


def matches(filters: list[str], event_type: str) -> bool:
    return any(f == "*" or f == event_type or (f.endswith(".*") and event_type.startswith(f[:-1])) for f in filters)


@dataclass(frozen=True)
class Owner:
    """Who manages an endpoint through the API: the merchant (``installation_id`` None), or one
    installation of an app (its token), which sees and touches only the endpoints it made."""
    installation_id: str | None = None
    app_id: str | None = None
    scopes: tuple[str, ...] = ()  # the installation's consented scopes: what its endpoints may receive


MERCHANT = Owner()


def _default_actor(merchant_id: str, owner: Owner) -> Actor:
    """Who acted when the caller names nobody: the app for an installation's endpoint, else the merchant."""
    return Actor("app", owner.app_id) if owner.app_id else Actor("merchant", merchant_id)


async def create_endpoint(rt: Runtime, merchant_id: str, *, url: str, events: list[str], description: str | None,
                          actor: Actor | None = None, owner: Owner = MERCHANT) -> tuple[Endpoint, str]:
    """Returns the endpoint and its secret (shown once; stored encrypted). ``actor``: who made it (the
    merchant itself when None)."""
    actor = actor or Actor("merchant", merchant_id)
    filters = check_filters(events)
    await egress.check_destination(url, production=rt.config.is_production)
    secret = signing.new_secret()
    now = clock.now_iso()
    endpoint = Endpoint(
        id=new_id("we"), merchant_id=merchant_id, url=url, events=json.dumps(filters), description=description,
        status=ENABLED, disabled_reason=None, secret=rt.secrets.seal(secret), previous_secret=None,
        previous_expires_at=None, failing_since=None, created_at=now, updated_at=now,
        app_id=owner.app_id, installation_id=owner.installation_id,
        owner=OWNER_INSTALLATION if owner.installation_id else OWNER_MERCHANT,
        installation_scopes=json.dumps(list(owner.scopes)) if owner.installation_id else None,
        created_by_type=actor.type, created_by_id=actor.id,
    )
    async with rt.db.transaction() as conn:
        # The count under the merchant's lock: two creations at once cannot both find room for one.
        await merchant_store.lock_merchant(conn, merchant_id)
        if await store.count_endpoints(conn, merchant_id, owner.installation_id) >= MAX_ENDPOINTS:
            raise invalid("too_many_endpoints", f"At most {MAX_ENDPOINTS} webhook endpoints"
                          + (" per app installation." if owner.installation_id else " per merchant.")
                          + " Delete one you no longer use, or subscribe one endpoint to more events.")
        await store.insert_endpoint(conn, endpoint)
    return endpoint, secret


async def get_endpoint(rt: Runtime, merchant_id: str, endpoint_id: str, owner: Owner = MERCHANT) -> Endpoint:
    async with rt.db.read() as conn:
        endpoint = await store.select_endpoint(conn, merchant_id, endpoint_id, installation_id=owner.installation_id)
    if endpoint is None:
        raise not_found("webhook_endpoint", endpoint_id)
    return endpoint


async def list_endpoints(rt: Runtime, merchant_id: str, limit: int, starting_after: str | None,
                         owner: Owner = MERCHANT):
    async with rt.db.read() as conn:
        return await store.select_endpoints_page(conn, merchant_id, owner.installation_id, limit, starting_after)


async def update_endpoint(rt: Runtime, merchant_id: str, endpoint_id: str, *, url: str | None = None,
                          events: list[str] | None = None, description: str | None = None,
                          status: str | None = None, owner: Owner = MERCHANT) -> Endpoint:
    fields: dict = {}
    if url is not None:
        await egress.check_destination(url, production=rt.config.is_production)
        fields["url"] = url
    if events is not None:
        fields["events"] = json.dumps(check_filters(events))
    if description is not None:
        fields["description"] = description
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        # Locked: the status transition is decided on what this reads (a concurrent disable and
        # enable must apply one after the other, each seeing the other's result).
        endpoint = await store.select_endpoint(conn, merchant_id, endpoint_id, installation_id=owner.installation_id,
                                               for_update=True)
        if endpoint is None:
            raise not_found("webhook_endpoint", endpoint_id)
        if status == DISABLED and endpoint.status == ENABLED:
            await store.close_endpoint(conn, endpoint.id, status=DISABLED, reason="by_merchant", at=now)
        elif status == ENABLED and endpoint.status == DISABLED:
            # A fresh start: the failing streak that disabled it is forgotten.
            fields.update(status=ENABLED, disabled_reason=None, failing_since=None)
        if fields:
            await store.update_endpoint(conn, endpoint.id, dict(fields, updated_at=now))
        updated = await store.select_endpoint(conn, merchant_id, endpoint_id, installation_id=owner.installation_id)
    assert updated is not None
    return updated


async def delete_endpoint(rt: Runtime, merchant_id: str, endpoint_id: str, owner: Owner = MERCHANT) -> Endpoint:
    async with rt.db.transaction() as conn:
        if await store.select_endpoint(conn, merchant_id, endpoint_id, installation_id=owner.installation_id) is None:
            raise not_found("webhook_endpoint", endpoint_id)
        endpoint = await store.close_endpoint(conn, endpoint_id, status=DELETED, reason="deleted",
                                              at=clock.now_iso(), from_statuses=(ENABLED, DISABLED))
        if endpoint is None or endpoint.merchant_id != merchant_id:
            raise not_found("webhook_endpoint", endpoint_id)
    return endpoint


async def rotate_secret(rt: Runtime, merchant_id: str, endpoint_id: str, owner: Owner = MERCHANT,
                        actor: Actor | None = None) -> tuple[Endpoint, str]:
    """A new secret signs from now on; the current one keeps signing beside it for 24 hours. Recorded as
    ``webhook_endpoint.secret_rolled`` (when the old one stops signing; never a secret)."""
    secret = signing.new_secret()
    async with rt.db.transaction() as conn:
        # Locked: two rotations at once must chain (S0 -> S1 -> S2, S1 kept as previous), not both
        # keep S0 and lose the S1 one caller was just given.
        endpoint = await store.select_endpoint(conn, merchant_id, endpoint_id, installation_id=owner.installation_id,
                                               for_update=True)
        if endpoint is None:
            raise not_found("webhook_endpoint", endpoint_id)
        fields = {"secret": rt.secrets.seal(secret), "previous_secret": endpoint.secret,
                  "previous_expires_at": clock.later_iso(ROTATION_OVERLAP_SECONDS), "updated_at": clock.now_iso()}
        await store.update_endpoint(conn, endpoint.id, fields)
        await audit.record(conn, merchant_id=merchant_id, actor=actor or _default_actor(merchant_id, owner),
                           action="webhook_endpoint.secret_rolled", object_id=endpoint.id,
                           changes={"previous_signs_until": clock.public(fields["previous_expires_at"])})
    return replace(endpoint, **fields), secret


def signing_secrets(rt: Runtime, endpoint: Endpoint, now: str, app: dict | None = None) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one during the overlap
    (for an app's endpoint, the app's own webhook secrets)."""
    if app is not None:
        live = [rt.secrets.open(app["webhook_secret"])]
        if app["previous_webhook_secret"] and (app["previous_webhook_secret_expires_at"] or "") > now:
            live.append(rt.secrets.open(app["previous_webhook_secret"]))
        return live
    live = [rt.secrets.open(endpoint.secret)]
    if endpoint.previous_secret and endpoint.previous_expires_at and endpoint.previous_expires_at > now:
        live.append(rt.secrets.open(endpoint.previous_secret))
    return live


# -- deliveries -----------------------------------------------------------------------------------------

async def list_deliveries(rt: Runtime, merchant_id: str, endpoint_id: str, limit: int, starting_after: str | None,
                          owner: Owner = MERCHANT):
    async with rt.db.read() as conn:
        if await store.select_endpoint(conn, merchant_id, endpoint_id, installation_id=owner.installation_id) is None:
            raise not_found("webhook_endpoint", endpoint_id)
        return await store.select_deliveries_page(conn, endpoint_id, limit, starting_after)


async def _visible_delivery(conn: Conn, merchant_id: str, delivery_id: str, owner: Owner) -> Delivery:
    """A delivery to one of the caller's endpoints (404 for any other, the merchant's to an app)."""
    delivery = await store.select_delivery(conn, merchant_id, delivery_id)
    if delivery is None or await store.select_endpoint(conn, merchant_id, delivery.endpoint_id,
                                                       installation_id=owner.installation_id) is None:
        raise not_found("webhook_delivery", delivery_id)
    return delivery


async def get_delivery(rt: Runtime, merchant_id: str, delivery_id: str, owner: Owner = MERCHANT) -> Delivery:
    async with rt.db.read() as conn:
        return await _visible_delivery(conn, merchant_id, delivery_id, owner)


async def list_attempts(rt: Runtime, merchant_id: str, delivery_id: str, owner: Owner = MERCHANT):
    async with rt.db.read() as conn:
        await _visible_delivery(conn, merchant_id, delivery_id, owner)
        return await store.select_attempts(conn, delivery_id)


async def retry_delivery(rt: Runtime, merchant_id: str, delivery_id: str, owner: Owner = MERCHANT,
                         actor: Actor | None = None) -> Delivery:
    """Send again now. A pending delivery is simply brought forward; a finished one (failed, or
    succeeded and wanted again) gets one more attempt outside the schedule. Recorded as
    ``webhook_delivery.retried`` with its endpoint, event and the status it had."""
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        found = await _visible_delivery(conn, merchant_id, delivery_id, owner)
        # Locked, endpoint first (the order close_endpoint and the worker take them in): a disable
        # cannot slip between the check and the reset (it would leave this delivery pending on a
        # closed endpoint), nor can a worker's claim between the lease check and make_due_now
        # (the claim skips locked rows; one that got in first shows its lease).
        endpoint = await store.select_endpoint(conn, merchant_id, found.endpoint_id,
                                               installation_id=owner.installation_id, for_update=True)
        if endpoint is None or endpoint.status != ENABLED:
            raise conflict("webhook_endpoint_disabled", "Enable the endpoint before retrying its deliveries.")
        delivery = await store.select_delivery(conn, merchant_id, delivery_id, for_update=True)
        assert delivery is not None
        if delivery.status == PENDING and delivery.lease_until and delivery.lease_until > now:
            raise conflict("webhook_delivery_in_flight", "This delivery is being sent right now.")
        await store.make_due_now(conn, delivery.id, final_attempt=int(delivery.status != PENDING), at=now)
        await audit.record(conn, merchant_id=merchant_id, actor=actor or _default_actor(merchant_id, owner),
                           action="webhook_delivery.retried", object_id=delivery.id,
                           changes={"endpoint_id": delivery.endpoint_id, "event_id": delivery.event_id,
                                    "event_type": delivery.event_type, "status_before": delivery.status})
        updated = await store.select_delivery(conn, merchant_id, delivery_id)
    assert updated is not None
    return updated


class Recorded(Protocol):
    """An event as the outbox fans it out (flint.events.models.Event: events sit above webhooks, so the
    fan-out names only what it reads)."""
    id: str
    merchant_id: str
    type: str
    data: str  # JSON text: {"object": ...}


async def fan_out(conn: Conn, events: list[Recorded]) -> None:
    """Outbox step, inside the events' own transaction: one pending delivery per (subscribed
    endpoint, event), due now. All events of one call belong to one merchant."""
    if not events:
        return
    endpoints = await store.select_enabled_filters(conn, events[0].merchant_id)
    if not endpoints:
        return
    now = clock.now_iso()
    deliveries = [
        Delivery(id=new_id("whd"), endpoint_id=endpoint["id"], merchant_id=event.merchant_id, event_id=event.id,
                 event_type=event.type, status=PENDING, attempts=0, next_attempt_at=now, lease_until=None,
                 final_attempt=0, last_status_code=None, last_error=None, last_attempt_at=None,
                 created_at=now, updated_at=now)
        for event in events for endpoint in endpoints
        if event.merchant_id == events[0].merchant_id and reaches(endpoint, event)
    ]
    await store.insert_deliveries(conn, deliveries)


def reaches(endpoint: dict, event: Recorded) -> bool:
    """Whether an event goes to an endpoint: its filters match, and for an app's endpoint the app may
    read it (docs/api.md 12): readable under its installation's consented scopes, and app.installed /
    app.uninstalled only when they are about this app."""
    if not matches(json.loads(endpoint["events"]), event.type):
        return False
    if endpoint["owner"] == OWNER_MERCHANT:
        return True
    if event.type.startswith(APP_LIFECYCLE_PREFIX):
        return json.loads(event.data)["object"].get("app_id") == endpoint["app_id"]
    return readable(event.type, json.loads(endpoint["installation_scopes"] or "[]"))


async def add_app_endpoint(conn: Conn, *, installation_id: str, app_id: str, merchant_id: str, url: str,
                           sealed_secret: str, consent) -> None:
    """Inside the install's transaction: the app's endpoint (its webhook_url) on this merchant, for the
    events the merchant consented to and always the app's own app.installed / app.uninstalled."""
    now = clock.now_iso()
    await store.insert_endpoint(conn, Endpoint(
        id=new_id("we"), merchant_id=merchant_id, url=url, events=json.dumps(_app_filters(consent)),
        description=None, status=ENABLED, disabled_reason=None, secret=sealed_secret, previous_secret=None,
        previous_expires_at=None, failing_since=None, created_at=now, updated_at=now, app_id=app_id,
        installation_id=installation_id, owner=OWNER_APP, installation_scopes=json.dumps(list(consent.scopes)),
        created_by_type="app", created_by_id=app_id))


def _app_filters(consent) -> list[str]:
    return sorted(set(consent.webhook_events) | {APP_LIFECYCLE_PREFIX + "*"})


async def follow_consent(conn: Conn, installation_id: str, consent) -> None:
    """An installation's consent changed (oauth): its endpoints follow in the same transaction, the app's
    webhook_url endpoint to the consented events, every one of them to the consented scopes."""
    now = clock.now_iso()
    await store.set_installation_scopes(conn, installation_id, json.dumps(list(consent.scopes)), now)
    endpoint = await store.select_app_endpoint(conn, installation_id)
    if endpoint is not None:
        await store.update_endpoint(conn, endpoint.id, {"events": json.dumps(_app_filters(consent)), "updated_at": now})


async def move_app_endpoint(conn: Conn, *, installation_id: str, app_id: str, merchant_id: str, url: str | None,
                            sealed_secret: str, consent) -> None:
    """The app changed its webhook_url: its installation's endpoint moves (made where the app had no URL
    before, retired where it has none now). The developer owns both ends: no approval needed."""
    now = clock.now_iso()
    endpoint = await store.select_app_endpoint(conn, installation_id)
    if url is None:
        if endpoint is not None:
            await store.retire_app_endpoint(conn, installation_id, now)
    elif endpoint is None:
        await add_app_endpoint(conn, installation_id=installation_id, app_id=app_id, merchant_id=merchant_id,
                               url=url, sealed_secret=sealed_secret, consent=consent)
    else:
        await store.update_endpoint(conn, endpoint.id, {"url": url, "updated_at": now})


async def delete_installation_endpoints(conn: Conn, installation_id: str, now: str) -> None:
    """An uninstall: the endpoints the app made with webhooks:write die with its installation."""
    for endpoint_id in await store.select_installation_endpoint_ids(conn, installation_id):
        await store.close_endpoint(conn, endpoint_id, status=DELETED, reason="app_uninstalled", at=now,
                                   from_statuses=(ENABLED, DISABLED))


async def retire_app_endpoint(conn: Conn, installation_id: str, now: str) -> None:
    """After app.uninstalled was recorded: the app's webhook_url endpoint takes nothing new, but still
    sends what was due (app.uninstalled last)."""
    await store.retire_app_endpoint(conn, installation_id, now)

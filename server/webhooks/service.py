"""Webhook endpoints and their deliveries: the merchant's side of API.md section 9.

Deliveries are created by ``fan_out`` inside the transaction that records the events (the outbox:
no event without its deliveries, no delivery without its event); the worker (worker.py) sends them.
"""
from __future__ import annotations

import json
from dataclasses import replace

from .. import clock
from ..actors import SYSTEM
from ..db import Conn
from ..errors import conflict, invalid, not_found
from ..events.models import EVENT_TYPES, Event
from ..ids import new_id
from ..runtime import Runtime
from . import egress, signing, store
from .models import DELETED, DISABLED, ENABLED, PENDING, Delivery, Endpoint

# A rotated-out secret keeps signing beside the new one this long (Standard Webhooks allows
# several signatures), so receivers can switch without losing a delivery.
ROTATION_OVERLAP_SECONDS = 24 * 3600
MAX_FILTERS = 64


def _check_filters(events: list[str]) -> list[str]:
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


async def create_endpoint(rt: Runtime, merchant_id: str, *, url: str, events: list[str],
                          description: str | None) -> tuple[Endpoint, str]:
    """Returns the endpoint and its secret (shown once; stored encrypted)."""
    filters = _check_filters(events)
    await egress.check_destination(url, production=rt.config.is_production)
    secret = signing.new_secret()
    now = clock.now_iso()
    endpoint = Endpoint(
        id=new_id("we"), merchant_id=merchant_id, url=url, events=json.dumps(filters), description=description,
        status=ENABLED, disabled_reason=None, secret=rt.secrets.seal(secret), previous_secret=None,
        previous_expires_at=None, failing_since=None, created_at=now, updated_at=now,
    )
    async with rt.db.transaction() as conn:
        await store.insert_endpoint(conn, endpoint)
    return endpoint, secret


async def get_endpoint(rt: Runtime, merchant_id: str, endpoint_id: str) -> Endpoint:
    async with rt.db.read() as conn:
        endpoint = await store.select_endpoint(conn, merchant_id, endpoint_id)
    if endpoint is None:
        raise not_found("webhook_endpoint", endpoint_id)
    return endpoint


async def list_endpoints(rt: Runtime, merchant_id: str, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_endpoints_page(conn, merchant_id, limit, starting_after)


async def update_endpoint(rt: Runtime, merchant_id: str, endpoint_id: str, *, url: str | None = None,
                          events: list[str] | None = None, description: str | None = None,
                          status: str | None = None) -> Endpoint:
    fields: dict = {}
    if url is not None:
        await egress.check_destination(url, production=rt.config.is_production)
        fields["url"] = url
    if events is not None:
        fields["events"] = json.dumps(_check_filters(events))
    if description is not None:
        fields["description"] = description
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        # Locked: the status transition is decided on what this reads (a concurrent disable and
        # enable must apply one after the other, each seeing the other's result).
        endpoint = await store.select_endpoint(conn, merchant_id, endpoint_id, for_update=True)
        if endpoint is None:
            raise not_found("webhook_endpoint", endpoint_id)
        if status == DISABLED and endpoint.status == ENABLED:
            await store.close_endpoint(conn, endpoint.id, status=DISABLED, reason="by_merchant", at=now)
        elif status == ENABLED and endpoint.status == DISABLED:
            # A fresh start: the failing streak that disabled it is forgotten.
            fields.update(status=ENABLED, disabled_reason=None, failing_since=None)
        if fields:
            await store.update_endpoint(conn, endpoint.id, dict(fields, updated_at=now))
        updated = await store.select_endpoint(conn, merchant_id, endpoint_id)
    assert updated is not None
    return updated


async def delete_endpoint(rt: Runtime, merchant_id: str, endpoint_id: str) -> Endpoint:
    async with rt.db.transaction() as conn:
        if await store.select_endpoint(conn, merchant_id, endpoint_id) is None:  # (never an app's)
            raise not_found("webhook_endpoint", endpoint_id)
        endpoint = await store.close_endpoint(conn, endpoint_id, status=DELETED, reason="deleted",
                                              at=clock.now_iso(), from_statuses=(ENABLED, DISABLED))
        if endpoint is None or endpoint.merchant_id != merchant_id:
            raise not_found("webhook_endpoint", endpoint_id)
    return endpoint


async def rotate_secret(rt: Runtime, merchant_id: str, endpoint_id: str) -> tuple[Endpoint, str]:
    """A new secret signs from now on; the current one keeps signing beside it for 24 hours."""
    secret = signing.new_secret()
    async with rt.db.transaction() as conn:
        # Locked: two rotations at once must chain (S0 -> S1 -> S2, S1 kept as previous), not both
        # keep S0 and lose the S1 one caller was just given.
        endpoint = await store.select_endpoint(conn, merchant_id, endpoint_id, for_update=True)
        if endpoint is None:
            raise not_found("webhook_endpoint", endpoint_id)
        fields = {"secret": rt.secrets.seal(secret), "previous_secret": endpoint.secret,
                  "previous_expires_at": clock.later_iso(ROTATION_OVERLAP_SECONDS), "updated_at": clock.now_iso()}
        await store.update_endpoint(conn, endpoint.id, fields)
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

async def list_deliveries(rt: Runtime, merchant_id: str, endpoint_id: str, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        if await store.select_endpoint(conn, merchant_id, endpoint_id) is None:
            raise not_found("webhook_endpoint", endpoint_id)
        return await store.select_deliveries_page(conn, endpoint_id, limit, starting_after)


async def get_delivery(rt: Runtime, merchant_id: str, delivery_id: str) -> Delivery:
    async with rt.db.read() as conn:
        delivery = await store.select_delivery(conn, merchant_id, delivery_id)
    if delivery is None:
        raise not_found("webhook_delivery", delivery_id)
    return delivery


async def list_attempts(rt: Runtime, merchant_id: str, delivery_id: str):
    async with rt.db.read() as conn:
        if await store.select_delivery(conn, merchant_id, delivery_id) is None:
            raise not_found("webhook_delivery", delivery_id)
        return await store.select_attempts(conn, delivery_id)


async def retry_delivery(rt: Runtime, merchant_id: str, delivery_id: str) -> Delivery:
    """Send again now. A pending delivery is simply brought forward; a finished one (failed, or
    succeeded and wanted again) gets one more attempt outside the schedule."""
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        found = await store.select_delivery(conn, merchant_id, delivery_id)
        if found is None:
            raise not_found("webhook_delivery", delivery_id)
        # Locked, endpoint first (the order close_endpoint and the worker take them in): a disable
        # cannot slip between the check and the reset (it would leave this delivery pending on a
        # closed endpoint), nor can a worker's claim between the lease check and make_due_now
        # (the claim skips locked rows; one that got in first shows its lease).
        endpoint = await store.select_endpoint(conn, merchant_id, found.endpoint_id, for_update=True)
        if endpoint is None or endpoint.status != ENABLED:
            raise conflict("webhook_endpoint_disabled", "Enable the endpoint before retrying its deliveries.")
        delivery = await store.select_delivery(conn, merchant_id, delivery_id, for_update=True)
        assert delivery is not None
        if delivery.status == PENDING and delivery.lease_until and delivery.lease_until > now:
            raise conflict("webhook_delivery_in_flight", "This delivery is being sent right now.")
        await store.make_due_now(conn, delivery.id, final_attempt=int(delivery.status != PENDING), at=now)
        updated = await store.select_delivery(conn, merchant_id, delivery_id)
    assert updated is not None
    return updated


async def fan_out(conn: Conn, events: list[Event]) -> None:
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
        if event.merchant_id == events[0].merchant_id and matches(json.loads(endpoint["events"]), event.type)
    ]
    await store.insert_deliveries(conn, deliveries)


async def disable_failing(conn: Conn, rt: Runtime, endpoint: Endpoint, reason: str, now: str) -> None:
    """The worker's verdict (failing for too long, or 410 Gone): disabled, announced by an event the
    merchant sees in GET /v1/events (and its other endpoints receive)."""
    from ..events import service as events

    closed = await store.close_endpoint(conn, endpoint.id, status=DISABLED, reason=reason, at=now)
    if closed is not None:
        await events.record(conn, merchant_id=closed.merchant_id, type="webhook_endpoint.disabled",
                            actor=SYSTEM, obj=closed.to_dict())


async def add_app_endpoint(conn: Conn, *, app_id: str, installation_id: str, merchant_id: str,
                           url: str, filters: list[str], sealed_secret: str) -> None:
    """Inside the install's transaction: the app's endpoint on this merchant, subscribed to its
    webhook_events and always to app.installed / app.uninstalled."""
    now = clock.now_iso()
    await store.insert_endpoint(conn, Endpoint(
        id=new_id("we"), merchant_id=merchant_id, url=url, events=json.dumps(sorted(set(filters) | {"app.*"})),
        description=None, status=ENABLED, disabled_reason=None, secret=sealed_secret, previous_secret=None,
        previous_expires_at=None, failing_since=None, created_at=now, updated_at=now, app_id=app_id,
        installation_id=installation_id))


async def sync_app_endpoints(conn: Conn, *, app_id: str, url: str | None, filters: list[str],
                             sealed_secret: str) -> None:
    """An app changed its webhook_url or webhook_events: every active installation's endpoint
    follows (made where the app had no URL before, retired where it has none now)."""
    now = clock.now_iso()
    # Locked (the app is, by the caller): an uninstall racing this change either commits first and
    # its installation is not listed, or waits and retires the endpoint made or changed here.
    for row in await store.select_active_installations_of_app(conn, app_id, for_update=True):
        endpoint = row["endpoint_id"]
        if url is None:
            if endpoint is not None:
                await store.retire_endpoints_of_installation(conn, row["installation_id"], now)
        elif endpoint is None:
            await add_app_endpoint(conn, app_id=app_id, installation_id=row["installation_id"],
                                   merchant_id=row["merchant_id"], url=url, filters=filters,
                                   sealed_secret=sealed_secret)
        else:
            await store.update_endpoint(conn, endpoint, {
                "url": url, "events": json.dumps(sorted(set(filters) | {"app.*"})), "updated_at": now})

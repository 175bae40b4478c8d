"""The ``checkout.before_payment`` hook (docs/api.md 10): before every payment attempt on every channel,
each app installed on the merchant that declares the hook is asked, in parallel, with at most 2 s to
answer. Never inside a database transaction.

An answer is ``{"actions": [...]}``; Flint applies four kinds (block, annotate, route_to_hosted and
field_error on one of the app's own checkout fields) and ignores everything else (other action types,
other fields: nothing an app says can change an amount, a currency or where money goes). A timeout, an error, a non-2xx status or an answer that is not that shape is a *failure*:
no actions under the app's ``hook_failure_mode: "allow"``, a block under ``"block"``. Several apps
combine deterministically, in the order they were installed: every annotation is kept (each under
its app), the first block wins, and any ``route_to_hosted`` sends an embedded buyer to the hosted page.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import httpx

from flint import clock, jsonsafe
from flint.apps import store as app_store
from flint.apps.service import webhook_signing_secrets
from flint.buyers.models import Collected, FieldErrors, FieldProblem
from flint.errors import FlintError
from flint.hooks import store
from flint.hooks.models import HOOK, HookCall, Hooked
from flint.ids import new_id
from flint.oauth import store as installation_store
from flint.orders import store as order_store
from flint.orders.models import Order
from flint.runtime import Runtime
from flint.webhooks import egress, signing

TIMEOUT_SECONDS = 2.0
MAX_MESSAGE = 200
MAX_ANNOTATION_BYTES = 4096
MAX_ANSWER_BYTES = 64 * 1024
# Deeper than any honest answer needs; what is kept must also be served back (hook_calls,
# extension_data) and serialised inside webhook payloads without hitting recursion limits.
MAX_ANSWER_DEPTH = 32
MAX_IGNORED_TEXT = 4000
USER_AGENT = "Flint-Hooks/1"
FAILURE_BLOCK_MESSAGE = "This payment cannot be completed right now."

log = logging.getLogger("flint.hooks")
# Keyed by the loop itself, held weakly: a loop that ends takes its client with it, and a new loop can never
# be handed a dead one's client (an id() can be reused once its loop is gone).
_client: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def _http() -> httpx.AsyncClient:
    """One pooled client per event loop: a hook call must cost the app's answer time and little else."""
    loop = asyncio.get_running_loop()
    client = _client.get(loop)
    if client is None or client.is_closed:
        client = _client[loop] = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                                   timeout=httpx.Timeout(TIMEOUT_SECONDS))
    return client


async def close_clients() -> None:
    """Closes this loop's client. Another loop's client can only be closed on its own loop; if that loop has
    already stopped, its sockets went with it."""
    client = _client.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


@dataclass
class Answer:
    app_id: str
    installation_id: str
    failure_mode: str
    outcome: str = "answered"  # answered | timeout | error | invalid
    status_code: int | None = None
    latency_ms: int = 0
    actions: list[dict] = field(default_factory=list)
    ignored: list[Any] = field(default_factory=list)
    error: str | None = None
    own_fields: frozenset[str] = frozenset()  # the keys of the app's consented checkout fields


def _parse(answer: Answer, raw: bytes) -> None:
    """Keep the valid actions, note what is ignored; any other shape makes the answer invalid.
    Raises only ValueError, whatever the app sent: its answer is untrusted input."""
    try:
        body = jsonsafe.loads(raw, max_depth=MAX_ANSWER_DEPTH)
    except ValueError as bad:
        raise ValueError(f"the answer is not JSON ({str(bad)[:120]})") from None
    if not isinstance(body, dict) or not isinstance(body.get("actions"), list):
        raise ValueError('the answer is not {"actions": [...]}')
    answer.ignored += [{k: v} for k, v in body.items() if k != "actions"]
    for action in body["actions"]:
        kind = action.get("type") if isinstance(action, dict) else None
        if kind == "block":
            message = action.get("message")
            if not isinstance(message, str) or not 0 < len(message) <= MAX_MESSAGE:
                raise ValueError(f"a block needs a message of 1-{MAX_MESSAGE} characters")
            answer.actions.append({"type": "block", "message": message})
        elif kind == "annotate":
            data = action.get("data")
            if not isinstance(data, dict) or len(json.dumps(data)) > MAX_ANNOTATION_BYTES:
                raise ValueError(f"annotate needs a data object of at most {MAX_ANNOTATION_BYTES} bytes")
            answer.actions.append({"type": "annotate", "data": data})
        elif kind == "route_to_hosted":
            reason = action.get("reason")
            if reason is not None and not isinstance(reason, str):
                raise ValueError("route_to_hosted takes a reason that is a string")
            answer.actions.append({"type": "route_to_hosted", "reason": (reason or "")[:MAX_MESSAGE]})
        elif kind == "field_error" and action.get("field") in answer.own_fields:
            message = action.get("message")
            if not isinstance(message, str) or not 0 < len(message) <= MAX_MESSAGE:
                raise ValueError(f"a field_error needs a message of 1-{MAX_MESSAGE} characters")
            answer.actions.append({"type": "field_error", "field": action["field"], "message": message})
        else:  # a field_error on a field that is not the app's own lands here too: never shown
            answer.ignored.append(action)  # e.g. an attempt to change the amount: never applied


async def _ask(rt: Runtime, hooked: Hooked, payload: dict, own_fields: frozenset[str]) -> Answer:
    """One app's answer. Never raises (short of cancellation): whatever goes wrong while calling,
    reading or parsing is this app's failure, recorded with its call, and the payment goes on as its
    failure mode says. An exception here would fail every payment of the merchant, unrecorded."""
    answer = Answer(hooked.app.id, hooked.installation_id, hooked.app.hook_failure_mode, own_fields=own_fields)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):  # the lookup, connect, send and whole answer
            raw = await _call(rt, hooked, payload, answer)
        if not 200 <= (answer.status_code or 0) < 300:
            answer.outcome, answer.error = "error", f"HTTP {answer.status_code}"
        else:
            _parse(answer, raw)
    except TimeoutError:
        answer.outcome, answer.error = "timeout", f"no answer within {TIMEOUT_SECONDS:g} s"
    except ValueError as bad:
        answer.outcome, answer.error = "invalid", str(bad)[:300]
    except (httpx.HTTPError, egress.DestinationRefused) as failed:
        answer.outcome, answer.error = "error", f"{type(failed).__name__}: {failed}"[:300]
    except Exception as unexpected:  # noqa: BLE001 - see the docstring
        log.warning("hook call failed unexpectedly", exc_info=True,
                    extra={"app_id": answer.app_id, "installation_id": answer.installation_id})
        answer.outcome, answer.error = "error", f"{type(unexpected).__name__}: {unexpected}"[:300]
    if answer.outcome != "answered":
        answer.actions = []
    answer.latency_ms = int((time.perf_counter() - started) * 1000)
    return answer


async def _call(rt: Runtime, hooked: Hooked, payload: dict, answer: Answer) -> bytes:
    """The body of one signed hook call to the checked address (its status noted on ``answer`` as
    soon as it arrives); ValueError past the size cap."""
    body = json.dumps(dict(payload, installation_id=hooked.installation_id), separators=(",", ":")).encode()
    now = clock.now()
    headers = signing.headers(webhook_signing_secrets(rt, hooked.app, clock.iso(now)), new_id("hk"),
                              clock.wall_timestamp(), body)
    assert hooked.app.hook_url is not None
    target = await egress.resolve(hooked.app.hook_url, allow_loopback=not rt.config.is_production)
    client = _http()
    response = await client.send(egress.pinned_request(client, hooked.app.hook_url, target, body, headers, USER_AGENT),
                                 stream=True)
    answer.status_code = response.status_code
    try:
        raw = bytearray()
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) > MAX_ANSWER_BYTES:
                raise ValueError(f"the answer is larger than {MAX_ANSWER_BYTES // 1024} KiB")
    finally:
        await response.aclose()
    return bytes(raw)


def _payload(order: Order, hooked: Hooked, checkout: dict, collected: Collected | None) -> dict:
    """What one app hears: the order, the buyer's details as just given (else as the order keeps them)
    and its own checkout fields' values, never another app's (their values are taken out of the order's
    extension_data too)."""
    shown = order.to_dict()
    shown["extension_data"] = {
        app_id: ({k: v for k, v in data.items() if k != "fields"}
                 if app_id != hooked.app.id and isinstance(data, dict) else data)
        for app_id, data in shown["extension_data"].items()}
    own = shown["extension_data"].get(hooked.app.id)
    fields = own.get("fields") if isinstance(own, dict) else None
    if collected is not None:
        customer = collected.customer.to_dict_or_none()
        fields = collected.app_fields.get(hooked.app.id)
    else:
        customer = shown["customer"]
    return {"type": HOOK, "order": shown, "checkout": checkout, "customer": customer,
            "fields": {key: value for key, value in (fields or {}).items() if key in hooked.field_keys}}


async def before_payment(rt: Runtime, order: Order, *, channel: str, checkout_session_id: str | None,
                         payment_link_id: str | None, collected: Collected | None = None) -> None:
    """Ask the hooked apps, record every call, apply the answers: annotations into the order's
    ``extension_data``; then raise 402 ``blocked_by_extension``, 400 ``invalid_field`` (an app's
    field_error, shown at its field) or 409 ``route_to_hosted`` if they say so."""
    hooked = await _hooked(rt, order.merchant_id)
    if not hooked:
        return
    checkout = {"channel": channel, "session_id": checkout_session_id, "payment_link_id": payment_link_id}
    answers = await asyncio.gather(*(_ask(rt, h, _payload(order, h, checkout, collected), h.field_keys)
                                     for h in hooked))
    block: str | None = None
    field_errors: list[FieldProblem] = []
    route: str | None = None
    annotations: dict[str, Any] = {}
    calls = []
    now = clock.now_iso()
    for answer in answers:  # installation order: deterministic
        applied: list[str] = []
        if answer.outcome != "answered":
            if answer.failure_mode == "block" and block is None:
                block = FAILURE_BLOCK_MESSAGE
                applied.append("block (failure mode)")
        for action in answer.actions:
            if action["type"] == "block" and block is None:
                block = action["message"]
                applied.append("block")
            elif action["type"] == "annotate":
                annotations[answer.app_id] = action["data"]
                applied.append("annotate")
            elif action["type"] == "field_error":
                field_errors.append(FieldProblem(f"app_fields.{answer.app_id}.{action['field']}", "field_error",
                                                 action["message"]))
                applied.append("field_error")
            elif action["type"] == "route_to_hosted" and channel == "embedded" and route is None:
                route = action["reason"] or "requested by an app"
                applied.append("route_to_hosted")
        calls.append(HookCall(
            id=new_id("hc"), merchant_id=order.merchant_id, app_id=answer.app_id,
            installation_id=answer.installation_id, order_id=order.id, channel=channel,
            checkout_session_id=checkout_session_id, payment_link_id=payment_link_id, outcome=answer.outcome,
            status_code=answer.status_code, latency_ms=answer.latency_ms, actions=json.dumps(answer.actions),
            ignored=_capped(answer.ignored), applied=json.dumps(applied), error=answer.error, created_at=now))
    async with rt.db.transaction() as conn:
        if annotations:  # first: the order is locked before the call rows' foreign keys share-lock it
            await order_store.merge_extension_data(conn, order.id, annotations, now)
        await store.insert_calls(conn, calls)
    if block is not None:
        # The app's words, shown as plain text by the widget and the hosted page alike.
        raise FlintError(402, "blocked_by_extension", block)
    if field_errors:
        # The buyer can fix these: the form again, each message (the app's words, plain text) at its field.
        raise FieldErrors(field_errors)
    if route is not None:
        raise FlintError(409, "route_to_hosted", "Please complete this payment on the secure checkout page.",
                         extra={"reason": route})


def _capped(ignored: list) -> str:
    try:
        text = json.dumps(ignored, allow_nan=False)
    except (ValueError, TypeError, RecursionError):  # _parse lets none of these through; stay safe anyway
        text = ""
    if text and len(text) <= MAX_IGNORED_TEXT:
        return text
    return json.dumps([{"note": f"{len(ignored)} ignored items, too large to keep"}])


async def _hooked(rt: Runtime, merchant_id: str) -> list[Hooked]:
    """The installed apps to ask, in installation order: their merchant consented to the hook (what an
    app declares now may be more: that waits for approval, docs/api.md 12) and the app has a hook_url."""
    async with rt.db.read() as conn:
        installations = await installation_store.select_installations_consenting_to(conn, merchant_id, HOOK)
        if not installations:
            return []
        apps = await app_store.select_apps_by_ids(conn, sorted({i.app_id for i in installations}))
    return [Hooked(i.id, apps[i.app_id], frozenset(f["key"] for f in i.consent.checkout_fields))
            for i in installations if apps[i.app_id].hook_url]


async def list_calls(rt: Runtime, merchant_id: str, order_id: str | None, limit: int,
                     starting_after: str | None) -> tuple[list[HookCall], bool]:
    async with rt.db.read() as conn:
        return await store.select_calls_page(conn, merchant_id, order_id, limit, starting_after)

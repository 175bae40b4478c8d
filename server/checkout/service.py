"""Checkout sessions: one buyer visit, always tied to one order."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flint import clock, urls
from flint.actors import Actor
from flint.buyers import service as buyers
from flint.checkout import store
from flint.checkout.models import EXPIRED, FALLBACK_REASONS, MODES, OPEN, CheckoutSession
from flint.errors import FlintError, conflict, invalid, not_found
from flint.ids import new_id
from flint.orders import store as order_store
from flint.orders.models import CANCELED, NewOrder, build_order
from flint.orders.models import AUTHORIZED as ORDER_AUTHORIZED
from flint.orders.models import OPEN as ORDER_OPEN
from flint.orders.service import record_order_event, record_order_events
from flint.runtime import Runtime
from flint.security import CLIENT_TOKEN_SALT

MIN_EXPIRES_IN, MAX_EXPIRES_IN, DEFAULT_EXPIRES_IN = 60, 86400, 3600
DEFAULT_ABANDON_AFTER = 900


@dataclass
class NewSession:
    mode: str
    success_url: str
    order_id: str | None = None
    inline_order: NewOrder | None = None
    cancel_url: str | None = None
    expires_in: int = DEFAULT_EXPIRES_IN
    recovery_enabled: bool = False
    abandon_after: int = DEFAULT_ABANDON_AFTER
    # Email the buyer the recovery link (docs/api.md 16): acts only with recovery_enabled.
    recovery_email: bool = False
    # What the buyer is asked for (docs/api.md 14), as the request gave them; parsed by flint.buyers.
    collect: dict[str, Any] | None = None
    custom_fields: list[dict[str, Any]] | None = None
    # "manual": the buyer's payment is only authorized; the merchant captures it later (docs/api.md 17).
    capture: str = "automatic"


CAPTURE_METHODS = ("automatic", "manual")


def client_token(rt: Runtime, session: CheckoutSession) -> str:
    """Names the session and the merchant, expires with the session, grants nothing else."""
    expires = int(clock.parse(session.expires_at).timestamp()) + 1
    return rt.signer.dumps(CLIENT_TOKEN_SALT, {"s": session.id, "m": session.merchant_id, "e": expires})


def present(rt: Runtime, session: CheckoutSession, *, with_token: bool = True) -> dict:
    token = client_token(rt, session) if with_token and session.status == OPEN else None
    return session.to_dict(rt.config.public_url, token)


def _check_url(url: str | None, param: str) -> None:
    if url is not None:
        # The URL rules of docs/api.md 13 (400 url_invalid): the hosted page builds CSP sources and
        # redirects from these, and the buyer's browser must read them as Flint does.
        urls.parse_url(url, param)


async def create_session(rt: Runtime, merchant_id: str, new: NewSession, actor: Actor) -> CheckoutSession:
    if new.mode not in MODES:
        raise invalid("mode_invalid", "mode must be 'embedded' or 'hosted'.", "mode")
    if not MIN_EXPIRES_IN <= new.expires_in <= MAX_EXPIRES_IN:
        raise invalid("expires_in_invalid", f"expires_in must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds.",
                      "expires_in")
    _check_url(new.success_url, "success_url")
    _check_url(new.cancel_url, "cancel_url")
    if new.capture not in CAPTURE_METHODS:
        raise invalid("capture_invalid", "capture must be 'automatic' or 'manual'.", "capture")
    collect_json, custom_json = buyers.stored_collect(new.collect, new.custom_fields)
    inline = build_order(merchant_id, new.inline_order, actor, "order.") if new.inline_order else None
    now = clock.now_iso()
    announce: list[tuple[str, dict]] = []
    async with rt.db.transaction() as conn:
        if inline is not None:
            await order_store.insert_order(conn, inline)
            announce.append(("order.created", inline.to_dict()))
            order = inline
        else:
            assert new.order_id is not None
            # Locks the order: a cancel or payment racing this waits, so no session opens on a closed order.
            order = await order_store.select_order(conn, merchant_id, new.order_id, for_update=True)
            if order is None:
                raise not_found("order", new.order_id, param="order")
            if order.status != ORDER_OPEN:
                raise conflict("order_not_open",
                               f"A checkout session needs an open order; this one is {order.status}.")
        session = CheckoutSession(
            id=new_id("cs"), merchant_id=merchant_id, order_id=order.id, mode=new.mode, status=OPEN,
            success_url=new.success_url, cancel_url=new.cancel_url,
            expires_at=clock.later_iso(new.expires_in), recovery_enabled=int(new.recovery_enabled),
            abandon_after=new.abandon_after, recovery_payment_link_id=None, created_at=now, updated_at=now,
            # Watched for drop-off from now: idle past abandon_after without buyer activity.
            abandon_at=clock.later_iso(new.abandon_after) if new.recovery_enabled else None,
            created_by_type=actor.type, created_by_id=actor.id, collect=collect_json, custom_fields=custom_json,
            recovery_email=int(new.recovery_email), capture=new.capture,
        )
        await store.insert_session(conn, session)
        announce.append(("checkout.session.created", present(rt, session, with_token=False)))
        await record_order_events(conn, merchant_id=merchant_id, actor=actor, items=announce, order_id=order.id)
    return session


async def get_session(rt: Runtime, merchant_id: str, session_id: str) -> CheckoutSession:
    async with rt.db.read() as conn:
        session = await store.select_session(conn, merchant_id, session_id)
    if session is None:
        raise not_found("checkout_session", session_id)
    return session


async def list_sessions(rt: Runtime, merchant_id: str, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_sessions_page(conn, merchant_id, limit, starting_after)


async def session_for_client_token(rt: Runtime, token: str, session_id: str | None = None) -> CheckoutSession:
    """Resolve a buyer's client_token. The signature proves we issued it; the row is
    re-checked on every use (a token outlives nothing its session does)."""
    payload = rt.signer.loads(CLIENT_TOKEN_SALT, token, max_age=MAX_EXPIRES_IN + 60, kind="client_token")
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), str):
        raise FlintError(401, "client_token_invalid", "This client token is not valid.")
    if session_id is not None and payload["s"] != session_id:
        raise FlintError(401, "client_token_invalid", "This client token belongs to another session.")
    if int(payload.get("e", 0)) <= clock.now().timestamp():
        raise FlintError(401, "client_token_expired", "This client token has expired.")
    async with rt.db.read() as conn:
        session = await store.select_session(conn, payload.get("m", ""), payload["s"])
    if session is None:
        raise FlintError(401, "client_token_invalid", "This client token is not valid.")
    return session


def check_session_payable(session: CheckoutSession, order_status: str) -> None:
    """Why a buyer cannot pay through this session right now, as a stable code."""
    if order_status == CANCELED:
        raise conflict("order_canceled", "This order was canceled.")
    if order_status == ORDER_AUTHORIZED:
        # A payment holds the buyer's money already (docs/api.md 17): no second attempt while it stands.
        raise conflict("order_authorized", "A payment for this order is authorized and awaits capture.")
    if order_status != ORDER_OPEN:
        raise conflict("order_already_paid", "This order has already been paid.")
    if session.status == EXPIRED or session.expires_at <= clock.now_iso():
        raise conflict("session_expired", "This checkout session has expired.")
    if session.status != OPEN:
        raise conflict("session_not_open", "This checkout session is no longer open.")


# -- what the embedded widget reports (docs/api.md 5) ------------------------------------------------------

async def buyer_view(rt: Runtime, session: CheckoutSession, messages: dict[str, str] | None = None,
                     locale: str | None = None) -> dict:
    """What the widget's loader needs before it frames the card form: whether the session can take
    a payment now (and if not, the stable code why), where the frame and the hosted fallback are, and
    the loader's ``messages`` in the buyer's language (the surface chooses them from the request).
    The client_token is the credential, so this is all a buyer's page learns from it. For a session
    watched for drop-off, the widget loading is the buyer (back) at the checkout: activity, and the
    buyer's ``locale`` is kept for a recovery email."""
    if session.abandon_at is not None and session.recovery_payment_link_id is None and session.status == OPEN:
        async with rt.db.transaction() as conn:
            await store.note_buyer_back(conn, session.id, clock.later_iso(session.abandon_after), locale)
    async with rt.db.read() as conn:
        order = await order_store.select_order_by_id(conn, session.order_id)
    assert order is not None
    try:
        check_session_payable(session, order.status)
        unavailable = None
    except FlintError as closed:
        unavailable = {"code": closed.code, "message": closed.detail}
    return {
        "object": "checkout.client_session",
        "id": session.id,
        "order_id": session.order_id,
        "mode": session.mode,
        "status": session.status,
        "payable": unavailable is None,
        "unavailable": unavailable,
        "amount_total": order.amount_due,
        "currency": order.currency,
        "url": session.hosted_url(rt.config.public_url),
        "frame_url": f"{rt.config.public_url}/widget/v1/frame/{session.id}",
        "expires_at": clock.public(session.expires_at),
        "messages": messages or {},
    }


async def record_fallback(rt: Runtime, session: CheckoutSession, reason: str, actor: Actor) -> CheckoutSession:
    """The widget showed the hosted link instead of its frame. Recorded once per session (the first
    reason), with a ``checkout.session.fallback_used`` event; a closed session records nothing."""
    if reason not in FALLBACK_REASONS:
        raise invalid("fallback_reason_invalid", f"reason must be one of {', '.join(FALLBACK_REASONS)}.", "reason")
    async with rt.db.transaction() as conn:
        # Locks the order before the session row (as every other writer does), since the event
        # below updates the order: the other way round could deadlock with a payment.
        await order_store.select_order_by_id(conn, session.order_id, for_update=True)
        marked = await store.mark_fallback(conn, session.id, reason, clock.now_iso())
        if marked is None:
            return await store.select_session_by_id(conn, session.id) or session
        await record_order_event(conn, merchant_id=marked.merchant_id, type="checkout.session.fallback_used", actor=actor,
                            obj=marked.to_dict(rt.config.public_url, None), order_id=marked.order_id)
    return marked


async def record_buyer_left(rt: Runtime, session: CheckoutSession, locale: str | None = None) -> bool:
    """The buyer typed in the card form and left the page unpaid (the loader's beacon). Kept on the
    session for drop-off recovery (with the buyer's ``locale``, for its email); a closed session ignores it."""
    async with rt.db.transaction() as conn:
        return bool(await store.mark_buyer_left(conn, session.id, clock.now_iso(),
                                                clock.later_iso(session.abandon_after), locale))

"""Checkout sessions: both modes, the signed client_token, expiry (endpoint and sweeper)."""
import time

import pytest

from flint.closing import service as closing
from flint.actors import Actor
from flint.checkout import service as checkout
from flint.errors import FlintError
from flint.orders import service as orders
from flint.security import CLIENT_TOKEN_SALT, Signer
from flint.background.sweeper import sweep_once
from support.factories import make_merchant, make_order, make_session, pay_session


async def test_session_has_hosted_url_and_a_token_naming_session_and_merchant(rt):
    merchant, _ = await make_merchant(rt)
    for mode in ("embedded", "hosted"):
        session = await make_session(rt, merchant.id, mode=mode)
        shown = checkout.present(rt, session)
        assert shown["url"] == f"{rt.config.public_url}/checkout/{session.id}"
        assert shown["mode"] == mode and shown["status"] == "open"
        payload = rt.signer.loads(CLIENT_TOKEN_SALT, shown["client_token"], 86400, kind="client_token")
        assert (payload["s"], payload["m"]) == (session.id, merchant.id)
        assert (await checkout.session_for_client_token(rt, shown["client_token"])).id == session.id


async def test_client_token_is_bound_to_its_salt(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    other_purpose = rt.signer.dumps("some.other.purpose", {"s": session.id, "m": merchant.id, "e": time.time() + 60})
    with pytest.raises(FlintError) as raised:
        await checkout.session_for_client_token(rt, other_purpose)
    assert raised.value.code == "client_token_invalid"


async def test_client_token_expires_with_its_session(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    expired = rt.signer.dumps(CLIENT_TOKEN_SALT, {"s": session.id, "m": merchant.id, "e": int(time.time()) - 1})
    with pytest.raises(FlintError) as raised:
        await checkout.session_for_client_token(rt, expired)
    assert (raised.value.status, raised.value.code) == (401, "client_token_expired")


async def test_secret_rotation_keeps_old_tokens_valid_until_the_old_key_is_dropped(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    old_token = checkout.client_token(rt, session)
    old_keys = rt.config.secret_keys
    rt.signer = Signer(("a-brand-new-key",) + old_keys)  # FLINT_SECRET_KEY="new,old"
    assert (await checkout.session_for_client_token(rt, old_token)).id == session.id
    new_token = checkout.client_token(rt, session)
    assert Signer(("a-brand-new-key",)).loads(CLIENT_TOKEN_SALT, new_token, 100, kind="client_token")["s"] == session.id
    rt.signer = Signer(("a-brand-new-key",))  # the old key retired
    with pytest.raises(FlintError) as raised:
        await checkout.session_for_client_token(rt, old_token)
    assert raised.value.code == "client_token_invalid"


@pytest.mark.parametrize("expires_in", [59, 86401])
async def test_expires_in_bounds(rt, expires_in):
    merchant, _ = await make_merchant(rt)
    with pytest.raises(FlintError) as raised:
        await make_session(rt, merchant.id, expires_in=expires_in)
    assert (raised.value.code, raised.value.param) == ("expires_in_invalid", "expires_in")


async def test_no_session_for_a_paid_or_canceled_order(rt):
    merchant, _ = await make_merchant(rt)
    paid = await make_session(rt, merchant.id)
    await pay_session(rt, paid)
    canceled = await make_order(rt, merchant.id)
    await closing.cancel_order(rt, merchant.id, canceled.id, Actor("merchant", merchant.id))
    for order_id in (paid.order_id, canceled.id):
        with pytest.raises(FlintError) as raised:
            await make_session(rt, merchant.id, order_id=order_id)
        assert (raised.value.status, raised.value.code) == (409, "order_not_open")


async def test_expire_endpoint_closes_the_session_and_stops_payment(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    expired = await closing.expire_session(rt, merchant.id, session.id, Actor("merchant", merchant.id))
    assert expired.status == "expired"
    with pytest.raises(FlintError) as raised:
        await pay_session(rt, session)
    assert raised.value.code == "session_expired"
    with pytest.raises(FlintError) as raised:
        await closing.expire_session(rt, merchant.id, session.id, Actor("merchant", merchant.id))
    assert raised.value.code == "session_not_open"


async def test_the_sweeper_expires_sessions_on_time_once(rt, advance_clock):
    merchant, _ = await make_merchant(rt)
    due = await make_session(rt, merchant.id, expires_in=60)
    fresh = await make_session(rt, merchant.id)
    assert (await sweep_once(rt))["sessions_expired"] == 0
    advance_clock(61)  # past due's expiry, not fresh's
    assert (await sweep_once(rt))["sessions_expired"] == 1
    assert (await sweep_once(rt))["sessions_expired"] == 0
    assert (await checkout.get_session(rt, merchant.id, due.id)).status == "expired"
    assert (await checkout.get_session(rt, merchant.id, fresh.id)).status == "open"
    events, _ = await orders.list_order_events(rt, merchant.id, due.order_id, 0, 100)
    expired_events = [e for e in events if e.type == "checkout.session.expired"]
    assert len(expired_events) == 1 and expired_events[0].actor_type == "system"


async def test_a_session_past_its_time_refuses_payment_even_before_the_sweeper_runs(rt, advance_clock):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, expires_in=60)
    advance_clock(61)
    with pytest.raises(FlintError) as raised:
        await pay_session(rt, session)
    assert raised.value.code == "session_expired"


async def test_canceling_an_order_expires_its_open_sessions(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    await closing.cancel_order(rt, merchant.id, session.order_id, Actor("merchant", merchant.id))
    assert (await checkout.get_session(rt, merchant.id, session.id)).status == "expired"
    events, _ = await orders.list_order_events(rt, merchant.id, session.order_id, 0, 100)
    assert [e.type for e in events][-2:] == ["order.canceled", "checkout.session.expired"]

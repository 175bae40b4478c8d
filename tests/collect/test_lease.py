"""The order guard's lease: an attempt that died between taking the guard and settling
must not leave the order stuck forever."""
import asyncio
from dataclasses import replace

import pytest

from flint.closing import service as closing
from flint.actors import Actor
from flint.errors import FlintError
from flint.orders import service as orders
from flint.collect import service as collect
from flint.payments import service as payments
from flint.processors import ChargeResult
from flint.background.sweeper import sweep_once
from support.factories import card, make_merchant, make_session, pay_session


def _attempt(session):
    return collect.Attempt(merchant_id=session.merchant_id, order_id=session.order_id, channel=session.mode,
                            checkout_session_id=session.id)


@pytest.fixture
def short_lease(rt):
    rt.config = replace(rt.config, payment_lease_seconds=0.5)
    return rt


async def test_an_abandoned_attempt_blocks_until_its_lease_lapses_then_the_order_can_be_paid(short_lease):
    rt = short_lease
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    # Step 1 of a confirm whose process then "dies": the guard is taken, nothing settles it.
    stale, _ = await collect.begin_attempt(rt, _attempt(session), card(), Actor("buyer", session.id))
    with pytest.raises(FlintError) as raised:
        await pay_session(rt, session)
    assert raised.value.code == "payment_in_progress"
    await asyncio.sleep(0.6)
    paid = await pay_session(rt, session)
    assert paid.status == "succeeded"
    stale_now = await payments.get_payment(rt, merchant.id, stale.id)
    assert (stale_now.status, stale_now.failure_code) == ("failed", "payment_attempt_expired")


async def test_the_sweeper_frees_a_lapsed_guard(short_lease):
    rt = short_lease
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    stale, _ = await collect.begin_attempt(rt, _attempt(session), card(), Actor("buyer", session.id))
    assert (await sweep_once(rt))["attempts_recovered"] == 0  # lease still running
    await asyncio.sleep(0.6)
    assert (await sweep_once(rt))["attempts_recovered"] == 1
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert (order.status, order.attempt_payment_id) == ("open", None)
    assert (await payments.get_payment(rt, merchant.id, stale.id)).status == "failed"


async def test_a_late_success_after_losing_the_guard_does_not_count(short_lease):
    rt = short_lease
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    slow, _ = await collect.begin_attempt(rt, _attempt(session), card(), Actor("buyer", session.id))
    await asyncio.sleep(0.6)
    winner = await pay_session(rt, session)  # takes over the lapsed guard and pays
    # The slow attempt's processor finally answers "succeeded": it must not pay the order twice.
    late = await collect.settle(rt, slow, ChargeResult("succeeded", "sim_ch_late"), Actor("buyer", session.id))
    assert winner.status == "succeeded"
    assert late.status == "failed"
    listed, _ = await payments.list_payments(rt, merchant.id, session.order_id, 10, None)
    assert [p.status for p in listed].count("succeeded") == 1


async def test_cancel_is_refused_while_an_attempt_is_in_flight(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    await collect.begin_attempt(rt, _attempt(session), card(), Actor("buyer", session.id))
    with pytest.raises(FlintError) as raised:
        await closing.cancel_order(rt, merchant.id, session.order_id, Actor("merchant", merchant.id))
    assert (raised.value.status, raised.value.code) == (409, "payment_in_progress")

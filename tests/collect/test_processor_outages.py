"""When the processor raises or never answers, the outcome is unknown: never recorded as a
decline (the buyer could then pay twice), but held until recovery voids it."""
import asyncio
from dataclasses import replace

import pytest

from flint.actors import Actor
from flint.errors import FlintError
from flint.orders import service as orders
from flint.collect import service as collect
from flint.payments import service as payments
from flint.processors import SimulatedProcessor
from flint.refunds import service as refunds
from flint.background.sweeper import sweep_once
from support.factories import make_merchant, make_session, pay_session


class UnreachableProcessor(SimulatedProcessor):
    """A processor whose network is down: a real implementation of the interface whose calls
    fail the way a gateway outage does, and which records the voids it is asked for."""

    def __init__(self, hang: bool = False):
        self.hang = hang
        self.voided: list[str] = []

    async def _fail(self):
        if self.hang:
            await asyncio.sleep(3600)
        raise ConnectionError("processor unreachable")

    async def charge(self, request):
        await self._fail()

    async def refund(self, processor_ref, amount, currency, refund_id):
        await self._fail()

    async def void(self, payment_id, processor_ref):
        self.voided.append(payment_id)


@pytest.mark.parametrize("hang", [False, True], ids=["raises", "times_out"])
async def test_an_unknown_charge_outcome_holds_the_order_until_recovery(rt, hang):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    rt.config = replace(rt.config, payment_lease_seconds=0.5, processor_timeout_seconds=0.2)
    healthy, rt.processor = rt.processor, UnreachableProcessor(hang=hang)
    with pytest.raises(FlintError) as raised:
        await pay_session(rt, session)
    assert (raised.value.status, raised.value.code) == (503, "processor_unavailable")
    unknown = await payments.get_payment(rt, merchant.id, raised.value.extra["payment_id"])
    assert unknown.status == "processing"  # not "failed": it may have gone through
    with pytest.raises(FlintError) as again:
        await pay_session(rt, session)
    assert again.value.code == "payment_in_progress"
    await asyncio.sleep(0.6)
    assert (await sweep_once(rt))["attempts_recovered"] == 1
    assert rt.processor.voided == [unknown.id]  # released at the processor by payment id
    rt.processor = healthy
    assert (await pay_session(rt, session)).status == "succeeded"
    assert (await orders.get_order(rt, merchant.id, session.order_id)).amount_paid == unknown.amount


async def test_an_unknown_refund_outcome_stays_pending_and_is_redriven(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, amount=900)
    await pay_session(rt, session)
    rt.config = replace(rt.config, processor_timeout_seconds=0.2, payment_lease_seconds=0.3)
    healthy, rt.processor = rt.processor, UnreachableProcessor()
    refund = await refunds.issue_refund(rt, merchant.id, refunds.NewRefund(order_id=session.order_id),
                                        Actor("merchant", merchant.id))
    assert refund.status == "pending"
    # The money stays reserved: a second refund cannot take it again.
    with pytest.raises(FlintError) as raised:
        await refunds.issue_refund(rt, merchant.id, refunds.NewRefund(order_id=session.order_id),
                                   Actor("merchant", merchant.id))
    assert raised.value.code == "charge_already_refunded"
    rt.processor = healthy
    await asyncio.sleep(0.35)
    assert (await sweep_once(rt))["refunds_redriven"] == 1
    assert (await refunds.get_refund(rt, merchant.id, refund.id)).status == "succeeded"
    assert (await orders.get_order(rt, merchant.id, session.order_id)).status == "refunded"


async def test_the_sweeper_does_not_expire_a_session_under_a_payment_in_flight(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    attempt = collect.Attempt(merchant.id, session.order_id, "embedded", session.id)
    from support.factories import card

    started, _ = await collect.begin_attempt(rt, attempt, card(), Actor("buyer", session.id))
    async with rt.db.transaction() as conn:
        await conn.execute("UPDATE checkout_sessions SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE id = :id",
                           {"id": session.id})
    assert (await sweep_once(rt))["sessions_expired"] == 0
    from flint.processors import ChargeResult

    settled = await collect.settle(rt, started, ChargeResult("succeeded", "sim_ch_x"), Actor("buyer", session.id))
    assert settled.status == "succeeded"
    from flint.checkout import service as checkout

    assert (await checkout.get_session(rt, merchant.id, session.id)).status == "complete"

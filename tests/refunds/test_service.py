"""Refunds: full and partial, by payment or by order; statuses follow; the failing card."""
import pytest

from flint.actors import Actor
from flint.errors import FlintError
from flint.events import service as events
from flint.orders import service as orders
from flint.payments import service as payments
from flint.refunds import service as refunds
from flint.refunds.service import NewRefund
from support.factories import make_merchant, make_session, pay_session


async def _paid(rt, amount=1000, number="4242424242424242"):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, amount=amount)
    payment = await pay_session(rt, session, number)
    return merchant, session, payment


def _by(merchant):
    return Actor("merchant", merchant.id)


async def test_partial_then_full_refund_by_payment_and_by_order(rt):
    merchant, session, payment = await _paid(rt)
    first = await refunds.issue_refund(rt, merchant.id, NewRefund(payment_id=payment.id, amount=300,
                                                                   reason="requested_by_customer"), _by(merchant))
    assert (first.status, first.amount, first.reason, first.currency) == ("succeeded", 300, "requested_by_customer", "usd")
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_refunded, order.amount_refundable) == ("partially_refunded", 300, 700)
    rest = await refunds.issue_refund(rt, merchant.id, NewRefund(order_id=session.order_id), _by(merchant))
    assert rest.amount == 700  # default: all that is refundable
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_refunded, order.amount_refundable) == ("refunded", 1000, 0)
    assert (await payments.get_payment(rt, merchant.id, payment.id)).amount_refunded == 1000
    with pytest.raises(FlintError) as raised:
        await refunds.issue_refund(rt, merchant.id, NewRefund(order_id=session.order_id), _by(merchant))
    assert (raised.value.status, raised.value.code) == (409, "charge_already_refunded")


async def test_a_refund_over_the_refundable_amount_is_refused(rt):
    merchant, session, payment = await _paid(rt, amount=500)
    with pytest.raises(FlintError) as raised:
        await refunds.issue_refund(rt, merchant.id, NewRefund(payment_id=payment.id, amount=501), _by(merchant))
    assert (raised.value.status, raised.value.code, raised.value.param) == (400, "refund_exceeds_refundable", "amount")
    assert (await orders.get_order(rt, merchant.id, session.order_id)).amount_refunded == 0


async def test_the_refund_failing_card(rt):
    merchant, session, payment = await _paid(rt, number="4000000000005126")
    assert payment.status == "succeeded"
    failed = await refunds.issue_refund(rt, merchant.id, NewRefund(payment_id=payment.id), _by(merchant))
    assert (failed.status, failed.failure_code) == ("failed", "refund_failed")
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_refunded, order.amount_refundable) == ("paid", 0, 1000)
    listed, _ = await events.list_events(rt, merchant.id, "refund.failed", 10, None)
    assert [e.data for e in listed] and '"refund_failed"' in listed[0].data
    # The reservation was released: the money is still refundable (it would fail again here).
    assert (await payments.get_payment(rt, merchant.id, payment.id)).amount_refundable == 1000


async def test_refunds_need_a_paid_order_of_this_merchant(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    with pytest.raises(FlintError) as raised:
        await refunds.issue_refund(rt, merchant.id, NewRefund(order_id=session.order_id), _by(merchant))
    assert raised.value.code == "order_not_paid"
    stranger, _ = await make_merchant(rt)
    _, _, payment = await _paid(rt)
    with pytest.raises(FlintError) as raised:
        await refunds.issue_refund(rt, stranger.id, NewRefund(payment_id=payment.id), _by(stranger))
    assert (raised.value.status, raised.value.code) == (404, "payment_not_found")


async def test_a_refund_stuck_pending_is_redriven_by_the_sweeper(rt):
    from flint import clock
    from flint.payments import store as payment_store
    from flint.refunds import store as refund_store
    from flint.refunds.models import Refund
    from flint.background.sweeper import sweep_once

    merchant, session, payment = await _paid(rt, amount=800)
    # A process reserved 800 and died before calling the processor.
    async with rt.db.transaction() as conn:
        assert await payment_store.reserve_refund(conn, payment.id, 800, clock.now_iso())
        await refund_store.insert_refund(conn, Refund(
            id="re_stuck", merchant_id=merchant.id, payment_id=payment.id, order_id=session.order_id, amount=800,
            currency="usd", status="pending", reason=None, failure_code=None, processor_ref=None,
            created_at="2020-01-01T00:00:00.000000Z", updated_at="2020-01-01T00:00:00.000000Z"))
    assert (await sweep_once(rt))["refunds_redriven"] == 1
    assert (await refunds.get_refund(rt, merchant.id, "re_stuck")).status == "succeeded"
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_refunded) == ("refunded", 800)

"""The confirm service and the simulated processor: the whole test-card table of the API reference (docs/api.md) §6."""
import pytest

from flint.closing import service as closing
from flint.actors import Actor
from flint.errors import FlintError
from flint.events import service as events
from flint.orders import service as orders
from flint.collect import service as collect
from flint.payments import service as payments
from support.factories import card, make_merchant, make_session, pay_session

DECLINES = [
    ("4000000000000002", "card_declined"),
    ("4000000000009995", "insufficient_funds"),
    ("4000000000000069", "expired_card"),
    ("4000000000000127", "incorrect_cvc"),
    ("4000000000000119", "processing_error"),
]


async def test_success_card_pays_the_order_once(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, amount=1999)
    payment = await pay_session(rt, session)
    assert payment.status == "succeeded" and payment.amount == 1999
    assert (payment.card_brand, payment.card_last4, payment.card_exp_month) == ("visa", "4242", 12)
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_paid, order.attempt_payment_id) == ("paid", 1999, None)
    types = [e.type for e in (await orders.list_order_events(rt, merchant.id, order.id, 0, 100))[0]]
    assert types == ["order.created", "checkout.session.created", "payment.succeeded", "order.paid",
                     "checkout.session.completed"]


async def test_any_other_luhn_valid_number_succeeds(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    payment = await pay_session(rt, session, "5555555555554444")
    assert (payment.status, payment.card_brand) == ("succeeded", "mastercard")


@pytest.mark.parametrize("number,code", DECLINES)
async def test_decline_cards_fail_with_their_code_and_leave_the_order_payable(rt, number, code):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    failed = await pay_session(rt, session, number)
    assert (failed.status, failed.failure_code) == ("failed", code)
    assert failed.failure_message
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert (order.status, order.attempt_payment_id) == ("open", None)
    # The buyer tries another card: the order is still payable.
    assert (await pay_session(rt, session)).status == "succeeded"


async def test_luhn_failure_is_rejected_before_any_attempt(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    with pytest.raises(FlintError) as raised:
        await pay_session(rt, session, "4242424242424241")
    assert raised.value.code == "invalid_card_number"
    listed, _ = await payments.list_payments(rt, merchant.id, session.order_id, 10, None)
    assert listed == []


@pytest.mark.parametrize("approve,status,code", [(True, "succeeded", None), (False, "failed", "authentication_failed")])
async def test_three_d_secure_challenge(rt, approve, status, code):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    pending = await pay_session(rt, session, "4000002760003184")
    assert pending.status == "requires_action"
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert order.attempt_payment_id == pending.id  # the challenge holds the order guard
    done = await collect.resolve_challenge(rt, merchant.id, pending.id, approve, Actor("buyer", session.id),
                                            checkout_session_id=session.id)
    assert (done.status, done.failure_code) == (status, code)
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert order.status == ("paid" if approve else "open")
    assert order.attempt_payment_id is None
    types = [e.type for e in (await orders.list_order_events(rt, merchant.id, order.id, 0, 100))[0]]
    assert "payment.requires_action" in types
    assert ("order.paid" in types) is approve
    # A second answer to the same challenge is refused.
    with pytest.raises(FlintError) as raised:
        await collect.resolve_challenge(rt, merchant.id, pending.id, True, Actor("buyer", session.id))
    assert raised.value.code == "payment_not_awaiting_action"


async def test_a_buyer_who_walks_away_from_a_challenge_can_pay_another_way(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    challenged = await pay_session(rt, session, "4000002760003184")
    paid = await pay_session(rt, session)  # a new attempt replaces the open challenge
    assert paid.status == "succeeded"
    old = await payments.get_payment(rt, merchant.id, challenged.id)
    assert (old.status, old.failure_code) == ("failed", "authentication_abandoned")
    with pytest.raises(FlintError) as raised:  # the abandoned challenge cannot be answered any more
        await collect.resolve_challenge(rt, merchant.id, challenged.id, True, Actor("buyer", session.id))
    assert raised.value.code == "payment_not_awaiting_action"
    listed, _ = await payments.list_payments(rt, merchant.id, session.order_id, 10, None)
    assert [p.status for p in listed].count("succeeded") == 1


async def test_an_expired_challenge_fails_its_payment_for_good(rt):
    from dataclasses import replace

    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    rt.config = replace(rt.config, action_lease_seconds=0.2)
    challenged = await pay_session(rt, session, "4000002760003184")
    import asyncio

    await asyncio.sleep(0.3)
    with pytest.raises(FlintError) as raised:
        await collect.resolve_challenge(rt, merchant.id, challenged.id, True, Actor("buyer", session.id))
    assert raised.value.code == "payment_attempt_expired"
    # The failure was committed, not rolled back with the error: the order is free again.
    failed = await payments.get_payment(rt, merchant.id, challenged.id)
    assert (failed.status, failed.failure_code) == ("failed", "payment_attempt_expired")
    order = await orders.get_order(rt, merchant.id, session.order_id)
    assert order.attempt_payment_id is None
    assert (await pay_session(rt, session)).status == "succeeded"


async def test_canceling_an_order_abandons_its_open_challenge(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    challenged = await pay_session(rt, session, "4000002760003184")
    canceled = await closing.cancel_order(rt, merchant.id, session.order_id, Actor("merchant", merchant.id))
    assert canceled.status == "canceled"
    assert (await payments.get_payment(rt, merchant.id, challenged.id)).failure_code == "authentication_abandoned"


async def test_paid_order_refuses_further_payment(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    other = await make_session(rt, merchant.id, order_id=session.order_id)
    await pay_session(rt, session)
    with pytest.raises(FlintError) as raised:
        await pay_session(rt, other)
    assert raised.value.code == "order_already_paid"


async def test_payment_events_carry_the_buyer_actor(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    await pay_session(rt, session)
    listed, _ = await events.list_events(rt, merchant.id, "payment.succeeded", 10, None)
    assert [(e.actor_type, e.actor_id) for e in listed] == [("buyer", session.id)]


async def test_card_repr_never_shows_the_number():
    shown = repr(card("4242424242424242", cvc="987"))
    assert "4242424242424242" not in shown and "987" not in shown and "4242" in shown

"""Authorize now, capture later (docs/api.md 17) through the services, on SQLite and PostgreSQL: the state
machine of a manual-capture payment and its order, partial capture, void, expiry by the sweeper, refunds
only on what was captured, the receipt only once paid, and a capture whose processor does not answer."""
from __future__ import annotations

from dataclasses import replace

import pytest

from flint.actors import Actor
from flint.background.sweeper import sweep_once
from flint.checkout import service as checkout
from flint.collect import capture
from flint.collect import service as collect
from flint.collect.models import Attempt
from flint.config import Config
from flint.db.migrate import migrate
from flint.errors import FlintError
from flint.links import service as links
from flint.merchants import service as merchants
from flint.orders import store as order_store
from flint.orders.service import create_order
from flint.processors import FAILED, UNKNOWN, ChargeResult, SimulatedProcessor
from flint.refunds import service as refunds
from flint.runtime import Runtime
from support import TEST_SECRET
from support.factories import card, make_merchant, new_order

SUCCESS, THREE_DS = "4242424242424242", "4000002760003184"


async def manual_session(rt, merchant_id: str, amount: int = 2500, order_id: str | None = None, email=None):
    order = None if order_id else replace(new_order(amount), customer_email=email)
    new = checkout.NewSession(mode="embedded", success_url="https://shop.example/thanks", order_id=order_id,
                              inline_order=order, capture="manual")
    return await checkout.create_session(rt, merchant_id, new, Actor("merchant", merchant_id))


async def pay(rt, session, number: str = SUCCESS):
    attempt = Attempt.for_session(session, channel="embedded")
    return await collect.confirm_payment(rt, attempt, card(number), Actor("buyer", session.id))


async def order_of(rt, merchant_id, order_id):
    async with rt.db.read() as conn:
        return await order_store.select_order(conn, merchant_id, order_id)


async def events(rt, order_id) -> list[str]:
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT type FROM events WHERE order_id = :o ORDER BY sequence", {"o": order_id})
    return [r["type"] for r in rows]


def merchant_actor(merchant_id: str) -> Actor:
    return Actor("merchant", merchant_id)


async def authorized(rt, amount: int = 2500, number: str = SUCCESS):
    merchant, _ = await make_merchant(rt)
    session = await manual_session(rt, merchant.id, amount)
    payment = await pay(rt, session, number)
    return merchant, session, payment


async def test_a_manual_capture_payment_is_authorized_and_nothing_is_paid(rt):
    merchant, session, payment = await authorized(rt)
    assert (payment.status, payment.capture_method, payment.amount_authorized) == ("authorized", "manual", 2500)
    body = payment.to_dict()
    assert (body["amount_capturable"], body["amount_captured"], body["captured_at"]) == (2500, 0, None)
    assert body["authorized_at"] is not None
    order = await order_of(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_paid, order.attempt_payment_id) == ("authorized", 0, None)
    assert await events(rt, order.id) == [
        "order.created", "checkout.session.created", "payment.authorized", "checkout.session.completed"]
    assert (await checkout.get_session(rt, merchant.id, session.id)).to_dict("", None)["capture"] == "manual"


async def test_automatic_capture_is_as_before(rt):
    merchant, _ = await make_merchant(rt)
    new = checkout.NewSession(mode="embedded", success_url="https://shop.example/thanks", inline_order=new_order())
    session = await checkout.create_session(rt, merchant.id, new, merchant_actor(merchant.id))
    payment = await pay(rt, session)
    assert (payment.status, payment.capture_method, payment.to_dict()["amount_captured"]) == ("succeeded", "automatic", 2500)
    with pytest.raises(FlintError) as refused:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert (refused.value.status, refused.value.code) == (409, "payment_not_capturable")


async def test_capture_pays_the_order(rt):
    merchant, session, payment = await authorized(rt)
    captured = await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert (captured.status, captured.amount, captured.captured_at is not None) == ("succeeded", 2500, True)
    assert captured.to_dict()["amount_capturable"] == 0 and captured.pending_action is None
    order = await order_of(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_paid) == ("paid", 2500)
    assert (await events(rt, order.id))[-2:] == ["payment.captured", "order.paid"]
    for again in (capture.capture_payment, capture.void_payment):
        with pytest.raises(FlintError) as refused:
            await again(rt, merchant.id, payment.id, merchant_actor(merchant.id))
        assert refused.value.status == 409


async def test_partial_capture_releases_the_rest_and_refunds_stop_at_the_captured_amount(rt):
    merchant, session, payment = await authorized(rt, 5000)
    with pytest.raises(FlintError) as too_much:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id), amount=5001)
    assert (too_much.value.status, too_much.value.code) == (400, "amount_too_large")
    captured = await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id), amount=3000)
    assert (captured.status, captured.amount, captured.amount_authorized) == ("succeeded", 3000, 5000)
    order = await order_of(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_paid, order.amount_refundable) == ("paid", 3000, 3000)
    actor = merchant_actor(merchant.id)
    with pytest.raises(FlintError) as over:
        await refunds.issue_refund(rt, merchant.id, refunds.NewRefund(payment_id=payment.id, amount=3001), actor)
    assert over.value.code == "refund_exceeds_refundable"
    refund = await refunds.issue_refund(rt, merchant.id, refunds.NewRefund(order_id=order.id), actor)
    assert (refund.status, refund.amount) == ("succeeded", 3000)
    assert (await order_of(rt, merchant.id, order.id)).status == "refunded"


async def test_refunds_are_refused_until_captured(rt):
    merchant, session, payment = await authorized(rt)
    actor = merchant_actor(merchant.id)
    with pytest.raises(FlintError) as by_payment:
        await refunds.issue_refund(rt, merchant.id, refunds.NewRefund(payment_id=payment.id), actor)
    assert (by_payment.value.status, by_payment.value.code) == (409, "payment_not_refundable")
    with pytest.raises(FlintError) as by_order:
        await refunds.issue_refund(rt, merchant.id, refunds.NewRefund(order_id=session.order_id), actor)
    assert (by_order.value.status, by_order.value.code) == (409, "order_not_paid")


async def test_void_reopens_the_order_and_it_can_be_paid_again(rt):
    merchant, session, payment = await authorized(rt)
    voided = await capture.void_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert (voided.status, voided.canceled_at is not None, voided.failure_code) == ("canceled", True, None)
    order = await order_of(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_paid) == ("open", 0)
    assert (await events(rt, order.id))[-1] == "payment.voided"
    with pytest.raises(FlintError) as refused:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert (refused.value.status, refused.value.code) == (409, "payment_not_capturable")
    # Open again: a new session (manual again) authorizes anew, one authorization per order at a time.
    again = await manual_session(rt, merchant.id, order_id=order.id)
    second = await pay(rt, again)
    assert second.status == "authorized" and second.id != payment.id


async def test_a_second_attempt_while_an_authorization_stands_is_refused(rt):
    merchant, session, payment = await authorized(rt)
    with pytest.raises(FlintError) as refused:
        await pay(rt, session)
    assert (refused.value.status, refused.value.code) == (409, "order_authorized")
    with pytest.raises(FlintError) as no_link:
        await links.create_link(rt, merchant.id, session.order_id, expires_in=None, actor=merchant_actor(merchant.id))
    assert no_link.value.code == "order_not_open"
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT status FROM payments WHERE order_id = :o", {"o": session.order_id})
    assert [r["status"] for r in rows] == ["authorized"]


async def test_a_manual_payment_link_authorizes(rt):
    merchant, _ = await make_merchant(rt)
    order = await create_order(rt, merchant.id, new_order(1800), merchant_actor(merchant.id))
    link = await links.create_link(rt, merchant.id, order.id, expires_in=None, actor=merchant_actor(merchant.id),
                                   capture="manual")
    assert link.to_dict("")["capture"] == "manual"
    payment = await collect.confirm_payment(rt, Attempt.for_link(link), card(SUCCESS), Actor("buyer", link.id))
    assert (payment.status, payment.channel) == ("authorized", "payment_link")
    with pytest.raises(FlintError) as again:
        await collect.confirm_payment(rt, Attempt.for_link(link), card(SUCCESS), Actor("buyer", link.id))
    assert again.value.code == "order_authorized"


async def test_capture_is_validated(rt):
    merchant, _ = await make_merchant(rt)
    for bad in ("later", ""):
        with pytest.raises(FlintError) as refused:
            await checkout.create_session(rt, merchant.id, checkout.NewSession(
                mode="embedded", success_url="https://shop.example/thanks", inline_order=new_order(), capture=bad),
                merchant_actor(merchant.id))
        assert refused.value.code == "capture_invalid"


async def test_3ds_then_authorized(rt):
    merchant, _ = await make_merchant(rt)
    session = await manual_session(rt, merchant.id)
    pending = await pay(rt, session, THREE_DS)
    assert pending.status == "requires_action"
    answered = await collect.resolve_challenge(rt, merchant.id, pending.id, True, Actor("buyer", session.id))
    assert answered.status == "authorized"
    captured = await capture.capture_payment(rt, merchant.id, answered.id, merchant_actor(merchant.id))
    assert captured.status == "succeeded"


async def test_the_sweeper_voids_authorizations_past_their_ttl(rt, advance_clock):
    merchant, session, payment = await authorized(rt)
    assert await capture.expire_authorizations(rt) == 0
    advance_clock(rt.config.authorization_ttl_seconds - 60)
    assert await capture.expire_authorizations(rt) == 0
    advance_clock(120)
    assert (await sweep_once(rt))["authorizations_expired"] == 1  # the sweeper runs it
    assert await capture.expire_authorizations(rt) == 0
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT status, failure_code, canceled_at FROM payments WHERE id = :id",
                                   {"id": payment.id})
    assert (row["status"], row["failure_code"]) == ("canceled", "authorization_expired") and row["canceled_at"]
    assert (await order_of(rt, merchant.id, session.order_id)).status == "open"
    assert (await events(rt, session.order_id))[-1] == "payment.voided"
    with pytest.raises(FlintError) as late:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert late.value.code == "payment_not_capturable"


async def test_the_ttl_comes_from_the_environment():
    config = Config.from_env({"FLINT_SECRET_KEY": TEST_SECRET, "FLINT_AUTHORIZATION_TTL": "3600"})
    assert config.authorization_ttl_seconds == 3600
    assert Config.from_env({"FLINT_SECRET_KEY": TEST_SECRET}).authorization_ttl_seconds == 7 * 24 * 3600


async def test_cross_merchant_is_not_found(rt):
    merchant, session, payment = await authorized(rt)
    other, _ = await make_merchant(rt)
    for action in (capture.capture_payment, capture.void_payment):
        with pytest.raises(FlintError) as hidden:
            await action(rt, other.id, payment.id, merchant_actor(other.id))
        assert (hidden.value.status, hidden.value.code) == (404, "payment_not_found")
    assert (await order_of(rt, merchant.id, session.order_id)).status == "authorized"


class Flaky(SimulatedProcessor):
    """A processor that does not answer a capture (raises) until told to, then answers as the simulated one."""

    def __init__(self):
        self.down = True
        self.captures = 0

    async def capture(self, payment_id, processor_ref, amount, currency):
        self.captures += 1
        if self.down:
            raise ConnectionError("processor gone")
        return await super().capture(payment_id, processor_ref, amount, currency)


async def test_a_capture_whose_processor_does_not_answer_settles_later(rt, advance_clock):
    merchant, session, payment = await authorized(rt)
    flaky = Flaky()
    rt.processor = flaky
    with pytest.raises(FlintError) as unknown:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id), amount=2000)
    assert (unknown.value.status, unknown.value.code) == (503, "processor_unavailable")
    # The claim stands: nobody may void (or capture again) what may already be captured.
    with pytest.raises(FlintError) as busy:
        await capture.void_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert (busy.value.status, busy.value.code) == (409, "payment_not_voidable")
    assert await capture.redrive_claims(rt, older_than=60) == 0  # not stale yet
    advance_clock(61)
    assert await capture.redrive_claims(rt, older_than=60) == 0  # still down: stays claimed
    flaky.down = False
    advance_clock(61)
    assert await capture.redrive_claims(rt, older_than=60) == 1
    order = await order_of(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_paid) == ("paid", 2000)
    assert flaky.captures == 3


class LosesTheAnswer(SimulatedProcessor):
    """A processor that captures but whose answer never reaches Flint (the connection drops after the
    processor acted), and that remembers what it did under Flint's payment id, as a real one does."""

    def __init__(self):
        self.captured: dict[str, ChargeResult] = {}
        self.captures = 0

    async def capture(self, payment_id, processor_ref, amount, currency):
        self.captures += 1
        self.captured[payment_id] = await super().capture(payment_id, processor_ref, amount, currency)
        raise ConnectionError("connection dropped after the capture")

    async def lookup(self, payment_id, processor_ref):
        if payment_id in self.captured:
            return self.captured[payment_id]
        return await super().lookup(payment_id, processor_ref)


async def test_a_capture_whose_answer_was_lost_settles_by_look_up_not_by_capturing_again(rt, advance_clock):
    merchant, session, payment = await authorized(rt)
    lossy = LosesTheAnswer()
    rt.processor = lossy
    with pytest.raises(FlintError) as unknown:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id), amount=1500)
    assert (unknown.value.status, unknown.value.code) == (503, "processor_unavailable")
    assert (await order_of(rt, merchant.id, session.order_id)).status == "authorized"
    advance_clock(61)
    assert await capture.redrive_claims(rt, older_than=60) == 1
    order = await order_of(rt, merchant.id, session.order_id)
    assert (order.status, order.amount_paid) == ("paid", 1500)
    assert lossy.captures == 1  # settled by what the processor said, never captured twice
    assert (await events(rt, session.order_id))[-2:] == ["payment.captured", "order.paid"]


class Declines(SimulatedProcessor):
    def __init__(self, code: str):
        self.code = code

    async def capture(self, payment_id, processor_ref, amount, currency):
        return ChargeResult(FAILED, processor_ref, self.code)


async def test_a_declined_capture_leaves_the_authorization_standing(rt):
    merchant, session, payment = await authorized(rt)
    rt.processor = Declines("processing_error")
    with pytest.raises(FlintError) as declined:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert (declined.value.status, declined.value.code) == (402, "capture_failed")
    rt.processor = SimulatedProcessor()
    assert (await capture.void_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))).status == "canceled"


async def test_an_authorization_the_processor_expired_is_canceled_on_capture(rt):
    merchant, session, payment = await authorized(rt)
    rt.processor = Declines("authorization_expired")
    with pytest.raises(FlintError) as gone:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert (gone.value.status, gone.value.code) == (409, "payment_not_capturable")
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT status, failure_code FROM payments WHERE id = :id", {"id": payment.id})
    assert (row["status"], row["failure_code"]) == ("canceled", "authorization_expired")
    assert (await order_of(rt, merchant.id, session.order_id)).status == "open"


# -- the receipt waits for the capture ------------------------------------------------------------------------

@pytest.fixture
async def mail_rt(db_url: str):
    runtime = await Runtime.start(Config(
        database_url=db_url, secret_keys=(TEST_SECRET,), env="development", public_url="http://127.0.0.1:9",
        payment_lease_seconds=60, smtp_url="smtp://127.0.0.1:9", mail_from="Flint <mail@flint.example>"))
    await migrate(runtime.db)
    yield runtime
    await runtime.stop()


async def test_the_receipt_goes_out_on_capture_not_on_authorization(mail_rt):
    rt = mail_rt
    merchant, _ = await make_merchant(rt)
    await merchants.update_merchant(rt, merchant.id, receipts=True)
    session = await manual_session(rt, merchant.id, 2500, email="ada@example.com")
    payment = await pay(rt, session)

    async def outbox():
        async with rt.db.read() as conn:
            return await conn.fetch_all("SELECT kind, cause FROM emails WHERE merchant_id = :m", {"m": merchant.id})

    assert await outbox() == []
    await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id), amount=2000)
    assert [(r["kind"], r["cause"]) for r in await outbox()] == [("receipt", f"receipt:{session.order_id}")]


async def test_the_simulated_processor_lets_an_authorization_lapse_and_capture_then_cancels_it(rt):
    # Test card 4000 0000 0000 0440: the processor authorizes it and lets the authorization lapse at once.
    merchant, session, payment = await authorized(rt, 2500, "4000000000000440")
    assert payment.status == "authorized"
    with pytest.raises(FlintError) as gone:
        await capture.capture_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert (gone.value.status, gone.value.code) == (409, "payment_not_capturable")
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT status, failure_code FROM payments WHERE id = :id", {"id": payment.id})
    assert (row["status"], row["failure_code"]) == ("canceled", "authorization_expired")
    assert (await order_of(rt, merchant.id, session.order_id)).status == "open"


async def test_a_void_keeps_the_processors_answer(rt):
    merchant, _, payment = await authorized(rt)
    voided = await capture.void_payment(rt, merchant.id, payment.id, merchant_actor(merchant.id))
    assert voided.processor_ref != payment.processor_ref  # the simulated processor's void ref (its state)
    looked = await rt.processor.lookup(payment.id, voided.processor_ref)
    assert looked.status == "canceled"


class Unknowing(SimulatedProcessor):
    async def charge(self, request):
        return ChargeResult(UNKNOWN, None)


async def test_a_charge_the_processor_cannot_tell_is_never_a_decline(rt):
    merchant, _ = await make_merchant(rt)
    session = await manual_session(rt, merchant.id)
    rt.processor = Unknowing()
    with pytest.raises(FlintError) as unknown:
        await pay(rt, session)
    assert (unknown.value.status, unknown.value.code) == (503, "processor_unavailable")
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT status FROM payments WHERE order_id = :o", {"o": session.order_id})
    assert row["status"] == "processing"  # settled later (lease lapse), not failed

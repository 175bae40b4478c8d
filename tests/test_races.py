"""Money invariants under real concurrency: many HTTP requests at once, spread over two
`flint serve` processes sharing one SQLite database (so the guard is proven across
processes, not just inside one event loop)."""
import asyncio
from collections import Counter
from flint.closing import service as closing

import pytest

from support.server import start_server, stop_server
from support.factories import make_order, make_session, pay_session

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


@pytest.fixture(scope="module")
def second_server(server, tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("second"), db_url=server.db_url)
    yield live
    stop_server(live)


async def _count(rt, sql, params):
    async with rt.db.read() as conn:
        return (await conn.fetch_one(sql, params))["n"]


async def test_fifty_concurrent_confirms_pay_the_order_exactly_once(server, second_server, server_rt, merchant):
    merchant_obj, _ = merchant
    session = await make_session(server_rt, merchant_obj.id, amount=4200)
    token = (await _token(server_rt, session))
    clients = [server.async_client(token), second_server.async_client(token)]

    async def confirm(i):
        response = await clients[i % 2].post(f"/v1/checkout/sessions/{session.id}/confirm", json={"card": CARD})
        return response.status_code, response.json().get("code")

    results = await asyncio.gather(*(confirm(i) for i in range(50)))
    for client in clients:
        await client.aclose()
    outcomes = Counter(results)
    assert outcomes[(200, None)] == 1, outcomes
    assert set(outcomes) <= {(200, None), (409, "payment_in_progress"), (409, "order_already_paid")}, outcomes
    params = {"order_id": session.order_id}
    assert await _count(server_rt, "SELECT COUNT(*) AS n FROM payments WHERE order_id = :order_id AND status = 'succeeded'", params) == 1
    assert await _count(server_rt, "SELECT COUNT(*) AS n FROM events WHERE order_id = :order_id AND type = 'order.paid'", params) == 1
    async with server_rt.db.read() as conn:
        order = await conn.fetch_one("SELECT status, amount_paid FROM orders WHERE id = :order_id", params)
    assert (order["status"], order["amount_paid"]) == ("paid", 4200)


async def test_concurrent_confirms_inside_one_process(rt):
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    results = await asyncio.gather(*(pay_session(rt, session) for _ in range(50)), return_exceptions=True)
    succeeded = [r for r in results if not isinstance(r, Exception) and r.status == "succeeded"]
    refused = {getattr(r, "code", None) for r in results if isinstance(r, Exception)}
    assert len(succeeded) == 1
    assert refused <= {"payment_in_progress", "order_already_paid"}


async def test_twenty_concurrent_partial_refunds_never_exceed_the_paid_amount(server, second_server, server_rt, merchant):
    merchant_obj, key = merchant
    session = await make_session(server_rt, merchant_obj.id, amount=1000)
    await pay_session(server_rt, session)
    clients = [server.async_client(key), second_server.async_client(key)]

    async def refund(i):
        response = await clients[i % 2].post("/v1/refunds", json={"order": session.order_id, "amount": 150})
        return response.status_code, response.json()

    results = await asyncio.gather(*(refund(i) for i in range(20)))
    for client in clients:
        await client.aclose()
    ok = [body for status, body in results if status == 200]
    refused = [body["code"] for status, body in results if status != 200]
    assert sum(r["amount"] for r in ok if r["status"] == "succeeded") <= 1000
    assert len(ok) == 6  # 6 x 150 = 900; a 7th would exceed 1000
    assert set(refused) <= {"refund_exceeds_refundable"}
    async with server_rt.db.read() as conn:
        total = (await conn.fetch_one(
            "SELECT COALESCE(SUM(amount), 0) AS n FROM refunds WHERE order_id = :o AND status = 'succeeded'",
            {"o": session.order_id}))["n"]
        order = await conn.fetch_one("SELECT status, amount_refunded FROM orders WHERE id = :o", {"o": session.order_id})
    assert total == 900 == order["amount_refunded"]
    assert order["status"] == "partially_refunded"


async def _token(rt, session):
    from flint.checkout.service import client_token

    return client_token(rt, session)


async def test_racing_full_refunds_refund_once(rt):
    from flint.actors import Actor
    from flint.refunds import service as refunds
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)
    order = await make_order(rt, merchant.id, amount=700)
    session = await make_session(rt, merchant.id, order_id=order.id)
    await pay_session(rt, session)
    attempts = [refunds.issue_refund(rt, merchant.id, refunds.NewRefund(order_id=order.id), Actor("merchant", merchant.id))
                for _ in range(10)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    done = [r for r in results if not isinstance(r, Exception)]
    assert [r.amount for r in done] == [700]
    assert {getattr(r, "code", None) for r in results if isinstance(r, Exception)} == {"charge_already_refunded"}


# -- in-process races on every backend: on PostgreSQL these are real concurrent transactions over the
# pool (READ COMMITTED), so each passes only because the transaction locks what it decides on. Losers
# must get the same domain codes as on SQLite, never the `concurrent_update` safety net.

def _codes(results) -> set:
    return {getattr(r, "code", type(r).__name__) for r in results if isinstance(r, Exception)}


def _attempt(session, number: str = "4242424242424242"):
    """A buyer's confirm through ``session``: (attempt, card, actor)."""
    from flint.actors import Actor
    from flint.collect import service as collect
    from support.factories import card

    attempt = collect.Attempt(merchant_id=session.merchant_id, order_id=session.order_id,
                               channel=session.mode, checkout_session_id=session.id)
    return attempt, card(number), Actor("buyer", session.id)


async def _pay(rt, session, number: str = "4242424242424242"):
    from flint.collect import service as collect

    return await collect.confirm_payment(rt, *_attempt(session, number))


async def _rows(rt, sql, params=None):
    async with rt.db.read() as conn:
        return await conn.fetch_all(sql, params or {})


async def test_racing_partial_refunds_stop_at_the_paid_amount_with_the_right_codes(rt):
    from flint.actors import Actor
    from flint.refunds import service as refunds
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)
    by = Actor("merchant", merchant.id)
    exact = await make_session(rt, merchant.id, amount=1000)
    over = await make_session(rt, merchant.id, amount=1000)
    exact_payment = await pay_session(rt, exact)
    await pay_session(rt, over)
    # 8 x 250 by payment fill 1000 exactly; 3 x 400 by order leave 200 the third cannot take.
    exact_refunds = [refunds.issue_refund(rt, merchant.id, refunds.NewRefund(payment_id=exact_payment.id, amount=250), by)
                     for _ in range(8)]
    over_refunds = [refunds.issue_refund(rt, merchant.id, refunds.NewRefund(order_id=over.order_id, amount=400), by)
                    for _ in range(3)]
    results = await asyncio.gather(*exact_refunds, *over_refunds, return_exceptions=True)
    exact_results, over_results = results[:8], results[8:]
    assert sorted(r.amount for r in exact_results if not isinstance(r, Exception)) == [250] * 4
    # Every loser saw the winners' reservations: nothing left, not "more than is left".
    assert _codes(exact_results) == {"charge_already_refunded"}
    assert sorted(r.amount for r in over_results if not isinstance(r, Exception)) == [400, 400]
    [refused] = [r for r in over_results if isinstance(r, Exception)]
    assert (refused.code, refused.extra) == ("refund_exceeds_refundable", {"amount_refundable": 200})
    for session, refunded, status in ((exact, 1000, "refunded"), (over, 800, "partially_refunded")):
        [payment] = await _rows(rt, "SELECT amount_refunded, amount_refund_pending FROM payments "
                                    "WHERE order_id = :o AND status = 'succeeded'", {"o": session.order_id})
        assert (payment["amount_refunded"], payment["amount_refund_pending"]) == (refunded, 0)
        [order] = await _rows(rt, "SELECT status, amount_refunded FROM orders WHERE id = :o", {"o": session.order_id})
        assert (order["status"], order["amount_refunded"]) == (status, refunded)


async def test_confirms_through_a_session_and_a_link_of_one_order_pay_it_once(rt):
    from flint.actors import Actor
    from flint.links import service as links
    from flint.collect import service as collect
    from support.factories import card, make_merchant

    merchant, _ = await make_merchant(rt)

    async def race():
        session = await make_session(rt, merchant.id, amount=900)
        link = await links.create_link(rt, merchant.id, session.order_id, expires_in=None,
                                       actor=Actor("merchant", merchant.id))
        by_link = collect.Attempt(merchant_id=merchant.id, order_id=session.order_id, channel="payment_link",
                                   payment_link_id=link.id)
        doors = [_pay(rt, session) for _ in range(4)]
        doors += [collect.confirm_payment(rt, by_link, card(), Actor("buyer", link.id)) for _ in range(4)]
        return session, await asyncio.gather(*doors, return_exceptions=True)

    for session, results in await asyncio.gather(*(race() for _ in range(5))):
        assert [r.status for r in results if not isinstance(r, Exception)] == ["succeeded"]
        assert _codes(results) <= {"payment_in_progress", "order_already_paid"}, _codes(results)
        [order] = await _rows(rt, "SELECT status FROM orders WHERE id = :o", {"o": session.order_id})
        [cs] = await _rows(rt, "SELECT status FROM checkout_sessions WHERE id = :s", {"s": session.id})
        assert (order["status"], cs["status"]) == ("paid", "complete")


async def test_a_cancel_racing_confirms_either_cancels_an_unpaid_order_or_loses(rt):
    from flint.actors import Actor
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)

    async def race():
        session = await make_session(rt, merchant.id)
        cancel = closing.cancel_order(rt, merchant.id, session.order_id, Actor("merchant", merchant.id))
        results = await asyncio.gather(cancel, *(_pay(rt, session) for _ in range(3)), return_exceptions=True)
        return session, results[0], results[1:]

    for session, canceled, confirms in await asyncio.gather(*(race() for _ in range(10))):
        [order] = await _rows(rt, "SELECT status FROM orders WHERE id = :o", {"o": session.order_id})
        paid = [p for p in confirms if not isinstance(p, Exception)]
        events = Counter(e["type"] for e in await _rows(rt, "SELECT type FROM events WHERE order_id = :o",
                                                         {"o": session.order_id}))
        if isinstance(canceled, Exception):
            assert canceled.code in {"payment_in_progress", "order_not_open"}, canceled.code
            assert [p.status for p in paid] == ["succeeded"] and order["status"] == "paid"
            assert _codes(confirms) <= {"payment_in_progress", "order_already_paid"}
        else:
            # The cancel won: the order it answers with is the one stored, and nothing paid it.
            assert canceled.status == order["status"] == "canceled"
            assert paid == [] and _codes(confirms) == {"order_canceled"}
            assert events["checkout.session.expired"] == 1
        assert events["order.canceled"] + events["order.paid"] == 1, events


async def test_expiring_a_session_racing_confirms_closes_it_exactly_one_way(rt):
    from flint.actors import Actor
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)

    async def race():
        session = await make_session(rt, merchant.id, recovery=True)
        expire = closing.expire_session(rt, merchant.id, session.id, Actor("merchant", merchant.id))
        results = await asyncio.gather(expire, *(_pay(rt, session) for _ in range(3)), return_exceptions=True)
        return session, results[0], results[1:]

    for session, expired, confirms in await asyncio.gather(*(race() for _ in range(10))):
        [cs] = await _rows(rt, "SELECT status, recovery_payment_link_id FROM checkout_sessions WHERE id = :s",
                           {"s": session.id})
        [order] = await _rows(rt, "SELECT status FROM orders WHERE id = :o", {"o": session.order_id})
        paid = [p for p in confirms if not isinstance(p, Exception)]
        if isinstance(expired, Exception):
            assert expired.code in {"payment_in_progress", "session_not_open"}, expired.code
            assert [p.status for p in paid] == ["succeeded"]
            assert (cs["status"], order["status"], cs["recovery_payment_link_id"]) == ("complete", "paid", None)
            assert _codes(confirms) <= {"payment_in_progress", "order_already_paid"}
        else:
            # Expired means expired: not paid through it, and its one recovery link is for an open order.
            assert expired.status == cs["status"] == "expired" and order["status"] == "open"
            assert paid == [] and _codes(confirms) == {"session_expired"}
            assert cs["recovery_payment_link_id"] is not None


async def test_a_3ds_answer_racing_a_new_attempt_pays_the_order_once(rt):
    from flint.actors import Actor
    from flint.collect import service as collect
    from flint.processors import THREE_D_SECURE
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)

    async def race():
        session = await make_session(rt, merchant.id)
        challenged = await _pay(rt, session, THREE_D_SECURE)
        assert challenged.status == "requires_action"
        answers = [collect.resolve_challenge(rt, merchant.id, challenged.id, True, Actor("buyer", session.id))
                   for _ in range(3)]
        results = await asyncio.gather(*answers, _pay(rt, session), return_exceptions=True)
        return session, results

    for session, results in await asyncio.gather(*(race() for _ in range(8))):
        assert [r.status for r in results if not isinstance(r, Exception)] == ["succeeded"]
        assert _codes(results) <= {"payment_not_awaiting_action", "payment_in_progress", "order_already_paid"}
        succeeded = await _rows(rt, "SELECT id FROM payments WHERE order_id = :o AND status = 'succeeded'",
                                {"o": session.order_id})
        assert len(succeeded) == 1


async def test_concurrent_sweepers_free_each_lapsed_attempt_once(rt, advance_clock):
    from flint.collect import service as collect
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)
    sessions = [await make_session(rt, merchant.id) for _ in range(15)]
    stale = []
    for session in sessions:  # step 1 of a confirm whose process then died
        stale.append((await collect.begin_attempt(rt, *_attempt(session)))[0])
    advance_clock(rt.config.payment_lease_seconds + 1)  # every one of their leases lapses
    freed = await asyncio.gather(*(collect.recover_lapsed_attempts(rt) for _ in range(4)))
    assert sum(freed) == len(sessions), freed  # each order freed by exactly one sweeper
    failed = Counter(e["order_id"] for e in await _rows(rt, "SELECT order_id FROM events WHERE type = 'payment.failed'"))
    assert failed == Counter(s.order_id for s in sessions)
    rows = await _rows(rt, "SELECT status, failure_code FROM payments")
    assert {(r["status"], r["failure_code"]) for r in rows} == {("failed", "payment_attempt_expired")}
    assert await collect.recover_lapsed_attempts(rt) == 0


async def test_concurrent_sweepers_redrive_each_stuck_refund_once(rt):
    from flint import clock
    from flint.actors import SYSTEM
    from flint.payments import store as payment_store
    from flint.refunds import service as refunds
    from flint.refunds import store as refund_store
    from flint.refunds.models import Refund
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)
    stuck = []
    for i in range(10):
        session = await make_session(rt, merchant.id, amount=500)
        payment = await pay_session(rt, session)
        async with rt.db.transaction() as conn:  # a process reserved the refund and died
            assert await payment_store.reserve_refund(conn, payment.id, 500, clock.now_iso())
            refund = Refund(id=f"re_stuck{i}", merchant_id=merchant.id, payment_id=payment.id, order_id=session.order_id,
                            amount=500, currency="usd", status="pending", reason=None, failure_code=None,
                            processor_ref=None, created_at="2020-01-01T00:00:00.000000Z",
                            updated_at="2020-01-01T00:00:00.000000Z")
            await refund_store.insert_refund(conn, refund)
        stuck.append(refund)
    redriven = await asyncio.gather(*(refunds.redrive_stale(rt, SYSTEM, older_than=60) for _ in range(4)))
    assert sum(redriven) == len(stuck), redriven  # each asked of the processor by one sweeper only
    rows = await _rows(rt, "SELECT status FROM refunds")
    assert [r["status"] for r in rows] == ["succeeded"] * len(stuck)
    succeeded = Counter(e["order_id"] for e in await _rows(rt, "SELECT order_id FROM events WHERE type = 'refund.succeeded'"))
    assert succeeded == Counter(r.order_id for r in stuck)
    orders = await _rows(rt, "SELECT status, amount_refunded FROM orders")
    assert {(o["status"], o["amount_refunded"]) for o in orders} == {("refunded", 500)}


async def test_concurrent_sweepers_give_each_dropped_off_session_one_recovery_link(rt):
    from flint.actors import SYSTEM
    from flint.links import recovery
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)
    sessions = [await make_session(rt, merchant.id, recovery=True) for _ in range(30)]
    past = "2020-01-01T00:00:00.000000Z"
    async with rt.db.transaction() as conn:
        for n, session in enumerate(sessions):
            # Every session has dropped off; a third have also run out of time (expiry makes the link too).
            await conn.execute(
                "UPDATE checkout_sessions SET abandon_at = :past, buyer_left_at = :past"
                + (", expires_at = :past" if n % 3 == 0 else "") + " WHERE id = :id",
                {"id": session.id, "past": past})
    sweeps = [recovery.sweep_dropped_off(rt, SYSTEM) for _ in range(3)]
    sweeps += [closing.sweep_expired(rt, SYSTEM) for _ in range(2)]
    done = await asyncio.gather(*sweeps)
    # A sweeper skips what another holds at that moment; the next sweep takes the rest.
    abandoned = sum(done[:3]) + await recovery.sweep_dropped_off(rt, SYSTEM)
    expired = sum(done[3:]) + await closing.sweep_expired(rt, SYSTEM)
    assert expired == 10 and 20 <= abandoned <= 30, done
    links = await _rows(rt, "SELECT checkout_session_id FROM payment_links WHERE source = 'recovery'")
    assert Counter(link["checkout_session_id"] for link in links) == Counter(s.id for s in sessions)  # one each
    events = Counter(e["type"] for e in await _rows(rt, "SELECT type FROM events"))
    assert (events["payment_link.created"], events["checkout.session.abandoned"], events["checkout.session.expired"]) \
        == (30, abandoned, 10)
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 0 and await closing.sweep_expired(rt, SYSTEM) == 0


async def test_a_widget_fallback_waiting_behind_a_payment_does_not_deadlock_it(rt):
    from flint import clock
    from flint.actors import Actor
    from flint.checkout import service as checkout
    from flint.checkout import store as session_store
    from flint.orders import store as order_store
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, recovery=True)
    # A payment's first step, held open: the order's lock, then the session's activity. The fallback
    # (a session update, then an event on the order) arrives in between. Were it to take the session
    # before the order, each would wait for the other (PostgreSQL: a deadlock, a 409 for one of them).
    async with rt.db.transaction() as conn:
        assert await order_store.select_order(conn, merchant.id, session.order_id, for_update=True)
        fallback = asyncio.ensure_future(checkout.record_fallback(rt, session, "timeout", Actor("buyer", session.id)))
        await asyncio.sleep(0.2)  # the fallback is now waiting on the order
        assert not fallback.done()
        await session_store.note_buyer_activity(conn, session.id, clock.later_iso(900))
    marked = await fallback
    assert marked.fallback_reason == "timeout"
    [event] = await _rows(rt, "SELECT type FROM events WHERE type = 'checkout.session.fallback_used'")
    assert event["type"] == "checkout.session.fallback_used"


async def test_a_refund_settling_beside_a_new_refund_does_not_deadlock(rt):
    from flint import clock
    from flint.actors import SYSTEM
    from flint.orders import store as order_store
    from flint.payments import store as payment_store
    from flint.refunds import service as refunds
    from flint.refunds import store as refund_store
    from flint.refunds.models import Refund
    from support.factories import make_merchant

    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, amount=1000)
    payment = await pay_session(rt, session)
    async with rt.db.transaction() as conn:  # a refund of 600 whose process died after reserving it
        assert await payment_store.reserve_refund(conn, payment.id, 600, clock.now_iso())
        await refund_store.insert_refund(conn, Refund(
            id="re_settling", merchant_id=merchant.id, payment_id=payment.id, order_id=session.order_id, amount=600,
            currency="usd", status="pending", reason=None, failure_code=None, processor_ref=None,
            created_at="2020-01-01T00:00:00.000000Z", updated_at="2020-01-01T00:00:00.000000Z"))
    # A new refund's transaction, held open (the order's lock, then the payment's) while the sweeper
    # settles the old one (payment and order rows): both take the order first, or they could deadlock.
    async with rt.db.transaction() as conn:
        assert await order_store.select_order(conn, merchant.id, session.order_id, for_update=True)
        redrive = asyncio.ensure_future(refunds.redrive_stale(rt, SYSTEM, older_than=60))
        await asyncio.sleep(0.2)  # the settle is now waiting on the order
        assert not redrive.done()
        held = await payment_store.select_payment(conn, merchant.id, payment.id, for_update=True)
        assert held.amount_refundable == 400
        assert await payment_store.reserve_refund(conn, payment.id, 400, clock.now_iso())
    assert await redrive == 1
    [row] = await _rows(rt, "SELECT amount_refunded, amount_refund_pending FROM payments WHERE id = :p", {"p": payment.id})
    assert (row["amount_refunded"], row["amount_refund_pending"]) == (600, 400)

"""Authorizations under real concurrency (docs/api.md 17), on SQLite and PostgreSQL.

Services across two runtimes on one database (``rt``, ``second_rt``: two pools, as two processes have):
capture vs void vs the sweeper's expiry, exactly one wins and the others are refused 409; two captures;
refund vs capture. Then over HTTP, two ``flint serve`` processes on one database: capture vs void, the same
capture twice with and without one Idempotency-Key (money moves once), and a second checkout attempt while
an authorization stands."""
from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from flint.actors import Actor
from flint.collect import capture
from flint.errors import FlintError
from flint.refunds import service as refunds
from support.factories import make_merchant
from support.server import start_server, stop_server
from tests.capture.test_service import manual_session, pay
from tests.conftest import BACKENDS, serve_on

ROUNDS = 10
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


async def _outcome(call):
    try:
        result = await call
    except FlintError as refused:
        return (refused.status, refused.code)
    return ("ok", getattr(result, "status", result))


async def _state(rt, payment_id, order_id):
    async with rt.db.read() as conn:
        payment = await conn.fetch_one("SELECT status, amount FROM payments WHERE id = :id", {"id": payment_id})
        order = await conn.fetch_one("SELECT status, amount_paid FROM orders WHERE id = :id", {"id": order_id})
        kinds = await conn.fetch_all(
            "SELECT type FROM events WHERE order_id = :o AND type IN ('payment.captured', 'payment.voided')",
            {"o": order_id})
    return payment, order, [k["type"] for k in kinds]


async def test_capture_void_and_expiry_race_and_exactly_one_wins(rt, second_rt, advance_clock):
    merchant, _ = await make_merchant(rt)
    actor = Actor("merchant", merchant.id)
    winners = Counter()
    for i in range(ROUNDS):
        session = await manual_session(rt, merchant.id, 3000)
        payment = await pay(rt, session)
        advance_clock(rt.config.authorization_ttl_seconds + 1)  # due for expiry too
        one, two = (rt, second_rt) if i % 2 else (second_rt, rt)
        cap, void, swept = await asyncio.gather(
            _outcome(capture.capture_payment(one, merchant.id, payment.id, actor)),
            _outcome(capture.void_payment(two, merchant.id, payment.id, actor)),
            capture.expire_authorizations(one if i % 3 else two))
        row, order, kinds = await _state(rt, payment.id, session.order_id)
        won = [name for name, ok in (("capture", cap == ("ok", "succeeded")), ("void", void == ("ok", "canceled")))
               if ok]
        expired = row["status"] == "canceled" and "void" not in won
        assert len(won) + expired == 1, (cap, void, swept, dict(row))
        for name, answer in (("capture", cap), ("void", void)):
            if name not in won:
                assert answer[0] == 409, answer
        assert len(kinds) == 1
        if "capture" in won:
            assert (row["status"], order["status"], order["amount_paid"]) == ("succeeded", "paid", 3000)
        else:
            assert (row["status"], order["status"], order["amount_paid"]) == ("canceled", "open", 0)
        winners[won[0] if won else "expiry"] += 1
    assert sum(winners.values()) == ROUNDS


async def test_two_captures_at_once_take_the_money_once(rt, second_rt):
    merchant, _ = await make_merchant(rt)
    actor = Actor("merchant", merchant.id)
    for _ in range(ROUNDS):
        session = await manual_session(rt, merchant.id, 4000)
        payment = await pay(rt, session)
        answers = await asyncio.gather(
            _outcome(capture.capture_payment(rt, merchant.id, payment.id, actor, amount=1500)),
            _outcome(capture.capture_payment(second_rt, merchant.id, payment.id, actor, amount=2500)))
        assert sorted(a[0] == "ok" for a in answers) == [False, True], answers
        assert [a for a in answers if a[0] != "ok"][0] == (409, "payment_not_capturable")
        row, order, kinds = await _state(rt, payment.id, session.order_id)
        assert kinds == ["payment.captured"] and row["amount"] in (1500, 2500) and order["amount_paid"] == row["amount"]


async def test_refund_racing_capture_never_refunds_more_than_was_captured(rt, second_rt):
    merchant, _ = await make_merchant(rt)
    actor = Actor("merchant", merchant.id)
    for i in range(ROUNDS):
        session = await manual_session(rt, merchant.id, 5000)
        payment = await pay(rt, session)
        refund_call = refunds.issue_refund(second_rt, merchant.id, refunds.NewRefund(payment_id=payment.id), actor)
        captured, refunded = await asyncio.gather(
            _outcome(capture.capture_payment(rt, merchant.id, payment.id, actor, amount=2000)), _outcome(refund_call))
        assert captured == ("ok", "succeeded")
        assert refunded in (("ok", "succeeded"), (409, "payment_not_refundable")), refunded
        async with rt.db.read() as conn:
            total = (await conn.fetch_one(
                "SELECT COALESCE(SUM(amount), 0) AS n FROM refunds WHERE payment_id = :p AND status = 'succeeded'",
                {"p": payment.id}))["n"]
        assert total == (2000 if refunded[0] == "ok" else 0)


# -- over HTTP, two processes ----------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    yield from serve_on(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def second_server(server, tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("second"), db_url=server.db_url)
    yield live
    stop_server(live)


async def _authorized_over_http(server, key, amount=2600):
    async with server.async_client(key) as owner:
        session = (await owner.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "line_items": [{"name": "Tent", "quantity": 1, "unit_amount": amount}]},
            "mode": "embedded", "success_url": "https://shop.example/thanks", "capture": "manual"})).json()
    assert session["capture"] == "manual"
    async with server.async_client(session["client_token"]) as buyer:
        paid = await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})
    assert paid.status_code == 200 and paid.json()["status"] == "authorized", paid.text
    return session, paid.json()


async def test_capture_and_void_over_two_processes(server, second_server, server_rt, merchant):
    _, key = merchant
    clients = [server.async_client(key), second_server.async_client(key)]
    try:
        for i in range(ROUNDS):
            session, payment = await _authorized_over_http(server, key)
            a, b = clients[i % 2], clients[(i + 1) % 2]
            cap, void = await asyncio.gather(a.post(f"/v1/payments/{payment['id']}/capture"),
                                             b.post(f"/v1/payments/{payment['id']}/void"))
            codes = sorted([cap.status_code, void.status_code])
            assert codes == [200, 409], (cap.text, void.text)
            loser = cap if cap.status_code == 409 else void
            assert loser.json()["code"] in ("payment_not_capturable", "payment_not_voidable")
            order = (await a.get(f"/v1/orders/{session['order_id']}")).json()
            assert order["status"] == ("paid" if cap.status_code == 200 else "open")
    finally:
        for client in clients:
            await client.aclose()


async def test_capture_twice_with_and_without_one_idempotency_key(server, second_server, server_rt, merchant):
    _, key = merchant
    session, payment = await _authorized_over_http(server, key, 3300)
    url = f"/v1/payments/{payment['id']}/capture"
    async with server.async_client(key) as one, second_server.async_client(key) as two:
        first, second = await asyncio.gather(
            one.post(url, json={"amount": 3000}, headers={"Idempotency-Key": "cap-" + payment["id"]}),
            two.post(url, json={"amount": 3000}, headers={"Idempotency-Key": "cap-" + payment["id"]}))
        statuses = sorted([first.status_code, second.status_code])
        # The same key: one capture; the other request is its replay, or told the first is still running.
        assert statuses in ([200, 200], [200, 409]), (first.text, second.text)
        ok = [r for r in (first, second) if r.status_code == 200]
        assert all(r.json() == ok[0].json() for r in ok) and ok[0].json()["amount"] == 3000
        replay = await one.post(url, json={"amount": 3000}, headers={"Idempotency-Key": "cap-" + payment["id"]})
        assert replay.status_code == 200 and replay.json() == ok[0].json()
        # Without a key (or with another), a second capture is refused: the money moved once.
        again = await two.post(url)
        assert (again.status_code, again.json()["code"]) == (409, "payment_not_capturable")
    async with server_rt.db.read() as conn:
        kinds = await conn.fetch_all("SELECT type FROM events WHERE order_id = :o AND type = 'payment.captured'",
                                     {"o": session["order_id"]})
    assert len(kinds) == 1


async def test_a_second_attempt_while_an_authorization_stands_is_refused(server, second_server, server_rt, merchant):
    _, key = merchant
    async with server.async_client(key) as owner:
        session = (await owner.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "line_items": [{"name": "Kayak", "quantity": 1, "unit_amount": 9900}]},
            "mode": "embedded", "success_url": "https://shop.example/thanks", "capture": "manual"})).json()
    clients = [server.async_client(session["client_token"]), second_server.async_client(session["client_token"])]
    url = f"/v1/checkout/sessions/{session['id']}/confirm"
    answers = await asyncio.gather(*(clients[i % 2].post(url, json={"card": CARD}) for i in range(10)))
    for client in clients:
        await client.aclose()
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) == 1 and ok[0].json()["status"] == "authorized"
    assert {r.json()["code"] for r in answers if r.status_code != 200} <= {
        "payment_in_progress", "order_authorized", "session_not_open"}
    async with server_rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT status FROM payments WHERE order_id = :o", {"o": session["order_id"]})
    assert [r["status"] for r in rows] == ["authorized"]

"""Money invariants under real concurrency: many HTTP requests at once, spread over two
`flint serve` processes sharing one SQLite database (so the guard is proven across
processes, not just inside one event loop)."""
import asyncio
from collections import Counter

import pytest

from tests.conftest import start_server, stop_server
from tests.factories import make_order, make_session, pay_session

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
    from tests.factories import make_merchant

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
    from server.checkout.service import client_token

    return client_token(rt, session)


async def test_racing_full_refunds_refund_once(rt):
    from server.actors import Actor
    from server.refunds import service as refunds
    from tests.factories import make_merchant

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

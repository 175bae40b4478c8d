"""The attempt limits of docs/api.md 13 hold across processes: they are counted in the database.

The cluster of tests/scaleout/test_processes.py (two `flint serve` and a `flint worker` on one
database: a PostgreSQL schema when FLINT_TEST_POSTGRES_URL is set, and a SQLite file), here behind a
trusted proxy (127.0.0.1) so each request names its client in X-Forwarded-For, with the per-address
limit lowered. Attempts are raced over both processes, as a load balancer spreads a card tester's
requests; every check reads the shared database.
"""
from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter

import httpx
import pytest

from tests.scaleout.test_processes import CARD, _one, _session, cluster, merchant, rt  # noqa: F401 (fixtures)

DECLINE = dict(CARD, number="4000000000000002")
PER_ADDRESS = 8
MAX_FAILED = 10  # FLINT_MAX_FAILED_ATTEMPTS at its default
_hosts = itertools.count(1)


def fresh_address() -> str:
    n = next(_hosts)
    return f"198.19.{n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module", autouse=True)
def behind_a_proxy():
    """The cluster's processes inherit this environment (start_server and start_worker copy it):
    set before the module's cluster starts (autouse fixtures of a scope come first), restored after."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLINT_TRUSTED_PROXIES", "127.0.0.1")
        patch.setenv("FLINT_ATTEMPTS_PER_ADDRESS", str(PER_ADDRESS))
        patch.delenv("FLINT_MAX_FAILED_ATTEMPTS", raising=False)
        yield


async def _confirm(client: httpx.AsyncClient, session: dict, card: dict, address: str) -> httpx.Response:
    return await client.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": card},
                             headers={"Authorization": f"Bearer {session['client_token']}", "X-Forwarded-For": address})


async def _post_form(client: httpx.AsyncClient, path: str, number: str, address: str) -> httpx.Response:
    page = await client.get(path, headers={"X-Forwarded-For": address})
    token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    return await client.post(path, headers={"X-Forwarded-For": address}, data={
        "form_token": token, "card_number": number, "expiry": "12 / 34", "cvc": "123"})


async def _failed(rt, column: str, value: str) -> int:
    row = await _one(rt, f"SELECT COUNT(*) AS n FROM payments WHERE {column} = :v AND status = 'failed'", {"v": value})
    return row["n"]


async def _bursts(send, refused, size: int = 8) -> Counter:
    """Bursts of concurrent attempts alternated over the two processes, until two whole bursts were
    refused by the limit (most of a burst on one order loses the order guard to one attempt, so it
    takes several to reach the limit); the outcomes, counted."""
    outcomes: Counter = Counter()
    all_refused = 0
    for _ in range(30):
        answers = await asyncio.gather(*(send(i) for i in range(size)))
        outcomes.update(answers)
        all_refused = all_refused + 1 if all(a == refused for a in answers) else 0
        if all_refused == 2:
            return outcomes
    raise AssertionError(f"the limit never refused a whole burst: {outcomes}")


async def test_failed_attempts_per_session_hold_across_two_processes(cluster, rt, merchant):
    _, key = merchant
    clients = [s.async_client() for s in cluster.servers]
    try:
        async with cluster.a.async_client(key) as api:
            session = await _session(api, 1800)
            bystander = await _session(api, 1900)

        async def send(i: int) -> tuple[int, str]:
            answer = await _confirm(clients[i % 2], session, DECLINE, fresh_address())
            return answer.status_code, answer.json()["code"]

        outcomes = await _bursts(send, (429, "too_many_attempts"))
        expected = {(402, "card_declined"), (409, "payment_in_progress"), (429, "too_many_attempts")}
        assert set(outcomes) <= expected, outcomes
        assert outcomes[(429, "too_many_attempts")] > 0, outcomes
        assert await _failed(rt, "checkout_session_id", session["id"]) == MAX_FAILED
        # Not even the success card gets through now, on either process; nothing new reached the processor.
        for client in clients:
            refused = await _confirm(client, session, CARD, fresh_address())
            assert refused.status_code == 429 and refused.json()["code"] == "too_many_attempts", refused.text
            assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        total = await _one(rt, "SELECT COUNT(*) AS n FROM payments WHERE order_id = :o", {"o": session["order_id"]})
        assert total["n"] == MAX_FAILED
        # Another buyer's session of the same shop pays at once, on both processes' side.
        paid = await _confirm(clients[1], bystander, CARD, fresh_address())
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
    finally:
        for client in clients:
            await client.aclose()


async def test_failed_attempts_per_payment_link_hold_across_two_processes(cluster, rt, merchant):
    _, key = merchant
    async with cluster.a.async_client(key) as api:
        order = (await api.post("/v1/orders", json={
            "currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2100}]})).json()
        link = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
    path = f"/pay/{link['id']}"
    clients = [s.async_client() for s in cluster.servers]
    try:
        async def send(i: int) -> int:
            return (await _post_form(clients[i % 2], path, DECLINE["number"], fresh_address())).status_code

        outcomes = await _bursts(send, 429)
        assert set(outcomes) <= {402, 409, 429} and outcomes[429] > 0, outcomes
        assert await _failed(rt, "payment_link_id", link["id"]) == MAX_FAILED
        for client in clients:
            refused = await _post_form(client, path, CARD["number"], fresh_address())
            assert refused.status_code == 429 and "Too many payment attempts" in refused.text
        total = await _one(rt, "SELECT COUNT(*) AS n FROM payments WHERE order_id = :o", {"o": order["id"]})
        assert total["n"] == MAX_FAILED
    finally:
        for client in clients:
            await client.aclose()


async def test_attempts_per_address_hold_across_two_processes(cluster, rt, merchant):
    _, key = merchant
    attacker, buyer = fresh_address(), fresh_address()
    async with cluster.a.async_client(key) as api:
        sessions = [await _session(api, 1000 + i) for i in range(20)]
        bystander = await _session(api, 999)
    clients = [s.async_client() for s in cluster.servers]
    try:
        answers = await asyncio.gather(*(_confirm(clients[i % 2], s, CARD, attacker) for i, s in enumerate(sessions)))
        outcomes = Counter((a.status_code, a.json().get("code") or a.json()["status"]) for a in answers)
        assert outcomes == {(200, "succeeded"): PER_ADDRESS, (429, "too_many_attempts"): 20 - PER_ADDRESS}, outcomes
        paid = await _one(rt, "SELECT COUNT(*) AS n FROM payments WHERE order_id IN ({})".format(
            ", ".join(f"'{s['order_id']}'" for s in sessions)))
        assert paid["n"] == PER_ADDRESS  # the refused ones never reached the processor
        counted = await _one(rt, "SELECT COUNT(*) AS n FROM address_attempts WHERE address = :a", {"a": attacker})
        assert counted["n"] == PER_ADDRESS  # and do not count against the address
        # A legitimate buyer at another address, on another session, is not limited by the attacker.
        ok = await _confirm(clients[1], bystander, CARD, buyer)
        assert ok.status_code == 200 and ok.json()["status"] == "succeeded", ok.text
    finally:
        for client in clients:
            await client.aclose()

"""Drop-off recovery under real concurrency (issue 6), with real processes on one SQLite file.

1. The same order, two doors, one moment: a buyer's old tab confirms through the checkout session
   (JSON, ``Bearer client_token``) while the recovery link's hosted page is submitted (a plain form
   post), each request to a different ``flint serve`` process. 50 rounds, 50 orders: exactly one
   succeeded payment each time, and a clean answer for the loser.
2. Two ``flint worker`` processes sweeping the same 200 abandoned sessions: exactly 200 recovery links
   and 200 ``payment_link.created`` events, never a second link for a session, never a second order.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from flint import clock
from flint.config import Config
from flint.db.migrate import migrate
from flint.runtime import Runtime
from support import ROOT, TEST_SECRET
from support.server import start_server, stop_server
from tests.conftest import BACKENDS, serve_on
from support.factories import make_merchant, make_session

ROUNDS = 50
ABANDON_AFTER = 5
SWEPT = 200
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
FORM_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123"}
ALREADY_PAID = "This order has already been paid"
IN_PROGRESS = "A payment for this order is already in progress"


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    """These races run on every backend: two processes on one SQLite file, or on one PostgreSQL."""
    yield from serve_on(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def second_server(server, tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("second"), db_url=server.db_url)
    yield live
    stop_server(live)


async def _rows(rt, sql, params=None):
    async with rt.db.read() as conn:
        return await conn.fetch_all(sql, params or {})


def _in(ids: list[str]) -> tuple[str, dict]:
    binds = {f"i{n}": value for n, value in enumerate(ids)}
    return ", ".join(":" + key for key in binds), binds


def _form_token(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def _errors_in(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if '"level": "error"' in line or "Traceback" in line]


# -- 1. a confirm through the session and one through its recovery link, at the same moment -----------

async def _sessions_with_recovery_links(servers, key: str, server_rt, n: int) -> list[dict]:
    """n sessions made through the API with recovery on (abandon_after 5 s, the least the API takes);
    each buyer 'leaves' (the widget's beacon) and does not come back, so abandon_after later the
    servers' own sweepers make the recovery links. Returns what each round needs."""
    apis = [s.async_client(key) for s in servers]
    buyers = [s.async_client() for s in servers]
    try:
        async def create(i):
            response = await apis[i % 2].post("/v1/checkout/sessions", json={
                "order": {"currency": "usd", "line_items": [{"name": "Race", "quantity": 1, "unit_amount": 1000 + i}]},
                "mode": "embedded", "success_url": "https://shop.example/thanks",
                "recovery": {"enabled": True, "abandon_after": ABANDON_AFTER}})
            assert response.status_code == 200, response.text
            return response.json()

        sessions = await asyncio.gather(*(create(i) for i in range(n)))

        async def leave(i, session):
            response = await buyers[i % 2].post(f"/v1/checkout/sessions/{session['id']}/beacon", json={"type": "left"},
                                                headers={"Authorization": f"Bearer {session['client_token']}"})
            assert response.status_code == 200 and response.json()["recorded"] is True, response.text

        await asyncio.gather(*(leave(i, s) for i, s in enumerate(sessions)))

        # abandon_after after the beacon, within a sweep or two (both servers sweep every 0.5 s).
        marks, binds = _in([s["id"] for s in sessions])
        deadline = time.monotonic() + ABANDON_AFTER + 15
        while True:
            rows = await _rows(server_rt, f"SELECT id, recovery_payment_link_id FROM checkout_sessions WHERE id IN ({marks})"
                                          " AND recovery_payment_link_id IS NOT NULL", binds)
            if len(rows) == n or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert len(rows) == n, f"only {len(rows)} of {n} sessions got a recovery link"

        async def prepare(i, session):
            seen = (await apis[i % 2].get(f"/v1/checkout/sessions/{session['id']}")).json()
            link_id = seen["recovery"]["payment_link_id"]
            assert seen["status"] == "open" and seen["recovery"]["drop_off_reason"] == "left", seen
            page = await buyers[(i + 1) % 2].get(f"/pay/{link_id}")
            assert page.status_code == 200, page.text[:500]
            return {"session": session["id"], "order": session["order_id"], "amount": 1000 + i,
                    "token": session["client_token"], "link": link_id, "form_token": _form_token(page.text)}

        return list(await asyncio.gather(*(prepare(i, s) for i, s in enumerate(sessions))))
    finally:
        for client in apis + buyers:
            await client.aclose()


async def _after(delay: float, request):
    await asyncio.sleep(delay)
    return await request


def _judge(json_answer: httpx.Response, form_answer: httpx.Response, race: dict) -> tuple[str, str]:
    """(winner, how the loser was answered); fails the test on any unclean answer."""
    body = json_answer.json()
    if json_answer.status_code == 200:
        assert body["status"] == "succeeded" and body["checkout_session_id"] == race["session"], body
        json_side = "won"
    else:
        assert (json_answer.status_code, body.get("code")) in (
            (409, "payment_in_progress"), (409, "order_already_paid")), (json_answer.status_code, body)
        json_side = f"json {body['code']}"
    if form_answer.status_code == 303:
        assert form_answer.headers["location"] == f"/pay/{race['link']}/receipt", form_answer.headers
        form_side = "won"
    elif form_answer.status_code == 200:
        assert ALREADY_PAID in form_answer.text, form_answer.text[:2000]
        form_side = "form already_paid page (200)"
    else:
        assert form_answer.status_code == 409 and IN_PROGRESS in form_answer.text, (
            form_answer.status_code, form_answer.text[:2000])
        form_side = "form payment_in_progress page (409)"
    assert (json_side, form_side).count("won") == 1, (json_side, form_side, json_answer.text, form_answer.text[:500])
    return ("session", form_side) if json_side == "won" else ("link", json_side)


async def test_session_confirm_and_recovery_link_confirm_at_the_same_moment_pay_once(
        server, second_server, server_rt, merchant):
    _, key = merchant
    servers = [server, second_server]
    started = time.monotonic()
    races = await _sessions_with_recovery_links(servers, key, server_rt, ROUNDS)
    prepared = time.monotonic()
    # Keep-alive connections, opened by the preparation above, so both requests leave at once.
    clients = [s.async_client() for s in servers]
    browsers = [s.async_client(follow_redirects=False) for s in servers]
    winners: Counter = Counter()
    losers: Counter = Counter()
    try:
        for i, race in enumerate(races):
            # Alternate which process takes which door, and which request is sent first.
            # The hosted form does more work before its attempt (a form token to spend), so the JSON
            # confirm leaves 0-2 ms late, varied by round: the moment both arrive together falls
            # inside that range on either engine, so each door wins some rounds.
            confirm = _after((i % 3) / 1000, clients[i % 2].post(
                f"/v1/checkout/sessions/{race['session']}/confirm", json={"card": CARD},
                headers={"Authorization": f"Bearer {race['token']}"}))
            form = browsers[(i + 1) % 2].post(f"/pay/{race['link']}", data={"form_token": race["form_token"], **FORM_CARD})
            if (i // 2) % 2:
                form_answer, json_answer = await asyncio.gather(form, confirm)
            else:
                json_answer, form_answer = await asyncio.gather(confirm, form)
            winner, loser = _judge(json_answer, form_answer, race)
            race["winner"] = winner
            winners[winner] += 1
            losers[loser] += 1
        raced = time.monotonic()

        # Each order: one payment (the loser never got as far as a payment row), succeeded, through
        # the winner's door; the order paid once, in full.
        orders = [r["order"] for r in races]
        marks, binds = _in(orders)
        payments = {r["order_id"]: r for r in await _rows(server_rt, f"""
            SELECT order_id, COUNT(*) AS n, SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS ok, MAX(checkout_session_id) AS session,
                   MAX(payment_link_id) AS link, MAX(channel) AS channel, MAX(amount) AS amount
            FROM payments WHERE order_id IN ({marks}) GROUP BY order_id""", binds)}
        state = {r["id"]: r for r in await _rows(server_rt, f"""
            SELECT id, status, amount_total, amount_paid, attempt_payment_id FROM orders WHERE id IN ({marks})""", binds)}
        events = Counter((r["order_id"], r["type"]) for r in await _rows(
            server_rt, f"SELECT order_id, type FROM events WHERE order_id IN ({marks})", binds))
        for race in races:
            paid = payments[race["order"]]
            assert (paid["n"], paid["ok"]) == (1, 1), (race, paid)
            if race["winner"] == "session":
                assert (paid["session"], paid["link"], paid["channel"]) == (race["session"], None, "embedded"), paid
            else:
                assert (paid["session"], paid["link"], paid["channel"]) == (None, race["link"], "payment_link"), paid
            order = state[race["order"]]
            assert (order["status"], order["amount_paid"], order["attempt_payment_id"]) == ("paid", race["amount"], None)
            assert order["amount_total"] == race["amount"] == paid["amount"]
            for kind in ("payment.succeeded", "order.paid"):
                assert events[(race["order"], kind)] == 1, (race, kind)
            assert events[(race["order"], "payment_link.created")] == 1
        # As the merchant's API says it, for each order.
        async with server.async_client(key) as api:
            listed = await asyncio.gather(*(api.get("/v1/payments", params={"order": o}) for o in orders))
        for response in listed:
            assert response.status_code == 200
            assert [p["status"] for p in response.json()["data"]] == ["succeeded"]
    finally:
        for client in clients + browsers:
            await client.aclose()
    for live in servers:
        assert not _errors_in(live.logs()), _errors_in(live.logs())[:5]
    # Real races, not a queue: over 50 rounds each door won some.
    assert set(winners) == {"session", "link"}, winners
    print(f"\n{ROUNDS} races: prepared in {prepared - started:.2f} s, raced in {raced - prepared:.2f} s; "
          f"winners {dict(winners)}; losers answered {dict(losers)}")


# -- 2. two sweepers over the same 200 abandoned sessions -----------------------------------------------

# Runs `flint worker` (flint.cli.main) with a probe that logs, per sweep, how many drop-offs the
# worker listed (test code only, in that process only): listed but not made = taken by the other one.
_PROBE = """
import logging, sys
from flint.checkout import store
from flint.db import migrate as migrations
_list = store.select_dropped_off_ids
async def _probed(*args, **kwargs):
    ids = await _list(*args, **kwargs)
    if ids:
        logging.getLogger("flint.test_probe").info("listed", extra={"listed": len(ids)})
    return ids
store.select_dropped_off_ids = _probed
_migrate = migrations.migrate
async def _migrated(*args, **kwargs):
    done = await _migrate(*args, **kwargs)
    logging.getLogger("flint.test_probe").info("migrated")
    return done
migrations.migrate = _migrated
from flint.cli import main
main(["worker"])
"""


class Worker:
    def __init__(self, tmp: Path, name: str, db_url: str) -> None:
        self.log_path = tmp / f"{name}.log"
        env = dict(os.environ, FLINT_DATABASE_URL=db_url, FLINT_SECRET_KEY=TEST_SECRET,
                   FLINT_PUBLIC_URL="http://127.0.0.1:9", FLINT_ENV="development", FLINT_SWEEP_INTERVAL="0.05",
                   FLINT_LOG_LEVEL="INFO")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        """The worker has migrated (so it is about to sweep), on either backend."""
        return '"migrated"' in self.logs()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def counted(self, field: str) -> int:
        total = 0
        for line in self.logs().splitlines():
            if line.startswith("{") and f'"{field}"' in line:
                total += json.loads(line).get(field, 0)
        return total


@pytest.fixture
async def quiet_db(db_url: str):
    """A migrated database (SQLite file or PostgreSQL schema) that no sweeper serves (yet), a
    Runtime on it and a merchant."""
    config = Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development", public_url="http://127.0.0.1:9")
    runtime = await Runtime.start(config)
    await migrate(runtime.db)
    merchant, _ = await make_merchant(runtime)
    yield runtime, merchant
    await runtime.stop()


async def _two_workers_sweep(tmp_path: Path, quiet_db, leave) -> dict:
    """Seeds 200 watched sessions (not due), starts two workers, lets ``leave(rt, ids)`` make the
    buyers leave, waits for the links, stops the workers and checks everything. Returns the split."""
    rt, merchant = quiet_db
    sessions = [await make_session(rt, merchant.id, amount=100 + i, recovery=True, abandon_after=900)
                for i in range(SWEPT)]
    ids = [s.id for s in sessions]
    workers = [Worker(tmp_path, f"worker-{n}", rt.config.database_url) for n in (1, 2)]
    try:
        deadline = time.monotonic() + 30
        while not all(w.ready() for w in workers):
            assert all(w.process.poll() is None for w in workers), [w.logs()[-2000:] for w in workers]
            assert time.monotonic() < deadline, "the workers did not start"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # both past migrate and sweeping every 0.05 s (nothing is due yet)
        assert await _count_links(rt) == 0
        t0 = time.monotonic()
        await leave(rt, ids)
        deadline = time.monotonic() + 30
        while await _count_links(rt) < SWEPT and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        swept_in = time.monotonic() - t0
        await asyncio.sleep(0.5)  # ten more sweeps each: nothing more may appear
    finally:
        for worker in workers:
            worker.stop()
    for worker in workers:
        assert not _errors_in(worker.logs()), _errors_in(worker.logs())[:5]

    marks, binds = _in(ids)
    links = await _rows(rt, "SELECT id, order_id, source, checkout_session_id, active FROM payment_links")
    assert len(links) == SWEPT, f"{len(links)} links for {SWEPT} abandoned sessions"
    assert {link["source"] for link in links} == {"recovery"} and {link["active"] for link in links} == {1}
    by_session = Counter(link["checkout_session_id"] for link in links)
    assert set(by_session) == set(ids) and set(by_session.values()) == {1}  # one each, none twice
    named = {r["id"]: r for r in await _rows(rt, f"""
        SELECT id, order_id, status, recovery_payment_link_id, drop_off_reason, abandon_at
        FROM checkout_sessions WHERE id IN ({marks})""", binds)}
    for link in links:
        session = named[link["checkout_session_id"]]
        assert session["recovery_payment_link_id"] == link["id"] and session["order_id"] == link["order_id"]
        assert (session["status"], session["drop_off_reason"], session["abandon_at"]) == ("open", "left", None)
    events = await _rows(rt, "SELECT type, order_id, data FROM events WHERE type IN "
                             "('payment_link.created', 'checkout.session.abandoned')")
    created = [json.loads(e["data"])["object"] for e in events if e["type"] == "payment_link.created"]
    abandoned = [json.loads(e["data"])["object"] for e in events if e["type"] == "checkout.session.abandoned"]
    assert len(created) == SWEPT and {o["id"] for o in created} == {link["id"] for link in links}
    assert len(abandoned) == SWEPT and {o["id"] for o in abandoned} == set(ids)
    assert {o["recovery"]["payment_link_id"] for o in abandoned} == {link["id"] for link in links}
    orders = await _rows(rt, "SELECT COUNT(*) AS n FROM orders WHERE merchant_id = :m", {"m": merchant.id})
    assert orders[0]["n"] == SWEPT  # never a second order
    made = [w.counted("dropoffs_recovered") for w in workers]
    listed = [w.counted("listed") for w in workers]
    assert sum(made) == SWEPT, made  # the workers' own accounts agree with the database
    return {"made": made, "listed": listed, "swept_in_s": round(swept_in, 2)}


async def _count_links(rt) -> int:
    return (await _rows(rt, "SELECT COUNT(*) AS n FROM payment_links"))[0]["n"]


async def _gone(conn, session_id: str) -> int:
    """What the beacon leaves behind once abandon_after has passed without the buyer coming back:
    buyer_left_at set, abandon_at (left + abandon_after) reached. The session is due for drop-off."""
    now = clock.now()
    return await conn.execute(
        """UPDATE checkout_sessions SET buyer_left_at = :left, abandon_at = :due, updated_at = :due
           WHERE id = :id AND status = 'open' AND abandon_at IS NOT NULL""",
        {"id": session_id, "left": clock.iso(now - timedelta(seconds=900)), "due": clock.iso(now)})


async def test_two_sweepers_over_200_sessions_abandoned_at_once_make_200_links(tmp_path, quiet_db):
    async def leave_at_once(rt, ids):
        # All 200 become due in one transaction: both workers then list the same 200.
        async with rt.db.transaction() as conn:
            for session_id in ids:
                assert await _gone(conn, session_id) == 1

    split = await _two_workers_sweep(tmp_path, quiet_db, leave_at_once)
    # On SQLite (one writer) whichever worker's transaction comes first often makes all 200; on
    # PostgreSQL the workers split them. How they split depends on timing, so it is reported, not
    # asserted; the counts checked in _two_workers_sweep are the guarantee.
    print(f"\nat once: links made per worker {split['made']}, drop-offs listed per worker {split['listed']}, "
          f"all 200 in {split['swept_in_s']} s")
    assert sum(split["made"]) == SWEPT, split


async def test_two_sweepers_over_200_sessions_abandoned_one_by_one_both_make_links(tmp_path, quiet_db):
    async def leave_one_by_one(rt, ids):
        # As drop-offs come due in a busy shop: one transaction each, over ~2 s.
        for n, session_id in enumerate(ids):
            async with rt.db.transaction() as conn:
                assert await _gone(conn, session_id) == 1
            if n % 10 == 9:
                await asyncio.sleep(0.1)

    split = await _two_workers_sweep(tmp_path, quiet_db, leave_one_by_one)
    print(f"\none by one: links made per worker {split['made']}, drop-offs listed per worker {split['listed']}, "
          f"all 200 in {split['swept_in_s']} s")
    assert all(made > 0 for made in split["made"]), split  # both really swept, side by side

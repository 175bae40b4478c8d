"""Idempotency-Key against a live ``flint serve`` (docs/api.md 1):

* same key + same body within 7 days → the first response, byte for byte, with
  ``Idempotent-Replayed: true`` (error responses that were stored too);
* same key + different body → 422 ``idempotency_key_reused``;
* a request refused by validation stores nothing, so the key can be reused once fixed;
* same key while the first request still runs → 409 ``idempotency_key_in_use`` + Retry-After,
  and a real race of identical requests creates exactly one order;
* keys are scoped per merchant; ``"abc"`` (sf-string) and ``abc`` are one key;
* a record older than 7 days is not replayed.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta

import httpx
import pytest

from flint import clock
from flint.actors import Actor
from flint.idempotency import service as idempotency
from flint.collect import service as collect
from flint.processors import ChargeResult
from flint.runtime import Runtime

from support.server import LiveServer, start_server, stop_server
from support.factories import make_merchant

PROBLEM_JSON = "application/problem+json"
ORDERS = "/v1/orders"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """Overrides conftest's ``server`` for this module only: the same real ``flint serve``, but
    with the sweeper's interval at an hour (it runs once at start-up, then sleeps), so the 7-day
    expiry test exercises the request path's own expiry check instead of racing the sweeper's
    purge of old keys."""
    live = start_server(tmp_path_factory.mktemp("idempotency"), {"FLINT_SWEEP_INTERVAL": "3600"})
    yield live
    stop_server(live)


def new_key(label: str) -> str:
    return f"{label}-{uuid.uuid4()}"


def order_body(amount: int = 1500, name: str = "Mug") -> bytes:
    return json.dumps({"currency": "usd", "line_items": [{"name": name, "quantity": 1, "unit_amount": amount}]},
                      separators=(",", ":")).encode()


async def post(client: httpx.AsyncClient, path: str, key: str | None, body: bytes = b"") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(path, content=body, headers=headers)


async def order_ids(rt: Runtime, merchant_id: str) -> list[str]:
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT id FROM orders WHERE merchant_id = :m ORDER BY created_at",
                                    {"m": merchant_id})
    return [row["id"] for row in rows]


async def key_row(rt: Runtime, merchant_id: str, key: str) -> dict | None:
    async with rt.db.read() as conn:
        return await conn.fetch_one(
            "SELECT * FROM idempotency_keys WHERE scope = :scope AND idem_key = :key",
            {"scope": f"merchant:{merchant_id}", "key": key})


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


def replayed(response: httpx.Response) -> bool:
    return response.headers.get("Idempotent-Replayed") == "true"


# --------------------------------------------------------------------------- (a) replay


async def test_same_key_same_body_replays_the_first_response(server: LiveServer, server_rt: Runtime, merchant):
    me, secret = merchant
    key, body = new_key("replay"), order_body()
    async with server.async_client(secret) as client:
        first = await post(client, ORDERS, key, body)
        assert first.status_code == 200, first.text
        assert "Idempotent-Replayed" not in first.headers
        second = await post(client, ORDERS, key, body)
        third = await post(client, ORDERS, key, body)
        listed = (await client.get(ORDERS)).json()

    for again in (second, third):
        assert again.status_code == first.status_code
        assert again.content == first.content  # byte for byte
        assert again.headers["content-type"] == first.headers["content-type"]
        assert replayed(again)
        # A replay is still a new HTTP exchange: its own request id.
        assert again.headers["Request-Id"] != first.headers["Request-Id"]
    order_id = first.json()["id"]
    assert await order_ids(server_rt, me.id) == [order_id]
    assert [o["id"] for o in listed["data"]] == [order_id]
    assert len([e for e in await _events(server_rt, me.id) if e["type"] == "order.created"]) == 1


async def _events(rt: Runtime, merchant_id: str) -> list[dict]:
    async with rt.db.read() as conn:
        return await conn.fetch_all("SELECT type, order_id FROM events WHERE merchant_id = :m", {"m": merchant_id})


async def test_a_stored_error_response_is_replayed(server: LiveServer, server_rt: Runtime, merchant):
    me, secret = merchant
    key = new_key("cancel-twice")
    async with server.async_client(secret) as client:
        order = (await post(client, ORDERS, None, order_body())).json()
        assert (await post(client, f"{ORDERS}/{order['id']}/cancel", None)).json()["status"] == "canceled"
        first = await post(client, f"{ORDERS}/{order['id']}/cancel", key)
        first_body = assert_problem(first, 409, "order_not_open")
        assert not replayed(first)
        second = await post(client, f"{ORDERS}/{order['id']}/cancel", key)

    assert second.status_code == 409
    assert second.content == first.content  # the first request's request_id included
    assert second.json()["request_id"] == first_body["request_id"] != second.headers["Request-Id"]
    assert second.headers["content-type"].split(";")[0] == PROBLEM_JSON
    assert replayed(second)
    row = await key_row(server_rt, me.id, key)
    assert row is not None and row["state"] == "done" and row["response_status"] == 409


# --------------------------------------------------------------------------- (b) reuse


async def test_same_key_different_body_is_422_and_changes_nothing(server: LiveServer, server_rt: Runtime, merchant):
    me, secret = merchant
    key = new_key("reused")
    async with server.async_client(secret) as client:
        first = await post(client, ORDERS, key, order_body(1500))
        assert first.status_code == 200, first.text
        other_amount = await post(client, ORDERS, key, order_body(1600))
        other_path = await post(client, "/v1/checkout/sessions", key, json.dumps({
            "order": first.json()["id"], "mode": "hosted", "success_url": "https://shop.example/thanks"}).encode())
        again = await post(client, ORDERS, key, order_body(1500))

    assert_problem(other_amount, 422, "idempotency_key_reused")
    assert not replayed(other_amount)
    assert_problem(other_path, 422, "idempotency_key_reused")
    # The 422s did not overwrite the stored response.
    assert again.status_code == 200 and again.content == first.content and replayed(again)
    assert await order_ids(server_rt, me.id) == [first.json()["id"]]
    assert [e["type"] for e in await _events(server_rt, me.id)] == ["order.created"]


# --------------------------------------------------------------------------- (c) 400 stores nothing


async def test_a_validation_error_stores_nothing(server: LiveServer, server_rt: Runtime, merchant):
    me, secret = merchant
    key = new_key("fix-and-retry")
    bad = json.dumps({"line_items": [{"name": "Mug", "quantity": 1, "unit_amount": 1500}]}).encode()
    async with server.async_client(secret) as client:
        refused = await post(client, ORDERS, key, bad)
        assert_problem(refused, 400, "parameter_missing")
        assert refused.json()["param"] == "currency"
        assert await key_row(server_rt, me.id, key) is None
        assert await order_ids(server_rt, me.id) == []

        fixed = await post(client, ORDERS, key, order_body(1500))
        assert fixed.status_code == 200, fixed.text
        assert not replayed(fixed)
        assert fixed.json()["object"] == "order" and fixed.json()["amount_total"] == 1500
        # From now on the key belongs to the fixed request.
        again = await post(client, ORDERS, key, order_body(1500))
        assert replayed(again) and again.content == fixed.content
        assert_problem(await post(client, ORDERS, key, bad), 422, "idempotency_key_reused")
    assert await order_ids(server_rt, me.id) == [fixed.json()["id"]]


# --------------------------------------------------------------------------- (d) in flight


async def test_a_key_still_in_flight_is_409_with_retry_after(server: LiveServer, server_rt: Runtime, merchant):
    me, secret = merchant
    key, body = new_key("in-flight"), order_body(2100)
    scope = f"merchant:{me.id}"
    # Claim the key exactly as the server does when a first request starts.
    claimed = await idempotency.begin(server_rt, scope, key, idempotency.fingerprint("POST", ORDERS, body))
    assert claimed is None
    async with server.async_client(secret) as client:
        busy = await post(client, ORDERS, key, body)
        assert_problem(busy, 409, "idempotency_key_in_use")
        assert int(busy.headers["Retry-After"]) >= 0
        assert not replayed(busy)
        assert await order_ids(server_rt, me.id) == []
        row = await key_row(server_rt, me.id, key)
        assert row is not None and row["state"] == "running"  # the 409 did not take the key over

        # The "first request" finishes: from then on the same request replays its response.
        stored = json.dumps({"id": "ord_fromthefirstrequest", "object": "order"})
        await idempotency.finish(server_rt, scope, key, 200, "application/json", stored)
        after = await post(client, ORDERS, key, body)
    assert after.status_code == 200 and replayed(after)
    assert after.text == stored
    assert await order_ids(server_rt, me.id) == []


async def test_twenty_concurrent_identical_posts_create_one_order(server: LiveServer, server_rt: Runtime, merchant):
    me, secret = merchant
    key, body = new_key("race"), order_body(3300, name="Race")
    async with server.async_client(secret) as client:
        responses = await asyncio.gather(*(post(client, ORDERS, key, body) for _ in range(20)))
        follow_up = await post(client, ORDERS, key, body)

    originals = [r for r in responses if r.status_code == 200 and not replayed(r)]
    replays = [r for r in responses if r.status_code == 200 and replayed(r)]
    busy = [r for r in responses if r.status_code == 409]
    assert len(originals) == 1, [(r.status_code, r.text) for r in responses]
    assert len(originals) + len(replays) + len(busy) == 20, [(r.status_code, r.text) for r in responses]
    original = originals[0]
    for r in replays:
        assert r.content == original.content
    for r in busy:
        assert_problem(r, 409, "idempotency_key_in_use")
        assert r.headers.get("Retry-After")
    assert follow_up.status_code == 200 and replayed(follow_up) and follow_up.content == original.content
    assert await order_ids(server_rt, me.id) == [original.json()["id"]]
    assert len([e for e in await _events(server_rt, me.id) if e["type"] == "order.created"]) == 1


# --------------------------------------------------------------------------- (e) scope


async def test_keys_are_scoped_per_merchant(server: LiveServer, server_rt: Runtime, merchant):
    me_a, secret_a = merchant
    me_b, secret_b = await make_merchant(server_rt)
    key, body = new_key("shared-string"), order_body(4400)
    async with server.async_client(secret_a) as a, server.async_client(secret_b) as b:
        first_a = await post(a, ORDERS, key, body)
        first_b = await post(b, ORDERS, key, body)
        assert first_a.status_code == 200 and first_b.status_code == 200, (first_a.text, first_b.text)
        assert not replayed(first_b)
        assert first_b.json()["id"] != first_a.json()["id"]
        # B's fresh result is B's own order, invisible to A, and vice versa.
        assert (await b.get(f"{ORDERS}/{first_b.json()['id']}")).status_code == 200
        for reader, order in ((a, first_b.json()), (b, first_a.json())):
            hidden = await reader.get(f"{ORDERS}/{order['id']}")
            assert (hidden.status_code, hidden.json()["code"]) == (404, "order_not_found")
        # A different body under the same string is no reuse for the other merchant either.
        other_b = await post(b, ORDERS, new_key("unused"), body)
        assert other_b.status_code == 200
        again_a = await post(a, ORDERS, key, body)
        again_b = await post(b, ORDERS, key, body)
    assert replayed(again_a) and again_a.content == first_a.content
    assert replayed(again_b) and again_b.content == first_b.content
    assert await order_ids(server_rt, me_a.id) == [first_a.json()["id"]]
    assert first_b.json()["id"] in await order_ids(server_rt, me_b.id)
    assert len(await order_ids(server_rt, me_b.id)) == 2


# --------------------------------------------------------------------------- (f) key syntax


async def test_quoted_and_bare_forms_are_the_same_key(server: LiveServer, server_rt: Runtime, merchant):
    me, secret = merchant
    bare, body = new_key("sf-string"), order_body(5500)
    async with server.async_client(secret) as client:
        quoted_first = await post(client, ORDERS, f'"{bare}"', body)
        assert quoted_first.status_code == 200, quoted_first.text
        bare_again = await post(client, ORDERS, bare, body)
        bare_different = await post(client, ORDERS, bare, order_body(5501))
    assert replayed(bare_again) and bare_again.content == quoted_first.content
    assert_problem(bare_different, 422, "idempotency_key_reused")
    row = await key_row(server_rt, me.id, bare)
    assert row is not None and row["idem_key"] == bare
    assert await order_ids(server_rt, me.id) == [quoted_first.json()["id"]]


# --------------------------------------------------------------------------- (g) 7 days


async def _age_key(rt: Runtime, merchant_id: str, key: str, age: timedelta) -> None:
    async with rt.db.transaction() as conn:
        changed = await conn.execute(
            "UPDATE idempotency_keys SET created_at = :at WHERE scope = :scope AND idem_key = :key",
            {"at": clock.iso(clock.now() - age), "scope": f"merchant:{merchant_id}", "key": key})
    assert changed == 1


async def test_a_key_older_than_seven_days_is_not_replayed(server: LiveServer, server_rt: Runtime, merchant):
    me, secret = merchant
    old_key, young_key, body = new_key("old"), new_key("young"), order_body(6600)
    async with server.async_client(secret) as client:
        old_first = await post(client, ORDERS, old_key, body)
        young_first = await post(client, ORDERS, young_key, body)
        assert old_first.status_code == 200 and young_first.status_code == 200

        await _age_key(server_rt, me.id, old_key, timedelta(days=7, hours=1))
        await _age_key(server_rt, me.id, young_key, timedelta(days=6, hours=23))

        old_again = await post(client, ORDERS, old_key, body)
        young_again = await post(client, ORDERS, young_key, body)

    # Within 7 days: still the first response.
    assert replayed(young_again) and young_again.content == young_first.content
    # Past 7 days: a fresh request, a new order, and the key now remembers the new response.
    assert old_again.status_code == 200, old_again.text
    assert not replayed(old_again)
    assert old_again.json()["id"] != old_first.json()["id"]
    row = await key_row(server_rt, me.id, old_key)
    assert row is not None and row["created_at"] > clock.later_iso(-3600)
    assert json.loads(server_rt.secrets.open(row["response_body"]))["id"] == old_again.json()["id"]
    assert sorted(await order_ids(server_rt, me.id)) == sorted(
        [old_first.json()["id"], young_first.json()["id"], old_again.json()["id"]])


async def test_a_client_that_hangs_up_still_gets_its_response_stored(server, server_rt, merchant):
    """The request is held at the database (another process owns the write lock), the client
    disconnects, the lock frees: the request must finish and its response be replayable."""
    import socket
    import sqlite3

    merchant_obj, key = merchant
    body = json.dumps({"currency": "usd", "line_items": [{"name": "Hang", "quantity": 1, "unit_amount": 700}]})
    other = sqlite3.connect(server.db_url[len("sqlite:///"):], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        host, port = server.url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        sock.sendall((f"POST /v1/orders HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                      f"Idempotency-Key: hang-up-1\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        await asyncio.sleep(0.5)
        sock.close()  # the buyer's browser, or the merchant's worker, gives up
        await asyncio.sleep(0.5)
    finally:
        other.execute("ROLLBACK")
        other.close()
    deadline = time.monotonic() + 10
    async with server.async_client(key) as client:
        while True:
            retry = await client.post("/v1/orders", content=body, headers={"Idempotency-Key": "hang-up-1",
                                                                           "Content-Type": "application/json"})
            if retry.status_code != 409 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert retry.status_code == 200, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"
    async with server_rt.db.read() as conn:
        made = await conn.fetch_all("SELECT id FROM orders WHERE merchant_id = :m", {"m": merchant_obj.id})
    assert [row["id"] for row in made] == [retry.json()["id"]]


async def test_a_transient_conflict_is_not_replayed(server, server_rt, merchant):
    from support.factories import card, make_session

    merchant_obj, _ = merchant
    session = await make_session(server_rt, merchant_obj.id)
    from flint.checkout.service import client_token

    token = client_token(server_rt, session)
    attempt = collect.Attempt(merchant_obj.id, session.order_id, "embedded", session.id)
    holder, _ = await collect.begin_attempt(server_rt, attempt, card(), Actor("buyer", session.id))
    pay = {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    async with server.async_client(token) as client:
        busy = await client.post(f"/v1/checkout/sessions/{session.id}/confirm", json=pay,
                                 headers={"Idempotency-Key": "pay-once"})
        assert busy.json()["code"] == "payment_in_progress"
        await collect.settle(server_rt, holder, ChargeResult("failed", None, "card_declined"), Actor("buyer", session.id))
        again = await client.post(f"/v1/checkout/sessions/{session.id}/confirm", json=pay,
                                  headers={"Idempotency-Key": "pay-once"})
    assert again.status_code == 200 and again.json()["status"] == "succeeded"
    assert "Idempotent-Replayed" not in again.headers


async def test_a_stored_answer_is_sealed_at_rest_and_replays_intact(server, server_rt, merchant):
    """An answer may carry a secret shown once (here a new API key): the replay returns it byte for
    byte, but the idempotency table never holds it readable."""
    _, key = merchant
    async with server.async_client(key) as client:
        first = await client.post("/v1/merchant/keys", headers={"Idempotency-Key": "new-key-1"})
        again = await client.post("/v1/merchant/keys", headers={"Idempotency-Key": "new-key-1"})
    assert first.status_code == 200 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    secret = first.json()["secret_key"]
    async with server_rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT response_body FROM idempotency_keys")
    assert rows and all(secret not in (row["response_body"] or "") for row in rows)

"""Crash safety of webhook delivery, for real: a live `flint serve` is killed with SIGKILL twice
while it is producing events and delivering them to a real receiver, and restarted on the same
SQLite file each time. Every event the database holds (GET /v1/events after the last restart)
reaches the receiver at least once; copies of one event carry the same `webhook-id` and body, and
every request verifies with `standardwebhooks`.

Why anything arrives twice: the worker records outcomes in batches, so what a killed process had
sent but not yet recorded (and what it had in flight) is still pending under its lease, and is sent
again once that lease lapses (at-least-once, same `webhook-id`, so receivers can deduplicate).
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import sqlite3
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from standardwebhooks import Webhook

from flint import clock
from flint.runtime import Runtime
from support.server import LiveServer, start_server, stop_server
from support.factories import make_merchant

from support.receiver import Receiver

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}
SESSION = {"order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks"}

ENV = {
    "FLINT_WEBHOOK_RETRY_SCHEDULE": "0.5,0.5,1,1,2,2,5",
    "FLINT_WEBHOOK_POLL_INTERVAL": "0.05",
    # A killed worker's claims stay leased for the attempt timeout plus a fixed 20 s margin
    # (worker.LEASE_MARGIN_SECONDS) before another process may send them again. With the default
    # 10 s timeout that is 30 s of waiting after the last kill; 2 s (far above the receiver's
    # 20 ms answer) brings it to 22 s and keeps the whole test well under a minute.
    "FLINT_WEBHOOK_TIMEOUT_SECONDS": "2",
}
PATH = "/crash"
RECEIVER_DELAY = 0.02  # so that deliveries are genuinely in flight when the process dies
REQUESTS = 520  # successful creates; each makes one event or more, so ≥ 500 events
THREADS = 4
KILL_AT = (100, 300)  # requests seen by the receiver when the server is killed
DELIVERY_DEADLINE = 60.0  # after the last restart, for every event to arrive


class Producers:
    """Threads creating orders (and every fifth time a checkout session, which makes two events)
    through the HTTP API of whichever server is current. A request cut off by a kill is retried
    with the same Idempotency-Key on the restarted server, so it creates nothing twice."""

    def __init__(self, key: str, target: int) -> None:
        self.key = key
        self.target = target
        self.url: str | None = None
        self.up = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.indices = itertools.count()
        self.run_id = uuid.uuid4().hex[:8]
        self.created = 0
        self.replayed = 0
        self.abandoned = 0  # keys still locked by a request the kill cut off (409 idempotency_key_in_use)
        self.transport_errors = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, name=f"producer-{n}", daemon=True) for n in range(THREADS)]

    def point_at(self, server: LiveServer) -> None:
        self.url = server.url
        self.up.set()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def done(self) -> bool:
        with self.lock:
            return self.created >= self.target

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        clients: dict[str, httpx.Client] = {}
        try:
            while not self.stop.is_set() and not self.done():
                self._create(next(self.indices), clients)
        except Exception as error:  # reported by the test, never swallowed
            with self.lock:
                self.failures.append(f"{type(error).__name__}: {error}")
        finally:
            for client in clients.values():
                client.close()

    def _create(self, index: int, clients: dict[str, httpx.Client]) -> None:
        path, body = ("/v1/checkout/sessions", SESSION) if index % 5 == 0 else ("/v1/orders", ORDER)
        headers = {"Idempotency-Key": f"crash-{self.run_id}-{index}"}
        while not self.stop.is_set():
            if not self.up.wait(0.2):
                continue
            url = self.url
            assert url is not None
            if url not in clients:
                clients[url] = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
            try:
                response = clients[url].post(path, json=body, headers=headers)
            except httpx.TransportError:  # the server died under us, or is not back yet
                with self.lock:
                    self.transport_errors += 1
                time.sleep(0.05)
                continue
            with self.lock:
                if response.status_code == 200:
                    self.created += 1
                    self.replayed += response.headers.get("Idempotent-Replayed") == "true"
                elif response.status_code == 409 and "idempotency_key_in_use" in response.text:
                    # The killed process claimed this key and never finished: it stays locked for
                    # idempotency_lock_seconds (60 s). Whether its order committed, the events table says.
                    self.abandoned += 1
                else:
                    self.failures.append(f"{path} → {response.status_code}: {response.text[:300]}")
            return


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def outbox_state(db_url: str) -> dict[str, int]:
    """Straight from the server's SQLite file: deliveries still pending, and of those how many are
    held under a lease that has not lapsed (claimed: in flight, or sent and not yet recorded). At
    the second kill this also counts the first dead process's leases if they have not lapsed yet."""
    path = db_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        now = clock.now_iso()
        pending, leased = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(lease_until IS NOT NULL AND lease_until > ?), 0) "
            "FROM webhook_deliveries WHERE status = 'pending'", (now,)).fetchone()
        succeeded = conn.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded'").fetchone()[0]
    return {"pending": pending, "leased": leased, "succeeded": succeeded}


async def seed_merchant(server: LiveServer) -> str:
    runtime = await Runtime.start(server.runtime_config())
    try:
        _, key = await make_merchant(runtime)
    finally:
        await runtime.stop()
    return key


def list_events(client: httpx.Client) -> list[dict]:
    listed: list[dict] = []
    starting_after = None
    while True:
        params = {"limit": 100, **({"starting_after": starting_after} if starting_after else {})}
        response = client.get("/v1/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        listed += page["data"]
        if not page["has_more"]:
            return listed
        starting_after = page["data"][-1]["id"]


def test_events_survive_two_sigkills_during_delivery(tmp_path: Path):
    started = time.monotonic()
    receiver = Receiver().start()
    servers: list[LiveServer] = []
    producers: Producers | None = None
    try:
        server = start_server(tmp_path, extra_env=ENV)
        servers.append(server)
        key = asyncio.run(seed_merchant(server))  # in the database, so the key outlives every process
        with server.client(key) as api:
            created = api.post("/v1/webhook_endpoints", json={"url": receiver.script(PATH, delay=RECEIVER_DELAY),
                                                              "events": ["*"]})
        assert created.status_code == 200, created.text
        secret = created.json()["secret"]

        producers = Producers(key, REQUESTS)
        producers.point_at(server)
        producers.start()

        kills = []
        for threshold in KILL_AT:
            wait_until(lambda: len(receiver.at(PATH)) >= threshold or bool(producers.failures), 45,
                       f"{threshold} deliveries")
            assert not producers.failures, producers.failures
            producers.up.clear()
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            kills.append({"received": len(receiver.at(PATH)), "requests_created": producers.created,
                          **outbox_state(server.db_url)})
            server = start_server(tmp_path, extra_env=ENV, db_url=server.db_url)
            servers.append(server)
            producers.point_at(server)

        producers.join(60)
        assert not any(t.is_alive() for t in producers.threads), f"producers stuck at {producers.created}"
        assert not producers.failures, producers.failures

        with server.client(key) as api:
            events = list_events(api)
        ids = {event["id"] for event in events}
        assert len(events) == len(ids) >= 500, len(events)

        def arrived() -> set[str]:
            return {r.headers.get("webhook-id") for r in receiver.at(PATH)}

        deadline = time.monotonic() + DELIVERY_DEADLINE
        while not ids <= arrived() and time.monotonic() < deadline:
            time.sleep(0.05)
        missing = ids - arrived()
        assert not missing, f"{len(missing)} of {len(ids)} events never arrived, e.g. {sorted(missing)[:5]}"
        # What the killed processes held under a lease (sent but unrecorded, or in flight) goes out
        # again once the lease lapses: wait for the outbox to drain, so those copies are checked too.
        while outbox_state(server.db_url)["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
        drained = outbox_state(server.db_url)
        assert drained == {"pending": 0, "leased": 0, "succeeded": len(ids)}, drained

        requests = receiver.at(PATH)
        copies: dict[str, list] = defaultdict(list)
        for request in requests:
            event = Webhook(secret).verify(request.body, request.headers)  # raises if not as signed
            assert request.headers["webhook-id"] == event["id"]
            copies[event["id"]].append((request.headers["webhook-id"], json.loads(request.body)))
        assert copies.keys() == ids, f"unexpected events: {sorted(copies.keys() - ids)[:5]}"
        for event_id, same in copies.items():
            # Every copy of one event: the same webhook-id, the same event.
            assert {webhook_id for webhook_id, _ in same} == {event_id}
            assert all(body == same[0][1] for _, body in same), event_id

        # The kills happened mid-stream: deliveries had arrived, others had not, events were still
        # being created, and the outbox held deliveries not yet done.
        for kill in kills:
            assert 0 < kill["received"] < len(ids), kills
            assert kill["requests_created"] < REQUESTS, kills
            assert kill["pending"] > 0, kills
        # ... and deliveries were in flight (claimed under a lease, not yet recorded) when it died.
        assert sum(kill["leased"] for kill in kills) > 0, kills

        duplicates = Counter(len(same) for same in copies.values())
        extra = len(requests) - len(ids)
        # Those leased deliveries had almost all reached the receiver already: they arrive twice.
        assert extra > 0, f"no duplicates although the kills left leased deliveries: {kills}"
        gaps = [max(r.at for r in receiver.at(PATH) if r.headers["webhook-id"] == event_id)
                - min(r.at for r in receiver.at(PATH) if r.headers["webhook-id"] == event_id)
                for event_id, same in copies.items() if len(same) > 1]
        print(f"\n{len(ids)} events ({Counter(e['type'] for e in events)}), {len(requests)} requests received, "
              f"{extra} duplicates (copies per event: {dict(sorted(duplicates.items()))}, "
              f"resent {min(gaps):.1f}-{max(gaps):.1f} s after the first copy); kills: {kills}; "
              f"producer: {producers.created} created, {producers.replayed} replayed, {producers.abandoned} "
              f"abandoned keys, {producers.transport_errors} transport errors; "
              f"{time.monotonic() - started:.1f} s")
    finally:
        if producers is not None:
            producers.stop.set()
            producers.join(10)
        for live in servers:
            if live.process.poll() is None:
                stop_server(live)
        receiver.stop()

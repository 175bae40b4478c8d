"""The delivery worker: sends the outbox's due deliveries, at least once, signed (Standard Webhooks).

One loop claims due deliveries (a lease in one short write transaction), one task per delivery
sends it with no transaction open, and a flusher writes the outcomes of many attempts in one
transaction (the attempt rows, the delivery's next state, the endpoint's failing streak). A worker
that dies mid-send leaves leases that lapse; the deliveries are then sent again, with the same
``webhook-id``, so receivers can deduplicate.

Fairness: at most ``per_endpoint`` deliveries of one endpoint are in flight in a worker, and a
claim skips endpoints already at that limit, so a slow receiver holds only its own slots.

Several workers (``flint serve`` and ``flint worker`` processes on one PostgreSQL database) claim
disjoint deliveries (store.claim_due locks its window ``FOR UPDATE SKIP LOCKED``), so none is sent
by two of them at once unless a lease lapsed; an outcome is written only under the lease it was
claimed with. The limits are each worker's own: N workers may have up to N x ``per_endpoint`` in
flight to one endpoint.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import httpx

from flint import clock
from flint.actors import SYSTEM
from flint.apps import store as app_store
from flint.db import Conn
from flint.events import service as events
from flint.events import store as event_store
from flint.events.models import Event
from flint.ids import new_id
from flint.runtime import Runtime
from flint.webhooks import egress, service, signing, store
from flint.webhooks.models import DISABLED, ENABLED, FAILED, OWNER_APP, PENDING, RETIRED, SUCCEEDED, Attempt, Endpoint

log = logging.getLogger("flint.webhooks")

USER_AGENT = "Flint-Webhooks/1 (+https://github.com/standard-webhooks/standard-webhooks)"
LEASE_MARGIN_SECONDS = 5  # a claimed delivery is this worker's for the timeout plus this
FLUSH_INTERVAL = 0.05
FLUSH_BATCH = 200
DNS_CACHE_SECONDS = 5.0
JITTER = 0.2  # each retry waits its scheduled delay ±20%, so failing endpoints do not stampede


@dataclass
class Outcome:
    delivery_id: str
    lease_until: str  # the lease it was claimed under: its outcome applies only while that lease stands
    endpoint: Endpoint
    attempts_before: int
    final_attempt: bool
    attempted_at: str
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    closed: bool = False  # not sent: the endpoint was closed (no attempt, no verdict on the endpoint)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Closed(Exception):
    """The claimed delivery's endpoint is disabled or deleted (the message is the delivery's error)."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - clock.now()).total_seconds())


# The background workers running in this process: the test clock lets their sends finish and records
# their outcomes before it moves the clock (``settle``).
RUNNING: weakref.WeakSet[DeliveryWorker] = weakref.WeakSet()


class DeliveryWorker:
    def __init__(self, rt: Runtime) -> None:
        config = rt.config
        self.rt = rt
        self.concurrency = config.webhook_concurrency
        self.per_endpoint = config.webhook_per_endpoint
        self.timeout = config.webhook_timeout_seconds
        self.poll_interval = config.webhook_poll_interval
        self.schedule = config.webhook_retry_schedule
        self.allow_loopback = not config.is_production
        self.inflight: Counter[str] = Counter()
        self.apps: dict[str, dict] = {}  # signing secrets of the apps in the current claim
        self.dns_cache: dict[str, tuple[float, egress.Target | egress.DestinationRefused]] = {}
        self.tasks: set[asyncio.Task] = set()
        self.outcomes: list[Outcome] = []
        self.slot_freed = asyncio.Event()
        self.flush_now = asyncio.Event()
        self.client = httpx.AsyncClient(
            follow_redirects=False,  # Standard Webhooks: a redirect is a failure, never followed
            trust_env=False,  # no proxy from the environment between Flint and the checked address
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )

    # -- the loops ---------------------------------------------------------------------------------

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_loop())
        RUNNING.add(self)
        try:
            while True:
                free = self.concurrency - len(self.tasks)
                claimed = await self._claim_and_start(free) if free > 0 else 0
                if claimed and claimed == free:
                    continue  # more may be due: claim again once a slot frees (the loop checks)
                self.slot_freed.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
                # lands as the inner wait ends, and a stopping server would wait on this loop forever.
                try:
                    async with asyncio.timeout(self.poll_interval):
                        await self.slot_freed.wait()
                except TimeoutError:
                    pass
        finally:
            RUNNING.discard(self)
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await self._flush()  # what was sent is recorded, so a restart does not resend it
            await self.client.aclose()

    async def settle(self, timeout: float) -> None:
        """Let the sends in flight finish (up to ``timeout`` s) and record every outcome now, rather than
        at the next flush: the test clock, so that a delivery just refused has its retry scheduled before
        the clock moves past it."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        await self._flush()

    async def run_until_idle(self, timeout: float = 30) -> None:
        """Send everything due now and return (for tests and the CLI's one-shot use)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = await self._claim_and_start(self.concurrency - len(self.tasks))
            if self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
            await self._flush()
            if not started and not self.tasks:
                return
        raise TimeoutError("deliveries still due")

    async def _claim_and_start(self, free: int) -> int:
        if free <= 0:
            return 0
        now = clock.now_iso()
        lease_until = clock.later_iso(self.timeout + LEASE_MARGIN_SECONDS)
        try:
            async with self.rt.db.transaction() as conn:
                rows = await store.claim_due(conn, now=now, lease_until=lease_until,
                                             limit=free, per_endpoint=self.per_endpoint, inflight=dict(self.inflight))
            if not rows:
                return 0
            async with self.rt.db.read() as conn:
                events = await event_store.select_events_by_ids(conn, list({r["event_id"] for r in rows}))
                endpoints = await store.select_endpoints_by_ids(conn, list({r["endpoint_id"] for r in rows}))
                app_ids = sorted({e.app_id for e in endpoints.values() if e.owner == OWNER_APP and e.app_id})
                if app_ids:  # merged, not replaced: sends of an earlier claim may still read theirs
                    self.apps.update(await app_store.select_webhook_secrets(conn, app_ids))
        except Exception:
            log.exception("webhook claim failed")
            return 0
        for row in rows:
            endpoint, event = endpoints[row["endpoint_id"]], events[row["event_id"]]
            self.inflight[endpoint.id] += 1
            task = asyncio.create_task(self._send(row["id"], lease_until, row["attempts"], bool(row["final_attempt"]),
                                                  endpoint, event))
            self.tasks.add(task)
            task.add_done_callback(self._done)
        return len(rows)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        self.slot_freed.set()

    async def _flush_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(FLUSH_INTERVAL):  # (not wait_for: see run)
                    await self.flush_now.wait()
            except TimeoutError:
                pass
            self.flush_now.clear()
            try:
                await self._flush()
            except Exception:  # the outcomes stay queued and are written on the next round
                log.exception("webhook outcome flush failed")

    # -- one attempt ---------------------------------------------------------------------------------

    async def _send(self, delivery_id: str, lease_until: str, attempts: int, final: bool, endpoint: Endpoint,
                    event: Event) -> None:
        started = time.perf_counter()
        attempted = clock.now()
        outcome = Outcome(delivery_id, lease_until, endpoint, attempts, final, clock.iso(attempted), 0)
        try:
            if endpoint.status not in (ENABLED, RETIRED):
                raise _Closed(f"endpoint_{endpoint.status}")
            payload = event.to_dict()
            app = None
            if endpoint.installation_id is not None:
                # An app hears about many merchants: each body says which installation it is for.
                payload.update(installation_id=endpoint.installation_id, merchant_id=endpoint.merchant_id)
            if endpoint.owner == OWNER_APP:
                app = self.apps.get(endpoint.app_id or "")  # its webhook_url signs with the app's secret
            body = json.dumps(payload, separators=(",", ":")).encode()
            headers = signing.headers(service.signing_secrets(self.rt, endpoint, outcome.attempted_at, app),
                                      event.id, clock.wall_timestamp(), body)
            async with asyncio.timeout(self.timeout):  # the lookup, connect, send and status line
                target = await self._resolve(endpoint.url)
                request = egress.pinned_request(self.client, endpoint.url, target, body, headers, USER_AGENT)
                response = await self.client.send(request, stream=True)
                await response.aclose()  # the body is not read: only the status matters
            outcome.status_code = response.status_code
            outcome.retry_after = _retry_after(response.headers.get("retry-after"))
        except _Closed as closed:
            # Closed since it was claimed: nothing is sent. Its pending deliveries were failed with it,
            # normally (the lease check then ignores this outcome); but one that an event transaction
            # wrote while the close committed (possible on PostgreSQL, where they run side by side)
            # was not, and would be claimed again at every lease lapse: it fails here as they did.
            outcome.closed, outcome.error = True, str(closed)
        except egress.DestinationRefused as refused:
            outcome.error = str(refused)
        except TimeoutError:
            outcome.error = f"timeout: no answer within {self.timeout:g} s"
        except httpx.HTTPError as error:
            outcome.error = f"connection_error: {type(error).__name__}"
        finally:
            self.inflight[endpoint.id] -= 1
            if self.inflight[endpoint.id] <= 0:
                del self.inflight[endpoint.id]
        outcome.duration_ms = int((time.perf_counter() - started) * 1000)
        self.outcomes.append(outcome)
        if len(self.outcomes) >= FLUSH_BATCH:
            self.flush_now.set()

    async def _resolve(self, url: str) -> egress.Target:
        """egress.resolve, remembered for a few seconds per URL: at hundreds of deliveries a second
        to one endpoint, one lookup (and one check) serves them all; a changed answer is seen soon."""
        now = time.monotonic()
        cached = self.dns_cache.get(url)
        if cached is not None and cached[0] > now:
            if isinstance(cached[1], egress.DestinationRefused):
                raise egress.DestinationRefused(str(cached[1]))
            return cached[1]
        if len(self.dns_cache) > 4096:
            self.dns_cache.clear()
        try:
            target = await egress.resolve(url, allow_loopback=self.allow_loopback)
        except egress.DestinationRefused as refused:
            self.dns_cache[url] = (now + DNS_CACHE_SECONDS, refused)
            raise
        self.dns_cache[url] = (now + DNS_CACHE_SECONDS, target)
        return target

    # -- recording outcomes ----------------------------------------------------------------------------

    async def _flush(self) -> None:
        while self.outcomes:
            batch, self.outcomes = self.outcomes[:FLUSH_BATCH], self.outcomes[FLUSH_BATCH:]
            try:
                await self._record(batch)
            except BaseException:
                self.outcomes[:0] = batch  # keep them for the next flush
                raise

    async def _record(self, batch: list[Outcome]) -> None:
        now = clock.now()
        now_iso = clock.iso(now)
        attempts = [Attempt(id=new_id("wha"), delivery_id=o.delivery_id, attempted_at=o.attempted_at,
                            status_code=o.status_code, error=o.error, duration_ms=o.duration_ms)
                    for o in batch if not o.closed]
        results: list[tuple[Outcome, dict]] = []
        succeeded: set[str] = set()
        failed: set[str] = set()
        gone: set[str] = set()
        endpoints: dict[str, Endpoint] = {}
        for outcome in batch:
            if outcome.closed:  # as close_endpoint fails its pending deliveries
                results.append((outcome, {"status": FAILED, "next_attempt_at": None, "lease_until": None,
                                          "last_error": outcome.error, "updated_at": now_iso}))
                continue
            endpoints[outcome.endpoint.id] = outcome.endpoint
            fields = {"attempts": outcome.attempts_before + 1, "lease_until": None,
                      "last_status_code": outcome.status_code, "last_error": outcome.error,
                      "last_attempt_at": outcome.attempted_at, "updated_at": now_iso}
            if outcome.succeeded:
                fields.update(status=SUCCEEDED, next_attempt_at=None, final_attempt=0)
                succeeded.add(outcome.endpoint.id)
            else:
                delay = self._delay(outcome.attempts_before + 1, outcome.retry_after)
                if outcome.final_attempt or delay is None or outcome.status_code == 410:
                    fields.update(status=FAILED, next_attempt_at=None, final_attempt=0)
                else:
                    fields.update(status=PENDING, next_attempt_at=clock.iso(now + timedelta(seconds=delay)))
                (gone if outcome.status_code == 410 else failed).add(outcome.endpoint.id)
            results.append((outcome, fields))
        # Row locks in one order in every worker, so that two workers' flushes on PostgreSQL queue
        # behind each other instead of deadlocking: endpoint rows first (by id), then deliveries (by
        # id), then the pending deliveries of the endpoints disabled here.
        async with self.rt.db.transaction() as conn:
            await store.insert_attempts(conn, attempts)
            disable: list[tuple[str, str]] = []
            for endpoint_id in sorted(succeeded | failed | gone):
                if endpoint_id in succeeded:
                    await store.note_endpoint_success(conn, [endpoint_id])
                elif endpoint_id in failed:  # (one that answered 2xx in this batch is not failing every attempt)
                    since = await store.note_endpoint_failure(conn, endpoint_id, now_iso)
                    if (now - clock.parse(since)).total_seconds() >= self.rt.config.webhook_disable_after_seconds:
                        disable.append((endpoint_id, "failing"))
                if endpoint_id in gone:
                    # 410 Gone: the receiver says the endpoint no longer exists (Standard Webhooks).
                    disable.append((endpoint_id, "gone"))
            for outcome, fields in sorted(results, key=lambda result: result[0].delivery_id):
                await store.record_result(conn, outcome.delivery_id, outcome.lease_until, fields)
            for endpoint_id, reason in disable:
                await disable_failing(conn, endpoints[endpoint_id], reason, now_iso)

    def _delay(self, attempts_made: int, retry_after: float | None) -> float | None:
        """Seconds until the next attempt after ``attempts_made`` attempts, None when the schedule is spent."""
        if attempts_made > len(self.schedule):
            return None
        delay = self.schedule[attempts_made - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        if retry_after is not None:
            # Honour the receiver's Retry-After, within the schedule's longest wait.
            delay = max(delay, min(retry_after, max(self.schedule)))
        return delay


async def run(rt: Runtime) -> None:
    await DeliveryWorker(rt).run()


async def deliver_due(rt: Runtime, budget: float = 5) -> bool:
    """Send what is due now and return within ``budget`` seconds (the test clock): True when nothing due
    is left. A receiver slower than that is left to the background worker: a send cut short records no
    outcome, and its lease lapses so it is sent again (never twice at once)."""
    worker = DeliveryWorker(rt)
    try:
        async with asyncio.timeout(budget):
            await worker.run_until_idle(budget + 1)
        return True
    except TimeoutError:
        log.info("test clock: deliveries still in flight are left to the worker")
        return False
    finally:
        await worker.client.aclose()


async def disable_failing(conn: Conn, endpoint: Endpoint, reason: str, now: str) -> None:
    """The worker's verdict (failing for too long, or 410 Gone): disabled, announced by an event the
    merchant sees in GET /v1/events (and its other endpoints receive)."""
    closed = await store.close_endpoint(conn, endpoint.id, status=DISABLED, reason=reason, at=now)
    if closed is not None:
        await events.record(conn, merchant_id=closed.merchant_id, type="webhook_endpoint.disabled",
                            actor=SYSTEM, obj=closed.to_dict())

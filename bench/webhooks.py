"""Webhook delivery's part of the benchmark (issue 6): how many deliveries per second one ``flint worker``
process sends to a local receiver on SQLite, and how long an event waits for its first delivery attempt
under that load. Called by ``bench.run``; needs no ``flint serve`` (the worker and its database only).

Set-up (un-timed), in a fresh SQLite file of its own: a merchant (support/factories.make_merchant) and one
webhook endpoint for ``"*"`` (server/webhooks/service.create_endpoint) pointing at the real asyncio
receiver of support/receiver.py, in a thread of this process, answering 200 at once.

1. **Throughput.** A backlog of ``events`` events is recorded through the events service
   (``record_all``, 100 order-less ``order.created`` events per transaction; the outbox writes one
   pending delivery per event in the same transaction) while no worker runs. Then ONE ``flint worker``
   process starts (FLINT_WEBHOOK_POLL_INTERVAL and the concurrency at their defaults) and the receiver
   counts arrivals. deliveries/s = (N - 1) / (last arrival - first arrival), so the process's start-up
   is not in it (it is reported apart, as is the time until every outcome is recorded in the database).

   Baseline, same run, same receiver: one process with an ``httpx.AsyncClient`` set up as the worker's
   (same limits, ``send(stream=True)`` then ``aclose()``), 64 requests in flight, posting N bodies of the
   same size with the same headers: the ceiling of Python HTTP (httpx) against this receiver on this box.
   The ratio worker / baseline says how much of that ceiling the worker reaches. Context: the same at 16
   in flight (the worker's per-endpoint limit, and with one endpoint its effective concurrency), httpx
   reading the body, and the bench's raw load generator (what the receiver itself can take).

2. **Latency under load.** With that worker still running, a producer in this process records events at
   a steady ``rate`` for ``duration`` s, ``batch`` events per transaction (events service, as above; not
   the HTTP API, whose request handling would share the two cores and limit the rate before the worker
   does). For each event: first arrival at the receiver minus the event's ``created_at`` as stored
   (microseconds; the body's ``created_at`` is whole seconds). Also from the producer's COMMIT, which is
   when the worker can first see it. An event not delivered within ``grace`` s after the last one was
   recorded counts as missing (and as infinitely late in the percentiles).

Goals: >= 500 deliveries/s (absolute), and p99 of event -> first attempt < 1 s with every event delivered.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable

from . import harness
from .harness import CpuWindow, percentile

THROUGHPUT_GOAL = 500.0  # deliveries per second, one worker process, SQLite
LATENCY_P99_GOAL_MS = 1000.0  # event recorded -> first delivery attempt at the receiver, under that load
BASELINE_CONCURRENCY = 64  # the worker's webhook_concurrency default
PER_ENDPOINT = 16  # the worker's webhook_per_endpoint default
SEED_BATCH = 100
HOOK_PATH = "/hook"


def _ms(value: float | None) -> float | None:
    return harness.ms(value, 1)


def _window(pid: int | None) -> CpuWindow:
    """CPU of the worker (or of a baseline client), of this process (receiver thread, producer) and of the
    machine, from now on."""
    return CpuWindow({**({"worker": [pid]} if pid else {}), "bench": harness.self_cpu})


def _cpu(window: CpuWindow, requests: int) -> dict:
    cpu = window.split()
    worker = cpu["seconds"].get("worker", 0.0)
    out = {"worker_cores": round(cpu["cores"].get("worker", 0.0), 2),
           "bench_process_cores": round(cpu["cores"]["bench"], 2),
           "machine_busy_pct": round(cpu["machine_busy_pct"], 1), "other_cores": round(cpu["other_cores"], 2)}
    if requests and "worker" in cpu["seconds"]:
        out["worker_cpu_ms_per_delivery"] = round(1000 * worker / requests, 3)
    return out


def _arrival_stats(times: list[float]) -> dict:
    times = sorted(times)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {"first_at": times[0] if times else None, "last_at": times[-1] if times else None,
            "span_s": round(span, 3), "per_s": round((len(times) - 1) / span, 1) if span > 0 else None}


# ----------------------------------------------------------------------------------------------
# Seeding and producing (the events service, in this process)
# ----------------------------------------------------------------------------------------------

def _obj(i: int) -> dict:
    return {"id": f"ord_bench{i:07d}", "object": "order", "status": "open", "currency": "usd", "amount_total": 2500}


async def _seed(db_url: str, receiver_url: str, n_events: int) -> dict:
    from flint.actors import Actor
    from flint.db.migrate import migrate
    from flint.events import service as events
    from flint.runtime import Runtime
    from flint.webhooks import service as webhooks
    from support.factories import make_merchant

    rt = await Runtime.start(harness.bench_config(db_url))
    try:
        await migrate(rt.db)
        merchant, _ = await make_merchant(rt)
        endpoint, _ = await webhooks.create_endpoint(rt, merchant.id, url=receiver_url, events=["*"],
                                                     description="bench receiver")
        actor = Actor("merchant", merchant.id)
        started = time.monotonic()
        made = 0
        sample = None
        while made < n_events:
            size = min(SEED_BATCH, n_events - made)
            async with rt.db.transaction() as conn:
                recorded = await events.record_all(conn, merchant_id=merchant.id, actor=actor,
                                                   items=[("order.created", _obj(made + i)) for i in range(size)])
            sample = sample or recorded[0]
            made += size
        seconds = time.monotonic() - started
        async with rt.db.read() as conn:
            row = await conn.fetch_one("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'")
        from flint.webhooks import signing

        body = json.dumps(sample.to_dict(), separators=(",", ":")).encode()
        secret_plain = webhooks.signing_secrets(rt, endpoint, "")
        headers = signing.headers(secret_plain, sample.id, int(time.time()), body)
        return {"merchant_id": merchant.id, "endpoint_id": endpoint.id, "pending": row["n"],
                "seed_s": round(seconds, 2), "body": body, "headers": headers}
    finally:
        await rt.stop()


async def _produce(db_url: str, merchant_id: str, *, rate: float, duration: float,
                   batch: int) -> dict:
    """Records ``rate`` events/s for ``duration`` s, ``batch`` per transaction, on an absolute schedule (a
    late batch is sent at once, so the rate catches up). Returns {event_id: (created_at, committed_at)}."""
    from flint import clock
    from flint.actors import Actor
    from flint.events import service as events
    from flint.runtime import Runtime

    rt = await Runtime.start(harness.bench_config(db_url))
    out: dict[str, tuple[float, float]] = {}
    tx_ms: list[float] = []
    late: list[float] = []
    try:
        actor = Actor("merchant", merchant_id)
        n_batches = max(1, int(rate * duration / batch))
        interval = batch / rate
        t0 = time.monotonic() + 0.05
        made = 0
        for k in range(n_batches):
            target = t0 + k * interval
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late.append(-delay)
            begin = time.monotonic()
            async with rt.db.transaction() as conn:
                recorded = await events.record_all(conn, merchant_id=merchant_id, actor=actor,
                                                   items=[("order.created", _obj(10_000_000 + made + i))
                                                          for i in range(batch)])
            committed = time.time()
            tx_ms.append((time.monotonic() - begin) * 1000)
            for event in recorded:
                out[event.id] = (clock.parse(event.created_at).timestamp(), committed)
            made += batch
        elapsed = time.monotonic() - t0
    finally:
        await rt.stop()
    tx_ms.sort()
    late.sort()
    return {"events": out, "elapsed_s": elapsed, "batches": n_batches,
            "tx_ms": {"p50": round(percentile(tx_ms, 50), 2), "p99": round(percentile(tx_ms, 99), 2),
                      "max": round(tx_ms[-1], 2)},
            "behind_schedule": {"batches": len(late), "max_ms": round(late[-1] * 1000, 1) if late else 0.0}}


# ----------------------------------------------------------------------------------------------
# The httpx baseline (its own process, like the worker)
# ----------------------------------------------------------------------------------------------

def _baseline_main(pipe, url: str, body: bytes, headers: dict[str, str], n: int, concurrency: int,
                   mode: str) -> None:
    """One client process. ``worker_like``: httpx set up and called as the worker does (``send(stream=True)``,
    then ``aclose()`` without reading the body); ``keepalive``: the same but reading the (empty) body first,
    so httpx can reuse the connection."""
    import httpx

    all_headers = {**headers, "content-type": "application/json",
                   "user-agent": "Flint-Webhooks/1 (+https://github.com/standard-webhooks/standard-webhooks)"}
    state = {"next": 0, "ok": 0, "errors": 0}

    async def httpx_lanes() -> None:
        client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=httpx.Timeout(10.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))

        async def one_lane() -> None:
            while state["next"] < n:
                state["next"] += 1
                try:
                    request = client.build_request("POST", url, content=body, headers=all_headers)
                    response = await client.send(request, stream=True)
                    if mode == "keepalive":
                        await response.aread()
                    await response.aclose()
                    state["ok" if response.status_code == 200 else "errors"] += 1
                except httpx.HTTPError:
                    state["errors"] += 1
        await asyncio.gather(*(one_lane() for _ in range(concurrency)))
        await client.aclose()

    async def go() -> dict:
        cpu0, t0 = sum(os.times()[:2]), time.monotonic()
        await httpx_lanes()
        cpu, elapsed = sum(os.times()[:2]) - cpu0, time.monotonic() - t0
        return {"ok": state["ok"], "errors": state["errors"], "elapsed_s": elapsed, "cpu_s": cpu}

    pipe.recv()  # "go"
    pipe.send(asyncio.run(go()))


def _baseline(receiver, body: bytes, headers: dict[str, str], n: int, concurrency: int,
              mode: str = "worker_like") -> dict:
    """``n`` requests straight at the receiver, ``concurrency`` in flight, from one client process: httpx
    (``worker_like``, ``keepalive``), or ``raw``, the bench's own load generator (pre-built request bytes,
    keep-alive connections: what the receiver itself can take)."""
    receiver.reset()
    path = f"/baseline-{mode}-{concurrency}"
    if mode == "raw":
        result, cpu = _raw_baseline(receiver, path, body, headers, n, concurrency)
    else:
        result, cpu = _httpx_baseline(receiver, path, body, headers, n, concurrency, mode)
    arrivals = _arrival_stats([r.at for r in receiver.at(path)])
    return {"mode": mode, "concurrency": concurrency, "requests": n, "ok": result["ok"], "errors": result["errors"],
            "per_s": arrivals["per_s"], "client_elapsed_s": round(result["elapsed_s"], 3),
            "client_cpu_ms_per_request": round(1000 * result["cpu_s"] / n, 3),
            "client_cores": round(result["cpu_s"] / result["elapsed_s"], 2),
            "connections_opened": receiver.connections, "bench_process_cores": cpu["bench_process_cores"],
            "machine_busy_pct": cpu["machine_busy_pct"], "other_cores": cpu["other_cores"]}


def _httpx_baseline(receiver, path: str, body: bytes, headers: dict[str, str], n: int, concurrency: int,
                    mode: str) -> tuple[dict, dict]:
    with harness.ChildProcess(_baseline_main, receiver.url(path), body, headers, n, concurrency, mode) as child:
        window = _window(child.pid)
        result = child.result(timeout=120)
        cpu = _cpu(window, n)
    return result, cpu


def _raw_baseline(receiver, path: str, body: bytes, headers: dict[str, str], n: int,
                  concurrency: int) -> tuple[dict, dict]:
    all_headers = {**headers, "content-type": "application/json",
                   "user-agent": "Flint-Webhooks/1 (+https://github.com/standard-webhooks/standard-webhooks)"}
    request = harness.http_request("POST", path, f"127.0.0.1:{receiver.port}", body=body, headers=all_headers)
    generator = harness.LoadGenerator([receiver.port], connections=concurrency, workers=1)
    try:
        window = _window(generator.pids[0])
        raw = generator.run([request] * n, cyclic=False, warmup=0.0, duration=120.0, timeout=10.0)
        cpu = _cpu(window, n)
    finally:
        generator.close()
    t = harness.tally(raw)
    return {"ok": t["requests"], "errors": t["errors_total"], "elapsed_s": t["client_span_s"],
            "cpu_s": t["client_cpu_s"]}, cpu


# ----------------------------------------------------------------------------------------------
# The worker process
# ----------------------------------------------------------------------------------------------

class _Probe:
    """Runs inside the worker process only (``_worker_main``): wraps a few of the worker's and the
    database's methods, unchanged otherwise, to count and time what the worker waits on. The cost is a
    couple of perf_counter calls per claim, flush, transaction and delivery. Phases are split by SIGUSR1
    from the bench; the numbers are written as JSON on exit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.phases: list[dict] = []
        self.new_phase("throughput")

    def new_phase(self, name: str) -> None:
        self.cur = {"phase": name, "started": time.time(), "claims": 0, "empty_claims": 0, "claimed": 0,
                    "claim_sizes": {}, "claim_tx_s": 0.0, "claim_query_s": 0.0, "claim_reads_s": 0.0,
                    "flushes": 0, "flushed": 0, "flush_tx_s": 0.0, "write_lock_wait_s": 0.0,
                    "begin_s": [], "commit_s": [], "transactions": 0, "sends": 0, "send_s": 0.0,
                    "loop_lag_ms": [], "max_in_flight_per_endpoint": 0}
        self.phases.append(self.cur)

    def install(self) -> None:
        import functools

        from flint.db import sqlite as db_sqlite
        from flint.webhooks import store
        from flint.background import webhook_worker as worker

        probe = self
        on_thread = db_sqlite.SqliteDatabase._on_thread

        async def timed_on_thread(connection, sql):
            t = time.perf_counter()
            try:
                return await on_thread(connection, sql)
            finally:
                key = {"BEGIN IMMEDIATE": "begin_s", "COMMIT": "commit_s"}.get(sql)
                if key:
                    probe.cur[key].append(time.perf_counter() - t)
        db_sqlite.SqliteDatabase._on_thread = staticmethod(timed_on_thread)

        transaction = db_sqlite.SqliteDatabase.transaction

        def timed_transaction(self_db):
            t = time.perf_counter()
            inner = transaction(self_db)

            class Wrapped:
                async def __aenter__(self):
                    conn = await inner.__aenter__()
                    probe.cur["transactions"] += 1
                    # From asking to holding the write connection: the in-process lock + BEGIN IMMEDIATE.
                    probe.cur["write_lock_wait_s"] += time.perf_counter() - t
                    return conn

                async def __aexit__(self, *exc):
                    return await inner.__aexit__(*exc)
            return Wrapped()
        db_sqlite.SqliteDatabase.transaction = timed_transaction

        claim_due = store.claim_due

        @functools.wraps(claim_due)
        async def timed_claim_due(*args, **kwargs):
            t = time.perf_counter()
            rows = await claim_due(*args, **kwargs)
            probe.cur["claim_query_s"] += time.perf_counter() - t
            return rows
        store.claim_due = timed_claim_due

        claim_and_start = worker.DeliveryWorker._claim_and_start

        async def timed_claim_and_start(self_w, free):
            if free <= 0:
                return await claim_and_start(self_w, free)
            t = time.perf_counter()
            n = await claim_and_start(self_w, free)
            probe.cur["claims"] += 1
            probe.cur["claim_tx_s"] += time.perf_counter() - t
            probe.cur["claimed"] += n
            probe.cur["empty_claims"] += n == 0
            # The worker's own count of one endpoint's deliveries in flight, right after a claim.
            probe.cur["max_in_flight_per_endpoint"] = max(probe.cur["max_in_flight_per_endpoint"],
                                                          max(self_w.inflight.values(), default=0))
            sizes = probe.cur["claim_sizes"]
            sizes[n] = sizes.get(n, 0) + 1
            return n
        worker.DeliveryWorker._claim_and_start = timed_claim_and_start

        record = worker.DeliveryWorker._record

        async def timed_record(self_w, batch):
            t = time.perf_counter()
            await record(self_w, batch)
            probe.cur["flushes"] += 1
            probe.cur["flushed"] += len(batch)
            probe.cur["flush_tx_s"] += time.perf_counter() - t
        worker.DeliveryWorker._record = timed_record

        send = worker.DeliveryWorker._send

        async def timed_send(self_w, *args):
            t = time.perf_counter()
            try:
                await send(self_w, *args)
            finally:
                probe.cur["sends"] += 1
                probe.cur["send_s"] += time.perf_counter() - t
        worker.DeliveryWorker._send = timed_send

        run = worker.DeliveryWorker.run

        async def run_with_lag_meter(self_w):
            async def lag_meter():  # how late the event loop wakes a 10 ms sleep: time spent busy
                while True:
                    t = time.perf_counter()
                    await asyncio.sleep(0.01)
                    probe.cur["loop_lag_ms"].append((time.perf_counter() - t - 0.01) * 1000)
            meter = asyncio.create_task(lag_meter())
            try:
                await run(self_w)
            finally:
                meter.cancel()
        worker.DeliveryWorker.run = run_with_lag_meter

    def summary(self) -> list[dict]:
        out = []
        for p in self.phases:
            def dist(values: list[float], scale: float = 1000.0) -> dict:
                values = sorted(values)
                return {"n": len(values), "p50_ms": round(percentile(values, 50) * scale, 2) if values else None,
                        "p99_ms": round(percentile(values, 99) * scale, 2) if values else None,
                        "max_ms": round(values[-1] * scale, 2) if values else None,
                        "total_s": round(sum(values) * scale / 1000, 3)}
            claims = p["claims"] or 1
            out.append({
                "phase": p["phase"], "claims": p["claims"], "empty_claims": p["empty_claims"],
                "claimed": p["claimed"], "rows_per_claim": round(p["claimed"] / claims, 2),
                "claim_sizes": dict(sorted(p["claim_sizes"].items())),
                "claim_ms_mean": round(1000 * p["claim_tx_s"] / claims, 2),
                "claim_query_ms_mean": round(1000 * p["claim_query_s"] / claims, 2),
                "claim_total_s": round(p["claim_tx_s"], 3),
                "flushes": p["flushes"], "rows_per_flush": round(p["flushed"] / (p["flushes"] or 1), 1),
                "flush_ms_mean": round(1000 * p["flush_tx_s"] / (p["flushes"] or 1), 2),
                "transactions": p["transactions"],
                "write_lock_wait_total_s": round(p["write_lock_wait_s"], 3),
                "begin_immediate": dist(p["begin_s"]), "commit": dist(p["commit_s"]),
                "max_in_flight_per_endpoint": p["max_in_flight_per_endpoint"],
                "sends": p["sends"], "send_ms_mean": round(1000 * p["send_s"] / (p["sends"] or 1), 2),
                "loop_lag": dist([v / 1000 for v in p["loop_lag_ms"]]),
            })
        return out


def _worker_main(probe_path: str, profile_path: str) -> None:
    """``flint worker`` as the CLI runs it, with the probe (and cProfile if asked) around it."""
    import atexit

    probe = _Probe(probe_path)
    probe.install()
    signal.signal(signal.SIGUSR1, lambda *_: probe.new_phase(f"phase{len(probe.phases)}"))
    profiler = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()

    def dump() -> None:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
        Path(probe_path).write_text(json.dumps(probe.summary()))
    atexit.register(dump)
    if profiler is not None:
        profiler.enable()
    from flint import cli

    cli.main(["worker"])


class Worker:
    def __init__(self, tmp: Path, db_url: str, profile: bool) -> None:
        self.env = harness.bench_env(db_url, PYTHONUNBUFFERED="1")
        self.log_path = tmp / "worker.log"
        self.profile_path = tmp / "worker.prof" if profile else None
        self.probe_path = tmp / "worker-probe.json"
        self.process = None

    def start(self) -> None:
        # The bench's own hook, in this subprocess only: the probe (and cProfile) around the unchanged CLI.
        code = (f"from bench.webhooks import _worker_main; "
                f"_worker_main({str(self.probe_path)!r}, {str(self.profile_path or '')!r})")
        self.process = harness.start_process([sys.executable, "-c", code], self.env, self.log_path)

    def next_phase(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGUSR1)

    def probe(self) -> list[dict]:
        try:
            return json.loads(self.probe_path.read_text())
        except (OSError, ValueError):
            return []

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            harness.stop_process(self.process, timeout=15)  # SIGTERM, graceful: flushes its outcomes (and profile)

    def logs(self) -> str:
        return harness.read_log(self.log_path)

    def profile_top(self, limit: int = 30) -> list[str]:
        if self.profile_path is None or not self.profile_path.exists():
            return []
        return [line for key in ("tottime", "cumulative")
                for line in [f"-- by {key} --", *harness.pstats_table(self.profile_path, key, limit)]]


def _count_status(db_path: str) -> dict[str, int]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10) as conn:
        return dict(conn.execute("SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status").fetchall())


def _wait_count(receiver, count: int, timeout: float, worker: Worker) -> bool:
    """Waits until ``count`` requests arrived (only the phase's path receives during a phase)."""
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count:
        if time.monotonic() > deadline or not worker.alive():
            return False
        time.sleep(0.005)
    return True


# ----------------------------------------------------------------------------------------------
# The section
# ----------------------------------------------------------------------------------------------

def run(tmp: Path, *, events: int = 5000, rate: float = 450.0, duration: float = 10.0,
        batch: int = 5, grace: float = 5.0, profile: bool = False, log: Callable[[str], None] = print) -> dict:
    """Throughput and latency of one ``flint worker``; returns {..., "goals", "notes"}."""
    started = time.monotonic()
    tmp.mkdir(parents=True, exist_ok=True)
    db_path = str(tmp / "webhooks.sqlite3")
    db_url = f"sqlite:///{db_path}"
    notes: list[str] = []
    out: dict[str, Any] = {"config": {"events": events, "rate_per_s": rate, "duration_s": duration,
                                      "batch": batch, "grace_s": grace, "profiled": profile,
                                      "worker": "flint worker (one process), webhook defaults: concurrency 64, "
                                                "per endpoint 16, poll interval 0.1 s",
                                      "database": "sqlite (fresh temp file, WAL, synchronous=FULL)",
                                      "receiver": "support/receiver.py, answers 200 at once, in a thread "
                                                  "of the bench process"}}
    receiver = harness.BenchReceiver().start()
    worker = Worker(tmp, db_url, profile)
    try:
        # -- set-up -------------------------------------------------------------------------------------
        seeded = asyncio.run(_seed(db_url, receiver.url(HOOK_PATH), events))
        body, headers = seeded.pop("body"), seeded.pop("headers")
        out["setup"] = {**{k: v for k, v in seeded.items() if k not in ("merchant_id", "endpoint_id")},
                        "body_bytes": len(body)}
        log(f"  backlog: {seeded['pending']} pending deliveries of {events} events recorded in {seeded['seed_s']} s "
            f"(body {len(body)} B)")

        # -- baseline: httpx straight at the receiver -----------------------------------------------------
        # The baseline (as many requests as the backlog), then context at a fifth of that.
        baselines = {}
        context_n = max(200, events // 5)
        for key, mode, concurrency, n in (("httpx", "worker_like", BASELINE_CONCURRENCY, events),
                                          ("httpx_16", "worker_like", PER_ENDPOINT, context_n),
                                          ("httpx_keepalive", "keepalive", BASELINE_CONCURRENCY, context_n),
                                          ("raw_keepalive", "raw", BASELINE_CONCURRENCY, events)):
            baselines[key] = b = _baseline(receiver, body, headers, n, concurrency, mode)
            log(f"  {'baseline' if key == 'httpx' else 'context'} {key} x{concurrency}: {b['per_s']} requests/s "
                f"({b['errors']} errors, client {b['client_cpu_ms_per_request']} ms CPU/request, "
                f"{b['connections_opened']} connections)")
        out["baseline"] = baselines.pop("httpx")
        out["baseline_context"] = baselines

        # -- throughput: one worker drains the backlog ----------------------------------------------------
        receiver.reset()
        t_start = time.monotonic()
        worker.start()
        window = None
        deadline = time.monotonic() + 60
        while not receiver.received and time.monotonic() < deadline and worker.alive():
            time.sleep(0.002)
        window = _window(worker.process.pid) if worker.alive() else None
        first_seen = time.monotonic()
        complete = _wait_count(receiver, events, 60, worker)
        t_sent = time.monotonic()
        cpu = _cpu(window, events) if window else {}
        arrivals = [r.at for r in receiver.at(HOOK_PATH)]
        stats = _arrival_stats(arrivals)
        # Every outcome written to the database (the flusher batches them)?
        recorded_at = None
        status: dict[str, int] = {}
        wait_until = time.monotonic() + 15
        while time.monotonic() < wait_until and worker.alive():
            status = _count_status(db_path)
            if status.get("succeeded", 0) >= events:
                recorded_at = time.monotonic()
                break
            time.sleep(0.05)
        ids = [r.headers.get("webhook-id") for r in receiver.at(HOOK_PATH)]
        through = {
            "deliveries": len(arrivals), "complete": complete,
            "deliveries_per_s": stats["per_s"],
            "span_s": stats["span_s"],
            "startup_s": round(first_seen - t_start, 2),  # process start, imports, migrate, first claim
            "per_s_including_startup": round(len(arrivals) / (t_sent - t_start), 1) if t_sent > t_start else None,
            "all_recorded_after_last_arrival_s": round(recorded_at - t_sent, 3) if recorded_at else None,
            "db_status_after": status,
            "duplicates": len(ids) - len(set(ids)),
            "connections_opened": receiver.connections,
            "max_open_connections": receiver.max_open_connections,
            "cpu": cpu,
            "ratio_to_baseline": (round(stats["per_s"] / out["baseline"]["per_s"], 3)
                                  if stats["per_s"] and out["baseline"]["per_s"] else None),
        }
        # The rate over time, in half-second buckets, to see a start-up ramp or a slowdown as the backlog drains.
        if arrivals:
            t0 = min(arrivals)
            buckets: dict[int, int] = {}
            for at in arrivals:
                buckets[int((at - t0) / 0.5)] = buckets.get(int((at - t0) / 0.5), 0) + 1
            through["per_s_by_half_second"] = [2 * buckets.get(i, 0) for i in range(max(buckets) + 1)]
        out["throughput"] = through
        log(f"  worker: {through['deliveries']} deliveries at {through['deliveries_per_s']}/s "
            f"(x{through['ratio_to_baseline']} baseline; start-up {through['startup_s']} s; worker "
            f"{cpu.get('worker_cores')} cores, {cpu.get('worker_cpu_ms_per_delivery')} ms CPU/delivery)")
        if not complete:
            notes.append(f"webhooks: only {len(arrivals)} of {events} deliveries arrived within 60 s")
        if through["duplicates"]:
            notes.append(f"webhooks: {through['duplicates']} deliveries arrived twice during the backlog drain")
        if recorded_at is None:
            notes.append(f"webhooks: not every outcome was recorded 15 s after the last arrival: {status}")

        # -- latency under a steady load ---------------------------------------------------------------------
        if worker.alive():
            receiver.reset()
            worker.next_phase()
            log(f"  latency: producing {rate:g} events/s for {duration:g} s ({batch} per transaction)")
            window = _window(worker.process.pid)
            produced = asyncio.run(_produce(db_url, seeded["merchant_id"], rate=rate, duration=duration,
                                            batch=batch))
            cpu = _cpu(window, len(produced["events"]))
            wanted = produced["events"]
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and len(receiver.received) < len(wanted):
                time.sleep(0.02)
            first: dict[str, float] = {}
            for r in receiver.at(HOOK_PATH):
                key = r.headers.get("webhook-id", "")
                if key not in first or r.at < first[key]:
                    first[key] = r.at
            from_created = sorted(first[k] - created if k in first else float("inf")
                                  for k, (created, _) in wanted.items())
            from_commit = sorted(first[k] - committed if k in first else float("inf")
                                 for k, (_, committed) in wanted.items())
            missing = sum(1 for k in wanted if k not in first)

            def pcts(values: list[float]) -> dict:
                finite = [v for v in values if v != float("inf")]
                return {"p50_ms": _ms(percentile(values, 50)), "p90_ms": _ms(percentile(values, 90)),
                        "p99_ms": _ms(percentile(values, 99)), "max_ms": _ms(finite[-1] if finite else None),
                        "mean_ms": _ms(sum(finite) / len(finite) if finite else None)}

            out["latency"] = {
                "events": len(wanted), "delivered": len(wanted) - missing, "missing": missing,
                "producer": "events service record_all in this process (not the HTTP API)",
                "achieved_rate_per_s": round(len(wanted) / produced["elapsed_s"], 1),
                "producer_tx_ms": produced["tx_ms"], "producer_behind_schedule": produced["behind_schedule"],
                "from_created_at": pcts(from_created),
                "from_commit": pcts(from_commit),
                "duplicates": len(receiver.received) - len(first),
                "cpu": cpu,
            }
            lat = out["latency"]
            log(f"  latency: {lat['delivered']}/{lat['events']} delivered at {lat['achieved_rate_per_s']}/s, "
                f"created_at -> first attempt p50 {lat['from_created_at']['p50_ms']} ms, "
                f"p99 {lat['from_created_at']['p99_ms']} ms (worker {cpu['worker_cores']} cores)")
            if missing:
                notes.append(f"webhooks: {missing} of {len(wanted)} events had no delivery attempt {grace:g} s "
                             f"after the last was recorded")
            if produced["behind_schedule"]["max_ms"] > 100:
                notes.append(f"webhooks: the producer fell behind its schedule by up to "
                             f"{produced['behind_schedule']['max_ms']} ms (its transactions waited for the worker's "
                             f"writes, or for CPU): the offered load was burstier than {rate:g}/s")
        else:
            notes.append("webhooks: the worker died before the latency phase")
    finally:
        worker_alive = worker.alive()
        worker.stop()
        receiver.stop()
    if not worker_alive:
        notes.append(f"webhooks: the worker process exited on its own:\n{worker.logs()[-2000:]}")
    out["worker_probe"] = dict(zip(("throughput", "latency"), worker.probe()))
    out["worker_log_errors"] = [line[:400] for line in harness.log_errors(worker.logs())][:20]
    if profile:
        out["profile"] = worker.profile_top()
        notes.append("webhooks: the worker ran under cProfile (--webhooks-profile), which slows it: "
                     "its figures are not comparable with an unprofiled run")
    for key in ("throughput", "latency"):
        if note := harness.noise_note(f"webhooks {key}", out.get(key, {}).get("cpu", {})):
            notes.append(note)
    out["goals"] = goals_for(out)
    out["notes"] = notes
    out["runtime_s"] = round(time.monotonic() - started, 1)
    return out


def goals_for(out: dict) -> dict:
    through, latency = out.get("throughput", {}), out.get("latency", {})
    rate = through.get("deliveries_per_s")
    p99 = latency.get("from_created_at", {}).get("p99_ms")
    return {
        f"webhook_deliveries_per_s_ge_{int(THROUGHPUT_GOAL)}": {
            "target": THROUGHPUT_GOAL, "actual": rate, "ratio_to_httpx_baseline": through.get("ratio_to_baseline"),
            "pass": rate is not None and rate >= THROUGHPUT_GOAL and bool(through.get("complete"))},
        f"webhook_event_to_first_attempt_p99_lt_{int(LATENCY_P99_GOAL_MS)}ms": {
            "target_ms": LATENCY_P99_GOAL_MS, "actual": p99, "p50_ms": latency.get("from_created_at", {}).get("p50_ms"),
            "rate_per_s": latency.get("achieved_rate_per_s"), "missing": latency.get("missing"),
            "pass": p99 is not None and p99 < LATENCY_P99_GOAL_MS and latency.get("missing") == 0},
    }


def report(out: dict) -> str:
    if "error" in out:
        return f"webhooks: not measured ({out['error'][:300]})"
    lines = []
    b, t = out.get("baseline"), out.get("throughput")
    context = out.get("baseline_context", {})
    base = (b or {}).get("per_s") or None

    def row(label: str, per_s, cpu_ms, conns, extra: str = "") -> str:
        ratio = f"{per_s / base:>11.3f}" if per_s and base else f"{'-':>11}"
        per = f"{per_s:>8.1f}" if per_s else f"{'-':>8}"
        return f"  {label:<40} {per} {ratio} {cpu_ms if cpu_ms is not None else '-':>9} {conns:>6}{extra}"

    lines.append(f"{'webhook deliveries to a local receiver':<42} {'per s':>8} {'x baseline':>11} "
                 f"{'CPU ms/r':>9} {'conns':>6}")
    if t:
        cpu = t.get("cpu", {})
        lines.append(row(f"flint worker, backlog of {t['deliveries']}", t["deliveries_per_s"],
                         cpu.get("worker_cpu_ms_per_delivery"), t["connections_opened"],
                         f"   (worker {cpu.get('worker_cores')} cores)"))
    if b:
        lines.append(row(f"baseline: httpx as the worker calls it, {b['concurrency']}", b["per_s"],
                         b["client_cpu_ms_per_request"], b["connections_opened"]))
    labels = {"httpx_16": "context: the same, 16 in flight", "httpx_keepalive": "context: httpx reading the body, 64",
              "raw_keepalive": "context: raw asyncio keep-alive, 64"}
    for key, c in context.items():
        lines.append(row(labels.get(key, key), c["per_s"], c["client_cpu_ms_per_request"], c["connections_opened"]))
    if t:
        lines.append(f"  worker start-up {t['startup_s']} s; every outcome recorded "
                     f"{t['all_recorded_after_last_arrival_s']} s after the last arrival; {t['duplicates']} duplicates")
    lat = out.get("latency")
    if lat:
        c, m = lat["from_created_at"], lat["from_commit"]
        lines += [
            "",
            f"event -> first attempt at {lat['achieved_rate_per_s']} events/s: p50 {c['p50_ms']} ms, p90 "
            f"{c['p90_ms']} ms, p99 {c['p99_ms']} ms, max {c['max_ms']} ms ({lat['delivered']}/{lat['events']} "
            f"delivered); from COMMIT p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms "
            f"(worker {lat['cpu']['worker_cores']} cores)",
        ]
    for phase, p in out.get("worker_probe", {}).items():
        lines.append(f"  worker {phase}: {p['claims']} claims ({p['empty_claims']} empty), {p['rows_per_claim']} "
                     f"rows/claim, {p['claim_ms_mean']} ms/claim; {p['flushes']} flushes of {p['rows_per_flush']}; "
                     f"COMMIT p50 {p['commit']['p50_ms']} ms; BEGIN p99 {p['begin_immediate']['p99_ms']} ms; "
                     f"loop lag p99 {p['loop_lag']['p99_ms']} ms; max {p['max_in_flight_per_endpoint']} in flight "
                     f"to the endpoint")
    for line in out.get("worker_log_errors", [])[:5]:
        lines.append(f"  worker log: {line[:300]}")
    if out.get("profile"):
        lines += ["", "worker profile (cProfile, top by tottime):"] + out["profile"][1:22]
    return "\n".join(lines)

"""Flint load benchmark: a real ``flint serve`` on loopback, measured under one fixed concurrent load.

    python -m bench.run [--connections 32] [--duration 8] [--warmup 2] [--workers 2] ...

What it does, in order:

1. Makes a temp dir with a fresh SQLite file, seeds a merchant with ``flint merchants create --json``
   and starts ``flint serve`` on a free 127.0.0.1 port (FLINT_LOG_LEVEL=WARNING, sweeper idle).
2. Starts ``--workers`` client processes. Each runs one asyncio loop with raw HTTP/1.1 keep-alive
   connections (asyncio streams, pre-built request bytes, a response parser that reads only the
   status line and Content-Length). ``--connections`` are spread over the workers. Every scenario
   uses exactly this client with exactly this concurrency, so the ratios between scenarios compare
   the server, not the client.
3. Un-timed setup: pre-creates ``--orders`` orders (for the GET scenario).
4. Scenarios, each ``--warmup`` s (discarded) then ``--duration`` s (measured): ``healthz`` (the
   baseline), ``create_session`` (inline order), ``get_order`` (round robin over the pre-created
   orders), ``confirm`` (success card, one fresh session per request: the sessions made during
   ``create_session`` plus an un-timed top-up phase are the pool; a session is never confirmed twice),
   and ``healthz_end``, the baseline again, to see whether the machine's load drifted meanwhile.
5. The embedded widget (bench/widget.py; ``--no-widget`` skips it, ``--widget-only`` runs only it):
   the gzipped sizes of the loader and of the card frame against their goals, and the time from the
   script tag to ``flint:ready`` in real Chromium (Playwright), against a plain iframe's load measured
   in the same run. One buyer at a time, after the load scenarios, on the same server.
6. Webhook delivery (bench/webhooks.py; ``--no-webhooks`` skips it, ``--webhooks-only`` runs only it),
   after ``flint serve`` has stopped: its own SQLite file, one ``flint worker`` process and a local
   receiver. Deliveries per second draining a backlog, against an httpx client posting straight to the
   same receiver in the same run; then event -> first delivery attempt (p50/p99) under a steady load.
7. The checkout hook (bench/hook.py; ``--no-hook`` skips it, ``--hook-only`` runs only it), after the load
   server has stopped and before the webhook section: its own ``flint serve`` and SQLite file, a merchant
   with an app installed whose ``checkout.before_payment`` hook (a local receiver) answers
   ``{"actions": []}`` at once and a merchant without, and confirms one at a time, alternating the two:
   the hook's p50 overhead on top of the app's own answer time.
8. Scale-out (bench/scaleout.py; ``--no-scaleout`` skips it, ``--scaleout-only`` runs only it), after the hook
   section: session creation with one and two ``flint serve`` processes on PostgreSQL (a fresh schema each),
   and on SQLite alongside, under one cheap load-generator process: two processes against one, same run.
9. Drop-off recovery (bench/recovery.py; ``--no-recovery`` skips it, ``--recovery-only`` runs only it),
   last: its own SQLite file, no server. The sweeper's step ``sweep_dropped_off`` over 10,000 due
   drop-offs in this process (its own work), against the same writes as plain sqlite3 statements in
   the same run; then the expiry path with recovery, and the sweeper's listing query.
10. Prints a table and writes bench/results.json: rps, latency percentiles, errors, the ratio of each
   scenario to healthz, CPU used by client and server during each window, the config, and the goals
   (pass/fail; a missed goal is reported, never an exit status).

A request counts in a scenario's window if its response arrives inside the window; its latency is
send-to-last-byte. An error is a non-2xx status, a broken connection, a timeout or (confirm) a payment
that did not succeed. Only the standard library is used here, so the client stays lean (the widget
section imports Playwright only when it runs, in the orchestrator).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any

from . import hook, recovery, scaleout, webhooks, widget

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results.json"
BENCH_SECRET = "flint-bench-secret-key-not-for-production"
SUCCESS_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
INLINE_ORDER = {"currency": "usd", "line_items": [{"name": "Bench widget", "quantity": 2, "unit_amount": 1250}]}
SCENARIOS = ("healthz", "create_session", "get_order", "hosted_page", "confirm")
GOALS = {"create_session": 0.5, "hosted_page": 0.5, "confirm": 0.35}
HOSTED_PAGE_GZIP_LIMIT = 20 * 1024  # the hosted page's HTML+CSS, gzipped
P99_GOAL_MS = 100.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------------------
# The client (runs in worker processes; stdlib only)
# ----------------------------------------------------------------------------------------------

class _Conn:
    __slots__ = ("reader", "writer", "since", "timed_out")

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.since = 0.0  # monotonic send time of the request in flight, 0 when idle
        self.timed_out = False

    async def open(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the empty line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server_closes). Minimal: status line, Content-Length or chunked, Connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    i = lower.find(b"\r\ncontent-length:")
    if i >= 0:
        j = lower.index(b"\r\n", i + 17)
        length = int(head[i + 17:j])
        body = await reader.readexactly(length) if length else b""
    elif b"\r\ntransfer-encoding: chunked" in lower:
        body = await _read_chunked(reader)
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:  # close-delimited
        body = await reader.read()
        return status, body, True
    return status, body, b"\r\nconnection: close" in lower


async def _run_phase(host: str, port: int, spec: dict, pipe) -> dict:
    """One scenario in this worker: open connections, report ready, wait for "go", run, report."""
    n_conns: int = spec["connections"]
    requests: list[bytes] = spec["requests"]
    cyclic: bool = spec["cyclic"]  # cyclic: round robin forever; else: a pool, each request sent once
    timeout: float = spec["timeout"]
    keep_bodies: bool = spec["return_bodies"]

    conns = [_Conn() for _ in range(n_conns)]
    try:
        await asyncio.gather(*(c.open(host, port) for c in conns))
    except OSError as error:
        for c in conns:
            c.close()
        pipe.send({"ready": False, "error": repr(error)})
        return {}
    pipe.send({"ready": True})
    go = pipe.recv()  # blocking is fine: nothing else runs on this loop yet
    t_start, t_measure, t_end = go["t_start"], go["t_measure"], go["t_end"]

    done_at = array("d")
    latency = array("d")
    bodies: list[bytes] = []
    errors: list[tuple[float, str, str]] = []  # (monotonic time, kind, sample)
    state = {"next": 0, "exhausted_at": None, "sent": 0}
    n_requests = len(requests)
    cpu: dict[str, Any] = {}
    loop = asyncio.get_running_loop()

    def sample_cpu(label: str) -> None:
        times = os.times()
        cpu[label] = (time.monotonic(), times.user + times.system)

    def next_request() -> bytes | None:
        index = state["next"]
        if cyclic:
            state["next"] = index + 1
            return requests[index % n_requests]
        if index >= n_requests:
            if state["exhausted_at"] is None:
                state["exhausted_at"] = time.monotonic()
            return None
        state["next"] = index + 1
        return requests[index]

    async def run_conn(conn: _Conn) -> None:
        monotonic = time.monotonic
        while True:
            if monotonic() >= t_end:
                return
            request = next_request()
            if request is None:
                return
            if conn.writer is None:
                try:
                    await conn.open(host, port)
                except OSError as error:
                    errors.append((monotonic(), "connect_error", repr(error)))
                    await asyncio.sleep(0.05)
                    continue
            t0 = monotonic()
            conn.since = t0
            state["sent"] += 1
            try:
                conn.writer.write(request)  # type: ignore[union-attr]
                status, body, closes = await _read_response(conn.reader)  # type: ignore[arg-type]
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
                t1 = monotonic()
                kind = "timeout" if conn.timed_out else "connection_error"
                errors.append((t1, kind, f"{type(error).__name__}: {error}"[:300]))
                conn.since, conn.timed_out = 0.0, False
                conn.close()
                continue
            t1 = monotonic()
            conn.since = 0.0
            if 200 <= status < 300:
                done_at.append(t1)
                latency.append(t1 - t0)
                bodies.append(body)
            else:
                errors.append((t1, f"http_{status}", body[:500].decode("utf-8", "replace")))
            if closes:
                conn.close()

    async def watchdog() -> None:
        while True:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            for conn in conns:
                if conn.since and now - conn.since > timeout and conn.writer is not None:
                    conn.timed_out = True
                    conn.writer.transport.abort()

    loop.call_at(t_measure, sample_cpu, "measure")
    loop.call_at(t_end, sample_cpu, "end")
    delay = t_start - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    dog = asyncio.create_task(watchdog())
    await asyncio.gather(*(run_conn(c) for c in conns))
    dog.cancel()
    if "end" not in cpu:
        sample_cpu("end")
    if "measure" not in cpu:
        sample_cpu("measure")
    for conn in conns:
        conn.close()
    return {
        "done_at": done_at, "latency": latency, "errors": errors, "sent": state["sent"],
        "exhausted_at": state["exhausted_at"], "cpu": cpu,
        "bodies": bodies if keep_bodies else None,
    }


def _worker_main(pipe, host: str, port: int) -> None:
    while True:
        spec = pipe.recv()
        if spec is None:
            return
        result = asyncio.run(_run_phase(host, port, spec, pipe))
        if result:
            pipe.send(result)


# ----------------------------------------------------------------------------------------------
# The orchestrator
# ----------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_cpu(pid: int) -> float:
    """User+system CPU seconds of a process and all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


class Server:
    def __init__(self, tmp: Path, log_level: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = f"sqlite:///{tmp / 'flint.sqlite3'}"
        self.env = dict(os.environ, FLINT_DATABASE_URL=self.db_url, FLINT_SECRET_KEY=BENCH_SECRET,
                        FLINT_PUBLIC_URL=self.url, FLINT_ENV="development", FLINT_SWEEP_INTERVAL="3600",
                        FLINT_LOG_LEVEL=log_level,
                        # The load comes from one address: keep the per-address limit (and its cost) on,
                        # but out of reach.
                        FLINT_ATTEMPTS_PER_ADDRESS="1000000000")
        self.log_path = tmp / "server.log"
        self.process: subprocess.Popen | None = None

    def seed_merchant(self) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "flint.cli", "merchants", "create", "--name", "Bench Shop",
             "--email", "bench@shop.example", "--password", "bench-password-123", "--json"],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"merchants create failed:\n{out.stdout}\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])["secret_key"]

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flint.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"flint serve did not start:\n{self.logs()[-3000:]}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Client:
    """The pool of worker processes, and running one phase on all of them."""

    def __init__(self, host: str, port: int, workers: int, connections: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.procs = []
        # Spread the connections as evenly as possible (32 over 2 workers: 16 + 16).
        self.shares = [connections // workers + (1 if i < connections % workers else 0) for i in range(workers)]
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, host, port), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()

    def run(self, requests: list[bytes], *, cyclic: bool, warmup: float, duration: float, timeout: float,
            return_bodies: bool, server: Server | None = None) -> dict:
        """Run a phase; returns the merged raw results (and CPU samples when ``server`` is given)."""
        active = [(pipe, share) for pipe, share in zip(self.pipes, self.shares) if share > 0]
        total_share = sum(share for _, share in active)
        for index, (pipe, share) in enumerate(active):
            if cyclic:
                # Each worker starts at a different offset so the workers do not march in step.
                offset = len(requests) * index // len(active)
                part = requests[offset:] + requests[:offset]
            else:
                # A pool: each worker gets its own slice in proportion to its connections.
                start = len(requests) * sum(s for _, s in active[:index]) // total_share
                stop = len(requests) * sum(s for _, s in active[:index + 1]) // total_share
                part = requests[start:stop]
            pipe.send({"connections": share, "requests": part or [b""], "cyclic": cyclic,
                       "timeout": timeout, "return_bodies": return_bodies})
            if not part:
                raise RuntimeError("a pool phase needs at least one request per worker")
        for pipe, _ in active:
            reply = pipe.recv()
            if not reply.get("ready"):
                raise RuntimeError(f"client worker could not connect: {reply.get('error')}")
        t_start = time.monotonic() + 0.05
        t_measure = t_start + warmup
        t_end = t_measure + duration
        for pipe, _ in active:
            pipe.send({"t_start": t_start, "t_measure": t_measure, "t_end": t_end})
        samples = {}
        if server is not None and server.process is not None:
            time.sleep(max(0.0, t_measure - time.monotonic()))
            samples["measure"] = (time.monotonic(), _server_cpu(server.process.pid), _machine_cpu())
            time.sleep(max(0.0, t_end - time.monotonic()))
            if server.alive():
                samples["end"] = (time.monotonic(), _server_cpu(server.process.pid), _machine_cpu())
        results = [pipe.recv() for pipe, _ in active]
        return {"t_measure": t_measure, "t_end": t_end, "results": results, "samples": samples}


def _percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _page_size(url: str) -> dict:
    """The hosted page's weight (CSS and script are inline) and whether it references anything
    outside itself (it must not: no fonts, CDNs or trackers)."""
    import gzip
    import re
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        html = response.read()
    external = re.findall(rb'(?:src|href)="(https?:)?//[^"]*"', html)
    return {"html_bytes": len(html), "gzip_bytes": len(gzip.compress(html, 9)),
            "external_refs": len(external)}


def _summarise(name: str, raw: dict, check_body=None) -> dict:
    """Turn a timed phase's raw results into the numbers we report."""
    t_measure, t_end = raw["t_measure"], raw["t_end"]
    exhausted = [r["exhausted_at"] for r in raw["results"] if r["exhausted_at"] is not None]
    # A pool that ran dry ends the window early: only the span where every connection was busy counts.
    window_end = min([t_end, *exhausted])
    window = window_end - t_measure
    latencies: list[float] = []
    error_kinds: dict[str, int] = {}
    error_samples: dict[str, str] = {}
    warmup_errors = 0
    late_errors = 0
    requests = 0
    for result in raw["results"]:
        bodies = result["bodies"]
        for i, (done, lat) in enumerate(zip(result["done_at"], result["latency"])):
            if check_body is not None and bodies is not None:
                problem = check_body(bodies[i])
                if problem is not None:
                    if t_measure <= done < window_end:
                        error_kinds["unexpected_body"] = error_kinds.get("unexpected_body", 0) + 1
                    elif done < t_measure:
                        warmup_errors += 1
                    else:
                        late_errors += 1
                    error_samples.setdefault("unexpected_body", problem)
                    continue
            if t_measure <= done < window_end:
                requests += 1
                latencies.append(lat)
        for when, kind, sample in result["errors"]:
            if when < t_measure:
                warmup_errors += 1
            elif when < window_end:
                error_kinds[kind] = error_kinds.get(kind, 0) + 1
            else:
                late_errors += 1  # a request still in flight when the window closed
            error_samples.setdefault(kind, sample)
    latencies.sort()
    errors = sum(error_kinds.values())
    summary: dict[str, Any] = {
        "scenario": name,
        "window_s": round(window, 3),
        "requests": requests,
        "rps": round(requests / window, 1) if window > 0 else None,
        "p50_ms": _ms(_percentile(latencies, 50)),
        "p90_ms": _ms(_percentile(latencies, 90)),
        "p99_ms": _ms(_percentile(latencies, 99)),
        "max_ms": _ms(latencies[-1] if latencies else None),
        "mean_ms": _ms(sum(latencies) / len(latencies) if latencies else None),
        "errors": errors,
        "warmup_errors": warmup_errors,
        "after_window_errors": late_errors,
        "errors_total": errors + warmup_errors + late_errors,
        "error_kinds": error_kinds,
        "error_samples": error_samples,
        "pool_exhausted": bool(exhausted),
    }
    # Where the CPU went during the window: the server process (all threads), the client
    # processes, and the whole machine (so a saturated box is visible).
    cpu_ends = [r["cpu"] for r in raw["results"] if "measure" in r["cpu"] and "end" in r["cpu"]]
    samples = raw["samples"]
    if "measure" in samples and "end" in samples:
        (t0, s0, (busy0, total0)), (t1, s1, (busy1, total1)) = samples["measure"], samples["end"]
        span = t1 - t0
        client = sum(c["end"][1] - c["measure"][1] for c in cpu_ends)
        busy_pct = 100 * (busy1 - busy0) / max(1, total1 - total0)
        server_cores, client_cores = (s1 - s0) / span, client / span
        summary["cpu"] = {
            "server_cores": round(server_cores, 2),
            "client_cores": round(client_cores, 2),
            "machine_busy_pct": round(busy_pct, 1),
            # Whatever else ran on the box meanwhile (other test runs...): a noisy measurement.
            "other_cores": round(max(0.0, busy_pct / 100 * (os.cpu_count() or 1) - server_cores - client_cores), 2),
            "server_cpu_ms_per_request": round(1000 * (s1 - s0) / requests, 3) if requests else None,
            "client_cpu_ms_per_request": round(1000 * client / requests, 3) if requests else None,
        }
    return summary


def _http_request(method: str, path: str, host: str, token: str | None = None, body: Any = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines.append("Content-Type: application/json")
    if method != "GET":
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _check_confirm(body: bytes) -> str | None:
    try:
        status = json.loads(body).get("status")
    except ValueError:
        return f"not JSON: {body[:200]!r}"
    return None if status == "succeeded" else f"payment status {status!r}: {body[:300]!r}"


def _json_bodies(raw: dict) -> list[dict]:
    out = []
    for result in raw["results"]:
        for body in result["bodies"] or []:
            try:
                out.append(json.loads(body))
            except ValueError:
                pass
    return out


def _log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _table(rows: list[dict], baseline: float | None) -> str:
    header = f"{'scenario':<16} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'x healthz':>10}"
    lines = [header, "-" * len(header)]

    def fmt(value, spec):
        return format(value, spec) if value is not None else "-"

    for row in rows:
        ratio = row.get("ratio_to_healthz")
        lines.append(f"{row['scenario']:<16} {fmt(row['rps'], '9.1f')} {fmt(row['p50_ms'], '8.2f')} "
                     f"{fmt(row['p99_ms'], '8.2f')} {row['errors_total']:>7} "
                     f"{fmt(ratio, '10.3f')}")
    return "\n".join(lines)


def _goals(rows: dict[str, dict], connections: int) -> dict:
    base = rows.get("healthz", {}).get("rps")
    goals: dict[str, Any] = {}
    for name, target in GOALS.items():
        row = rows.get(name)
        ratio = row.get("ratio_to_healthz") if row else None
        goals[f"{name}_rps_ge_{target}x_healthz"] = {
            "target_ratio": target, "actual_ratio": ratio,
            "actual_rps": row.get("rps") if row else None, "healthz_rps": base,
            "pass": ratio is not None and ratio >= target,
        }
    total_errors = sum(r["errors_total"] for r in rows.values())
    goals["zero_errors"] = {
        "actual": total_errors,
        "by_scenario": {n: r["errors_total"] for n, r in rows.items()},
        "pass": total_errors == 0,
    }
    p99s = {n: r["p99_ms"] for n, r in rows.items() if n in SCENARIOS}
    goals[f"p99_lt_{int(P99_GOAL_MS)}ms_at_32_connections"] = {
        "target_ms": P99_GOAL_MS, "connections": connections, "actual_ms": p99s,
        "pass": all(v is not None and v < P99_GOAL_MS for v in p99s.values()),
        **({"note": f"measured at {connections} connections, not 32"} if connections != 32 else {}),
    }
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per scenario (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="discarded warm-up seconds per scenario (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="client worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default 10)")
    parser.add_argument("--orders", type=int, default=256, help="orders pre-created for get_order (default 256)")
    parser.add_argument("--confirm-headroom", type=float, default=1.25,
                        help="confirm pool = headroom x create_session rate x (warmup+duration) (default 1.25)")
    parser.add_argument("--max-topup-seconds", type=float, default=30.0,
                        help="cap on the un-timed phase that makes sessions for confirm (default 30)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)} (healthz always runs)")
    parser.add_argument("--no-drift-check", action="store_true",
                        help="skip the closing healthz run that checks the baseline did not drift")
    parser.add_argument("--log-level", default="WARNING", help="server FLINT_LOG_LEVEL (default WARNING)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="results JSON path (default bench/results.json)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (database, server log)")
    parser.add_argument("--widget-runs", type=int, default=15,
                        help="measured widget runs per variant in Chromium (default 15)")
    parser.add_argument("--widget-warmup", type=int, default=2, help="discarded widget warm-up runs (default 2)")
    parser.add_argument("--widget-budget", type=float, default=50.0,
                        help="seconds after which the widget runs stop early (default 50)")
    widget_mode = parser.add_mutually_exclusive_group()
    widget_mode.add_argument("--no-widget", action="store_true", help="skip the embedded widget section")
    widget_mode.add_argument("--widget-only", action="store_true",
                             help="run only the embedded widget section (no load scenarios)")
    webhooks_mode = parser.add_mutually_exclusive_group()
    webhooks_mode.add_argument("--no-webhooks", action="store_true", help="skip the webhook delivery section")
    webhooks_mode.add_argument("--webhooks-only", action="store_true",
                               help="run only the webhook delivery section (no server, no widget)")
    parser.add_argument("--webhook-events", type=int, default=5000,
                        help="backlog the worker drains for the throughput figure (default 5000)")
    parser.add_argument("--webhook-rate", type=float, default=450.0,
                        help="events/s produced for the latency figure (default 450)")
    parser.add_argument("--webhook-duration", type=float, default=10.0,
                        help="seconds of that steady production (default 10)")
    parser.add_argument("--webhook-batch", type=int, default=5, help="events per producer transaction (default 5)")
    parser.add_argument("--webhooks-profile", action="store_true",
                        help="run the webhook worker under cProfile and put its top functions in the results")
    hook_mode = parser.add_mutually_exclusive_group()
    hook_mode.add_argument("--no-hook", action="store_true", help="skip the checkout hook section")
    hook_mode.add_argument("--hook-only", action="store_true",
                           help="run only the checkout hook section (its own flint serve; ~10 s)")
    parser.add_argument("--hook-confirms", type=int, default=200,
                        help="measured confirms per kind (app installed / none) in the hook section (default 200)")
    parser.add_argument("--hook-warmup", type=int, default=20,
                        help="discarded confirms per kind before those (default 20)")
    parser.add_argument("--hook-profile", action="store_true",
                        help="also run hook confirms under cProfile in the server and put the growth in the results")
    scaleout_mode = parser.add_mutually_exclusive_group()
    scaleout_mode.add_argument("--no-scaleout", action="store_true", help="skip the scale-out section")
    scaleout_mode.add_argument("--scaleout-only", action="store_true",
                               help="run only the scale-out section (its own flint serve processes; ~90 s)")
    parser.add_argument("--scaleout-connections", type=int, default=32,
                        help="load-generator connections, spread round robin over the servers (default 32)")
    parser.add_argument("--scaleout-duration", type=float, default=5.0,
                        help="measured seconds per scale-out run (default 5)")
    parser.add_argument("--scaleout-warmup", type=float, default=2.0,
                        help="discarded warm-up seconds per scale-out run (default 2)")
    parser.add_argument("--scaleout-rounds", type=int, default=3,
                        help="PostgreSQL rounds, each one run with 1 and one with 2 processes, ABBA order (default 3)")
    parser.add_argument("--scaleout-no-sqlite2", action="store_true",
                        help="skip the two-processes-on-one-SQLite-file run")
    parser.add_argument("--scaleout-profile", action="store_true",
                        help="also run PostgreSQL 1 and 2 processes with cProfile in the servers (not in the ratio)")
    parser.add_argument("--postgres-url", default=None,
                        help="PostgreSQL for the scale-out section (default $FLINT_BENCH_POSTGRES_URL, "
                             f"$FLINT_TEST_POSTGRES_URL or {scaleout.DEFAULT_PG_URL}); a schema per run, dropped after")
    recovery_mode = parser.add_mutually_exclusive_group()
    recovery_mode.add_argument("--no-recovery", action="store_true", help="skip the drop-off recovery section")
    recovery_mode.add_argument("--recovery-only", action="store_true",
                               help="run only the drop-off recovery section (no server, no widget, no webhooks)")
    parser.add_argument("--recovery-sessions", type=int, default=10_000,
                        help="due drop-offs the sweeper turns into recovery links (default 10000, the goal's)")
    parser.add_argument("--recovery-expire", type=int, default=1000,
                        help="sessions with recovery past their expiry, for the expiry path (default 1000; 0 skips)")
    parser.add_argument("--recovery-open", type=int, default=20_000,
                        help="open sessions without recovery also in the database (default 20000)")
    parser.add_argument("--recovery-profile", action="store_true",
                        help="also sweep a second set under cProfile and put its top functions in the results")
    args = parser.parse_args(argv)
    if sum((args.webhooks_only, args.widget_only, args.recovery_only, args.hook_only, args.scaleout_only)) > 1:
        parser.error("--widget-only, --webhooks-only, --recovery-only, --hook-only and --scaleout-only exclude each other")
    if args.scaleout_connections < 2 or args.scaleout_duration <= 0 or args.scaleout_warmup < 0 \
            or args.scaleout_rounds < 1:
        parser.error("--scaleout-connections >= 2, --scaleout-duration > 0, --scaleout-warmup >= 0, --scaleout-rounds >= 1")
    if args.hook_confirms < 10 or args.hook_warmup < 1:
        parser.error("--hook-confirms >= 10, --hook-warmup >= 1")
    if args.recovery_sessions < 1 or args.recovery_expire < 0 or args.recovery_open < 0:
        parser.error("--recovery-sessions >= 1, --recovery-expire >= 0, --recovery-open >= 0")
    if args.webhook_events < 2 or args.webhook_rate <= 0 or args.webhook_duration <= 0 or args.webhook_batch < 1:
        parser.error("--webhook-events >= 2, --webhook-rate > 0, --webhook-duration > 0, --webhook-batch >= 1")
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if "healthz" not in chosen:
        chosen.insert(0, "healthz")
    chosen = [s for s in SCENARIOS if s in chosen]
    if args.connections < 1 or args.workers < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("connections and workers must be >= 1, duration > 0, warmup >= 0")
    args.workers = min(args.workers, args.connections)
    if args.widget_runs < 1 or args.widget_warmup < 0:
        parser.error("--widget-runs must be >= 1, --widget-warmup >= 0")
    if args.widget_only:
        chosen = []
        args.no_webhooks = True
        args.no_recovery = True
        args.no_hook = True
        args.no_scaleout = True
    if args.webhooks_only:
        chosen = []
        args.no_widget = True
        args.no_recovery = True
        args.no_hook = True
        args.no_scaleout = True
    if args.recovery_only:
        chosen = []
        args.no_widget = True
        args.no_webhooks = True
        args.no_hook = True
        args.no_scaleout = True
    if args.hook_only:
        chosen = []
        args.no_widget = True
        args.no_webhooks = True
        args.no_recovery = True
        args.no_scaleout = True
    if args.scaleout_only:
        chosen = []
        args.no_widget = True
        args.no_webhooks = True
        args.no_recovery = True
        args.no_hook = True
    need_server = bool(chosen) or not args.no_widget

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="flint-bench-"))
    server = Server(tmp, args.log_level)
    client: Client | None = None
    rows: dict[str, dict] = {}
    notes: list[str] = []
    widget_out: dict | None = None
    webhooks_out: dict | None = None
    recovery_out: dict | None = None
    hook_out: dict | None = None
    scaleout_out: dict | None = None
    server_alive: bool | None = None  # at the end of the server's part (None: it never ran)
    try:
        if need_server:
            _log(f"seeding a merchant in {tmp}")
            secret = server.seed_merchant()
            server.start()
            _log(f"flint serve is up at {server.url} (pid {server.process.pid})")
        else:
            secret = ""
        if chosen:
            client = Client("127.0.0.1", server.port, args.workers, args.connections)
        host = f"127.0.0.1:{server.port}"
        phase = dict(timeout=args.timeout)
        untimed = dict(cyclic=False, warmup=0.0, timeout=args.timeout, return_bodies=True)

        create_req = _http_request("POST", "/v1/checkout/sessions", host, secret,
                                   {"order": INLINE_ORDER, "mode": "embedded",
                                    "success_url": "https://shop.example/thanks"})
        sessions: list[dict] = []
        hosted_page_size = None

        order_ids: list[str] = []
        if "get_order" in chosen:
            raw = client.run([_http_request("POST", "/v1/orders", host, secret, INLINE_ORDER)] * args.orders,
                             duration=120.0, **untimed)
            order_ids = [o["id"] for o in _json_bodies(raw) if o.get("object") == "order"]
            _log(f"pre-created {len(order_ids)} orders")
            if not order_ids:
                raise RuntimeError("could not pre-create orders: " + json.dumps(
                    [e for r in raw["results"] for e in r["errors"]][:3]))

        run_list = chosen + ([] if args.no_drift_check or not chosen else ["healthz_end"])
        for name in run_list:
            if not server.alive():
                raise RuntimeError(f"the server died before {name}:\n{server.logs()[-3000:]}")
            check = None
            if name in ("healthz", "healthz_end"):
                requests, cyclic, bodies = [_http_request("GET", "/healthz", host)], True, False
            elif name == "create_session":
                requests, cyclic, bodies = [create_req], True, True
            elif name == "get_order":
                requests = [_http_request("GET", f"/v1/orders/{oid}", host, secret) for oid in order_ids]
                cyclic, bodies = True, False
            elif name == "hosted_page":
                # The buyer's hosted checkout page, rendered for open sessions (un-timed set-up).
                raw = client.run([create_req] * 64, duration=120.0, **untimed)
                page_ids = [s["id"] for s in _json_bodies(raw) if s.get("object") == "checkout.session"]
                requests = [_http_request("GET", f"/checkout/{sid}", host) for sid in page_ids]
                cyclic, bodies = True, False
                hosted_page_size = _page_size(server.url + f"/checkout/{page_ids[0]}")
            else:  # confirm
                want = args.connections * 4
                if "create_session" in rows and rows["create_session"]["rps"]:
                    want = max(want, int(rows["create_session"]["rps"] * args.confirm_headroom
                                         * (args.warmup + args.duration)))
                else:
                    want = max(want, int(200 * (args.warmup + args.duration)))
                if len(sessions) < want:
                    _log(f"un-timed: creating {want - len(sessions)} more sessions for confirm "
                         f"(pool {len(sessions)} -> {want})")
                    raw = client.run([create_req] * (want - len(sessions)), duration=args.max_topup_seconds,
                                     **untimed)
                    sessions.extend(s for s in _json_bodies(raw) if s.get("object") == "checkout.session")
                pool = [s for s in sessions if s.get("client_token")]
                requests = [_http_request("POST", f"/v1/checkout/sessions/{s['id']}/confirm", host,
                                          s["client_token"], {"card": SUCCESS_CARD}) for s in pool]
                cyclic, bodies, check = False, True, _check_confirm
                if len(requests) < len(client.procs):
                    raise RuntimeError("no sessions to confirm (create_session failed?)")
                _log(f"confirm pool: {len(requests)} fresh sessions")
            _log(f"running {name}: {args.warmup:g}s warm-up + {args.duration:g}s at {args.connections} connections")
            raw = client.run(requests, cyclic=cyclic, warmup=args.warmup, duration=args.duration,
                             return_bodies=bodies, server=server, **phase)
            row = _summarise(name, raw, check)
            rows[name] = row
            if name == "create_session":
                sessions.extend(s for s in _json_bodies(raw) if s.get("object") == "checkout.session")
            if row.get("cpu", {}).get("other_cores", 0) > 0.25:
                notes.append(f"{name}: other processes used ~{row['cpu']['other_cores']} cores during the window "
                             f"(machine {row['cpu']['machine_busy_pct']}% busy); the numbers are noisy, re-run on a quiet box")
            if row["pool_exhausted"]:
                notes.append(f"{name}: the session pool ran dry after {row['window_s']} s of the {args.duration} s "
                             f"window; rps is over that shorter span (raise --confirm-headroom)")
            _log(f"  {name}: {row['rps']} rps, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
                 f"errors {row['errors']} (+{row['warmup_errors']} in warm-up, +{row['after_window_errors']} after)"
                 + (f", cpu server {row['cpu']['server_cores']} / client {row['cpu']['client_cores']} cores"
                    if "cpu" in row else ""))
            time.sleep(0.3)

        if not args.no_widget:
            # After the load: the server is idle again; one buyer at a time, in a real browser.
            if client is not None:
                client.close()
                client = None
            if not server.alive():
                raise RuntimeError(f"the server died before the widget section:\n{server.logs()[-3000:]}")
            _log("embedded widget: sizes, then time to flint:ready in Chromium")
            try:
                widget_out = widget.run(server.url, secret, runs=args.widget_runs, warmup=args.widget_warmup,
                                        budget_s=args.widget_budget, log=_log)
            except Exception as error:  # reported with the rest; the load scenarios' results still count
                message = f"{type(error).__name__}: {str(error)[:500]}"
                widget_out = {"error": message, "goals": widget.goals_for({}),
                              "notes": [f"the widget section failed: {message}"]}
            notes.extend(widget_out.pop("notes"))

        if need_server:
            server_alive = server.alive()
            server.stop()
        if client is not None:
            client.close()
            client = None
        if not args.no_hook:
            # Its own flint serve (the load server has stopped): one confirm at a time, with and without an app.
            _log(f"hook: {args.hook_warmup} + {args.hook_confirms} confirms each with and without an app whose "
                 f"checkout.before_payment hook answers at once")
            try:
                hook_out = hook.run(tmp / "hook", confirms=args.hook_confirms, warmup=args.hook_warmup,
                                    profile=args.hook_profile, log=_log)
            except Exception as error:  # reported with the rest; the other sections' results still count
                message = f"{type(error).__name__}: {str(error)[:500]}"
                hook_out = {"error": message, "goals": hook.goals_for({}),
                            "notes": [f"the hook section failed: {message}"]}
            notes.extend(hook_out.pop("notes"))
        if not args.no_scaleout:
            # Its own flint serve processes (1 and 2, SQLite and PostgreSQL) and one load-generator process.
            _log(f"scale-out: POST /v1/checkout/sessions, 1 vs 2 flint serve on PostgreSQL ({args.scaleout_rounds} "
                 f"rounds) and SQLite, {args.scaleout_connections} connections, {args.scaleout_warmup:g} s + "
                 f"{args.scaleout_duration:g} s each")
            try:
                scaleout_out = scaleout.run(tmp / "scaleout", pg_url=args.postgres_url,
                                            connections=args.scaleout_connections, warmup=args.scaleout_warmup,
                                            duration=args.scaleout_duration, repeats=args.scaleout_rounds,
                                            sqlite_two=not args.scaleout_no_sqlite2, timeout=args.timeout,
                                            profile=args.scaleout_profile, log=_log)
            except Exception as error:  # reported with the rest; the other sections' results still count
                message = f"{type(error).__name__}: {str(error)[:500]}"
                scaleout_out = {"error": message, "goals": scaleout.goals_for({}),
                                "notes": [f"the scale-out section failed: {message}"]}
            notes.extend(scaleout_out.pop("notes"))
        if not args.no_webhooks:
            # Last, on a quiet box: no flint serve, its own database, one flint worker process.
            _log(f"webhooks: {args.webhook_events} backlogged deliveries through one flint worker, then "
                 f"{args.webhook_rate:g} events/s for {args.webhook_duration:g} s")
            try:
                webhooks_out = webhooks.run(tmp / "webhooks", BENCH_SECRET, events=args.webhook_events,
                                            rate=args.webhook_rate, duration=args.webhook_duration,
                                            batch=args.webhook_batch, profile=args.webhooks_profile, log=_log)
            except Exception as error:  # reported with the rest; the other sections' results still count
                message = f"{type(error).__name__}: {str(error)[:500]}"
                webhooks_out = {"error": message, "goals": webhooks.goals_for({}),
                                "notes": [f"the webhook section failed: {message}"]}
            notes.extend(webhooks_out.pop("notes"))
        if not args.no_recovery:
            # Last: no server, no worker; the sweeper's step in this process over its own database.
            _log(f"recovery: the drop-off sweeper over {args.recovery_sessions} due sessions, against the same "
                 f"writes as plain sqlite3; then {args.recovery_expire} expiring sessions")
            try:
                recovery_out = recovery.run(tmp / "recovery", BENCH_SECRET, sessions=args.recovery_sessions,
                                            expire=args.recovery_expire, open_sessions=args.recovery_open,
                                            profile=args.recovery_profile, log=_log)
            except Exception as error:  # reported with the rest; the other sections' results still count
                message = f"{type(error).__name__}: {str(error)[:500]}"
                recovery_out = {"error": message, "goals": recovery.goals_for({}),
                                "notes": [f"the recovery section failed: {message}"]}
            notes.extend(recovery_out.pop("notes"))
    finally:
        if client is not None:
            client.close()
        if server_alive is None and need_server:
            server_alive = server.alive()
        server.stop()
        server_log = server.logs()
        if args.keep_tmp:
            _log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    baseline = rows.get("healthz", {}).get("rps")
    for row in rows.values():
        row["ratio_to_healthz"] = round(row["rps"] / baseline, 3) if baseline and row["rps"] else None
    goals = _goals(rows, args.connections) if rows else {}
    if hosted_page_size is not None:
        goals["hosted_page_html_css_le_20kb_gzip"] = {
            **hosted_page_size, "actual": hosted_page_size["gzip_bytes"], "limit_bytes": HOSTED_PAGE_GZIP_LIMIT,
            "pass": hosted_page_size["gzip_bytes"] <= HOSTED_PAGE_GZIP_LIMIT and not hosted_page_size["external_refs"],
        }
    drift = None
    if baseline and rows.get("healthz_end", {}).get("rps"):
        drift = round(rows["healthz_end"]["rps"] / baseline - 1, 3)
        if abs(drift) > 0.15:
            notes.append(f"healthz drifted {drift:+.0%} between the first and the last run: the machine's load "
                         f"changed during the benchmark, so the ratios are less trustworthy")
    if widget_out is not None:
        goals.update(widget_out.pop("goals"))
    if webhooks_out is not None:
        goals.update(webhooks_out.pop("goals"))
    if recovery_out is not None:
        goals.update(recovery_out.pop("goals"))
    if hook_out is not None:
        goals.update(hook_out.pop("goals"))
    if scaleout_out is not None:
        goals.update(scaleout_out.pop("goals"))
    if need_server and not server_alive:
        notes.append("the server process had exited before the benchmark stopped it")
    log_errors = [line for line in server_log.splitlines() if '"level": "error"' in line or "Traceback" in line]
    results = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {
            "connections": args.connections, "duration_s": args.duration, "warmup_s": args.warmup,
            "client_workers": args.workers, "timeout_s": args.timeout, "orders": args.orders,
            "scenarios": chosen, "server_log_level": args.log_level, "database": "sqlite (fresh temp file)",
            "client": "raw HTTP/1.1 keep-alive over asyncio streams, one loop per worker process",
            "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
            "widget": None if args.no_widget else {
                "runs": args.widget_runs, "warmup_runs": args.widget_warmup, "budget_s": args.widget_budget},
            "webhooks": None if args.no_webhooks else {
                "events": args.webhook_events, "rate_per_s": args.webhook_rate,
                "duration_s": args.webhook_duration, "batch": args.webhook_batch,
                "profiled": args.webhooks_profile},
            "hook": None if args.no_hook else {
                "confirms": args.hook_confirms, "warmup": args.hook_warmup, "profiled": args.hook_profile},
            "scaleout": None if args.no_scaleout else {
                "connections": args.scaleout_connections, "duration_s": args.scaleout_duration,
                "warmup_s": args.scaleout_warmup, "rounds": args.scaleout_rounds,
                "sqlite_two_processes": not args.scaleout_no_sqlite2, "profiled": args.scaleout_profile},
            "recovery": None if args.no_recovery else {
                "sessions": args.recovery_sessions, "expire": args.recovery_expire,
                "open_sessions": args.recovery_open, "profiled": args.recovery_profile},
        },
        "baseline": "healthz",
        "scenarios": list(rows.values()),
        "ratios_to_healthz": {n: r["ratio_to_healthz"] for n, r in rows.items()},
        "baseline_drift": drift,
        "widget": widget_out,
        "webhooks": webhooks_out,
        "recovery": recovery_out,
        "hook": hook_out,
        "scaleout": scaleout_out,
        "goals": goals,
        "server_log_errors": log_errors[:20],
        "notes": notes,
        "total_runtime_s": round(time.monotonic() - started, 1),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")

    print()
    if rows:
        print(_table(list(rows.values()), baseline))
        print()
    if widget_out is not None:
        print(widget.report(widget_out))
        print()
    if webhooks_out is not None:
        print(webhooks.report(webhooks_out))
        print()
    if hook_out is not None:
        print(hook.report(hook_out))
        print()
    if scaleout_out is not None:
        print(scaleout.report(scaleout_out))
        print()
    if recovery_out is not None:
        print(recovery.report(recovery_out))
        print()
    for key, goal in goals.items():
        detail = goal.get("actual_ratio", goal.get("actual", goal.get("actual_ms")))
        print(f"  {'PASS' if goal['pass'] else 'FAIL'}  {key}  (actual: {detail})")
    for row in rows.values():
        for kind, sample in row["error_samples"].items():
            print(f"  error in {row['scenario']}: {kind} x{row['error_kinds'].get(kind, '?')}: {sample[:300]}")
    for line in log_errors[:5]:
        print(f"  server log: {line[:400]}")
    for note in notes:
        print(f"  note: {note}")
    print(f"\nwrote {output} ({results['total_runtime_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

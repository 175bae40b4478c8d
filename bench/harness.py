"""The benchmark's one toolbox; every section (bench/run.py lists them) measures with these:

- **stats**: nearest-rank percentiles, medians, a latency distribution;
- **CPU**: a process and its threads, a process tree, the machine, and a ``CpuWindow`` that splits the
  machine's busy time over named groups of processes and "other" (the noise of a shared box), with the
  note that flags it;
- **processes**: the bench's environment for Flint, the CLI, ``flint serve`` one or several at a time on
  free ports (through ``support.server``, as the tests start it), other Flint processes, client processes;
- **HTTP**: request bytes (built once, here only), the response-head parser, a JSON call for set-up;
- **receivers**: the tests' receiver, counting connections and timing its own answers;
- **the load generator**: worker processes, each one asyncio loop of raw HTTP/1.1 keep-alive connections
  (``asyncio.Protocol`` callbacks, no stream reader, no task per request), sending single requests or
  units of several (``Step``: a buyer's create + confirm, each next request filled from a regex over the
  previous answer); ``phase_row``, a phase as its row; and a blocking client for one request at a time.

At import, this module needs the standard library and ``support`` (standard library too): the load
generator's processes import it, and the client must stay lean.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing as mp
import os
import re
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from array import array
from pathlib import Path
from typing import Any, Callable, Iterable

from support import ROOT
from support.receiver import Receiver

BENCH_SECRET = "flint-bench-secret-key-not-for-production"
PUBLIC_URL = "http://127.0.0.1:9"  # for Runtimes that never serve pages
SUCCESS_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
INLINE_ORDER = {"currency": "usd", "line_items": [{"name": "Bench widget", "quantity": 2, "unit_amount": 1250}]}
SUCCESS_URL = "https://shop.example/thanks"
CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOISE_CORES = 0.25  # other processes using more than this during a measurement: its figures are noisy


# ----------------------------------------------------------------------------------------------
# Stats
# ----------------------------------------------------------------------------------------------

def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of values sorted ascending."""
    if not sorted_values:
        return None
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[int(rank) - 1]


def median(sorted_values: list[float]) -> float | None:
    if not sorted_values:
        return None
    mid = len(sorted_values) // 2
    return sorted_values[mid] if len(sorted_values) % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def ms(seconds: float | None, digits: int = 2) -> float | None:
    """Seconds as milliseconds, rounded; None (no value, or never: infinity) stays None."""
    if seconds is None or seconds == float("inf"):
        return None
    return round(seconds * 1000, digits)


def distribution(seconds: Iterable[float], digits: int = 3) -> dict:
    """n, p50/p90/p99, min, max and mean in ms."""
    values = sorted(seconds)
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": ms(percentile(values, 50), digits), "p90_ms": ms(percentile(values, 90), digits),
            "p99_ms": ms(percentile(values, 99), digits), "min_ms": ms(values[0], digits),
            "max_ms": ms(values[-1], digits), "mean_ms": ms(sum(values) / len(values), digits)}


# ----------------------------------------------------------------------------------------------
# CPU
# ----------------------------------------------------------------------------------------------

def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process, all its threads; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu() -> float:
    """This process's CPU seconds, all threads."""
    times = os.times()
    return times.user + times.system


def thread_cpu_ns(pid: int) -> tuple[int, int]:
    """(main thread, other threads) on-CPU nanoseconds of a process, from schedstat: exact to the ns, so it
    can be read around each request (/proc/PID/stat counts 10 ms ticks)."""
    main = other = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended
        if int(task) == pid:
            main = ns
        else:
            other += ns
    return main, other


def tree_cpu(root: int | None = None) -> float:
    """CPU seconds of a process and every descendant (say the bench, its server, Playwright's driver,
    Chromium and its renderers), children that exited included (their time is in their parent's
    cutime/cstime)."""
    root = root or os.getpid()
    parent_of, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent_of[int(entry)] = int(fields[1])
        ticks[int(entry)] = sum(int(v) for v in fields[11:15])
    total = 0
    for pid, used in ticks.items():
        walk = pid
        while walk > 1 and walk != root:
            walk = parent_of.get(walk, 0)
        if walk == root:
            total += used
    return total / CLK_TCK


def machine_cpu() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of the whole machine (steal: taken by the hypervisor)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total, values[7] if len(values) > 7 else 0


def postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


Group = Iterable[int] | Callable[[], float]


class CpuWindow:
    """The CPU used from its creation to ``split()``: by named groups (pids, counted while they live, or a
    function giving CPU seconds, such as ``self_cpu``), by the whole machine, and by everything else
    (``other_cores``: other test runs, other agents, what the groups leave out)."""

    def __init__(self, groups: dict[str, Group] | None = None) -> None:
        self.groups = {name: group if callable(group) else list(group) for name, group in (groups or {}).items()}
        self.start = self._snapshot()

    def _snapshot(self) -> tuple[float, tuple[int, int, int], dict[str, dict[int, float]]]:
        values: dict[str, dict[int, float]] = {}
        for name, group in self.groups.items():
            if callable(group):
                values[name] = {0: group()}
            else:
                values[name] = {pid: cpu for pid in group if (cpu := process_cpu(pid)) is not None}
        return time.monotonic(), machine_cpu(), values

    def split(self) -> dict:
        t1, (busy1, total1, steal1), after = self._snapshot()
        t0, (busy0, total0, steal0), before = self.start
        span = max(1e-9, t1 - t0)
        # A group with no process alive at the start is left out (no PostgreSQL backends on SQLite, say).
        seconds = {name: sum(value - before[name][pid] for pid, value in after[name].items() if pid in before[name])
                   for name in self.groups if before[name]}
        jiffies = max(1, total1 - total0)
        busy = (busy1 - busy0) / jiffies
        cores = {name: value / span for name, value in seconds.items()}
        return {"span_s": span, "seconds": seconds, "cores": cores, "machine_busy_pct": 100 * busy,
                "machine_busy_cores": busy * CORES, "machine_idle_cores": max(0.0, CORES - busy * CORES),
                "steal_cores": (steal1 - steal0) / jiffies * CORES,
                "other_cores": max(0.0, busy * CORES - sum(cores.values()))}


def noise_note(what: str, cpu: dict) -> str | None:
    """The note for a measurement during which other processes used more than NOISE_CORES."""
    other = cpu.get("other_cores") or 0
    if other <= NOISE_CORES:
        return None
    busy = cpu.get("machine_busy_pct")
    return (f"{what}: other processes used ~{other} cores" + (f" (machine {busy}% busy)" if busy is not None else "")
            + "; the figures are noisy, re-run on a quiet box")


# ----------------------------------------------------------------------------------------------
# Flint's processes
# ----------------------------------------------------------------------------------------------

BENCH_ENV = {"FLINT_SECRET_KEY": BENCH_SECRET, "FLINT_ENV": "development", "FLINT_SWEEP_INTERVAL": "3600",
             "FLINT_LOG_LEVEL": "WARNING",
             # The load comes from one address: the per-address attempt limit stays on (and its cost with
             # it), out of reach.
             "FLINT_ATTEMPTS_PER_ADDRESS": "1000000000"}


def bench_env(db_url: str, **extra: str) -> dict[str, str]:
    """The environment of a Flint process of the bench (CLI, worker): development, the sweeper idle,
    warnings only."""
    return {**os.environ, "FLINT_DATABASE_URL": db_url, **BENCH_ENV, **extra}


def bench_config(db_url: str):
    """A Runtime's configuration for a database of the bench (sections that call Flint's services in
    this process)."""
    from flint.config import Config

    return Config(database_url=db_url, secret_keys=(BENCH_SECRET,), public_url=PUBLIC_URL, env="development",
                  log_level="WARNING")


def flint_cli(env: dict[str, str], *args: str) -> str:
    """``flint ARGS`` to its end; its stdout, or RuntimeError with its output."""
    out = subprocess.run([sys.executable, "-m", "flint.cli", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"flint {' '.join(args[:2])} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def seed_merchant(env: dict[str, str], name: str = "Bench Shop", email: str = "bench@shop.example") -> str:
    """A merchant made by ``flint merchants create --json`` (which migrates first); its secret key."""
    out = flint_cli(env, "merchants", "create", "--name", name, "--email", email, "--password",
                    "bench-password-123", "--json")
    return json.loads(out.strip().splitlines()[-1])["secret_key"]


def start_servers(folder: Path, db_url: str, count: int = 1, *, extra_env: dict[str, str] | None = None,
                  env_for: Callable[[int], dict[str, str]] | None = None, command: list[str] | None = None) -> list:
    """``count`` ``flint serve`` processes on one database (support.server, as the tests start them, with
    the bench's environment plus ``extra_env`` and ``env_for(i)``), started together and returned once
    every one answers /healthz. ``command`` replaces ``python -m flint.cli serve`` (a profiled serve)."""
    # Not at the top: support.server imports httpx and Flint, which the load generator's processes (they
    # import this module) have no use for.
    from support.server import launch_server, wait_ready

    servers = []
    try:
        for i in range(count):
            env = {**BENCH_ENV, **(extra_env or {}), **(env_for(i) if env_for else {})}
            servers.append(launch_server(folder, env, db_url, command=command))
        deadline = time.monotonic() + 30
        for server in servers:
            wait_ready(server, deadline=deadline)
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: list) -> None:
    """SIGTERM to all at once, then each is waited for (and killed after 10 s)."""
    from support.server import stop_process

    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        stop_process(server.process)


def start_process(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Another Flint process of the bench (``flint worker`` under its probe), its output in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    from support.server import stop_process as stop

    stop(process, timeout)


class ChildProcess:
    """``target(pipe, *args)`` in a spawned process (a client apart from the bench's own process and its
    receiver thread): it waits for "go", then sends one result back."""

    def __init__(self, target: Callable, *args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.name = target.__name__
        self.process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def result(self, timeout: float) -> Any:
        self.pipe.send("go")
        deadline = time.monotonic() + timeout
        while not self.pipe.poll(0.1):
            if not self.process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} failed (exit code {self.process.exitcode})")
        return self.pipe.recv()

    def __enter__(self) -> "ChildProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


def pstats_table(source: Any, sort: str = "tottime", limit: int = 25) -> list[str]:
    """pstats' table of the top ``limit`` functions, from its header line, for a cProfile.Profile or a file."""
    import io
    import pstats

    stream = io.StringIO()
    pstats.Stats(str(source) if isinstance(source, Path) else source, stream=stream).strip_dirs().sort_stats(
        sort).print_stats(limit)
    lines = [line.rstrip() for line in stream.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return lines[start:start + limit + 1]


def log_errors(text: str) -> list[str]:
    """The lines of a Flint log that report an error."""
    return [line for line in text.splitlines() if '"level": "error"' in line or "Traceback" in line]


def read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------

def http_request(method: str, path: str, host: str, *, token: str | None = None, json_body: Any = None,
                 body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one HTTP/1.1 request, built once: the clients send them as they are."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if json_body is not None:
        body = json.dumps(json_body, separators=(",", ":")).encode()
        lines.append("Content-Type: application/json")
    if method != "GET" or body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chained_request(method: str, path: str, host: str, *, token: str | None = None, body: bytes = b"",
                    content_type: str | None = None, headers: dict[str, str] | None = None) -> tuple[bytes, bytes]:
    """A follow-up request of a unit (see ``Step``) as (head, body) templates, built once: ``{name}`` in the
    path, the token, the headers or the body is filled with what an earlier answer of the same unit said
    (and ``{buyer}`` with a new buyer's address, ``next_buyer``), and the Content-Length is added once the
    body is filled."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n").encode(), body


# Buyers' addresses. A sale's buyers come from many networks, and Flint counts payment attempts per address
# (30 a minute by default): the load section's server trusts X-Forwarded-For from loopback (as behind a load
# balancer, FLINT_TRUSTED_PROXIES) and every checkout's confirm says it comes from a buyer of its own, so
# the per-address limit stays on at its default, with its real cost. (One address making every attempt
# would need the limit lifted, and its rolling count would then read thousands of rows per attempt.)
_buyers = itertools.count(1)


def buyer_address(n: int) -> str:
    """The n-th buyer's address: 10.x.y.z, distinct for 16 million buyers, per worker process (pid)."""
    return f"10.{(os.getpid() + (n >> 16)) & 255}.{(n >> 8) & 255}.{n & 255}"


def next_buyer() -> bytes:
    return buyer_address(next(_buyers)).encode()


BUYERS_BEHIND_PROXY = {"FLINT_TRUSTED_PROXIES": "127.0.0.1",
                       "FLINT_ATTEMPTS_PER_ADDRESS": "30"}  # Flint's default (config.py), BENCH_ENV lifts it


def parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, Content-Length or None, chunked, the server closes) of a response head (without its blank
    line): all that the clients read of a response, besides its end."""
    lower = head.lower()
    i = lower.find(b"\r\ncontent-length:")
    length = None
    if i >= 0:
        j = lower.find(b"\r\n", i + 17)
        length = int(lower[i + 17:j if j >= 0 else len(lower)])
    return int(head[9:12]), length, b"\r\ntransfer-encoding: chunked" in lower, b"\r\nconnection: close" in lower


def dechunk(data: bytes) -> bytes:
    """A chunked body (complete, as received) as its content."""
    parts, at = [], 0
    while True:
        end = data.index(b"\r\n", at)
        size = int(data[at:end].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(parts)
        parts.append(data[end + 2:end + 2 + size])
        at = end + 2 + size + 2


def fetch(method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 15) -> tuple[int, bytes]:
    """One plain call for set-up and sizes (not timed): (status, body). urllib asks for no gzip, so the
    body is the bytes as served."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# ----------------------------------------------------------------------------------------------
# Receivers
# ----------------------------------------------------------------------------------------------

class _TimedReader:
    def __init__(self, reader, conn: dict) -> None:
        self._reader, self._conn = reader, conn

    async def readline(self) -> bytes:
        line = await self._reader.readline()
        if self._conn["started"] is None and line:  # the request line of a new request
            self._conn["started"] = time.perf_counter()
            parts = line.split(b" ", 2)
            self._conn["path"] = parts[1].decode("latin-1") if len(parts) > 1 else ""
        return line

    async def readexactly(self, n: int) -> bytes:
        return await self._reader.readexactly(n)


class _TimedWriter:
    def __init__(self, writer, conn: dict, answered: Callable[[dict, float], None]) -> None:
        self._writer, self._conn, self._answered = writer, conn, answered

    def write(self, data: bytes) -> None:
        self._writer.write(data)
        started = self._conn["started"]
        if started is not None:  # request line read -> answer handed to the socket
            self._answered(self._conn, time.perf_counter() - started)
        self._conn["started"] = None

    def __getattr__(self, name: str):
        return getattr(self._writer, name)


class BenchReceiver(Receiver):
    """support.receiver.Receiver, answering as it does, that also counts connections (with keep-alive and
    a pool: about the most requests a client had in flight) and, ``timed``, times its own answers where
    the app is: from reading a request line to handing the answer to the socket (the app's own answer
    time, not the network's or the client's). Timing wraps the streams, so it is off unless asked."""

    def __init__(self, timed: bool = False) -> None:
        super().__init__()
        self.timed = timed
        self.connections = 0
        self.open_connections = 0
        self.max_open_connections = 0
        self.connections_by_path: dict[str, int] = {}  # under the path of each connection's first request
        self.answer_times: dict[str, list[float]] = {}

    async def _handle(self, reader, writer) -> None:
        self.connections += 1
        self.open_connections += 1
        self.max_open_connections = max(self.max_open_connections, self.open_connections)
        try:
            if self.timed:
                conn: dict[str, Any] = {"started": None, "path": "", "counted": False}
                await super()._handle(_TimedReader(reader, conn), _TimedWriter(writer, conn, self._answered))
            else:
                await super()._handle(reader, writer)
        finally:
            self.open_connections -= 1

    def _answered(self, conn: dict, seconds: float) -> None:
        with self.lock:
            if not conn["counted"]:
                conn["counted"] = True
                self.connections_by_path[conn["path"]] = self.connections_by_path.get(conn["path"], 0) + 1
            self.answer_times.setdefault(conn["path"], []).append(seconds)

    def served(self, path: str) -> list[float]:
        """The answer times of ``path`` so far (timed receivers)."""
        with self.lock:
            return list(self.answer_times.get(path, []))

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.scripts.clear()
            self.answer_times.clear()
            self.connections_by_path.clear()
        self.connections = 0
        self.max_open_connections = self.open_connections


# ----------------------------------------------------------------------------------------------
# The load generator (runs in worker processes)
# ----------------------------------------------------------------------------------------------

class Step(dict):
    """One request of a unit of several (a buyer's checkout: create, then confirm). The unit's first request
    comes from the phase's requests as usual; each later one is ``request`` (``chained_request``'s templates)
    filled with the values its earlier answers gave. ``capture`` names what to take from this step's 2xx
    answer: a bytes regex whose first group is the value (a search over that one body, no JSON). A plain
    dict, so it crosses to the worker processes as it is."""

    def __init__(self, name: str, *, request: tuple[bytes, bytes] | None = None,
                 capture: dict[str, bytes] | None = None) -> None:
        super().__init__(name=name, request=request, capture=capture or {})


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time: the next is sent from inside
    ``data_received`` as soon as an answer is complete."""

    def __init__(self, phase: "_Phase", port: int) -> None:
        self.phase = phase
        self.port = port
        self.port_index = phase.ports.index(port)
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1  # total bytes of the answer once its head is read; -1: head not read yet
        self.body_at = 0
        self.chunked = False
        self.closes = False
        self.status = 0
        self.sent_at = 0.0  # 0: idle
        self.unit_at = 0.0  # when the unit's first request was written (a unit is one request unless chained)
        self.step = 0  # the step of a chained unit in flight
        self.values: dict[str, bytes] = {}
        self.stopped = False
        self.connected = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status, length, self.chunked, self.closes = parse_head(bytes(buf[:end]))
            self.body_at = end + 4
            if length is not None:
                self.need = end + 4 + length
            elif self.chunked or self.status in (204, 304) or 100 <= self.status < 200:
                self.need = end + 4
            else:  # close-delimited: not what a keep-alive server sends; a broken answer
                self._broken("no_content_length", bytes(buf[:300]).decode("latin-1"))
                return
        if self.chunked:
            if not buf.endswith(b"0\r\n\r\n"):
                return
        elif len(buf) < self.need:
            return
        self._complete()

    def connection_lost(self, exc) -> None:  # type: ignore[override]
        self.transport = None
        phase = self.phase
        if phase.closing:
            return
        if not self.connected.done():
            self.connected.set_exception(exc or ConnectionError("closed before connecting"))
            return
        if self.sent_at:
            phase.error("connection_error", repr(exc) if exc else "server closed the connection")
            self.sent_at = 0.0
        phase.reopen(self)

    def send(self) -> None:
        phase = self.phase
        now = time.monotonic()
        if now >= phase.t_end:
            phase.idle(self)
            return
        if self.transport is None:  # lost while idle: connect again
            phase.reopen(self)
            return
        request = phase.next_request(self.port)
        if request is None:  # a pool, all sent
            phase.idle(self)
            return
        self.step = 0
        self.unit_at = now
        self._write(request, now)

    def _write(self, request: bytes, now: float) -> None:
        self.buf.clear()
        self.need = -1
        self.sent_at = now
        self.phase.sent += 1
        self.transport.write(request)  # type: ignore[union-attr]

    def _next_step(self, now: float) -> bool:
        """A chained unit's next request, from this answer's captures; False if the unit cannot go on (the
        error is recorded) or the window is over."""
        phase = self.phase
        step = phase.chain[self.step]
        if step["capture"]:
            body = self._body()
            for name, pattern in step["capture"].items():
                found = pattern.search(body)
                if found is None:
                    phase.errors.append((now, f"{step['name']}:no_{name}", body[:300].decode("utf-8", "replace")))
                    return False
                self.values[name] = found.group(1)
        if now >= phase.t_end:
            return False
        self.step += 1
        head, body = phase.chain[self.step]["request"]
        self.values["buyer"] = next_buyer()
        for name, value in self.values.items():
            key = b"{" + name.encode() + b"}"
            head, body = head.replace(key, value), body.replace(key, value)
        self._write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body, now)
        return True

    def _body(self) -> bytes:
        body = bytes(self.buf[self.body_at:])
        return dechunk(body) if self.chunked else body

    def _complete(self) -> None:
        now = time.monotonic()
        phase = self.phase
        chain = phase.chain
        if 200 <= self.status < 300:
            if chain is not None and self.step < len(chain) - 1:
                if self._next_step(now):
                    return
                self.sent_at = 0.0
                self.send()  # the unit ends here (counted as an error, or the window is over)
                return
            # A unit counts when its last answer completes: latency from its first request written.
            phase.done_at.append(now)
            phase.latency.append(now - self.unit_at)
            phase.port_of.append(self.port_index)
            if phase.bodies is not None:
                phase.bodies.append(self._body())
        else:
            kind = f"http_{self.status}" if chain is None else f"{chain[self.step]['name']}:http_{self.status}"
            phase.errors.append((now, kind, self._body()[:500].decode("utf-8", "replace")))
        self.sent_at = 0.0
        if self.closes and self.transport is not None:  # the server closes after this answer: reconnect
            self.transport.abort()
            return
        self.send()

    def _broken(self, kind: str, sample: str) -> None:
        self.phase.error(kind, sample)
        self.sent_at = 0.0
        if self.transport is not None:
            self.transport.abort()  # connection_lost reopens


class _Phase:
    """One phase in one worker process: its connections, its share of the requests, what happened."""

    def __init__(self, host: str, ports: list[int], spec: dict) -> None:
        self.host, self.ports = host, ports
        self.requests: dict[int, list[bytes]] = spec["requests"]
        self.cyclic: bool = spec["cyclic"]  # round robin for the whole window; else a pool, each sent once
        self.timeout: float = spec["timeout"]
        self.n_conns: int = spec["connections"]
        self.bodies: list[bytes] | None = [] if spec["keep_bodies"] else None
        chain = spec.get("chain")
        self.chain: list[dict] | None = [
            {**step, "capture": {name: re.compile(pattern) for name, pattern in step["capture"].items()}}
            for step in chain] if chain else None
        self.done_at = array("d")  # 2xx answers: when each completed, its latency, its port
        self.latency = array("d")
        self.port_of = array("b")
        self.errors: list[tuple[float, str, str]] = []  # (when, kind, sample)
        self.sent = self.reconnects = self.cursor = 0
        self.exhausted_at: float | None = None
        self.conns: list[_Conn] = []
        self.t_measure = self.t_end = float("inf")
        self.running = 0
        self.finished: asyncio.Future | None = None
        self.closing = False
        self.cpu: dict[str, tuple[float, float]] = {}

    def next_request(self, port: int) -> bytes | None:
        requests, index = self.requests[port], self.cursor
        if self.cyclic:
            self.cursor = index + 1
            return requests[index % len(requests)]
        if index >= len(requests):
            if self.exhausted_at is None:
                self.exhausted_at = time.monotonic()
            return None
        self.cursor = index + 1
        return requests[index]

    def error(self, kind: str, sample: str) -> None:
        self.errors.append((time.monotonic(), kind, sample[:300]))

    async def _connect(self, port: int) -> _Conn:
        conn = _Conn(self, port)
        await asyncio.get_running_loop().create_connection(lambda: conn, self.host, port)
        await conn.connected
        return conn

    async def open_all(self) -> None:
        # Connection i goes to ports[i % n]: the servers share the load round robin, without a balancer.
        self.conns = list(await asyncio.gather(
            *(self._connect(self.ports[i % len(self.ports)]) for i in range(self.n_conns))))

    def reopen(self, old: _Conn) -> None:
        if self.finished is None or old.stopped:  # before the start, send() reconnects it; after its end, none
            return
        if self.closing or time.monotonic() >= self.t_end:
            self.idle(old)
            return
        self.reconnects += 1

        async def again() -> None:
            try:
                new = await self._connect(old.port)
            except OSError as error:
                self.error("connect_error", repr(error))
                await asyncio.sleep(0.05)
                self.reopen(old)
                return
            self.conns[self.conns.index(old)] = new
            new.send()

        asyncio.get_running_loop().create_task(again())

    def idle(self, conn: _Conn) -> None:
        """A connection stops: the window is over, or the pool is empty."""
        conn.sent_at = 0.0
        if conn.stopped:
            return
        conn.stopped = True
        self.running -= 1
        if self.running <= 0 and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)

    def _sample_cpu(self, label: str) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu[label] = (time.monotonic(), usage.ru_utime + usage.ru_stime)

    def _watchdog(self) -> None:
        now = time.monotonic()
        for conn in self.conns:
            if conn.sent_at and now - conn.sent_at > self.timeout:
                conn._broken("timeout", f"no complete answer within {self.timeout} s")
        if self.finished is not None and not self.finished.done():
            asyncio.get_running_loop().call_later(0.25, self._watchdog)

    async def run(self, t_start: float, t_measure: float, t_end: float) -> dict:
        loop = asyncio.get_running_loop()  # its clock is time.monotonic(), system wide: the orchestrator's
        self.t_measure, self.t_end = t_measure, t_end
        self.finished = loop.create_future()
        self.running = len(self.conns)
        loop.call_at(t_measure, self._sample_cpu, "measure")
        loop.call_at(t_end, self._sample_cpu, "end")
        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        loop.call_later(0.25, self._watchdog)
        for conn in self.conns:
            conn.send()
        # Every connection stops on its first completion after t_end; a request then in flight gets up to
        # the timeout, after which it is cut and counted as an error after the window.
        try:
            await asyncio.wait_for(asyncio.shield(self.finished),
                                   timeout=max(0.0, t_end - time.monotonic()) + self.timeout + 1)
        except asyncio.TimeoutError:
            pass
        self.closing = True
        for conn in self.conns:
            if conn.sent_at:
                self.error("cut_at_end", "still in flight when the phase ended")
            if conn.transport is not None:
                conn.transport.abort()
        for label in ("measure", "end"):  # a pool that ran dry before the window's edges
            if label not in self.cpu:
                self._sample_cpu(label)
        return {"done_at": self.done_at, "latency": self.latency, "port": self.port_of, "bodies": self.bodies,
                "errors": self.errors, "sent": self.sent, "reconnects": self.reconnects,
                "exhausted_at": self.exhausted_at, "cpu": self.cpu}


async def _run_phase(host: str, ports: list[int], spec: dict, pipe) -> dict | None:
    phase = _Phase(host, ports, spec)
    try:
        await phase.open_all()
    except OSError as error:
        pipe.send({"ready": False, "error": repr(error)})
        return None
    pipe.send({"ready": True})
    go = pipe.recv()  # blocking is fine: nothing else runs on this loop yet
    return await phase.run(go["t_start"], go["t_measure"], go["t_end"])


def _generator_main(pipe, host: str, ports: list[int]) -> None:
    while True:
        spec = pipe.recv()
        if spec is None:
            return
        result = asyncio.run(_run_phase(host, ports, spec, pipe))
        if result is not None:
            pipe.send(result)


class LoadGenerator:
    """``workers`` processes (spawned once, kept for every phase), each one asyncio loop with its share of
    ``connections`` raw HTTP/1.1 keep-alive connections. Request bytes are built by the caller, once; an
    answer is read for its status line and Content-Length (or the end of a chunked body) only, and its
    body is kept only when asked (after the window it is parsed, never on the hot path)."""

    def __init__(self, ports: list[int], *, connections: int, workers: int = 1, host: str = "127.0.0.1") -> None:
        ctx = mp.get_context("spawn")
        self.ports = list(ports)
        self.pipes: list = []
        self.procs: list = []
        # The connections spread as evenly as possible (32 over 2 workers: 16 + 16).
        shares = [connections // workers + (1 if i < connections % workers else 0) for i in range(workers)]
        self.shares = [share for share in shares if share > 0]
        for _ in self.shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_generator_main, args=(child, host, self.ports), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

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

    def run(self, requests: list[bytes] | dict[int, list[bytes]], *, cyclic: bool, warmup: float, duration: float,
            timeout: float, keep_bodies: bool = False, during: Callable[[str], None] | None = None,
            chain: list[Step] | None = None) -> dict:
        """One phase: ``warmup`` s then ``duration`` s measured. ``requests`` (per port when several): sent
        round robin for the whole phase (``cyclic``), or a pool, each sent once, the phase ending when it
        is empty. With ``chain`` (its first step names what the request's answer gives, its later steps the
        requests that follow on the same connection), each of those requests starts a unit, and what is
        counted, timed and kept is the unit: from writing its first request to its last answer's last byte
        (``bodies``: that last answer's); a failed step ends the unit as an error named after the step. ``during("before")`` is called 0.3 s before the window, ``("measure")`` as it opens and
        ``("end")`` as it closes (CPU snapshots, profilers). Returns the raw results (see ``tally``)."""
        by_port = requests if isinstance(requests, dict) else {port: requests for port in self.ports}
        total = sum(self.shares)
        for index, (pipe, share) in enumerate(zip(self.pipes, self.shares)):
            part = {}
            for port, all_requests in by_port.items():
                n = len(all_requests)
                if cyclic:  # each worker starts at another offset, so the workers do not march in step
                    offset = n * index // len(self.shares)
                    part[port] = all_requests[offset:] + all_requests[:offset]
                else:  # a pool: each worker its own slice, in proportion to its connections
                    start, stop = n * sum(self.shares[:index]) // total, n * sum(self.shares[:index + 1]) // total
                    part[port] = all_requests[start:stop]
                if not part[port]:
                    raise RuntimeError("a phase needs at least one request per worker")
            pipe.send({"connections": share, "requests": part, "cyclic": cyclic, "timeout": timeout,
                       "keep_bodies": keep_bodies, "chain": [dict(step) for step in chain] if chain else None})
        for pipe in self.pipes:
            reply = pipe.recv()
            if not reply.get("ready"):
                raise RuntimeError(f"the load generator could not connect: {reply.get('error')}")
        t_start = time.monotonic() + 0.05
        t_measure = t_start + warmup
        t_end = t_measure + duration
        for pipe in self.pipes:
            pipe.send({"t_start": t_start, "t_measure": t_measure, "t_end": t_end})
        if during is not None:
            for moment, at in (("before", t_measure - 0.3), ("measure", t_measure), ("end", t_end)):
                time.sleep(max(0.0, at - time.monotonic()))
                during(moment)
        results = [pipe.recv() for pipe in self.pipes]
        return {"t_measure": t_measure, "t_end": t_end, "ports": self.ports, "results": results}


def tally(raw: dict, check: Callable[[bytes], str | None] | None = None) -> dict:
    """A phase's raw results as counts. A 2xx answer (whose body passes ``check``, if given) counts in the
    window when it completes inside it; the window ends early when a pool ran dry (``pool_exhausted``).
    Errors (other statuses, broken connections, timeouts, bodies ``check`` refuses) are counted by kind in
    the window, and apart in the warm-up and after the window."""
    t_measure, t_end = raw["t_measure"], raw["t_end"]
    exhausted = [r["exhausted_at"] for r in raw["results"] if r["exhausted_at"] is not None]
    window_end = min([t_end, *exhausted])
    ports = raw["ports"]
    latencies: list[float] = []
    ok_by_port = {port: 0 for port in ports}
    kinds: dict[str, int] = {}
    samples: dict[str, str] = {}
    n = {"warmup_errors": 0, "after_window_errors": 0, "warmup_ok": 0, "after_window_ok": 0}

    def error(when: float, kind: str, sample: str) -> None:
        if when < t_measure:
            n["warmup_errors"] += 1
        elif when < window_end:
            kinds[kind] = kinds.get(kind, 0) + 1
        else:
            n["after_window_errors"] += 1  # a request still in flight when the window closed
        samples.setdefault(kind, sample)

    for result in raw["results"]:
        bodies = result["bodies"]
        for i, (done, latency) in enumerate(zip(result["done_at"], result["latency"])):
            if check is not None and bodies is not None:
                problem = check(bodies[i])
                if problem is not None:
                    error(done, "unexpected_body", problem)
                    continue
            if done < t_measure:
                n["warmup_ok"] += 1
            elif done < window_end:
                latencies.append(latency)
                ok_by_port[ports[result["port"][i]]] += 1
            else:
                n["after_window_ok"] += 1
        for when, kind, sample in result["errors"]:
            error(when, kind, sample)
    latencies.sort()
    errors = sum(kinds.values())
    cpu = [r["cpu"] for r in raw["results"]]
    return {"window_s": window_end - t_measure, "requests": len(latencies), "latencies": latencies,
            "ok_by_port": ok_by_port, "errors": errors, "error_kinds": kinds, "error_samples": samples, **n,
            "errors_total": errors + n["warmup_errors"] + n["after_window_errors"],
            "pool_exhausted": bool(exhausted), "sent": sum(r["sent"] for r in raw["results"]),
            "reconnects": sum(r["reconnects"] for r in raw["results"]),
            "client_cpu_s": sum(c["end"][1] - c["measure"][1] for c in cpu),
            "client_span_s": max((c["end"][0] - c["measure"][0] for c in cpu), default=0.0)}


def phase_row(name: str, raw: dict, cpu: dict | None, check=None, *, per_unit: int = 1) -> dict:
    """A timed phase as the numbers of its row. ``cpu`` is a ``CpuWindow.split()`` with the groups "server"
    and "client". In a chained phase (``per_unit`` HTTP requests per unit) ``requests``, ``rps``, the
    latencies and the CPU "per request" are per unit; the per-HTTP-request figures are added beside them."""
    t = tally(raw, check)
    latencies, window, requests = t["latencies"], t["window_s"], t["requests"]
    summary: dict[str, Any] = {
        "scenario": name, "window_s": round(window, 3), "requests": requests,
        "rps": round(requests / window, 1) if window > 0 else None,
        "p50_ms": ms(percentile(latencies, 50)), "p90_ms": ms(percentile(latencies, 90)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(latencies[-1] if latencies else None),
        "mean_ms": ms(sum(latencies) / len(latencies) if latencies else None),
        "errors": t["errors"], "warmup_errors": t["warmup_errors"], "after_window_errors": t["after_window_errors"],
        "errors_total": t["errors_total"], "error_kinds": t["error_kinds"], "error_samples": t["error_samples"],
        "pool_exhausted": t["pool_exhausted"],
    }
    if cpu is not None:
        # Where the CPU went during the window: the server process (all threads), the client processes,
        # and the whole machine (so a saturated box, or a noisy one, is visible).
        server, client = cpu["cores"]["server"], cpu["cores"]["client"]
        summary["cpu"] = {
            "server_cores": round(server, 2), "client_cores": round(client, 2),
            "machine_busy_pct": round(cpu["machine_busy_pct"], 1), "other_cores": round(cpu["other_cores"], 2),
            "server_cpu_ms_per_request": round(1000 * cpu["seconds"]["server"] / requests, 3) if requests else None,
            "client_cpu_ms_per_request": round(1000 * cpu["seconds"]["client"] / requests, 3) if requests else None,
        }
    if per_unit > 1:
        summary["http_requests_per_unit"] = per_unit
        summary["http_rps"] = round(per_unit * requests / window, 1) if window > 0 else None
        if cpu is not None and requests:
            summary["cpu"]["client_cpu_ms_per_http_request"] = round(
                1000 * cpu["seconds"]["client"] / (per_unit * requests), 3)
    return summary


def json_bodies(raw: dict) -> list[dict]:
    """The kept bodies of a phase's 2xx answers, parsed (those that are JSON)."""
    out = []
    for result in raw["results"]:
        for body in result["bodies"] or []:
            try:
                out.append(json.loads(body))
            except ValueError:
                pass
    return out


# ----------------------------------------------------------------------------------------------
# One request at a time
# ----------------------------------------------------------------------------------------------

class BlockingClient:
    """One blocking keep-alive socket, one request at a time, for single-request latencies (from the first
    byte written to the last byte read) where a load would blur them."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.connects = 0

    def _open(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.connects += 1

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _fill(self) -> None:
        data = self.sock.recv(65536)  # type: ignore[union-attr]
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def request(self, raw: bytes) -> tuple[int, bytes, float]:
        """(status, body, seconds from the first byte written to the last byte read)."""
        if self.sock is None:
            self._open()
        started = time.perf_counter()
        self.sock.sendall(raw)  # type: ignore[union-attr]
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, length, chunked, closes = parse_head(head)
        if length is not None:
            body = self._take(length)
        elif chunked:
            parts = []
            while True:
                size = int(self._line().split(b";", 1)[0], 16)
                if size == 0:
                    while self._line() != b"":
                        pass
                    break
                parts.append(self._take(size))
                self._take(2)
            body = b"".join(parts)
        else:
            body = b""
        elapsed = time.perf_counter() - started
        if closes:
            self.close()
        return status, body, elapsed

"""A cheap load generator for the scale-out section: one process, one asyncio loop, raw HTTP/1.1.

    python -m bench.loadgen    (driven by bench/scaleout.py over stdin/stdout; stdlib only)

Protocol with the orchestrator, one JSON document per line:

1. stdin:  the spec ``{"host", "ports": [...], "requests": {"PORT": "<request, latin-1>"}, "connections",
   "timeout"}``;
2. stdout: ``{"ready": true}`` once every connection is open (or ``{"ready": false, "error"}``);
3. stdin:  ``{"t_start", "t_measure", "t_end"}``, ``time.monotonic()`` instants (CLOCK_MONOTONIC is
   system wide, so the orchestrator's clock is this process's clock);
4. stdout: the results.

Why it is cheap: it is ``asyncio.Protocol`` callbacks, no stream reader, no task per request. Each
connection sends one fixed request (bytes built once per port), waits for the whole answer, records it
and sends the next from inside ``data_received``. A response is parsed only for its status code and
``Content-Length`` (or the end of a chunked body). Connection ``i`` goes to ``ports[i % len(ports)]``:
the servers share the load round robin, without a balancer in between.

Counted in the window [t_measure, t_end): responses that complete inside it. 200 is a success (its
latency, write to last byte, is kept); any other status, a broken connection or a timeout is an error
(kind and a sample). Errors in the warm-up and requests still in flight at t_end are counted apart.
The process measures its own CPU (``resource.getrusage``) over the window, so the orchestrator can tell
how much of the box the client itself took.
"""
from __future__ import annotations

import asyncio
import json
import resource
import socket
import sys
import time
from array import array


class Stats:
    def __init__(self, ports: list[int]) -> None:
        self.latency = array("d")  # seconds, 200s completed in the window
        self.ok_by_port = {port: 0 for port in ports}
        self.errors: dict[str, int] = {}
        self.error_samples: dict[str, str] = {}
        self.warmup_ok = 0
        self.late_ok = 0  # 200s that completed after the window (not counted)
        self.warmup_errors = 0
        self.late_errors = 0
        self.sent = 0
        self.reconnects = 0

    def error(self, now: float, window: tuple[float, float], kind: str, sample: str) -> None:
        t_measure, t_end = window
        if now < t_measure:
            self.warmup_errors += 1
        elif now < t_end:
            self.errors[kind] = self.errors.get(kind, 0) + 1
        else:
            self.late_errors += 1
        self.error_samples.setdefault(kind, sample[:300])


class Conn(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time."""

    def __init__(self, gen: "LoadGen", port: int) -> None:
        self.gen = gen
        self.port = port
        self.request = gen.requests[port]
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1  # total bytes of the response once the head is parsed; -1: head not read yet
        self.chunked = False
        self.status = 0
        self.sent_at = 0.0  # 0: idle
        self.connected = asyncio.get_running_loop().create_future()

    # -- asyncio callbacks -----------------------------------------------------------------------
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
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            i = head.find(b"\r\ncontent-length:")
            if i >= 0:
                j = head.find(b"\r\n", i + 17)
                self.need = end + 4 + int(head[i + 17:j if j >= 0 else len(head)])
            elif b"\r\ntransfer-encoding: chunked" in head:
                self.chunked = True
                self.need = end + 4
            elif self.status in (204, 304):
                self.need = end + 4
            else:  # close-delimited: not what a keep-alive server sends; treat as a broken answer
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
        if self.gen.closing:
            return
        if not self.connected.done():
            self.connected.set_exception(exc or ConnectionError("closed before connecting"))
            return
        if self.sent_at:
            self._broken("connection_error", repr(exc) if exc else "server closed the connection")
        self.gen.reopen(self)

    # -- request cycle ---------------------------------------------------------------------------
    def send(self) -> None:
        gen = self.gen
        now = time.monotonic()
        if now >= gen.t_end:
            self.sent_at = 0.0
            gen.idle(self)
            return
        if self.transport is None:  # lost while idle (before the start): connect again
            self.sent_at = 0.0
            gen.reopen(self)
            return
        self.buf.clear()
        self.need = -1
        self.chunked = False
        self.sent_at = now
        gen.stats.sent += 1
        self.transport.write(self.request)

    def _complete(self) -> None:
        now = time.monotonic()
        gen = self.gen
        stats = gen.stats
        status = self.status
        if status == 200:
            if gen.t_measure <= now < gen.t_end:
                stats.latency.append(now - self.sent_at)
                stats.ok_by_port[self.port] += 1
            elif now < gen.t_measure:
                stats.warmup_ok += 1
            else:
                stats.late_ok += 1
        else:
            body = bytes(self.buf[:400]).decode("utf-8", "replace")
            stats.error(now, (gen.t_measure, gen.t_end), f"http_{status}", body)
        self.sent_at = 0.0
        self.send()

    def _broken(self, kind: str, sample: str) -> None:
        now = time.monotonic()
        gen = self.gen
        gen.stats.error(now, (gen.t_measure, gen.t_end), kind, sample)
        self.sent_at = 0.0
        if self.transport is not None:
            self.transport.abort()  # connection_lost reopens


class LoadGen:
    def __init__(self, spec: dict) -> None:
        self.host: str = spec["host"]
        self.ports: list[int] = [int(p) for p in spec["ports"]]
        self.requests = {int(p): r.encode("latin-1") for p, r in spec["requests"].items()}
        self.n_conns: int = spec["connections"]
        self.timeout: float = spec.get("timeout", 10.0)
        self.closing = False
        self.stats = Stats(self.ports)
        self.conns: list[Conn] = []
        self.t_measure = self.t_end = float("inf")
        self.running = 0
        self.finished: asyncio.Future | None = None
        self.cpu: dict[str, float] = {}

    async def _connect(self, port: int) -> Conn:
        loop = asyncio.get_running_loop()
        conn = Conn(self, port)
        await loop.create_connection(lambda: conn, self.host, port)
        await conn.connected
        return conn

    async def open_all(self) -> None:
        self.conns = list(await asyncio.gather(
            *(self._connect(self.ports[i % len(self.ports)]) for i in range(self.n_conns))))

    def reopen(self, old: Conn) -> None:
        if self.finished is None:  # before the start: send() reconnects it
            return
        if self.closing or time.monotonic() >= self.t_end:
            self.idle(old)
            return
        self.stats.reconnects += 1

        async def again() -> None:
            try:
                new = await self._connect(old.port)
            except OSError as error:
                self.stats.error(time.monotonic(), (self.t_measure, self.t_end), "connect_error", repr(error))
                await asyncio.sleep(0.05)
                self.reopen(old)
                return
            self.conns[self.conns.index(old)] = new
            new.send()

        asyncio.get_running_loop().create_task(again())

    def idle(self, conn: Conn) -> None:
        """A connection stops (the window is over, or it could not go on)."""
        if getattr(conn, "_stopped", False):
            return
        conn._stopped = True  # type: ignore[attr-defined]
        self.running -= 1
        if self.running <= 0 and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)

    def _sample_cpu(self, label: str) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu[label] = time.monotonic()
        self.cpu[label + "_cpu"] = usage.ru_utime + usage.ru_stime

    def _watchdog(self) -> None:
        now = time.monotonic()
        for conn in self.conns:
            if conn.sent_at and now - conn.sent_at > self.timeout:
                conn._broken("timeout", f"no complete answer within {self.timeout} s")
        if self.finished is not None and not self.finished.done():
            asyncio.get_running_loop().call_later(0.25, self._watchdog)

    async def run(self, t_start: float, t_measure: float, t_end: float) -> None:
        loop = asyncio.get_running_loop()
        self.t_measure, self.t_end = t_measure, t_end
        self.finished = loop.create_future()
        self.running = len(self.conns)
        loop.call_at(t_measure, self._sample_cpu, "measure")
        loop.call_at(t_end, self._sample_cpu, "end")
        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        loop.call_later(0.25, self._watchdog)
        for conn in self.conns:
            conn.send()
        # Every connection stops on its first completion after t_end; a request in flight then is
        # given up to the timeout, after which it counts as late and the connection is cut.
        try:
            await asyncio.wait_for(asyncio.shield(self.finished), timeout=max(0.0, t_end - time.monotonic())
                                   + self.timeout + 1)
        except asyncio.TimeoutError:
            pass
        self.closing = True
        for conn in self.conns:
            if conn.sent_at:
                self.stats.late_errors += 1
            if conn.transport is not None:
                conn.transport.abort()
        if "end" not in self.cpu:
            self._sample_cpu("end")

    def result(self) -> dict:
        stats = self.stats
        window = self.t_end - self.t_measure
        latency = sorted(stats.latency)
        cpu = self.cpu.get("end_cpu", 0.0) - self.cpu.get("measure_cpu", 0.0)
        span = self.cpu.get("end", self.t_end) - self.cpu.get("measure", self.t_measure)
        return {
            "window_s": round(window, 3),
            "ok": len(latency),
            "latency_ms": [round(v * 1000, 3) for v in latency],
            "ok_by_port": {str(p): n for p, n in stats.ok_by_port.items()},
            "errors": stats.errors,
            "error_samples": stats.error_samples,
            "warmup_ok": stats.warmup_ok,
            "after_window_ok": stats.late_ok,
            "warmup_errors": stats.warmup_errors,
            "after_window_errors": stats.late_errors,
            "sent": stats.sent,
            "reconnects": stats.reconnects,
            "cpu_s": round(cpu, 4),
            "cpu_span_s": round(span, 4),
        }


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    spec = json.loads(await reader.readline())
    gen = LoadGen(spec)
    try:
        await gen.open_all()
    except OSError as error:
        print(json.dumps({"ready": False, "error": repr(error)}), flush=True)
        return
    print(json.dumps({"ready": True}), flush=True)
    go = json.loads(await reader.readline())
    await gen.run(go["t_start"], go["t_measure"], go["t_end"])
    print(json.dumps(gen.result()), flush=True)


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()

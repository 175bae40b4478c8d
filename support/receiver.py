"""A real HTTP webhook receiver on a loopback port, for tests and the benchmark.

A small HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies) in its own thread,
so it never shares an event loop with the code under test. Each path has a script: answer these
statuses in turn (then the last one forever), optionally after a delay. Every request is recorded
with its headers (lower-cased), exact body bytes and arrival time.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival


@dataclass
class Script:
    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    served: int = 0
    body: bytes = b""  # what to answer (a hook's JSON, say); empty for webhooks

    def next_status(self) -> int:
        status = self.statuses[min(self.served, len(self.statuses) - 1)]
        self.served += 1
        return status


REASONS = {200: "OK", 204: "No Content", 410: "Gone", 500: "Internal Server Error", 503: "Service Unavailable"}


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self.lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- setup ---------------------------------------------------------------------------------------

    def start(self) -> "Receiver":
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=512))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="webhook-receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, statuses: list[int] | None = None, delay: float = 0.0, body: bytes = b"") -> str:
        with self.lock:
            self.scripts[path] = Script(statuses or [200], delay, body=body)
        return self.url(path)

    # -- reading ---------------------------------------------------------------------------------------

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.at(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(got)} of {count} requests arrived within {timeout} s")
            time.sleep(0.02)

    # -- serving ---------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                _, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = (await reader.readline()).decode("latin-1")
                    if line in ("\r\n", "\n", ""):
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                arrived = time.time()
                with self.lock:
                    self.received.append(Received(path, headers, body, arrived))
                    script = self.scripts.setdefault(path, Script())
                    status, delay, answer = script.next_status(), script.delay, script.body
                if delay:
                    await asyncio.sleep(delay)
                writer.write(f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
                             f"Content-Type: application/json\r\nContent-Length: {len(answer)}\r\n"
                             "Connection: keep-alive\r\n\r\n".encode() + answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

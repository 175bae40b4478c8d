"""The hook caller's pooled HTTP client belongs to one event loop. A Flint app stopping on its loop closes
its own client and never touches one left by a loop that has ended (as each test, or each `asyncio.run`,
ends its own): closing that one raised "Event loop is closed" and failed the app's shutdown."""
from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flint.hooks import service as hooks


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client's pool keeps the connection open

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def answering_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the ended loop's socket, which nobody can close now
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_stopping_on_one_loop_leaves_an_ended_loops_client_alone(answering_url):
    async def call_on_a_loop_that_then_ends():
        answer = await hooks._http().get(answering_url)  # noqa: SLF001 (the module's pool is under test)
        assert answer.status_code == 200  # and its connection stays in the pool when the loop ends

    asyncio.run(call_on_a_loop_that_then_ends())

    async def stop_like_the_app():
        ours = hooks._http()  # noqa: SLF001
        await hooks.close_clients()  # the app's after_serving: must not raise for the ended loop's client
        return ours

    assert asyncio.run(stop_like_the_app()).is_closed


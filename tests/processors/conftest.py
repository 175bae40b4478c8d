"""localstripe (a test-time tool, GPL-3.0: started here as a separate process, never imported by Flint
and never shipped) and servers that misbehave the ways a processor's network does."""
from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest

from flint.processors.stripe import StripeProcessor
from support import localstripe as support_localstripe

SECRET_KEY = "sk_test_flint_localstripe"


class LocalStripe(support_localstripe.LocalStripe):
    def __init__(self, folder) -> None:
        super().__init__(folder, SECRET_KEY)

    def authenticate(self, intent_id: str, success: bool) -> None:
        """What Stripe.js and the card issuer do with the buyer in a browser: localstripe's own endpoint."""
        intent = httpx.get(f"{self.url}/v1/payment_intents/{intent_id}", auth=(SECRET_KEY, ""), timeout=5).json()
        answer = httpx.post(f"{self.url}/v1/payment_intents/{intent_id}/_authenticate",
                            data={"client_secret": intent["client_secret"], "success": str(success).lower(),
                                  "key": "pk_test_flint_localstripe"},
                            timeout=5)
        answer.raise_for_status()


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory):
    server = LocalStripe(tmp_path_factory.mktemp("localstripe"))
    yield server
    server.stop()


@pytest.fixture
async def stripe_connector(localstripe):
    connector = StripeProcessor(SECRET_KEY, api_base=localstripe.url, timeout_seconds=5)
    yield connector
    await connector.aclose()


class SilentServer:
    """A TCP server that accepts and then either never answers (``hang``) or drops the connection
    after reading the request (``drop``): a processor that hangs or dies mid-call."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.server: asyncio.base_events.Server | None = None
        self.requests = 0
        self.handlers: set[asyncio.Task] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handlers.add(asyncio.current_task())
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await reader.read(65536)
            self.requests += 1
            if self.mode == "hang":
                await asyncio.sleep(3600)
        writer.close()

    async def __aenter__(self) -> str:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        self.server = await asyncio.start_server(self._handle, sock=listener)
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1)

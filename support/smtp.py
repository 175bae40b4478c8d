"""A real SMTP server for the mail tests (aiosmtpd, on a free loopback port, in a thread of the test
process): it keeps every message it accepts, and can be told to misbehave the way SMTP servers do:
refuse for a while (4xx), refuse an address for good (5xx), stall past the client's timeout, drop the
connection after the message's data and before its answer, or be down altogether."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from support import free_port

# What the next transactions meet (``fail_next``): an SMTP answer ("451 ..."), or one of these.
STALL = "stall"  # no answer to DATA until long after any client timeout; the message is not kept
DROP = "drop"  # the connection is closed once the data arrived, before any answer; not kept


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = field(default_factory=time.time)  # wall clock, as flint.clock (no offset) reads it

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=email_policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        refusal = self.server.refused.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        server = self.server
        with server.lock:
            action = server.plan.pop(0) if server.plan else None
            server.transactions += 1
        if action == STALL:
            await asyncio.sleep(server.stall_seconds)
            return "451 4.4.2 too late"
        if action == DROP:
            smtp.transport.abort()
            return "250 never heard"
        if action is not None:
            return action
        if server.delay:
            await asyncio.sleep(server.delay)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        with server.lock:
            server.messages.append(received)
        if server.on_message is not None:
            server.on_message(received)  # e.g. kill the sender now: it got the data, not yet our answer
        return "250 2.0.0 OK queued"


class SmtpServer:
    def __init__(self, port: int | None = None, *, delay: float = 0.0) -> None:
        self.port = port or free_port()
        self.delay = delay  # before each accepted message's answer, so that mails are in flight together
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.plan: list[str] = []  # what the next DATA transactions meet, in order
        self.refused: dict[str, str] = {}  # address -> its RCPT refusal
        self.transactions = 0
        self.stall_seconds = 5.0
        self.on_message: Callable[[Received], None] | None = None
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def fail_next(self, action: str, times: int = 1) -> None:
        with self.lock:
            self.plan.extend([action] * times)

    def refuse(self, address: str, answer: str = "550 5.1.1 No such user here") -> None:
        self.refused[address.lower()] = answer

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def by_message_id(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = {}
        for received in self.received():
            out.setdefault(received.message_id, []).append(received)
        return out

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} mails arrived within {timeout} s")
            time.sleep(0.01)
        return self.received()

    async def until(self, count: int, timeout: float = 10) -> list[Received]:
        """As ``wait_for``, without blocking the test's event loop (where an in-process worker runs)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} mails arrived within {timeout} s")
            await asyncio.sleep(0.01)
        return self.received()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

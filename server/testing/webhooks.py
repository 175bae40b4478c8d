"""The merchant's webhook endpoint in a test run: a small HTTP server on 127.0.0.1 in a thread of the test
process (it stands for the merchant's backend, not for Flint), registered as a webhook endpoint of the
run's merchant for every event type. Every delivery is verified with the endpoint's secret by the
``standardwebhooks`` package, exactly as a merchant's receiver would; one that does not verify is refused
with 400 and recorded, so a test can see it.

``WebhookReceiver`` lives for the session; each test gets a ``Webhooks`` view of it that only sees what
arrived after it was made, so an event of an earlier test never satisfies a later ``wait_for``."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/flint/webhooks"


@dataclass
class Delivery:
    """One request to the receiver: ``status`` is what it answered (200 accepted, 400 refused because it
    did not verify, else a status asked for with ``fail_next``); ``event`` is the verified event, or None;
    ``reason`` says why it was refused."""
    headers: dict[str, str]
    body: bytes
    status: int
    event: dict[str, Any] | None = None
    reason: str = ""
    at: float = field(default_factory=time.time)


class WebhookReceiver:
    """The receiver itself (session-long). ``start(flint_server)`` listens and registers the endpoint."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.secret = ""
        self.endpoint_id = ""
        self.url = ""
        self._failing: list[int] = []
        self._changed = threading.Condition()
        self._verifier: Any = None  # standardwebhooks.Webhook, once the endpoint's secret is known
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, flint_server: Any) -> WebhookReceiver:
        from standardwebhooks import Webhook

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._receive(dict(self.headers.items()), body, self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows what matters
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="flint-webhooks", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{PATH}"
        with flint_server.client() as api:
            created = api.post("/v1/webhook_endpoints", json={"url": self.url, "events": ["*"]})
        if created.status_code != 200:
            self.stop()
            raise AssertionError(f"registering the webhook endpoint failed: {created.status_code} {created.text}")
        self.endpoint_id, self.secret = created.json()["id"], created.json()["secret"]
        self._verifier = Webhook(self.secret)
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """The next ``count`` deliveries that verify are answered ``status`` (not accepted: Flint retries)."""
        with self._changed:
            self._failing.extend([status] * count)

    def _receive(self, headers: dict[str, str], body: bytes, handler: BaseHTTPRequestHandler) -> None:
        from standardwebhooks import WebhookVerificationError

        try:
            if self._verifier is None:
                raise WebhookVerificationError("the endpoint's secret is not known yet")
            event = self._verifier.verify(body, headers)
            delivery = Delivery(headers, body, 200, event=event if isinstance(event, dict) else json.loads(body))
        except (WebhookVerificationError, ValueError) as refused:
            delivery = Delivery(headers, body, 400, reason=str(refused) or type(refused).__name__)
        with self._changed:
            if delivery.status == 200 and self._failing:
                delivery.status, delivery.reason = self._failing.pop(0), "fail_next"
            self.deliveries.append(delivery)
            self._changed.notify_all()
        handler.send_response(delivery.status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def wait(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Waits until ``predicate()`` (called under the lock) returns something truthy; returns it, or
        None at the deadline."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = predicate()
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self._changed.wait(left)


class Webhooks:
    """What one test sees of the receiver (the ``flint_webhooks`` fixture): only deliveries that arrived
    after this view was made. ``url``, ``secret`` and ``endpoint_id`` are the registered endpoint's."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self._receiver = receiver
        with receiver._changed:
            self._start = len(receiver.deliveries)
        self._returned: set[str] = set()
        self.url, self.secret, self.endpoint_id = receiver.url, receiver.secret, receiver.endpoint_id

    @property
    def deliveries(self) -> list[Delivery]:
        """Every request since this view was made, accepted or not, in arrival order."""
        with self._receiver._changed:
            return self._receiver.deliveries[self._start:]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The verified, accepted events since this view was made, each once (deliveries are at least once)."""
        seen: dict[str, dict[str, Any]] = {}
        for delivery in self.deliveries:
            if delivery.status == 200 and delivery.event is not None:
                seen.setdefault(delivery.event["id"], delivery.event)
        return list(seen.values())

    @property
    def rejected(self) -> list[Delivery]:
        """The deliveries refused because they did not verify (bad signature, stale timestamp, ...)."""
        return [d for d in self.deliveries if d.status == 400]

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answers the next ``count`` verified deliveries with ``status``, so Flint retries them (see its
        delivery log, or ``flint_server.advance_clock`` to make the retry due at once)."""
        self._receiver.fail_next(count, status)

    def wait_for(self, type: str, timeout: float = 10, *, order_id: str | None = None,
                 where: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """Returns the first verified event of ``type`` (e.g. "order.paid") accepted since this view was
        made and not returned by an earlier call, waiting up to ``timeout`` seconds; ``order_id`` and
        ``where(event)`` narrow it down. Raises AssertionError listing what did arrive."""
        def match() -> dict[str, Any] | None:
            for delivery in self._receiver.deliveries[self._start:]:
                event = delivery.event
                if (delivery.status == 200 and event is not None and event.get("type") == type
                        and event["id"] not in self._returned
                        and (order_id is None or event.get("order_id") == order_id)
                        and (where is None or where(event))):
                    return event
            return None

        event = self._receiver.wait(match, timeout)
        if event is None:
            arrived = [f"{d.status} {d.event['type'] if d.event else d.reason}" for d in self.deliveries]
            raise AssertionError(f"no verified {type!r} webhook{f' for {order_id}' if order_id else ''} "
                                 f"within {timeout} s; this test received: {arrived or 'nothing'}")
        self._returned.add(event["id"])
        return event


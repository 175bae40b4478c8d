"""The shop's webhook receiver: Flint's deliveries, verified with the ``standardwebhooks`` package
(the raw body bytes and the ``webhook-*`` headers), kept in memory for the ``GET /webhooks`` page.

Flint delivers at least once: a retry, or a redelivery asked for by the merchant, carries the same
``webhook-id`` (the event's id), so the inbox acknowledges it again without storing it twice.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timezone

from standardwebhooks import Webhook, WebhookVerificationError

KEEP = 50  # events shown on the page
REMEMBER = 10_000  # webhook-ids remembered for deduplication (many more than are shown)


@dataclass(frozen=True)
class Received:
    received_at: datetime
    webhook_id: str
    event_id: str
    type: str
    order_id: str | None


class Rejected(Exception):
    """A delivery that did not verify: why (logged; the sender gets a plain 400)."""


def check_secret(secret: str) -> Webhook:
    """The verifier for ``secret``; ValueError when it is not ``whsec_`` + base64 (a configuration
    mistake, reported at startup rather than as 400s later)."""
    try:
        return Webhook(secret)
    except Exception as error:  # binascii.Error, EmptyWebhookSecretError, ...
        raise ValueError(f"the webhook secret is not a Standard Webhooks secret (whsec_ + base64): "
                         f"{type(error).__name__}") from None


class Inbox:
    """Verified deliveries, newest first (the latest ``KEEP``), deduplicated by ``webhook-id``.

    Everything here runs on the shop's event loop without awaiting, so a check-then-store cannot
    interleave with another request's."""

    def __init__(self, secret: str) -> None:
        self._webhook = check_secret(secret)
        self._events: deque[Received] = deque(maxlen=KEEP)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.received = 0
        self.duplicates = 0
        self.rejected = 0

    def accept(self, body: bytes, headers: dict[str, str]) -> Received | None:
        """Verify and store a delivery. Returns it, or None for a redelivery already stored;
        raises Rejected when the signature (or a webhook-* header) is missing or wrong."""
        try:
            event = self._webhook.verify(body, headers)
        except (WebhookVerificationError, ValueError) as error:
            # ValueError: a malformed header (e.g. a signature without "v1,"), bad base64, a body
            # that is not UTF-8 or not JSON.
            self.rejected += 1
            raise Rejected(str(error) or type(error).__name__) from None
        webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]  # verify() required it
        if webhook_id in self._seen:
            self.duplicates += 1
            self._seen.move_to_end(webhook_id)
            return None
        self._seen[webhook_id] = None
        if len(self._seen) > REMEMBER:
            self._seen.popitem(last=False)
        event = event if isinstance(event, dict) else {}
        received = Received(received_at=datetime.now(timezone.utc), webhook_id=webhook_id,
                            event_id=str(event.get("id") or webhook_id), type=str(event.get("type") or "?"),
                            order_id=event.get("order_id") if isinstance(event.get("order_id"), str) else None)
        self._events.appendleft(received)
        self.received += 1
        return received

    def latest(self) -> list[Received]:
        return list(self._events)

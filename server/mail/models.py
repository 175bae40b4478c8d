"""The outbox's rows (the emails table) and what the API shows of them: never the body, never card data."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint import clock

RECEIPT, RECOVERY, PAYMENT_LINK = "receipt", "recovery", "payment_link"
KINDS = (RECEIPT, RECOVERY, PAYMENT_LINK)
# Only recovery emails can be unsubscribed from: a receipt or a link the buyer asked for is not marketing.
SUPPRESSIBLE = (RECOVERY,)

PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
SENDING = "sending"  # claimed by a worker until lease_until; attempts already counts this attempt
SENT = "sent"  # the SMTP server accepted it
FAILED = "failed"  # given up: refused permanently (5xx), or every retry spent
SUPPRESSED = "suppressed"  # the buyer unsubscribed while it waited: never sent
STATUSES = (PENDING, SENDING, SENT, FAILED, SUPPRESSED)


@dataclass(frozen=True)
class Email:
    id: str
    merchant_id: str
    order_id: str | None
    payment_link_id: str | None
    kind: str
    to_address: str
    locale: str
    cause: str  # the exactly-once key: one row per cause, ever
    context: str  # JSON text: what the mail shows, frozen when the cause happened
    message_id: str  # "<...@domain>", fixed at enqueue: every attempt (a resend after a crash too) carries it
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    lease_until: str | None
    created_at: str
    updated_at: str
    sent_at: str | None

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.context)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "email",
            "kind": self.kind,
            "to": self.to_address,
            "status": self.status,
            "attempts": self.attempts,
            "order": self.order_id,
            "payment_link": self.payment_link_id,
            "locale": self.locale,
            "last_error": self.last_error,
            "created_at": clock.public(self.created_at),
            "sent_at": clock.public(self.sent_at),
        }


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to, as the worker hands it to ``service.record_outcomes``: the claimed row
    (its lease decides whether the outcome still applies), the new status (sent, pending again, failed)
    and for a retry when."""
    email: Email
    status: str
    error: str | None = None
    next_attempt_at: str | None = None
    unclaimed: bool = False  # given back unattempted (a stopping worker): its claim is not counted as an attempt

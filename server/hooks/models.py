from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint import clock
from flint.apps.models import App

HOOK = "checkout.before_payment"
OUTCOMES = ("answered", "timeout", "error", "invalid")


@dataclass(frozen=True)
class Hooked:
    """An installed app to ask before a payment: its installation consented to the hook."""
    installation_id: str
    app: App
    # The keys of the checkout fields its merchant consented to: the only fields the hook hears of and
    # may refuse (field_error).
    field_keys: frozenset[str] = frozenset()


@dataclass
class HookCall:
    """One call of the hook, as the merchant reads it (GET /v1/hook_calls)."""
    id: str
    merchant_id: str
    app_id: str
    installation_id: str
    order_id: str
    channel: str
    checkout_session_id: str | None
    payment_link_id: str | None
    outcome: str  # one of OUTCOMES
    status_code: int | None
    latency_ms: int
    actions: str  # JSON: the valid actions it answered
    ignored: str  # JSON: what it answered that Flint ignores
    applied: str  # JSON: what Flint did with this call
    error: str | None
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": "hook_call", "hook": HOOK, "app_id": self.app_id,
                "installation_id": self.installation_id, "order_id": self.order_id, "channel": self.channel,
                "checkout_session_id": self.checkout_session_id, "payment_link_id": self.payment_link_id,
                "outcome": self.outcome, "status_code": self.status_code, "latency_ms": self.latency_ms,
                "actions": json.loads(self.actions), "ignored": json.loads(self.ignored),
                "applied": json.loads(self.applied), "error": self.error,
                "created_at": clock.public(self.created_at)}

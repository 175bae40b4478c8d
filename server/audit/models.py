"""The audit trail's rows (docs/api.md 15): an action on a merchant's keys, settings, webhooks, apps or
team that no event records, with who did it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint.actors import Actor

# Every action the trail records, in stable words (what the Activity list and its tests match on).
ACTIONS = {
    "api_key.created": "Created an API key",
    "api_key.revoked": "Revoked an API key",
    "settings.updated": "Changed the settings",
    "webhook_endpoint.secret_rolled": "Rolled a webhook endpoint's signing secret",
    "webhook_delivery.retried": "Retried a webhook delivery",
    "installation.update_approved": "Approved an app's update",
    "staff.invited": "Invited a team member",
    "staff.invitation_revoked": "Revoked an invitation",
    "staff.removed": "Removed a team member",
    "payment_link.sent": "Sent a payment link by email",
}


@dataclass(frozen=True)
class Entry:
    id: str
    merchant_id: str
    actor_type: str
    actor_id: str | None
    action: str
    object_id: str | None
    changes: str  # JSON object text, as stored
    created_at: str

    @property
    def actor(self) -> Actor:
        return Actor(self.actor_type, self.actor_id)

    @property
    def changed(self) -> dict[str, Any]:
        return json.loads(self.changes)

    @property
    def words(self) -> str:
        return ACTIONS.get(self.action, self.action)

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint import clock
from flint.actors import created_by

ENABLED, DISABLED, DELETED = "enabled", "disabled", "deleted"
# Who owns an endpoint (docs/api.md 12): the merchant; an app's webhook_url, for one installation (signed with
# the app's own secret, never listed through the API); or an endpoint an app made with webhooks:write,
# which its installation alone lists and changes, and which dies with it.
OWNER_MERCHANT, OWNER_APP, OWNER_INSTALLATION = "merchant", "app", "installation"
# An app's endpoint after its uninstall: no new events, but what was due (app.uninstalled) still goes.
RETIRED = "retired"
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


@dataclass
class Endpoint:
    id: str
    merchant_id: str
    url: str
    events: str  # JSON list
    description: str | None
    status: str
    disabled_reason: str | None
    secret: str  # sealed (security.SecretBox)
    previous_secret: str | None
    previous_expires_at: str | None
    failing_since: str | None
    created_at: str
    updated_at: str
    app_id: str | None = None  # an app's endpoint for one installation (oauth/service.py)
    installation_id: str | None = None
    owner: str = OWNER_MERCHANT
    # For an app's endpoints: the installation's consented scopes (JSON), what decides what they may receive.
    installation_scopes: str | None = None
    created_by_type: str | None = None
    created_by_id: str | None = None

    @property
    def event_filters(self) -> list[str]:
        return json.loads(self.events)

    def to_dict(self, secret: str | None = None) -> dict[str, Any]:
        out = {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "events": self.event_filters,
            "description": self.description,
            "status": self.status,
            "disabled_reason": self.disabled_reason,
            "installation_id": self.installation_id,
            "created_by": created_by(self.created_by_type, self.created_by_id),
            "created_at": clock.public(self.created_at),
        }
        if secret is not None:
            out["secret"] = secret  # only in the response that created or rotated it
        return out


@dataclass
class Delivery:
    id: str
    endpoint_id: str
    merchant_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: str | None
    lease_until: str | None
    final_attempt: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: str | None
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_delivery",
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "last_attempt_at": clock.public(self.last_attempt_at) if self.last_attempt_at else None,
            "next_attempt_at": clock.public(self.next_attempt_at) if self.next_attempt_at else None,
            "created_at": clock.public(self.created_at),
        }


@dataclass
class Attempt:
    id: str
    delivery_id: str
    attempted_at: str
    status_code: int | None
    error: str | None
    duration_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_attempt",
            "delivery_id": self.delivery_id,
            "attempted_at": clock.public(self.attempted_at),
            "status_code": self.status_code,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }

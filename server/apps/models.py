from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint import clock

HOOK_BEFORE_PAYMENT = "checkout.before_payment"
HOOKS = (HOOK_BEFORE_PAYMENT,)
ALLOW, BLOCK = "allow", "block"


@dataclass
class App:
    id: str
    developer_merchant_id: str
    name: str
    description: str | None
    client_id: str
    client_secret_hash: str  # SHA-256 hex digest (security.hash_secret)
    webhook_secret: str  # sealed (security.SecretBox)
    previous_webhook_secret: str | None  # sealed
    previous_webhook_secret_expires_at: str | None
    redirect_uris: str  # JSON list, exactly as registered
    scopes: str  # JSON list
    webhook_url: str | None
    webhook_events: str  # JSON list
    hook_url: str | None
    hooks: str  # JSON list
    hook_failure_mode: str
    created_at: str
    updated_at: str
    checkout_fields: str = "[]"  # JSON list of field definitions (docs/api.md 14)

    @property
    def checkout_field_list(self) -> list[dict[str, Any]]:
        return json.loads(self.checkout_fields)

    @property
    def redirect_uri_list(self) -> list[str]:
        return json.loads(self.redirect_uris)

    @property
    def scope_list(self) -> list[str]:
        return json.loads(self.scopes)

    @property
    def event_filters(self) -> list[str]:
        return json.loads(self.webhook_events)

    @property
    def hook_list(self) -> list[str]:
        return json.loads(self.hooks)

    def to_dict(self, *, client_secret: str | None = None, webhook_secret: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "object": "app",
            "name": self.name,
            "description": self.description,
            "developer": self.developer_merchant_id,
            "client_id": self.client_id,
            "redirect_uris": self.redirect_uri_list,
            "scopes": self.scope_list,
            "webhook_url": self.webhook_url,
            "webhook_events": self.event_filters,
            "hook_url": self.hook_url,
            "hooks": self.hook_list,
            "hook_failure_mode": self.hook_failure_mode,
            "checkout_fields": self.checkout_field_list,
            "created_at": clock.public(self.created_at),
        }
        # Secrets appear only in the response that created or rotated them.
        if client_secret is not None:
            out["client_secret"] = client_secret
        if webhook_secret is not None:
            out["webhook_secret"] = webhook_secret
        return out

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint import clock
from flint.apps.consent import Consent, expand

ACTIVE, UNINSTALLED = "active", "uninstalled"


@dataclass
class Installation:
    """An app on a merchant, with what the merchant approved (docs/api.md 12)."""
    id: str
    app_id: str
    merchant_id: str
    scopes: str  # JSON list: the consented scopes
    status: str
    created_at: str
    updated_at: str
    uninstalled_at: str | None
    consented_webhook_events: str  # JSON list of event types
    consented_hooks: str  # JSON list
    consented_checkout_fields: str  # JSON list of field definitions
    pending_update: str | None  # JSON: a Consent and requested_at, or NULL

    @property
    def consent(self) -> Consent:
        # expand(): installations from before consents were recorded stored their endpoint's filters
        # ("order.*"); concrete types pass through unchanged.
        return Consent(tuple(json.loads(self.scopes)), tuple(expand(json.loads(self.consented_webhook_events))),
                       tuple(json.loads(self.consented_hooks)), tuple(json.loads(self.consented_checkout_fields)))

    @property
    def pending(self) -> tuple[Consent, str] | None:
        if not self.pending_update:
            return None
        data = json.loads(self.pending_update)
        return Consent.loads(self.pending_update), data["requested_at"]  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        pending = self.pending
        return {
            "id": self.id,
            "object": "installation",
            "app_id": self.app_id,
            "merchant_id": self.merchant_id,
            "status": self.status,
            "scopes": json.loads(self.scopes),  # kept from before `consented`: the same list
            "consented": self.consent.to_dict(),
            "pending_update": None if pending is None else dict(pending[0].to_dict(),
                                                                requested_at=clock.public(pending[1])),
            "created_at": clock.public(self.created_at),
            "uninstalled_at": clock.public(self.uninstalled_at),
        }


def consent_columns(consent: Consent) -> dict[str, str]:
    """An installation's consent as its columns (for INSERT and UPDATE)."""
    return {"scopes": json.dumps(list(consent.scopes)),
            "consented_webhook_events": json.dumps(list(consent.webhook_events)),
            "consented_hooks": json.dumps(list(consent.hooks)),
            "consented_checkout_fields": json.dumps(list(consent.checkout_fields))}


def pending_column(consent: Consent | None, requested_at: str) -> str | None:
    return None if consent is None else json.dumps(dict(consent.to_dict(), requested_at=requested_at), sort_keys=True)

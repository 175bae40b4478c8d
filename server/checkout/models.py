from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flint import clock
from flint.actors import created_by
from flint.buyers.models import Collect, FieldSpec

OPEN, COMPLETE, EXPIRED = "open", "complete", "expired"
MODES = ("embedded", "hosted")
# Why an embedded widget showed the hosted link instead of its card frame (widget/PROTOCOL.md).
FALLBACK_REASONS = ("timeout", "frame_blocked", "frame_error", "requested")


@dataclass
class CheckoutSession:
    id: str
    merchant_id: str
    order_id: str
    mode: str
    status: str
    success_url: str
    cancel_url: str | None
    expires_at: str
    recovery_enabled: int
    abandon_after: int
    recovery_payment_link_id: str | None
    created_at: str
    updated_at: str
    fallback_reason: str | None = None
    fallback_at: str | None = None
    buyer_left_at: str | None = None
    abandon_at: str | None = None
    dropped_off_at: str | None = None
    drop_off_reason: str | None = None
    created_by_type: str | None = None
    created_by_id: str | None = None
    # What the buyer is asked for (docs/api.md 14), JSON; NULL: the defaults (optional email and name).
    collect: str | None = None
    custom_fields: str | None = None
    # Email the buyer the recovery link when this session drops off (docs/api.md 16), and the buyer's
    # language as their page last negotiated it (en | de | fr; None until the buyer's page spoke).
    recovery_email: int = 0
    locale: str | None = None
    # How its payment is captured (docs/api.md 17): "automatic", or "manual" (authorize now, capture later).
    capture: str = "automatic"

    @property
    def collect_rules(self) -> Collect:
        return Collect.from_json(self.collect)

    @property
    def custom_field_specs(self) -> tuple[FieldSpec, ...]:
        return FieldSpec.tuple_from_json(self.custom_fields)

    def hosted_url(self, public_url: str) -> str:
        return f"{public_url}/checkout/{self.id}"

    def to_dict(self, public_url: str, client_token: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "checkout.session",
            "order_id": self.order_id,
            "mode": self.mode,
            "status": self.status,
            "url": self.hosted_url(public_url),
            # Only the merchant's own API responses carry the token, never event snapshots.
            "client_token": client_token,
            "expires_at": clock.public(self.expires_at),
            "capture": self.capture,
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
            "recovery": {
                "enabled": bool(self.recovery_enabled),
                "abandon_after": self.abandon_after,
                "email": bool(self.recovery_email),
                "payment_link_id": self.recovery_payment_link_id,
                # When and how the buyer dropped off (left | idle | expired), once they did.
                "dropped_off_at": clock.public(self.dropped_off_at),
                "drop_off_reason": self.drop_off_reason,
            },
            # Set once the embedded widget fell back to the hosted page (docs/api.md 5).
            "fallback": ({"reason": self.fallback_reason, "used_at": clock.public(self.fallback_at)}
                         if self.fallback_at else None),
            "collect": self.collect_rules.to_dict(),
            "custom_fields": [spec.to_dict() for spec in self.custom_field_specs],
            "created_by": created_by(self.created_by_type, self.created_by_id),
            "created_at": clock.public(self.created_at),
        }

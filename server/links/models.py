from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flint import clock
from flint.actors import created_by
from flint.buyers.models import Collect, FieldSpec

SOURCES = ("manual", "recovery", "app")


@dataclass
class PaymentLink:
    id: str
    merchant_id: str
    order_id: str
    source: str
    checkout_session_id: str | None
    active: int
    expires_at: str | None
    deactivated_at: str | None
    created_at: str
    updated_at: str
    created_by_type: str | None = None
    created_by_id: str | None = None
    # What the buyer is asked for (docs/api.md 14), JSON as on checkout sessions; a recovery link
    # copies its session's, so the buyer comes back to the same form.
    collect: str | None = None
    custom_fields: str | None = None
    # How its payment is captured (docs/api.md 17): "automatic", or "manual"; a recovery link copies its
    # session's.
    capture: str = "automatic"

    @property
    def collect_rules(self) -> Collect:
        return Collect.from_json(self.collect)

    @property
    def custom_field_specs(self) -> tuple[FieldSpec, ...]:
        return FieldSpec.tuple_from_json(self.custom_fields)

    def url(self, public_url: str) -> str:
        # The id carries 130 random bits: the URL cannot be guessed or enumerated.
        return f"{public_url}/pay/{self.id}"

    def expired(self, now: str) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def to_dict(self, public_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment_link",
            "order_id": self.order_id,
            "url": self.url(public_url),
            "active": bool(self.active),
            "source": self.source,
            "checkout_session_id": self.checkout_session_id,
            "expires_at": clock.public(self.expires_at),
            "capture": self.capture,
            "deactivated_at": clock.public(self.deactivated_at),
            "collect": self.collect_rules.to_dict(),
            "custom_fields": [spec.to_dict() for spec in self.custom_field_specs],
            "created_by": created_by(self.created_by_type, self.created_by_id),
            "created_at": clock.public(self.created_at),
        }

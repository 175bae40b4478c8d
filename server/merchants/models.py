from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint import clock


@dataclass
class Merchant:
    id: str
    name: str
    email: str
    password_hash: str
    allowed_origins: str  # JSON list of exact origins
    created_at: str
    brand_color: str = "#4f46e5"
    # Email a receipt to the buyer when an order is paid (docs/api.md 16); off until the merchant asks.
    receipts: int = 0

    @property
    def origins(self) -> list[str]:
        return json.loads(self.allowed_origins)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "merchant",
            "name": self.name,
            "email": self.email,
            "allowed_origins": self.origins,
            "brand_color": self.brand_color,
            "receipts": bool(self.receipts),
            "created_at": clock.public(self.created_at),
        }


@dataclass
class ApiKey:
    id: str
    merchant_id: str
    key_hash: str
    last4: str
    created_at: str
    revoked_at: str | None

    def to_dict(self, secret: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "api_key",
            "last4": self.last4,
            "created_at": clock.public(self.created_at),
            "revoked_at": clock.public(self.revoked_at),
            "livemode": False,
        }
        if secret is not None:
            body["secret_key"] = secret  # shown once, at creation
        return body

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flint import clock


@dataclass
class Event:
    id: str
    merchant_id: str
    order_id: str | None
    sequence: int | None
    type: str
    actor_type: str
    actor_id: str | None
    data: str  # JSON text, exactly as stored (and later as signed for webhooks)
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Event":
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "event",
            "type": self.type,
            "created_at": clock.public(self.created_at),
            "order_id": self.order_id,
            "sequence": self.sequence,
            "actor": {"type": self.actor_type, "id": self.actor_id},
            "data": json.loads(self.data),
        }

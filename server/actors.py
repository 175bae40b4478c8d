"""Who did something: recorded on every event as ``actor: {type, id}``."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    type: str  # "merchant" | "app" | "buyer" | "system" | "staff"
    id: str | None = None

    def to_dict(self) -> dict:
        return {"type": self.type, "id": self.id}


def created_by(actor_type: str | None, actor_id: str | None) -> dict | None:
    """An object's ``created_by`` from its two columns (None for objects older than the columns)."""
    return None if actor_type is None else {"type": actor_type, "id": actor_id}


SYSTEM = Actor("system", None)

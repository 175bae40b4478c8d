"""Who did something: recorded on every event as ``actor: {type, id}``."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    type: str  # "merchant" | "app" | "buyer" | "system"
    id: str | None = None

    def to_dict(self) -> dict:
        return {"type": self.type, "id": self.id}


SYSTEM = Actor("system", None)

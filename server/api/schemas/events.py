from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from flint.api.schemas.common import ListQuery
from flint.event_types import EVENT_TYPES


class EventActor(BaseModel):
    type: Literal["merchant", "app", "buyer", "system"]
    id: str | None


class EventData(BaseModel):
    object: dict[str, Any]


class Event(BaseModel):
    """Something that happened, with the object it happened to as it was then."""
    id: str
    object: Literal["event"]
    type: str
    created_at: str
    order_id: str | None
    sequence: int | None
    actor: EventActor
    data: EventData


class EventList(BaseModel):
    object: Literal["list"]
    data: list[Event]
    has_more: bool


class EventListQuery(ListQuery):
    type: Literal[EVENT_TYPES] | None = Field(None, description="Only events of this type.")  # type: ignore[valid-type]

"""Models shared by every resource: problems, list pages, list queries."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from flint.http.validation import Query


class CreatedBy(BaseModel):
    """Who created an object (docs/api.md 12): the merchant's key, an app's token, a staff member, or Flint
    itself (a recovery link). Null on objects older than this field."""
    type: Literal["merchant", "app", "staff", "system", "buyer"]
    id: str | None


class ListQuery(Query):
    limit: int = Field(10, ge=1, le=100)
    starting_after: str | None = Field(None, min_length=1, max_length=64)


def page(items: list[Any], has_more: bool, present=lambda item: item.to_dict()) -> dict[str, Any]:
    return {"object": "list", "data": [present(item) for item in items], "has_more": has_more}

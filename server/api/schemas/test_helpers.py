from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint.http.validation import Body
from flint.background.test_clock import MAX_SECONDS


class AdvanceClock(Body):
    seconds: int = Field(ge=0, le=MAX_SECONDS, description="How far forward to move the clock (never back).")


class TestClockOut(BaseModel):
    object: Literal["test_clock"]
    now: str = Field(description="The server's time after the move.")
    advanced_by: int
    offset_seconds: float = Field(description="How far the server's clock is ahead of real time in all.")
    swept: dict[str, int] = Field(description="What the sweeper did right after the move.")

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint.http.validation import Body
from flint.background.test_clock import MAX_SECONDS


class AdvanceTestClockRequest(Body):
    seconds: int = Field(ge=0, le=MAX_SECONDS, description="How far forward to move the clock (never back).")


class TestClock(BaseModel):
    object: Literal["test_clock"]
    now: str = Field(description="The server's time after the move.")
    advanced_by: int
    offset_seconds: float = Field(description="How far the server's clock is ahead of real time in all.")
    swept: dict[str, int] = Field(description="What the sweeper did right after the move.")
    webhooks_delivered: bool = Field(description="Every webhook delivery that came due was sent before this "
                                                 "answer (false: some were still in flight after 5 s and the "
                                                 "background worker finishes them).")
    mail_sent: bool = Field(description="Every mail that came due was sent before this answer (true as well "
                                        "without mail configured; false: some were still being sent after 5 s "
                                        "and the background worker finishes them).")

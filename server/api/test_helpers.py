"""Test helpers for a merchant's own tests (development only; create_app routes them nowhere else)."""
from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response

from flint.api.schemas.test_helpers import AdvanceTestClockRequest, TestClock
from flint.background import test_clock
from flint.http.auth import merchant_only
from flint.http.context import runtime
from flint.http.openapi import operation
from flint.http.validation import json_body

bp = Blueprint("test_helpers", __name__, url_prefix="/v1/test_helpers")


@bp.post("/advance_clock")
@operation("advanceTestClock", "Test helpers")
@merchant_only
@document_response(TestClock)
@json_body(AdvanceTestClockRequest)
async def post_advance_clock(body: AdvanceTestClockRequest):
    """Development only: move the server's clock forward by ``seconds`` (never back), then run the
    sweeper and send the webhook deliveries that came due, before answering."""
    return await test_clock.advance(runtime(), body.seconds)

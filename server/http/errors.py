"""Errors as the caller reads them: RFC 9457 problem+json on the JSON API (never a stack trace),
a readable page in the buyer's (or merchant's) language everywhere else."""
from __future__ import annotations

import json
import logging

from pydantic import BaseModel, Field
from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from flint.errors import FlintError
from flint.http import pages
from flint.http.requests import ensure_page_context, is_api, is_buyer_page

log = logging.getLogger("flint.http")

_HTTP_CODES = {
    400: "invalid_request", 404: "route_not_found", 405: "method_not_allowed",
    413: "request_too_large", 415: "unsupported_media_type",
}
_HTTP_DETAILS = {
    404: "No such route.", 405: "This route does not accept that method.",
    413: "The request body is larger than 1 MiB.",
}


class ProblemError(BaseModel):
    """One thing wrong with a request's parameters."""
    param: str | None = Field(description="Where: a field path like line_items[0].unit_amount (null: the body).")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem. `code` is stable; branch on it, not on `detail`. Some codes add members
    of their own (`retry_after`, `reason`, a failed `payment`): read them where documented."""
    type: str = Field(description="A tag URI naming the code.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="For people; may change.")
    code: str = Field(description="Stable snake_case: branch on this.")
    param: str | None = Field(None, description="The parameter at fault, when there is one.")
    request_id: str | None = Field(None, description="Quote it to support: the log line of this request.")
    errors: list[ProblemError] | None = Field(None, description="Each invalid parameter of a 400 (at most 20).")
    retry_after: int | None = Field(None, description="429: seconds until another attempt may go.")
    reason: str | None = Field(None, description="A finer reason some codes carry (route_to_hosted, "
                                                 "concurrent_update).")
    amount_refundable: int | None = Field(None, description="refund_exceeds_refundable: what can still be "
                                                            "refunded.")
    payment_id: str | None = Field(None, description="The payment concerned (a decline, processor_unavailable).")


def problem_response(error: FlintError) -> Response:
    body = error.problem()
    if rid := g.get("request_id"):
        body.setdefault("request_id", rid)
    response = Response(json.dumps(body), status=error.status, content_type="application/problem+json")
    response.headers.update(error.headers)
    return response


def error_response(error: FlintError) -> Response:
    if is_api(request.path):
        return problem_response(error)
    # People get a readable page in their language, never JSON or a trace.
    ensure_page_context()
    response = pages.page("error.html", error.status, status=error.status, code=error.code,
                          buyer=is_buyer_page(request.path))
    response.headers.update(error.headers)
    return response


def install(app: Quart) -> None:
    @app.errorhandler(FlintError)
    async def on_flint_error(error: FlintError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException):
        status = error.code or 500
        detail = _HTTP_DETAILS.get(status, error.description or "The request could not be handled.")
        response = error_response(FlintError(status, _HTTP_CODES.get(status, "http_error"), detail))
        if status == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    async def on_unexpected(error: Exception):
        # Full details go to the log under the request id; the client gets no trace.
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return error_response(FlintError(500, "internal_error",
                                         "Something went wrong on our side. Quote the request id to support."))

"""CORS for the few endpoints a merchant's page calls straight from the buyer's browser: the
widget's loader runs on the merchant's origin and talks to Flint with the session's client_token.

Those endpoints answer any origin with ``Access-Control-Allow-Origin: *`` and never with
credentials: the bearer client_token is the only credential, and it is already in that page's
hands. Even an origin outside ``allowed_origins`` must reach them, because that is exactly the
page whose widget falls back and has to say so. Every other endpoint sends no CORS headers, so
browsers refuse cross-origin calls to the merchant API (secret keys belong on servers).
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from quart import Response, current_app, request

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "_flint_cors"

ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
MAX_AGE = "600"  # seconds a browser may cache the preflight answer


def open_to_browsers(func: F) -> F:
    setattr(func, _ATTRIBUTE, True)
    return func


def is_open(endpoint: str | None) -> bool:
    view = current_app.view_functions.get(endpoint or "")
    return bool(view is not None and getattr(view, _ATTRIBUTE, False))


def apply(response: Response) -> None:
    if not is_open(request.endpoint):
        return
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = "Request-Id, Idempotent-Replayed, Retry-After"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE

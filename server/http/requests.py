"""Every request's frame: its id, the caller's language and CSP nonce for pages, who is calling
(http/auth.py), and on the way out the security headers, CORS and one structured log line."""
from __future__ import annotations

import logging
import re
import secrets
import time

from quart import Quart, Response, g, request

from flint import i18n
from flint.http import auth, cors
from flint.http.context import runtime
from flint.http.headers import page_headers
from flint.ids import new_id

log = logging.getLogger("flint.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def is_api(path: str) -> bool:
    # JSON endpoints: their errors are problem+json, never an HTML page.
    return path.startswith(("/v1/", "/oauth/token", "/oauth/revoke", "/.well-known/")) or path in ("/healthz", "/readyz")


def is_buyer_page(path: str) -> bool:
    # A buyer's pages (hosted checkout, payment links, the widget's frame, unsubscribing from a merchant's
    # recovery emails): their errors speak to a buyer; every other page is for the merchant's people and
    # speaks about their account.
    return path.startswith(("/checkout/", "/pay/", "/widget/", "/unsubscribe/"))


def ensure_page_context() -> None:
    """What rendering a page needs (the language, the CSP nonce), also for an error that happened
    before the request was identified."""
    g.setdefault("locale", i18n.negotiate(request.headers.get("Accept-Language")))
    g.setdefault("csp_nonce", secrets.token_urlsafe(16))


async def identify() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else new_id("req")
    if not is_api(request.path):
        ensure_page_context()
    if request.method == "OPTIONS":
        # A CORS preflight carries no credentials and runs no view; cors.apply answers it.
        g.principal = None
        return
    g.principal = await auth.authenticate(runtime())


async def finish(response: Response) -> Response:
    response.headers["Request-Id"] = g.get("request_id", "")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    cors.apply(response)
    if is_api(request.path):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    elif not g.get("static_asset"):
        page_headers(response)
    if log.isEnabledFor(logging.INFO):
        principal = g.get("principal")
        log.info("request", extra={
            "request_id": g.get("request_id"), "method": request.method, "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
            "merchant_id": principal.merchant_id if principal else None,
            "replayed": bool(g.get("replayed")),
        })
    return response


def install(app: Quart) -> None:
    """First in and last out: identify before anything else runs, finish after everything else."""
    app.before_request(identify)
    app.after_request(finish)

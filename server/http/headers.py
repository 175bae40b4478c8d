"""Security headers for every buyer page (flask-talisman / warehouse csp.py style: the policy
as a commented dict, one nonce per request)."""
from __future__ import annotations

import logging
import re

from quart import Response, g, request

log = logging.getLogger("flint.hosted")

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# Defence in depth: the only source expressions this policy is ever meant to hold. Origins come from
# merchants and apps (parsed by server.urls, but a future caller might not); anything else, above all
# a ';' or ',' that would start another directive or policy, is dropped, never written.
_SOURCE = re.compile(rf"'self'|'none'|'nonce-[A-Za-z0-9+/_-]+={{0,2}}'|data:"
                     rf"|https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")


def _sources(directive: str, values: list[str]) -> list[str]:
    kept = []
    for value in values:
        if isinstance(value, str) and _SOURCE.fullmatch(value):
            if value not in kept:
                kept.append(value)
        else:
            log.warning("CSP source dropped", extra={"directive": directive, "source": repr(value)[:200]})
    return kept or ["'none'"]  # nothing left: say 'none' rather than write an empty directive


def content_security_policy(nonce: str, form_origins: list[str], frame_ancestors: list[str] | None = None,
                            connect_self: bool = False) -> str:
    """``frame_ancestors``: None for a page that is never framed; the merchant's registered origins
    for the widget's card frame (an empty list still means 'none'). ``connect_self``: the page's script
    fetches from Flint itself (the console's htmx), and from nowhere else."""
    policy = {
        "default-src": ["'none'"],  # nothing loads unless listed: no third-party sources at all
        "script-src": [f"'nonce-{nonce}'"],  # only our inline enhancement script
        "style-src": [f"'nonce-{nonce}'"],  # only our inline stylesheet
        "img-src": ["'self'", "data:"],
        # Forms post to Flint; Chrome also checks the redirect after a POST against this list,
        # so the merchant's success/cancel origins are allowed as destinations.
        "form-action": ["'self'", *form_origins],
        "frame-ancestors": ["'none'"],  # buyer pages are never framed (the card frame is separate)
        "base-uri": ["'none'"],
    }
    if frame_ancestors is not None:
        # The card frame: only the merchant's exact registered origins may embed it (docs/api.md 5),
        # and its script calls the buyer confirm API on Flint's own origin.
        policy["frame-ancestors"] = list(frame_ancestors) or ["'none'"]
        policy["connect-src"] = ["'self'"]
    if connect_self:
        policy["connect-src"] = ["'self'"]
    return "; ".join(f"{name} {' '.join(_sources(name, values))}" for name, values in policy.items())


def page_headers(response: Response) -> None:
    nonce = g.get("csp_nonce") or "missing"
    frame_ancestors = g.get("frame_ancestors")
    response.headers["Content-Security-Policy"] = content_security_policy(
        nonce, g.get("form_origins", []), frame_ancestors, connect_self=bool(g.get("csp_connect_self")))
    if frame_ancestors is None:
        response.headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    # (X-Frame-Options cannot list origins, so the card frame relies on frame-ancestors alone.)
    response.headers["Cache-Control"] = "no-store"  # buyer data: never cached, back re-fetches
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Vary"] = "Accept-Language"
    if request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https":
        response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"

"""Security headers for every buyer page (flask-talisman / warehouse csp.py style: the policy
as a commented dict, one nonce per request)."""
from __future__ import annotations

from quart import Response, g, request


def content_security_policy(nonce: str, form_origins: list[str]) -> str:
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
    return "; ".join(f"{name} {' '.join(values)}" for name, values in policy.items())


def page_headers(response: Response) -> None:
    nonce = g.get("csp_nonce") or "missing"
    response.headers["Content-Security-Policy"] = content_security_policy(nonce, g.get("form_origins", []))
    response.headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    response.headers["Cache-Control"] = "no-store"  # buyer data: never cached, back re-fetches
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Vary"] = "Accept-Language"
    if request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https":
        response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"

"""Idempotency-Key on every POST (docs/api.md 1; the IETF draft, as Stripe does it): the HTTP side of
flint.idempotency. Runs after the caller is identified (keys are scoped per caller) and stores the
response before the security headers are added on the way out."""
from __future__ import annotations

import asyncio

from quart import Quart, Response, g, request

from flint.http.context import runtime
from flint.idempotency import service as idempotency


class FlintQuart(Quart):
    async def full_dispatch_request(self, request_context=None):
        if request.method == "POST" and "Idempotency-Key" in request.headers:
            # A client that hangs up must not leave its key "running": the request runs to its
            # end and its response is stored, so a retry replays it instead of running it again.
            return await asyncio.shield(super().full_dispatch_request(request_context))
        return await super().full_dispatch_request(request_context)


async def claim() -> Response | None:
    header = request.headers.get("Idempotency-Key")
    if request.method != "POST" or header is None or g.get("principal") is None:
        return None
    key = idempotency.parse_key(header)
    body = await request.get_data(as_text=False)
    scope = g.principal.idempotency_scope
    replay = await idempotency.begin(runtime(), scope, key, idempotency.fingerprint("POST", request.path, body))
    if replay is not None:
        g.replayed = True
        response = Response(replay.body, status=replay.status, content_type=replay.content_type)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    g.idempotency = (scope, key)
    return None


async def store(response: Response) -> Response:
    if (claimed := g.pop("idempotency", None)) is not None:
        body = await response.get_data(as_text=True)
        await idempotency.finish(runtime(), claimed[0], claimed[1], response.status_code,
                                 response.content_type or "application/json", body)
    return response


def install(app: Quart) -> None:
    """After http.requests.install: claim runs after the caller is known, store before finish."""
    app.before_request(claim)
    app.after_request(store)

"""The Quart application factory: blueprints, auth, idempotency, errors, logs, headers."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from typing import Any

from quart import Quart, Response, g, request
from quart_schema import QuartSchema
from werkzeug.exceptions import HTTPException

from flint import i18n
from flint.background import sweeper, webhook_worker
from flint.config import Config
from flint.db.migrate import migrate
from flint.errors import FlintError
from flint.http import auth, cors
from flint.http import pages as templates
from flint.http.headers import page_headers
from flint.http.openapi import FlintOpenAPIProvider
from flint.idempotency import service as idempotency
from flint.ids import new_id
from flint.processors import Processor
from flint.runtime import Runtime

log = logging.getLogger("flint.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

_HTTP_CODES = {
    400: "invalid_request", 404: "route_not_found", 405: "method_not_allowed",
    413: "request_too_large", 415: "unsupported_media_type",
}


def is_api(path: str) -> bool:
    # JSON endpoints: their errors are problem+json, never an HTML page.
    return path.startswith(("/v1/", "/oauth/token", "/oauth/revoke", "/.well-known/")) or path in ("/healthz", "/readyz")


def problem_response(error: FlintError) -> Response:
    body = error.problem()
    if rid := g.get("request_id"):
        body.setdefault("request_id", rid)
    response = Response(json.dumps(body), status=error.status, content_type="application/problem+json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


class FlintQuart(Quart):
    async def full_dispatch_request(self, request_context=None):
        if request.method == "POST" and "Idempotency-Key" in request.headers:
            # A client that hangs up must not leave its key "running": the request runs to its
            # end and its response is stored, so a retry replays it instead of running it again.
            return await asyncio.shield(super().full_dispatch_request(request_context))
        return await super().full_dispatch_request(request_context)


def create_app(config: Config | None = None, *, processor: Processor | None = None,
               run_sweeper: bool = True, **overrides: Any) -> Quart:
    config = config or Config.from_env(**overrides)
    app = FlintQuart(__name__, static_folder=None)  # buyer pages render through server.hosted.templates
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.config["FLINT"] = config
    QuartSchema(
        app, openapi_path="/v1/openapi.json", redoc_ui_path=None, scalar_ui_path=None, swagger_ui_path=None,
        info={"title": "Flint API", "version": "1",
              "description": "Order-backed payments for installable checkout extensions."},
        openapi_provider_class=FlintOpenAPIProvider,
    )
    auth.public(app.view_functions["openapi"].__func__)  # a bound method of the extension
    # Handlers return plain dicts; Quart-Schema's response conversion (a pydantic TypeAdapter
    # built per response) is only for handlers returning models, and cost ~10% of a request.
    del app.make_response

    from flint.api.apps import bp as apps_bp
    from flint.api.checkout import bp as checkout_bp
    from flint.api.events import bp as events_bp
    from flint.api.hook_calls import bp as hooks_bp
    from flint.api.installations import bp as installations_bp
    from flint.api.links import bp as links_bp
    from flint.api.links import recovery_bp
    from flint.api.merchant import bp as merchants_bp
    from flint.api.orders import bp as orders_bp
    from flint.api.payments import bp as payments_bp
    from flint.api.refunds import bp as refunds_bp
    from flint.api.webhooks import bp as webhooks_bp
    from flint.hosted.routes import bp as hosted_bp
    from flint.web.accounts import bp as accounts_bp
    from flint.web.oauth import bp as oauth_bp
    from flint.widget.routes import bp as widget_bp

    for blueprint in (merchants_bp, orders_bp, checkout_bp, links_bp, recovery_bp, payments_bp, refunds_bp,
                      events_bp, webhooks_bp, apps_bp, installations_bp, hooks_bp, hosted_bp, widget_bp,
                      accounts_bp, oauth_bp):
        app.register_blueprint(blueprint)

    @app.get("/healthz")
    @auth.public
    async def get_healthz():
        """Liveness: the process answers (the benchmarks' baseline, so it touches nothing)."""
        return {"status": "ok"}

    @app.get("/readyz")
    @auth.public
    async def get_readyz():
        """Readiness for a load balancer: this process reaches the database and its schema."""
        rt = app.extensions["flint"]
        try:
            async with rt.db.read() as conn:
                await conn.fetch_one("SELECT MAX(version) AS version FROM schema_migrations")
        except Exception:
            log.warning("readiness check failed: the database is unreachable", exc_info=True)
            raise FlintError(503, "database_unavailable", "This process cannot reach its database.",
                             headers={"Retry-After": "5"})
        return {"status": "ok", "database": rt.db.dialect}

    @app.before_serving
    async def start_runtime() -> None:
        rt = await Runtime.start(config, processor)
        await migrate(rt.db)
        app.extensions["flint"] = rt
        if run_sweeper and config.background:
            # The background work of `flint serve`: the sweeper and the webhook delivery worker.
            app.extensions["flint.background.sweeper"] = asyncio.create_task(sweeper.run(rt))
            app.extensions["flint.webhooks"] = asyncio.create_task(webhook_worker.run(rt))

    @app.after_serving
    async def stop_runtime() -> None:
        for name in ("flint.webhooks", "flint.background.sweeper"):
            task = app.extensions.pop(name, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        from flint.hooks.service import close_clients

        await close_clients()
        await app.extensions.pop("flint").stop()

    @app.before_request
    async def identify_and_authenticate():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else new_id("req")
        if not is_api(request.path):
            g.locale = i18n.negotiate(request.headers.get("Accept-Language"))
            g.csp_nonce = secrets.token_urlsafe(16)
        rt: Runtime = app.extensions["flint"]
        if request.method == "OPTIONS":
            # A CORS preflight carries no credentials and runs no view; cors.apply answers it.
            g.principal = None
            return None
        g.principal = await auth.authenticate(rt)
        header = request.headers.get("Idempotency-Key")
        if request.method == "POST" and header is not None and g.principal is not None:
            key = idempotency.parse_key(header)
            body = await request.get_data(as_text=False)
            scope = g.principal.idempotency_scope
            replay = await idempotency.begin(rt, scope, key, idempotency.fingerprint("POST", request.path, body))
            if replay is not None:
                g.replayed = True
                response = Response(replay.body, status=replay.status, content_type=replay.content_type)
                response.headers["Idempotent-Replayed"] = "true"
                return response
            g.idempotency = (scope, key)
        return None

    @app.after_request
    async def finish(response: Response) -> Response:
        if (claim := g.pop("idempotency", None)) is not None:
            body = await response.get_data(as_text=True)
            await idempotency.finish(app.extensions["flint"], claim[0], claim[1], response.status_code,
                                     response.content_type or "application/json", body)
        response.headers["Request-Id"] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        cors.apply(response)
        if is_api(request.path):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
        elif not g.get("static_asset"):
            page_headers(response)
        principal = g.get("principal")
        if log.isEnabledFor(logging.INFO):
            log.info("request", extra={
                "request_id": g.get("request_id"), "method": request.method, "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
                "merchant_id": principal.merchant_id if principal else None,
                "replayed": bool(g.get("replayed")),
            })
        return response

    async def error_response(error: FlintError) -> Response:
        if is_api(request.path):
            return problem_response(error)
        # Buyers get a readable page in their language, never JSON or a trace.
        g.setdefault("locale", i18n.negotiate(request.headers.get("Accept-Language")))
        g.setdefault("csp_nonce", secrets.token_urlsafe(16))
        body = templates.render("error.html", status=error.status, code=error.code, merchant=None)
        response = Response(body, status=error.status, content_type="text/html; charset=utf-8")
        for name, value in error.headers.items():
            response.headers[name] = value
        return response

    @app.errorhandler(FlintError)
    async def on_flint_error(error: FlintError):
        return await error_response(error)

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException):
        status = error.code or 500
        detail = {
            404: "No such route.", 405: "This route does not accept that method.",
            413: "The request body is larger than 1 MiB.",
        }.get(status, error.description or "The request could not be handled.")
        response = await error_response(FlintError(status, _HTTP_CODES.get(status, "http_error"), detail))
        if status == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    async def on_unexpected(error: Exception):
        # Full details go to the log under the request id; the client gets no trace.
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return await error_response(FlintError(500, "internal_error",
                                               "Something went wrong on our side. Quote the request id to support."))

    return app

"""The Quart application factory: the surfaces' blueprints over the shared HTTP plumbing, and the
runtime (database, signer, processor) with the background work of `flint serve`."""
from __future__ import annotations

import asyncio
from typing import Any

from quart import Quart

from flint.api import (
    apps,
    checkout,
    emails,
    events,
    health,
    hook_calls,
    installations,
    links,
    merchant,
    orders,
    payments,
    refunds,
    test_helpers,
    webhooks,
)
from flint.background import mail_worker, sweeper, webhook_worker
from flint.config import Config
from flint.console import assets as console_assets
from flint.console import integrations as console_integrations
from flint.console import keys_settings as console_keys_settings
from flint.console import routes as console
from flint.console import team as console_team
from flint.db.migrate import migrate
from flint.hooks.service import close_clients
from flint.hosted import routes as hosted
from flint.hosted import unsubscribe as hosted_unsubscribe
from flint.http import errors, idempotency, openapi, requests
from flint.http.idempotency import FlintQuart
from flint.processors import Processor
from flint.runtime import Runtime
from flint.web import accounts, oauth
from flint.widget import routes as widget

BLUEPRINTS = (
    health.bp, merchant.bp, orders.bp, checkout.bp, links.bp, links.recovery_bp, payments.bp, refunds.bp,
    emails.bp, events.bp,
    webhooks.bp, apps.bp, installations.bp, hook_calls.bp, hosted.bp, hosted_unsubscribe.bp, widget.bp, accounts.bp,
    oauth.bp,
    console.bp,
    console_assets.bp,
    console_integrations.bp,
    console_keys_settings.bp,
    console_team.bp,
)
# The mail worker returns at once when mail is not configured (FLINT_SMTP_URL, FLINT_MAIL_FROM).
BACKGROUND = (("flint.sweeper", sweeper.run), ("flint.webhooks", webhook_worker.run), ("flint.mail", mail_worker.run))


def create_app(config: Config | None = None, *, processor: Processor | None = None,
               run_sweeper: bool = True, **overrides: Any) -> Quart:
    config = config or Config.from_env(**overrides)
    app = FlintQuart(__name__, static_folder=None)  # pages render through flint.http.pages
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.config["FLINT"] = config
    openapi.install(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    if not config.is_production:
        # The test clock moves time for a merchant's own tests: in production it does not exist (404).
        app.register_blueprint(test_helpers.bp)
    requests.install(app)  # first: who is calling, then the key claimed for them
    idempotency.install(app)
    errors.install(app)

    @app.before_serving
    async def start_runtime() -> None:
        rt = await Runtime.start(config, processor)
        await migrate(rt.db)
        app.extensions["flint"] = rt
        if run_sweeper and config.background:
            # The background work of `flint serve`: the sweeper, the webhook delivery worker, the mail worker.
            for name, run in BACKGROUND:
                app.extensions[name] = asyncio.create_task(run(rt))

    @app.after_serving
    async def stop_runtime() -> None:
        for name, _ in reversed(BACKGROUND):
            task = app.extensions.pop(name, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await close_clients()
        await app.extensions.pop("flint").stop()

    return app

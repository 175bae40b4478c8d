"""What the app-trust tests share: a developer's app, a shop that installs it through the real OAuth
flow (support/oauth.py's Authlib client), and looks inside the live server's database."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from flint.apps import service as apps
from flint.merchants import service as merchants
from support.oauth import PASSWORD, install

REDIRECT = "http://127.0.0.1:9/callback"
ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


@dataclass
class Installed:
    app: Any
    client_secret: str
    webhook_secret: str
    developer_key: str
    shop: Any
    shop_key: str
    token: dict

    @property
    def installation_id(self) -> str:
        return self.token["installation_id"]


async def new_shop(server_rt, name: str = "Shop"):
    return await merchants.create_merchant(server_rt, name=name, email=f"s{secrets.token_hex(5)}@shop.example",
                                           password=PASSWORD)


async def new_app(server_rt, **settings):
    developer, developer_key = await merchants.create_merchant(
        server_rt, name="Dev", email=f"d{secrets.token_hex(5)}@dev.example", password=PASSWORD)
    settings.setdefault("redirect_uris", [REDIRECT])
    settings.setdefault("name", "App " + secrets.token_hex(2))
    app, client_secret, webhook_secret = await apps.create_app(server_rt, developer.id, **settings)
    return app, client_secret, webhook_secret, developer_key


async def installed_app(server, server_rt, shop=None, **settings) -> Installed:
    """Register an app with ``settings`` and install it on ``shop`` (a new one if None) with every
    scope it registered, through /oauth/authorize, the consent page and /oauth/token."""
    app, client_secret, webhook_secret, developer_key = await new_app(server_rt, **settings)
    shop, shop_key = shop or await new_shop(server_rt)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        token, _ = await install(server, browser, app, client_secret, shop.email, scope=" ".join(app.scope_list))
    return Installed(app, client_secret, webhook_secret, developer_key, shop, shop_key, token)


async def deliveries_to(server_rt, url: str) -> list[str]:
    """The event types the outbox queued for endpoints at ``url`` (fan-out commits with the event,
    so this is exact the moment the causing request has answered: no waiting on the worker)."""
    async with server_rt.db.read() as conn:
        rows = await conn.fetch_all(
            """SELECT d.event_type FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
               WHERE e.url = :url ORDER BY d.created_at, d.id""", {"url": url})
    return [row["event_type"] for row in rows]


async def pay(server, shop_key: str) -> dict:
    """A paid order (embedded session, the success card): returns the session."""
    async with server.async_client(shop_key) as owner:
        session = (await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks"})).json()
    async with server.async_client(session["client_token"]) as buyer:
        paid = await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})
        assert paid.status_code == 200, paid.text
    return session


def unique_path(prefix: str) -> str:
    return f"/{prefix}-{secrets.token_hex(4)}"


import pytest  # noqa: E402  (fixtures below, for the test modules that import them)

from support.receiver import Receiver  # noqa: E402


@pytest.fixture(scope="module")
def receiver():
    """A real HTTP receiver for app webhooks and hook calls (answers 200 with an empty body unless a
    path is scripted)."""
    live = Receiver().start()
    yield live
    live.stop()

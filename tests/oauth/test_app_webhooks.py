"""App-owned webhooks: an installed app hears app.installed and the order events it subscribed to,
for the merchants that installed it only, signed with its own webhook secret and naming the
installation; after an uninstall, app.uninstalled and then nothing more."""
from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest
from standardwebhooks import Webhook

from flint.apps import service as apps
from flint.merchants import service as merchants
from support.receiver import Receiver

from support.oauth import PASSWORD, install

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}


@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def test_an_app_hears_its_installations_events_and_nothing_after_uninstall(server, server_rt, browser, receiver):
    dev, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                             password=PASSWORD)
    path = f"/app-{secrets.token_hex(4)}"
    app, client_secret, webhook_secret = await apps.create_app(
        server_rt, dev.id, name="Order Feed", redirect_uris=["http://127.0.0.1:9/callback"],
        scopes=["orders:read", "payments:read"], webhook_url=receiver.url(path), webhook_events=["order.*"])
    shop, key = await merchants.create_merchant(server_rt, name="Shop", email=f"s{secrets.token_hex(4)}@shop.example",
                                                password=PASSWORD)
    other, other_key = await merchants.create_merchant(server_rt, name="Other", email=f"o{secrets.token_hex(4)}@o.example",
                                                       password=PASSWORD)
    token, _ = await install(server, browser, app, client_secret, shop.email)

    def received(count):
        return [Webhook(webhook_secret).verify(r.body, r.headers) for r in receiver.wait_for(path, count)]

    first = received(1)[0]
    assert first["type"] == "app.installed"
    assert (first["installation_id"], first["merchant_id"]) == (token["installation_id"], shop.id)
    async with server.async_client(key) as owner, server.async_client(other_key) as theirs:
        mine = (await owner.post("/v1/orders", json=ORDER)).json()
        await theirs.post("/v1/orders", json=ORDER)  # another merchant's: never told to this app
        got = received(2)
        assert got[1]["type"] == "order.created" and got[1]["data"]["object"]["id"] == mine["id"]
        assert got[1]["merchant_id"] == shop.id
        # The merchant's own endpoints never list the app's.
        assert (await owner.get("/v1/webhook_endpoints")).json()["data"] == []
        assert (await owner.delete(f"/v1/installations/{token['installation_id']}")).status_code == 200
        last = received(3)[2]
        assert last["type"] == "app.uninstalled" and last["installation_id"] == token["installation_id"]
        await owner.post("/v1/orders", json=ORDER)
    time.sleep(1)
    assert len(receiver.at(path)) == 3  # nothing after app.uninstalled
    assert {json.loads(r.body)["merchant_id"] for r in receiver.at(path)} == {shop.id}


async def test_an_apps_new_webhook_url_reaches_installations_made_before_it(server, server_rt, browser, receiver):
    """A new webhook_url applies to earlier installations at once (the developer owns both ends); the
    events it subscribes to are a widening, which each merchant approves first (docs/api.md 12)."""
    dev, dev_key = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                                   password=PASSWORD)
    app, client_secret, webhook_secret = await apps.create_app(  # no webhook_url yet
        server_rt, dev.id, name="Late Listener", redirect_uris=["http://127.0.0.1:9/callback"],
        scopes=["orders:read", "payments:read"])
    shop, key = await merchants.create_merchant(server_rt, name="Shop", email=f"s{secrets.token_hex(4)}@shop.example",
                                                password=PASSWORD)
    token, _ = await install(server, browser, app, client_secret, shop.email)
    first, second = f"/late-{secrets.token_hex(4)}", f"/moved-{secrets.token_hex(4)}"

    def verified(path, count):
        return [Webhook(webhook_secret).verify(r.body, r.headers) for r in receiver.wait_for(path, count)]

    async with server.async_client(dev_key) as developer, server.async_client(key) as owner:
        changed = await developer.post(f"/v1/apps/{app.id}", json={"webhook_url": receiver.url(first),
                                                                    "webhook_events": ["order.created"]})
        assert changed.status_code == 200, changed.text
        await owner.post("/v1/orders", json=ORDER)  # not approved yet: not sent
        approved = await owner.post(f"/v1/installations/{token['installation_id']}/approve_update")
        assert approved.status_code == 200 and approved.json()["consented"]["webhook_events"] == ["order.created"]
        made = (await owner.post("/v1/orders", json=ORDER)).json()
        got = verified(first, 1)[0]
        assert (got["type"], got["data"]["object"]["id"], got["merchant_id"]) == ("order.created", made["id"], shop.id)
        await developer.post(f"/v1/apps/{app.id}", json={"webhook_url": receiver.url(second)})
        await owner.post("/v1/orders", json=ORDER)
        assert verified(second, 1)[0]["type"] == "order.created"
        await developer.post(f"/v1/apps/{app.id}", json={"webhook_url": None, "webhook_events": []})
        await owner.post("/v1/orders", json=ORDER)
    time.sleep(1)
    assert len(receiver.at(first)) == 1 and len(receiver.at(second)) == 1

"""Apps' checkout fields and the hook (docs/api.md 14): an installed app's fields appear on its merchant's
checkouts, the buyer's values land in extension_data[app_id].fields, the hook hears the buyer's details and
its own fields only, and its field_error refuses the attempt at that field."""
from __future__ import annotations

import json
import secrets

import httpx
import pytest
from standardwebhooks import Webhook

from flint.apps import service as apps
from flint.merchants import service as merchants
from flint.oauth.service import follow_app_change
from support.oauth import PASSWORD, REDIRECT, client_for, install, sign_in
from support.receiver import Receiver

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
ORDER = {"currency": "eur", "line_items": [{"name": "Wine", "quantity": 1, "unit_amount": 3600}]}
AGE = {"key": "age_confirmed", "label": "I am 18 or older", "type": "checkbox", "required": True}
PO = {"key": "po_number", "label": "Purchase order", "type": "text", "required": False}
NOTHING = json.dumps({"actions": []}).encode()


@pytest.fixture(scope="module")
def hook_server():
    live = Receiver().start()
    yield live
    live.stop()


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def shop_with_apps(server, server_rt, browser, hook_server, fields_per_app):
    """A merchant with one installed, hooked app per entry of ``fields_per_app`` (its checkout fields)."""
    shop, key = await merchants.create_merchant(server_rt, name="Cellar", email=f"c{secrets.token_hex(4)}@shop.example",
                                                password=PASSWORD)
    dev, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                             password=PASSWORD)
    installed = []
    for i, fields in enumerate(fields_per_app):
        path = hook_server.script(f"/fields-{secrets.token_hex(4)}", [200], body=NOTHING)
        app, client_secret, webhook_secret = await apps.create_app(
            server_rt, dev.id, name=f"Checker {i}", redirect_uris=["http://127.0.0.1:9/callback"],
            scopes=["orders:read", "payments:read"], hook_url=path, hooks=["checkout.before_payment"], checkout_fields=fields)
        await install(server, browser, app, client_secret, shop.email)
        installed.append((app, path.removeprefix(hook_server.url("")), webhook_secret))
    return key, installed


async def new_session(server, key):
    async with server.async_client(key) as owner:
        made = await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks",
            "collect": {"email": "required", "shipping_address": {"allowed_countries": ["DE"]}}})
        assert made.status_code == 200, made.text
        return made.json()


async def confirm(server, session, **body):
    async with server.async_client(session["client_token"]) as buyer:
        return await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD, **body})


CUSTOMER = {"email": "ada@example.com", "shipping_address": {"country": "DE", "line1": "Unter den Linden 1",
                                                             "city": "Berlin", "postal_code": "10117"}}


async def test_an_apps_required_field_is_asked_and_kept_under_its_id(server, server_rt, browser, hook_server):
    key, [(app, _, _)] = await shop_with_apps(server, server_rt, browser, hook_server, [[AGE]])
    session = await new_session(server, key)
    refused = await confirm(server, session, customer=CUSTOMER)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_field"
    assert [(e["param"], e["code"]) for e in refused.json()["errors"]] == [
        (f"app_fields.{app.id}.age_confirmed", "field_required")]
    paid = await confirm(server, session, customer=CUSTOMER, app_fields={app.id: {"age_confirmed": True}})
    assert paid.status_code == 200, paid.text
    async with server.async_client(key) as owner:
        order = (await owner.get(f"/v1/orders/{session['order_id']}")).json()
    assert order["extension_data"] == {app.id: {"fields": {"age_confirmed": True}}}
    assert order["customer"]["email"] == "ada@example.com"


async def test_the_hook_hears_the_buyer_and_its_own_fields_only(server, server_rt, browser, hook_server):
    key, [(first, first_path, first_secret), (second, second_path, second_secret)] = await shop_with_apps(
        server, server_rt, browser, hook_server, [[AGE], [PO]])
    session = await new_session(server, key)
    paid = await confirm(server, session, customer=CUSTOMER, app_fields={
        first.id: {"age_confirmed": True}, second.id: {"po_number": "PO-7"}})
    assert paid.status_code == 200, paid.text
    heard_first = Webhook(first_secret).verify(hook_server.at(first_path)[-1].body, hook_server.at(first_path)[-1].headers)
    heard_second = Webhook(second_secret).verify(hook_server.at(second_path)[-1].body,
                                                 hook_server.at(second_path)[-1].headers)
    assert heard_first["fields"] == {"age_confirmed": True}
    assert heard_second["fields"] == {"po_number": "PO-7"}
    assert heard_first["customer"]["email"] == "ada@example.com"
    assert heard_first["customer"]["shipping_address"]["postal_code"] == "10117"
    # Neither sees the other's values anywhere in what it was sent.
    assert "PO-7" not in hook_server.at(first_path)[-1].body.decode()
    assert "age_confirmed" not in hook_server.at(second_path)[-1].body.decode()


async def test_field_error_refuses_the_attempt_at_the_apps_field(server, server_rt, browser, hook_server):
    key, [(app, path, _)] = await shop_with_apps(server, server_rt, browser, hook_server, [[AGE]])
    hook_server.script(path, [200], body=json.dumps({"actions": [
        {"type": "field_error", "field": "age_confirmed", "message": "We need proof of age <b>first</b>."}]}).encode())
    session = await new_session(server, key)
    refused = await confirm(server, session, customer=CUSTOMER, app_fields={app.id: {"age_confirmed": True}})
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["code"] == "invalid_field" and problem["param"] == f"app_fields.{app.id}.age_confirmed"
    assert problem["errors"] == [{"param": f"app_fields.{app.id}.age_confirmed", "code": "field_error",
                                  "message": "We need proof of age <b>first</b>."}]
    async with server.async_client(key) as owner:
        payments = (await owner.get("/v1/payments", params={"order": session["order_id"]})).json()["data"]
        calls = (await owner.get("/v1/hook_calls", params={"order": session["order_id"]})).json()["data"]
        order = (await owner.get(f"/v1/orders/{session['order_id']}")).json()
    assert payments == []
    assert calls[0]["applied"] == ["field_error"]
    assert order["customer"] is None  # a refused attempt keeps nothing


async def test_a_field_error_on_a_field_not_its_own_is_ignored(server, server_rt, browser, hook_server):
    key, [(first, first_path, _), _] = await shop_with_apps(
        server, server_rt, browser, hook_server, [[AGE], [PO]])
    hook_server.script(first_path, [200], body=json.dumps({"actions": [
        {"type": "field_error", "field": "po_number", "message": "Not yours"}]}).encode())
    session = await new_session(server, key)
    paid = await confirm(server, session, customer=CUSTOMER, app_fields={first.id: {"age_confirmed": True}})
    assert paid.status_code == 200, paid.text
    async with server.async_client(key) as owner:
        [call] = [c for c in (await owner.get("/v1/hook_calls", params={"order": session["order_id"]})).json()["data"]
                  if c["app_id"] == first.id]
    assert call["applied"] == [] and {"type": "field_error", "field": "po_number", "message": "Not yours"} in call["ignored"]


async def test_a_field_the_app_adds_after_install_waits_for_the_merchant(server, server_rt, browser, hook_server):
    key, [(app, _, _)] = await shop_with_apps(server, server_rt, browser, hook_server, [[AGE]])
    await apps.update_app(server_rt, app.developer_merchant_id, app.id, {"checkout_fields": [AGE, PO]},
                          follow_app_change)
    session = await new_session(server, key)
    # po_number is not consented: a value for it is a field nobody asked for.
    refused = await confirm(server, session, customer=CUSTOMER,
                            app_fields={app.id: {"age_confirmed": True, "po_number": "PO-1"}})
    assert refused.status_code == 400
    assert [(e["param"], e["code"]) for e in refused.json()["errors"]] == [
        (f"app_fields.{app.id}.po_number", "field_unknown")]
    async with server.async_client(key) as owner:
        [installation] = (await owner.get("/v1/installations")).json()["data"]
    assert installation["pending_update"]["checkout_fields"][-1]["key"] == "po_number"


async def test_the_consent_page_lists_the_apps_fields_with_their_kind(server, server_rt, browser):
    shop, _ = await merchants.create_merchant(server_rt, name="Cellar", email=f"c{secrets.token_hex(4)}@shop.example",
                                              password=PASSWORD)
    dev, _ = await merchants.create_merchant(server_rt, name="Dev", email=f"d{secrets.token_hex(4)}@dev.example",
                                             password=PASSWORD)
    app, client_secret, _ = await apps.create_app(
        server_rt, dev.id, name="Age Check", redirect_uris=[REDIRECT], scopes=["orders:read", "payments:read"],
        checkout_fields=[AGE, PO])
    await sign_in(browser, shop.email)
    async with client_for(server, app, client_secret) as client:
        url, _ = client.create_authorization_url(f"{server.url}/oauth/authorize", code_verifier=secrets.token_urlsafe(48))
        page = await browser.get(url.removeprefix(server.url))
    assert page.status_code == 200
    assert "It adds these fields to your checkout" in page.text
    assert "<span>I am 18 or older</span><span class=\"muted\">Checkbox, required</span>" in page.text
    assert "<span>Purchase order</span><span class=\"muted\">Text, optional</span>" in page.text

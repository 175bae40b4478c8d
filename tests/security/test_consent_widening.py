"""Finding 1: an app's developer could widen what an installation receives and does after the merchant
approved it (POST /v1/apps/{id} changed webhook_events, hooks and scopes for every installation at
once), and events were not filtered by the scopes granted. docs/api.md 12: an installation keeps what its
consent page showed (`consented`); a widening waits in `pending_update` for the merchant
(`approve_update`, or a new run through /oauth/authorize); a narrowing applies at once; events reach an
app only if consented and readable under its scopes."""
from __future__ import annotations

import json

import httpx

from flint.hooks.models import HOOK
from support.oauth import sign_in

from .partner import ORDER, deliveries_to, installed_app, pay, receiver, unique_path  # noqa: F401


async def _installation(server, key, installation_id):
    async with server.async_client(key) as owner:
        found = await owner.get(f"/v1/installations/{installation_id}")
    assert found.status_code == 200, found.text
    return found.json()


async def test_widening_waits_for_the_merchant_and_narrowing_applies_at_once(server, server_rt, receiver):
    hook_path, feed_path = unique_path("hook"), unique_path("feed")
    receiver.script(hook_path, [200], body=json.dumps({"actions": [{"type": "block", "message": "No."}]}).encode())
    inst = await installed_app(server, server_rt, scopes=["orders:read"], webhook_url=receiver.url(feed_path),
                               webhook_events=["order.paid"])
    async with server.async_client(inst.developer_key) as developer:
        widened = await developer.post(f"/v1/apps/{inst.app.id}", json={
            "webhook_events": ["*"], "hook_url": receiver.url(hook_path), "hooks": [HOOK]})
        assert widened.status_code == 200, widened.text
    session = await pay(server, inst.shop_key)  # not blocked: the hook was never approved
    async with server.async_client(inst.shop_key) as owner:
        calls = (await owner.get("/v1/hook_calls", params={"order": session["order_id"]})).json()["data"]
    assert calls == [] and receiver.at(hook_path) == []
    # Only order.paid was consented: order.created, the session and payment events are not sent.
    assert await deliveries_to(server_rt, receiver.url(feed_path)) == ["app.installed", "order.paid"]

    async with server.async_client(inst.developer_key) as developer:
        widened = await developer.post(f"/v1/apps/{inst.app.id}", json={
            "scopes": ["orders:read", "orders:write", "refunds:write"]})
        assert widened.status_code == 200, widened.text

    # The installation keeps what its consent page showed; the widening waits.
    shown = await _installation(server, inst.shop_key, inst.installation_id)
    assert shown["consented"]["webhook_events"] == ["order.paid"] and shown["consented"]["hooks"] == []
    assert shown["consented"]["scopes"] == ["orders:read"]
    pending = shown["pending_update"]
    assert pending["scopes"] == ["orders:read", "orders:write", "refunds:write"] and pending["hooks"] == [HOOK]
    assert "order.created" in pending["webhook_events"] and pending["requested_at"]

    async with server.async_client(inst.token["access_token"]) as app:
        refused = await app.post("/v1/orders", json=ORDER)  # orders:write is not consented yet
        assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"

    # The merchant approves: from now on the new set applies, to the live token too.
    async with server.async_client(inst.shop_key) as owner:
        approved = await owner.post(f"/v1/installations/{inst.installation_id}/approve_update")
    assert approved.status_code == 200, approved.text
    assert approved.json()["pending_update"] is None
    assert approved.json()["consented"]["scopes"] == ["orders:read", "orders:write", "refunds:write"]
    async with server.async_client(inst.token["access_token"]) as app:
        made = await app.post("/v1/orders", json=ORDER)
        assert made.status_code == 200, made.text
    blocked_session = None
    async with server.async_client(inst.shop_key) as owner:
        blocked_session = (await owner.post("/v1/checkout/sessions", json={
            "order": made.json()["id"], "mode": "embedded", "success_url": "https://shop.example/ok"})).json()
    async with server.async_client(blocked_session["client_token"]) as buyer:
        attempt = await buyer.post(f"/v1/checkout/sessions/{blocked_session['id']}/confirm", json={"card": {
            "number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    assert attempt.status_code == 402 and attempt.json()["code"] == "blocked_by_extension"
    assert "order.created" in await deliveries_to(server_rt, receiver.url(feed_path))

    # A narrowing applies at once, without asking anyone.
    async with server.async_client(inst.developer_key) as developer:
        narrowed = await developer.post(f"/v1/apps/{inst.app.id}", json={
            "scopes": ["orders:read"], "webhook_events": ["order.paid"], "hook_url": None, "hooks": []})
        assert narrowed.status_code == 200, narrowed.text
    shown = await _installation(server, inst.shop_key, inst.installation_id)
    assert shown["consented"] == {"scopes": ["orders:read"], "webhook_events": ["order.paid"], "hooks": [],
                                  "checkout_fields": []}
    assert shown["pending_update"] is None
    async with server.async_client(inst.token["access_token"]) as app:
        assert (await app.post("/v1/orders", json=ORDER)).status_code == 403
    before = await deliveries_to(server_rt, receiver.url(feed_path))
    async with server.async_client(inst.shop_key) as owner:
        await owner.post("/v1/orders", json=ORDER)
    assert await deliveries_to(server_rt, receiver.url(feed_path)) == before


async def test_events_reach_an_app_only_when_its_scopes_can_read_them(server, server_rt, receiver):
    feed_path = unique_path("feed")
    inst = await installed_app(server, server_rt, scopes=["orders:read"], webhook_url=receiver.url(feed_path),
                               webhook_events=["*"])
    await pay(server, inst.shop_key)
    types = await deliveries_to(server_rt, receiver.url(feed_path))
    assert "order.paid" in types and "checkout.session.completed" in types
    assert not [t for t in types if t.startswith(("payment.", "refund."))], types  # payments:read was not granted


async def test_running_the_consent_page_again_approves_a_pending_update(server, server_rt, receiver):
    feed_path = unique_path("feed")
    inst = await installed_app(server, server_rt, scopes=["orders:read"], webhook_url=receiver.url(feed_path),
                               webhook_events=["order.paid"])
    async with server.async_client(inst.developer_key) as developer:
        await developer.post(f"/v1/apps/{inst.app.id}", json={"webhook_events": ["order.*", "refund.*"],
                                                                "scopes": ["orders:read", "payments:read"]})
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await sign_in(browser, inst.shop.email)
        page = await browser.get("/oauth/authorize", params={
            "response_type": "code", "client_id": inst.app.client_id, "redirect_uri": "http://127.0.0.1:9/callback",
            "scope": "orders:read payments:read", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256", "state": "s"})
        assert page.status_code == 200
        # The page says what changes, in words: the new permission and the new events.
        assert "What changes" in page.text and "See payments" in page.text and "When a refund" in page.text
    from support.oauth import install
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await install(server, browser, inst.app, inst.client_secret, inst.shop.email, scope="orders:read payments:read")
    shown = await _installation(server, inst.shop_key, inst.installation_id)
    assert shown["pending_update"] is None
    assert shown["consented"]["scopes"] == ["orders:read", "payments:read"]
    assert "refund.succeeded" in shown["consented"]["webhook_events"]


async def test_another_merchant_cannot_read_or_approve_an_installation(server, server_rt, receiver):
    inst = await installed_app(server, server_rt, scopes=["orders:read"])
    from .partner import new_shop
    _, other_key = await new_shop(server_rt)
    async with server.async_client(other_key) as other:
        assert (await other.get(f"/v1/installations/{inst.installation_id}")).status_code == 404
        refused = await other.post(f"/v1/installations/{inst.installation_id}/approve_update")
        assert refused.status_code == 404 and refused.json()["code"] == "installation_not_found"
    async with server.async_client(inst.token["access_token"]) as app:  # an app cannot approve itself
        refused = await app.post(f"/v1/installations/{inst.installation_id}/approve_update")
        assert refused.status_code == 403
    async with server.async_client(inst.shop_key) as owner:
        nothing = await owner.post(f"/v1/installations/{inst.installation_id}/approve_update")
        assert nothing.status_code == 409 and nothing.json()["code"] == "no_pending_update"


async def test_the_event_api_shows_an_app_only_what_its_scopes_read(server, server_rt):
    inst = await installed_app(server, server_rt, scopes=["orders:read", "events:read"])
    session = await pay(server, inst.shop_key)
    async with server.async_client(inst.token["access_token"]) as app, server.async_client(inst.shop_key) as owner:
        listed = {e["type"] for e in (await app.get("/v1/events", params={"limit": 100})).json()["data"]}
        assert "order.paid" in listed and not {t for t in listed if t.startswith(("payment.", "refund.", "app."))}
        ordered = (await app.get(f"/v1/orders/{session['order_id']}/events")).json()["data"]
        assert ordered and not [e for e in ordered if e["type"].startswith("payment.")]
        paid = [e for e in (await owner.get("/v1/events", params={"type": "payment.succeeded"})).json()["data"]
                if e["order_id"] == session["order_id"]][0]
        assert (await app.get(f"/v1/events/{paid['id']}")).status_code == 404
        assert (await owner.get(f"/v1/events/{paid['id']}")).status_code == 200


def test_every_scope_and_event_has_words_for_the_merchant():
    from flint.event_types import EVENT_TYPES
    from flint.scopes import EVENT_WORDS, SCOPE_WORDS, SCOPES, grouped_events

    assert set(SCOPE_WORDS) == set(SCOPES) and set(EVENT_WORDS) == set(EVENT_TYPES)
    groups = dict(grouped_events(["order.paid", "payment.succeeded", "app.installed"]))
    assert list(groups.values()) == [["When an order is paid"], ["When a payment succeeds"], ["When this app is installed"]]

"""The checkout.before_payment hook as the buyer meets it in the widget (real Chromium, a real hook
server): a block shows the app's message as plain text in the card frame; route_to_hosted makes the
widget fall back to the hosted page."""
from __future__ import annotations

import json
import secrets

import httpx
import pytest
from playwright.sync_api import Page, expect

from flint.apps import service as apps
from flint.merchants import service as merchants
from flint.runtime import Runtime
from support.oauth import PASSWORD, install
from support.receiver import Receiver

from .conftest import run_async
from .widget import card_frame, merchant_page, pay_in_frame, script_tag, wait_for_event

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}


@pytest.fixture(scope="module")
def hook_server():
    live = Receiver().start()
    yield live
    live.stop()


def hooked_session(server, shop, hook_server, action: dict) -> dict:
    """A merchant (the shop's origin allowed) with one app installed whose hook answers ``action``;
    returns an embedded session of that merchant."""
    path = f"/hook-{secrets.token_hex(4)}"
    hook_server.script(path, [200], body=json.dumps({"actions": [action]}).encode())

    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            owner, key = await merchants.create_merchant(runtime, name="Hooked", password=PASSWORD,
                                                         email=f"h{secrets.token_hex(4)}@shop.example", origins=[shop.origin])
            dev, _ = await merchants.create_merchant(runtime, name="Dev", password=PASSWORD,
                                                     email=f"d{secrets.token_hex(4)}@dev.example")
            app, client_secret, _ = await apps.create_app(
                runtime, dev.id, name="Guard", redirect_uris=["http://127.0.0.1:9/callback"], scopes=["orders:read", "payments:read"],
                hook_url=hook_server.url(path), hooks=["checkout.before_payment"])
        finally:
            await runtime.stop()
        async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
            await install(server, browser, app, client_secret, owner.email)
        async with server.async_client(key) as api:
            made = await api.post("/v1/checkout/sessions", json={"order": ORDER, "mode": "embedded",
                                                                 "success_url": f"{shop.url}/thanks"})
            return made.json()

    return run_async(seed)


def test_a_block_shows_the_apps_message_in_the_frame(page: Page, server, shop, hook_server):
    session = hooked_session(server, shop, hook_server, {"type": "block", "message": "Call us first <script>x</script>"})
    page.goto(shop.serve(f"/hooked-{session['id']}", merchant_page("Checkout", '<div id="checkout"></div>' +
                                                                   script_tag(server.url, session["client_token"]))))
    wait_for_event(page, "flint:ready")
    pay_in_frame(card_frame(page), "4242 4242 4242 4242")
    expect(card_frame(page).get_by_role("alert")).to_have_text("Call us first <script>x</script>")  # as text


def test_route_to_hosted_makes_the_widget_fall_back(page: Page, server, shop, hook_server):
    session = hooked_session(server, shop, hook_server, {"type": "route_to_hosted", "reason": "address check"})
    page.goto(shop.serve(f"/routed-{session['id']}", merchant_page("Checkout", '<div id="checkout"></div>' +
                                                                   script_tag(server.url, session["client_token"]))))
    wait_for_event(page, "flint:ready")
    pay_in_frame(card_frame(page), "4242 4242 4242 4242")
    fallback = wait_for_event(page, "flint:fallback")
    assert fallback["detail"] == {"url": session["url"], "reason": "requested"}
    link = page.get_by_role("link", name="Continue to secure checkout")
    link.click()
    expect(page).to_have_url(session["url"])

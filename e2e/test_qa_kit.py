"""The QA kit's browser helpers (flint.testing.FlintCheckout and AsyncFlintCheckout, docs/api.md 18) in
Chromium against the kit's own ``flint_server``: a merchant page on the e2e shop's origin embeds the
widget; paying, a declined card and a mistyped one, 3-D Secure approved and denied, the hosted page with
buyer fields, a page whose origin is not allowed, and the async twin."""
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from flint.testing import AsyncFlintCheckout, FlintCheckout, WidgetUnavailable
from support.browser import CHROMIUM, CHROMIUM_ARGS

from .conftest import run_async

THREE_DS = "4000 0027 6000 3184"
LINE_ITEMS = [{"name": "Espresso beans 1 kg", "quantity": 1, "unit_amount": 2400}]


@pytest.fixture(scope="module")
def kit_shop(flint_server, shop):
    """The e2e shop, allowed to embed the widget of the kit's merchant."""
    flint_server.allow_origin(shop.origin)
    return shop


def new_session(flint_server, shop, mode: str = "embedded", **fields: Any) -> dict:
    with flint_server.client() as api:
        created = api.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "line_items": LINE_ITEMS}, "mode": mode,
            "success_url": f"{shop.url}/thanks", "cancel_url": f"{shop.url}/cart", **fields})
    assert created.status_code == 200, created.text
    return created.json()


def merchant_page(flint_server, shop, session: dict, path: str) -> str:
    """A merchant's page with the script tag of docs/api.md 5, served by the shop; returns its URL. The page
    notes flint:ready itself (window.readyBefore), for a test to look only after the widget is ready."""
    return shop.serve(path, f"""<!doctype html><html lang="en"><title>Checkout</title><main><h1>Checkout</h1>
<div id="checkout"></div>
<script>document.addEventListener("flint:ready", () => {{ window.readyBefore = true; }});</script>
<script src="{flint_server.url}/widget/v1/flint.js" data-client-token="{session['client_token']}"
 data-target="#checkout" async></script></main></html>""")


def test_the_widget_pays_and_the_webhook_is_verified(page: Page, flint_server, flint_webhooks, kit_shop):
    session = new_session(flint_server, kit_shop)
    page.goto(merchant_page(flint_server, kit_shop, session, "/kit/pay"))
    FlintCheckout(page).fill(card="4242 4242 4242 4242", email="ada@example.com", full_name="Ada Lovelace").pay()
    expect(page).to_have_url(re.compile(r"/thanks"))
    paid = flint_webhooks.wait_for("order.paid", order_id=session["order_id"])
    assert paid["data"]["object"]["customer"]["email"] == "ada@example.com"


def test_a_mistyped_and_a_declined_card_are_said_then_a_good_one_pays(page: Page, flint_server, kit_shop):
    session = new_session(flint_server, kit_shop)
    page.goto(merchant_page(flint_server, kit_shop, session, "/kit/decline"))
    page.wait_for_function("() => window.readyBefore")
    checkout = FlintCheckout(page, timeout=2000)  # flint:ready fired before it looked: it knows all the same
    checkout.fill(card="4242 4242 4242 4241").pay()  # fails Luhn: marked at the field, nothing sent
    assert "card number" in checkout.error_text().lower()
    checkout.fill(card="4000 0000 0000 0002").pay()
    assert "declined" in checkout.error_text().lower()
    checkout.fill(card="4242 4242 4242 4242").pay()
    expect(page).to_have_url(re.compile(r"/thanks"))


def test_3ds_denied_then_approved_in_the_widget(page: Page, flint_server, flint_webhooks, kit_shop):
    session = new_session(flint_server, kit_shop)
    page.goto(merchant_page(flint_server, kit_shop, session, "/kit/3ds"))
    checkout = FlintCheckout(page)
    checkout.fill(card=THREE_DS).pay()
    checkout.deny_3ds()
    assert checkout.error_text()  # the buyer is told, and the form is back
    flint_webhooks.wait_for("payment.failed", order_id=session["order_id"])
    checkout.fill(card=THREE_DS).pay()
    checkout.approve_3ds()
    expect(page).to_have_url(re.compile(r"/thanks"))
    flint_webhooks.wait_for("order.paid", order_id=session["order_id"])


def test_the_hosted_page_with_buyer_fields_and_3ds_denied_then_approved(page: Page, flint_server, kit_shop):
    session = new_session(flint_server, kit_shop, mode="hosted", collect={
        "email": "required", "name": "required", "billing_address": "country",
        "shipping_address": {"allowed_countries": ["DE", "US"]}},
        custom_fields=[{"key": "gift", "label": "Gift message", "type": "text", "required": False},
                       {"key": "wrap", "label": "Gift wrap", "type": "checkbox", "required": False}])
    buyer = {"email": "grace@example.com", "full_name": "Grace Hopper", "billing_country": "US",
             "shipping_country": "DE", "shipping_address_line1": "Unter den Linden 1", "shipping_city": "Berlin",
             "shipping_postal_code": "10117", "gift_message": "Enjoy", "gift_wrap": True}
    checkout = FlintCheckout.hosted(page, session["url"])
    checkout.fill(card=THREE_DS, **buyer).pay()
    checkout.deny_3ds()
    assert "authenticate" in checkout.error_text()  # back on a fresh form, told why
    checkout.fill(card=THREE_DS, **buyer).pay()
    checkout.approve_3ds()
    expect(page).to_have_url(re.compile(r"/thanks"))
    with flint_server.client() as api:
        order = api.get(f"/v1/orders/{session['order_id']}").json()
    assert order["status"] == "paid"
    assert order["customer"]["billing_address"]["country"] == "US"
    assert order["customer"]["shipping_address"]["city"].lower() == "berlin"
    assert order["custom_fields"] == {"gift": "Enjoy", "wrap": True}


def test_a_page_whose_origin_is_not_allowed_is_said_to_fall_back(page: Page, flint_server, kit_shop):
    session = new_session(flint_server, kit_shop)
    # The same shop addressed as 127.0.0.1: another origin, which the merchant has not allowed.
    url = merchant_page(flint_server, kit_shop, session, "/kit/elsewhere").replace("localhost", "127.0.0.1")
    page.goto(url)
    with pytest.raises(WidgetUnavailable) as unavailable:
        FlintCheckout(page)
    assert unavailable.value.state == "fallback" and unavailable.value.detail["url"] == session["url"]


def test_the_async_twin_pays_with_3ds(flint_server, kit_shop):
    """AsyncFlintCheckout on Playwright's async API, in a thread of its own (this worker's main thread
    belongs to the sync API's event loop, see conftest.py)."""
    session = new_session(flint_server, kit_shop)
    url = merchant_page(flint_server, kit_shop, session, "/kit/async")

    async def buy() -> str:
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.goto(url)
                checkout = await AsyncFlintCheckout(page)
                await (await checkout.fill(card="4000 0000 0000 0002")).pay()
                declined = await checkout.error_text()
                await (await checkout.fill(card=THREE_DS)).pay()
                await checkout.approve_3ds()
                await page.wait_for_url(re.compile(r"/thanks"))
                return declined
            finally:
                await browser.close()

    assert "declined" in run_async(buy).lower()
    with flint_server.client() as api:
        assert api.get(f"/v1/orders/{session['order_id']}").json()["status"] == "paid"

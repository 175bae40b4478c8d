"""Authorize now, capture later as the buyer sees it, in real Chromium (docs/api.md 17): a manual-capture
embedded checkout says the card was authorized (not "paid") in the widget; the merchant captures through the
API (POST /v1/payments/{id}/capture); the buyer's receipt page then says paid. With JavaScript off the
hosted page says authorized too. Axe clean at 390 px and 1280 px, with review screenshots."""
from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from .helpers import VIEWPORTS, assert_accessible, pay, screenshot
from .widget import card_frame, merchant_page, pay_in_frame, script_tag, wait_for_event

SUCCESS = "4242 4242 4242 4242"


def _authorized_words(merchant) -> str:
    name = merchant.api.get("/v1/merchant").json()["name"]
    return f"Your card was authorized. You will be charged when {name} confirms your order."


def _accessible_at_both_widths(page: Page, name: str) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
    page.set_viewport_size(VIEWPORTS["desktop"])
    screenshot(page, name)


def test_the_widget_says_authorized_the_merchant_captures_then_the_receipt_says_paid(page: Page, shop, server,
                                                                                     merchant,
                                                                                     create_checkout_session):
    session = create_checkout_session(mode="embedded", capture="manual")
    assert session["capture"] == "manual"
    url = shop.serve("/pay-manual", merchant_page("Checkout", '<h1>Checkout</h1><div id="checkout"></div>' +
                                                  script_tag(server.url, session["client_token"], redirect="false")))
    page.goto(url)
    wait_for_event(page, "flint:ready")
    frame = card_frame(page)
    pay_in_frame(frame, SUCCESS)
    complete = wait_for_event(page, "flint:complete")
    # The widget's done state: authorized, never "paid".
    status = frame.get_by_role("status")
    expect(status).to_have_text(_authorized_words(merchant))
    expect(frame.get_by_text("Payment complete")).to_have_count(0)
    screenshot(page, "widget-authorized")

    payment_id = complete["detail"]["payment_id"]
    payment = merchant.api.get(f"/v1/payments/{payment_id}").json()
    assert (payment["status"], payment["amount_capturable"]) == ("authorized", 2400)
    assert merchant.api.get(f"/v1/orders/{session['order_id']}").json()["status"] == "authorized"

    # The buyer's receipt while the authorization stands: authorized.
    receipt = f"{server.url}/checkout/{session['id']}/receipt"
    page.goto(receipt)
    expect(page.get_by_role("heading", level=1)).to_have_text("Card authorized")
    expect(page.get_by_role("status")).to_have_text(_authorized_words(merchant))
    expect(page.get_by_text("Payment received")).to_have_count(0)
    _accessible_at_both_widths(page, "receipt-authorized")

    # The merchant ships and captures through the API.
    captured = merchant.api.post(f"/v1/payments/{payment_id}/capture", json={},
                                 headers={"Idempotency-Key": str(uuid.uuid4())})
    assert captured.status_code == 200, captured.text
    assert (captured.json()["status"], captured.json()["amount_captured"]) == ("succeeded", 2400)

    page.goto(receipt)
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    expect(page.get_by_role("status")).to_contain_text("was successful")
    expect(page.get_by_text("authorized")).to_have_count(0)
    _accessible_at_both_widths(page, "receipt-captured")
    assert merchant.api.get(f"/v1/orders/{session['order_id']}").json()["status"] == "paid"


def test_the_hosted_page_with_javascript_off_says_authorized(browser, shop, merchant, create_checkout_session):
    session = create_checkout_session(capture="manual")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(session["url"])
        pay(page, SUCCESS)
        # The merchant's success page, as for any payment.
        expect(page).to_have_url(re.compile(re.escape(f"{shop.url}/thanks")))
        # Back at the checkout: not a form, not "paid": authorized.
        page.goto(session["url"])
        expect(page.get_by_role("heading", level=1)).to_have_text("Card authorized")
        expect(page.get_by_role("status")).to_have_text(_authorized_words(merchant))
        expect(page.get_by_role("textbox", name="Card number")).to_have_count(0)
        screenshot(page, "hosted-authorized-no-js")
    finally:
        context.close()
    assert merchant.api.get(f"/v1/orders/{session['order_id']}").json()["status"] == "authorized"
    # axe runs as a script, so the same page is checked with JavaScript on.
    page = browser.new_page()
    try:
        page.goto(session["url"])
        expect(page.get_by_role("heading", level=1)).to_have_text("Card authorized")
        _accessible_at_both_widths(page, "hosted-authorized")
    finally:
        page.close()

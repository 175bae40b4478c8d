"""Card testing in real Chromium (docs/api.md 13): a buyer, or a card tester, on the demo shop's widget gets ten
failed attempts on one checkout; the card frame then says when to try again, in the buyer's words, and
not even a good card reaches the processor."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .demo_shop import fill_shop_details
from .helpers import PAY_BUTTON, assert_accessible, screenshot
from .widget import card_frame, pay_in_frame

DECLINE = "4000 0000 0000 0002"
SUCCESS = "4242 4242 4242 4242"
MAX_FAILED = 10  # FLINT_MAX_FAILED_ATTEMPTS at its default


def test_the_widget_says_when_to_try_again_after_too_many_failed_attempts(page: Page, demo_shop, merchant):
    page.goto(demo_shop.url + "/")
    page.get_by_role("button", name="Buy now").click()
    expect(page).to_have_url(re.compile(re.escape(demo_shop.url) + r"/pay/cs_\w+$"))
    session_id = page.url.rsplit("/", 1)[1]
    frame = card_frame(page)
    pay = frame.get_by_role("button", name=PAY_BUTTON)
    fill_shop_details(frame)  # the shop's email and shipping address, kept across the declines
    for _ in range(MAX_FAILED):
        pay_in_frame(frame, DECLINE)
        expect(frame.get_by_role("alert")).to_have_text("Your card was declined.")
        expect(pay).to_be_enabled()  # the answer came back: the next click is a new attempt
    session = merchant.api.get(f"/v1/checkout/sessions/{session_id}").json()
    payments = merchant.api.get("/v1/payments", params={"order": session["order_id"], "limit": 100}).json()["data"]
    assert [p["status"] for p in payments] == ["failed"] * MAX_FAILED

    pay_in_frame(frame, SUCCESS)
    expect(frame.get_by_role("alert")).to_have_text("Too many payment attempts. Please try again in 60 minutes.")
    expect(pay).to_be_enabled()
    assert_accessible(page)
    screenshot(page, "widget-too-many-attempts")
    # The good card never reached the processor: no new payment, the order still open.
    payments = merchant.api.get("/v1/payments", params={"order": session["order_id"], "limit": 100}).json()["data"]
    assert len(payments) == MAX_FAILED
    assert merchant.api.get(f"/v1/orders/{session['order_id']}").json()["status"] == "open"

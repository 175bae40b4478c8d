"""Paying at the demo shop in a real browser: the shop's own pages on its own origin, Flint's card frame in
them, and what Flint then reports to the shop's backend (its API and its webhooks). Only the QA kit and
Playwright: ``FlintCheckout`` types into the frame by accessible names, ``flint_server.client()`` reads
back what happened, ``flint_webhooks`` receives the verified events."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from flint.testing import FlintCheckout, WidgetUnavailable

from .buyer import DECLINE, DETAILS, SUCCESS, THREE_D_SECURE, buy, success_url

# The shop's --accent and --paper (static/shop.css) as the browser computes them: the frame's Pay button
# wears the shop's brown on its paper, not Flint's own colours.
SHOP_BROWN = "rgb(122, 62, 18)"
SHOP_PAPER = "rgb(255, 253, 249)"


def session_and_order(flint_server, session_id: str) -> tuple[dict, dict]:
    with flint_server.client() as api:
        session = api.get(f"/v1/checkout/sessions/{session_id}").json()
        order = api.get(f"/v1/orders/{session['order_id']}").json()
        order["payments"] = api.get("/v1/payments", params={"order": order["id"]}).json()["data"]
    return session, order


def test_a_buyer_pays_and_the_shop_hears_of_it(page: Page, shop, flint_server, flint_webhooks):
    """Buy now → the widget in the shop's colours, one order summary (the frame's) → email, address, card →
    the shop's success page says paid, Flint's order keeps the buyer's details, order.paid arrives signed."""
    session_id = buy(page, shop.url)
    checkout = FlintCheckout(page)
    pay_button = checkout.form.get_by_role("button", name=re.compile(r"^Pay"))
    expect(pay_button).to_have_text("Pay $24.00")
    assert pay_button.evaluate("b => getComputedStyle(b).backgroundColor") == SHOP_BROWN
    assert checkout.form.locator("body").evaluate("b => getComputedStyle(b).backgroundColor") == SHOP_PAPER
    expect(page.get_by_role("list", name="Order summary")).to_have_count(0)
    expect(checkout.form.get_by_role("list", name="Order summary")).to_have_count(1)

    checkout.fill(card=SUCCESS, **DETAILS)
    checkout.pay()
    expect(page).to_have_url(success_url(shop.url, session_id))
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    expect(page.locator("#order-status")).to_have_text("paid")

    session, order = session_and_order(flint_server, session_id)
    assert (session["mode"], session["status"], order["status"], order["amount_paid"]) == (
        "embedded", "complete", "paid", 2400)
    assert order["customer"]["email"] == "ada@example.com"
    assert order["customer"]["shipping_address"]["postal_code"] == "10117"
    paid = flint_webhooks.wait_for("order.paid", order_id=order["id"])
    assert paid["data"]["object"]["amount_paid"] == 2400
    succeeded = flint_webhooks.wait_for("payment.succeeded", order_id=order["id"])
    assert succeeded["data"]["object"]["card"]["last4"] == "4242"


def test_a_declined_card_then_a_good_one(page: Page, shop, flint_server):
    session_id = buy(page, shop.url)
    checkout = FlintCheckout(page)
    checkout.fill(card=DECLINE, **DETAILS)
    checkout.pay()
    assert checkout.error_text() == "Your card was declined."
    expect(page).to_have_url(f"{shop.url}/pay/{session_id}")
    checkout.fill(card=SUCCESS)  # the email and the address stay as the buyer typed them
    checkout.pay()
    expect(page).to_have_url(success_url(shop.url, session_id))
    expect(page.locator("#order-status")).to_have_text("paid")
    _, order = session_and_order(flint_server, session_id)
    assert sorted((p["status"], p["failure_code"]) for p in order["payments"]) == [
        ("failed", "card_declined"), ("succeeded", None)]


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "denied"])
def test_three_d_secure_in_the_frame(page: Page, shop, flint_server, approve: bool):
    """The challenge opens inside the card frame, on the shop's page: approved, the buyer lands on the success
    page; denied, the frame says so and the buyer pays with another card."""
    session_id = buy(page, shop.url)
    checkout = FlintCheckout(page)
    checkout.fill(card=THREE_D_SECURE, **DETAILS)
    checkout.pay()
    expect(checkout.form.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    expect(checkout.form.get_by_text("ending in 3184")).to_be_visible()
    assert page.url == f"{shop.url}/pay/{session_id}"  # the challenge never leaves the shop's page
    if approve:
        checkout.approve_3ds()
        expect(page).to_have_url(success_url(shop.url, session_id))
        expect(page.locator("#order-status")).to_have_text("paid")
        _, order = session_and_order(flint_server, session_id)
        assert [(p["status"], p["card"]["last4"]) for p in order["payments"]] == [("succeeded", "3184")]
        return
    checkout.deny_3ds()
    assert checkout.error_text() == "We could not authenticate your payment. Please try another card."
    _, order = session_and_order(flint_server, session_id)
    assert order["status"] == "open"
    assert [(p["status"], p["failure_code"]) for p in order["payments"]] == [("failed", "authentication_failed")]
    checkout.fill(card=SUCCESS)  # the form is back
    checkout.pay()
    expect(page).to_have_url(success_url(shop.url, session_id))
    expect(page.locator("#order-status")).to_have_text("paid")


def test_on_an_origin_flint_does_not_allow_the_buyer_pays_on_the_hosted_page(page: Page, shop, flint_server,
                                                                            flint_webhooks):
    """The same shop reached as http://localhost:PORT, an origin not in the merchant's allowed origins: the
    browser refuses the frame (frame-ancestors), the widget falls back to a link to the session's hosted
    page, Flint records why, and the buyer pays there and comes back to the shop."""
    session_id = buy(page, shop.other_origin)
    session, _ = session_and_order(flint_server, session_id)
    with pytest.raises(WidgetUnavailable) as unavailable:
        FlintCheckout(page)
    assert (unavailable.value.state, unavailable.value.detail) == (
        "fallback", {"url": session["url"], "reason": "frame_blocked"})
    link = page.get_by_role("link", name="Continue to secure checkout")
    expect(link).to_have_attribute("href", session["url"])
    expect(page.locator("#checkout iframe")).to_have_count(0)
    used = flint_webhooks.wait_for("checkout.session.fallback_used", order_id=session["order_id"])
    assert used["data"]["object"]["fallback"]["reason"] == "frame_blocked"

    link.click()
    expect(page).to_have_url(session["url"])
    hosted = FlintCheckout.hosted(page, session["url"])
    hosted.fill(card=SUCCESS, **DETAILS)
    hosted.pay()
    expect(page).to_have_url(success_url(shop.other_origin, session_id))
    expect(page.locator("#order-status")).to_have_text("paid")

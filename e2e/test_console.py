"""The merchant console's first pages in real Chromium (docs/api.md 15): a merchant signs in from Flint's
root, finds an order by the buyer's email, opens it and reads its story; every page is axe clean at
390 px and 1280 px, with review screenshots of both widths."""
from __future__ import annotations

import itertools
import re

from playwright.sync_api import Page, expect

from flint.actors import Actor
from flint.buyers.models import Address, Collected, Customer
from flint.checkout import service as checkout
from flint.collect import service as collect
from flint.merchants import service as merchants
from flint.refunds.service import NewRefund, issue_refund
from flint.runtime import Runtime
from support.factories import card, make_order, new_order, pay_session

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

PASSWORD = "a long and correct password"
BUYER = "Grace.Hopper@Example.com"
_counter = itertools.count(1)


def _seed(server):
    """A merchant with a few plain orders and one with a story: a decline, a payment with the buyer's
    details, a partial refund."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            merchant, _ = await merchants.create_merchant(runtime, name="Console Roasters",
                                                          email=f"console-e2e-{next(_counter)}@shop.example",
                                                          password=PASSWORD)
            for n in range(3):
                await make_order(runtime, merchant.id, 1000 + n)
            session = await checkout.create_session(runtime, merchant.id, checkout.NewSession(
                mode="hosted", success_url="https://shop.example/thanks", inline_order=new_order(4200, "eur"),
                collect={"phone": "optional", "shipping_address": {"allowed_countries": ["US"]}},
                custom_fields=[{"key": "gift_note", "label": "Gift note", "type": "text"}]),
                Actor("merchant", merchant.id))
            await pay_session(runtime, session, number="4000000000000002")
            buyer = Collected(
                customer=Customer(email=BUYER, name="Grace Hopper", phone="+14155550123",
                                  shipping_address=Address(country="US", line1="1 Navy Way", city="Arlington",
                                                           postal_code="22202", state="VA")),
                custom_fields={"gift_note": "Happy birthday"}, app_fields={}, terms_accepted=False)
            attempt = collect.Attempt(merchant_id=merchant.id, order_id=session.order_id, channel=session.mode,
                                      checkout_session_id=session.id)
            await collect.confirm_payment(runtime, attempt, card(), Actor("buyer", session.id), buyer)
            await issue_refund(runtime, merchant.id, NewRefund(order_id=session.order_id, amount=1000,
                                                               reason="requested_by_customer"),
                               Actor("merchant", merchant.id))
            for n in range(3):
                await make_order(runtime, merchant.id, 2000 + n)
            return merchant, session.order_id
        finally:
            await runtime.stop()

    return run_async(seed)


def _accessible_at_both_widths(page: Page) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        # Nothing wider than the screen: the page itself never scrolls sideways (a wide table may, inside
        # its own focusable region).
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size


def test_a_merchant_finds_an_order_by_the_buyers_email_and_reads_its_story(page: Page, server):
    merchant, order_id = _seed(server)
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(f"{server.url}/dashboard/orders")
    expect(page).to_have_url(re.compile(r"/login\?next=/dashboard/orders$"))
    page.get_by_role("textbox", name="Email").fill(merchant.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/dashboard/orders")
    expect(page.get_by_role("heading", level=1)).to_have_text("Orders")
    expect(page.get_by_role("banner")).to_contain_text("Console Roasters")
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link")).to_have_text(["Overview", "Orders", "Payment links", "Webhooks", "Apps",
                                                  "API keys", "Settings", "Team"])
    expect(nav.get_by_role("link", name="Orders")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("row")).to_have_count(8)  # the header and seven orders
    _accessible_at_both_widths(page)
    screenshot(page, "console-orders")

    page.get_by_role("searchbox", name="Search orders").fill(BUYER.upper())
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/dashboard/orders\?q=GRACE"))
    rows = page.get_by_role("row")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text(BUYER)
    expect(rows.nth(1)).to_contain_text("Partially refunded")
    expect(rows.nth(1)).to_contain_text("€42.00")
    _accessible_at_both_widths(page)
    screenshot(page, "console-orders-search")

    rows.nth(1).get_by_role("link").click()
    expect(page).to_have_url(f"{server.url}/dashboard/orders/{order_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order_id}")
    amounts = page.get_by_role("region", name="Amounts")
    expect(amounts).to_contain_text("Refundable")
    expect(amounts).to_contain_text("€32.00")
    buyer = page.get_by_role("region", name="Buyer")
    for shown in (BUYER, "Grace Hopper", "+1 415-555-0123", "1 Navy Way", "United States"):
        expect(buyer).to_contain_text(shown)
    expect(page.get_by_role("region", name="Checkout fields")).to_contain_text("Happy birthday")
    timeline = page.get_by_role("region", name="Timeline")
    expect(timeline.locator(".what")).to_have_text([
        "Order created", "Checkout session created (hosted)", re.compile("^Payment failed"),
        re.compile("^Payment succeeded"), re.compile("^Order paid"), re.compile("^Checkout session completed"),
        re.compile("^Refunded €10.00"), "Order partially refunded"])
    expect(timeline).to_contain_text("Decline reason: Your card was declined. (card_declined)")
    _accessible_at_both_widths(page)
    screenshot(page, "console-order")

    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    _accessible_at_both_widths(page)
    screenshot(page, "console-overview")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(f"{server.url}/dashboard")
    expect(page).to_have_url(f"{server.url}/login?next=/dashboard")


def test_the_order_list_pages_with_the_keyboard_and_without_javascript(browser, server):
    """Filters and pages are links and a GET form: they work with JavaScript off."""
    merchant, _ = _seed(server)

    async def more():
        runtime = await Runtime.start(server.runtime_config())
        try:
            for n in range(24):
                await make_order(runtime, merchant.id, 3000 + n)
        finally:
            await runtime.stop()

    run_async(more)
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORTS["mobile"])
    try:
        page = context.new_page()
        page.goto(f"{server.url}/login?next=/dashboard/orders")
        page.get_by_role("textbox", name="Email").fill(merchant.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{server.url}/dashboard/orders")
        expect(page.get_by_role("row")).to_have_count(26)  # 25 orders a page
        page.get_by_role("link", name="Older orders").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("row")).to_have_count(7)  # the other six
        expect(page.get_by_role("link", name="Older orders")).to_have_count(0)
        page.get_by_role("link", name="Newer orders").click()
        expect(page.get_by_role("row")).to_have_count(26)
        page.get_by_label("Status").select_option("Partially refunded")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("row")).to_have_count(2)
        expect(page.get_by_role("row").nth(1)).to_contain_text(BUYER)
    finally:
        context.close()

"""The console's Team page and the invitation link in real Chromium (docs/api.md 15, the issue's main
flow): an owner invites a support member; support opens the link in a browser of their own, sets a
password, lands in the console, finds a paid order by the buyer's email, refunds part of it (the API then
says `partially_refunded`), creates a payment link for an open order and copies it with its Copy button
(the clipboard holds the link, which opens the hosted payment page), and is refused the Team page and API
keys (403). The Team page (with the link shown, and with an error) and the invitation page (fresh and used)
are axe clean at 390 px and 1280 px, with review screenshots of both widths."""
from __future__ import annotations

import itertools
import re

import httpx
from playwright.sync_api import Browser, Page, expect

from flint.actors import Actor
from flint.merchants import service as merchants
from flint.orders.models import LineItem, NewOrder
from flint.orders.service import create_order
from flint.runtime import Runtime
from support.factories import make_order, make_session, pay_session

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

PASSWORD = "a long and correct password"
SUPPORT_PASSWORD = "support's own long password"
BUYER = "Ada.Lovelace@Example.com"
_counter = itertools.count(1)


def _seed(server):
    """A merchant (its own email is its first owner; its secret key) with a few open orders and one by
    BUYER, paid (€25.00), so it can be refunded. Returns (merchant, key, the buyer's order, an open order)."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            n = next(_counter)
            merchant, key = await merchants.create_merchant(runtime, name="Team Roasters",
                                                            email=f"team-e2e-{n}@shop.example", password=PASSWORD)
            for amount in (1000, 2000):
                await make_order(runtime, merchant.id, amount)
            order = await create_order(runtime, merchant.id, NewOrder(
                currency="eur", line_items=[LineItem("Beans", 2, 1250)], customer_email=BUYER),
                Actor("merchant", merchant.id))
            await pay_session(runtime, await make_session(runtime, merchant.id, order_id=order.id, mode="hosted"))
            open_order = await make_order(runtime, merchant.id, 3000, "eur")
            return merchant, key, order.id, open_order.id
        finally:
            await runtime.stop()

    return run_async(seed)


def _api(server, key: str, path: str) -> dict:
    answer = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _accessible_at_both_widths(page: Page) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size


def _sign_in(page: Page, server, email: str, next_path: str) -> None:
    page.goto(f"{server.url}/login?next={next_path}")
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{next_path}")


def test_an_owner_invites_support_who_joins_finds_an_order_and_is_refused_team_and_keys(
        page: Page, browser: Browser, server):
    merchant, key, order_id, open_order_id = _seed(server)
    support_email = f"sam.support.{merchant.id[-6:].lower()}@shop.example"
    assert _api(server, key, f"/v1/orders/{order_id}")["status"] == "paid"
    # Remove asks first (console.js, the browser's confirm dialog): the owner says yes.
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))

    # The owner opens Team and invites a support member.
    _sign_in(page, server, merchant.email, "/dashboard/team")
    expect(page.get_by_role("heading", level=1)).to_have_text("Team")
    members = page.get_by_role("table", name="Members")
    expect(members.get_by_role("row")).to_have_count(2)  # the header and the owner
    expect(members).to_contain_text(merchant.email)
    expect(members).to_contain_text("Owner")
    expect(page.get_by_text("No invitation is waiting to be accepted.")).to_be_visible()
    _accessible_at_both_widths(page)
    screenshot(page, "console-team")

    page.get_by_role("textbox", name="Email").fill(support_email)
    page.get_by_role("combobox", name="Role").select_option("Support")
    page.get_by_role("button", name="Invite").click()
    link_box = page.get_by_role("textbox", name="Invitation link")
    expect(link_box).to_have_attribute("readonly", "")
    expect(link_box).to_have_value(re.compile(rf"^{re.escape(server.url)}/join/fsi_"))
    link = link_box.input_value()
    invitations = page.get_by_role("table", name="Pending invitations")
    expect(invitations).to_contain_text(support_email)
    expect(invitations.get_by_role("button", name="Revoke")).to_have_count(1)
    _accessible_at_both_widths(page)
    screenshot(page, "console-team-invited")

    # The last owner cannot be removed: the page says why.
    members.get_by_role("button", name=f"Remove {merchant.email}").click()
    expect(page.get_by_role("alert")).to_contain_text("A team keeps at least one owner")
    assert asked == [f"Remove {merchant.email} from the team? They are signed out everywhere at once."]
    expect(page.get_by_role("table", name="Members").get_by_role("row")).to_have_count(2)
    _accessible_at_both_widths(page)
    screenshot(page, "console-team-last-owner")

    # Support opens the link in a browser of their own and sets a password.
    # (The clipboard permissions: the Copy button writes the payment link there and the test reads it back.)
    context = browser.new_context(viewport=VIEWPORTS["desktop"], permissions=["clipboard-read", "clipboard-write"])
    try:
        support = context.new_page()
        support.goto(link)
        expect(support.get_by_role("heading", level=1)).to_have_text("Join Team Roasters on Flint")
        expect(support.get_by_role("main")).to_contain_text(f"{merchant.email} invites you")
        expect(support.get_by_role("main")).to_contain_text("as support")
        expect(support.get_by_role("textbox", name="Email")).to_have_value(support_email)
        _accessible_at_both_widths(support)
        screenshot(support, "join")
        support.get_by_label("Password").fill(SUPPORT_PASSWORD)
        support.get_by_role("button", name="Join").click()
        expect(support).to_have_url(f"{server.url}/dashboard")
        expect(support.get_by_role("banner")).to_contain_text(f"{support_email} (support)")

        # ... finds the buyer's order ...
        support.get_by_role("navigation", name="Console").get_by_role("link", name="Orders").click()
        support.get_by_role("searchbox", name="Search orders").fill(BUYER.lower())
        support.keyboard.press("Enter")
        rows = support.get_by_role("row")
        expect(rows).to_have_count(2)
        expect(rows.nth(1)).to_contain_text(BUYER)
        rows.nth(1).get_by_role("link").click()
        expect(support).to_have_url(f"{server.url}/dashboard/orders/{order_id}")

        # ... refunds part of it (€10.00 of €25.00): the page and the API say partially refunded ...
        support.get_by_role("textbox", name="Amount").fill("10.00")
        support.get_by_role("combobox", name="Reason").select_option("requested_by_customer")
        support.get_by_role("button", name="Refund").click()
        expect(support.get_by_role("status")).to_have_text("Refunded €10.00.")
        assert _api(server, key, f"/v1/orders/{order_id}")["status"] == "partially_refunded"

        # ... creates a payment link for an open order (a paid one has none) and copies it with its button ...
        support.goto(f"{server.url}/dashboard/orders/{open_order_id}")
        support.get_by_role("button", name="Create payment link").click()
        box = support.get_by_role("textbox", name="Payment link")
        expect(box).to_have_value(re.compile(rf"^{re.escape(server.url)}/pay/"))
        pay_url = box.input_value()
        assert _api(server, key, f"/v1/payment_links?order={open_order_id}")["data"][0]["url"] == pay_url
        support.get_by_role("button", name="Copy payment link").click()
        expect(support.get_by_text("Copied", exact=True)).to_be_visible()
        assert support.evaluate("navigator.clipboard.readText()") == pay_url
        _accessible_at_both_widths(support)
        screenshot(support, "console-order-link-copied")
        support.goto(pay_url)  # the link opens the hosted payment page of that order
        expect(support.get_by_role("button", name=re.compile(r"^Pay"))).to_be_visible()
        expect(support.get_by_role("main")).to_contain_text("30.00")

        # ... and may not open Team nor API keys (403 both).
        nav = support.get_by_role("navigation", name="Console")
        expect(nav.get_by_role("link", name="Team")).to_have_count(0)
        expect(nav.get_by_role("link", name="API keys")).to_have_count(0)
        answer = support.goto(f"{server.url}/dashboard/team")
        assert answer is not None and answer.status == 403
        expect(support.get_by_role("heading", level=1)).to_have_text("You do not have access to this page")
        answer = support.goto(f"{server.url}/dashboard/api_keys")
        assert answer is not None and answer.status == 403, answer.status
        expect(support.get_by_role("heading", level=1)).to_have_text("You do not have access to this page")

        # The link is used now: opening it again is a readable page and changes nothing.
        answer = support.goto(link)
        assert answer is not None and answer.status == 410
        expect(support.get_by_role("heading", level=1)).to_have_text("This invitation was already used")
        _accessible_at_both_widths(support)
        screenshot(support, "join-used")
    finally:
        context.close()

    # The owner sees the new member, and removes them.
    page.goto(f"{server.url}/dashboard/team")
    members = page.get_by_role("table", name="Members")
    expect(members.get_by_role("row")).to_have_count(3)
    expect(members).to_contain_text(support_email)
    expect(page.get_by_text("No invitation is waiting to be accepted.")).to_be_visible()
    members.get_by_role("button", name=f"Remove {support_email}").click()
    expect(page.get_by_role("status")).to_contain_text("The member was removed")
    assert asked[-1] == f"Remove {support_email} from the team? They are signed out everywhere at once."
    expect(page.get_by_role("table", name="Members").get_by_role("row")).to_have_count(2)


def test_the_team_page_works_with_the_keyboard_and_without_javascript(browser: Browser, server):
    merchant, *_ = _seed(server)
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORTS["mobile"])
    try:
        page = context.new_page()
        _sign_in(page, server, merchant.email, "/dashboard/team")
        page.get_by_role("textbox", name="Email").fill("dev@shop.example")
        page.get_by_role("combobox", name="Role").select_option("Developer")
        page.get_by_role("button", name="Invite").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("textbox", name="Invitation link")).to_have_value(re.compile(r"/join/fsi_"))
        page.get_by_role("button", name="Revoke").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("The invitation was withdrawn")
        expect(page.get_by_text("No invitation is waiting to be accepted.")).to_be_visible()
    finally:
        context.close()

"""The order page's actions in real Chromium (docs/api.md 15): a support member refunds part of a paid order
with the keyboard only (Tab to Amount, type, Tab to Reason, choose, Enter on Refund), the page then says
`partially_refunded` and so does the API; creates a payment link and sees it in a read-only box to copy;
cancels an order through its confirm step; deactivates a link on the Payment links page. Every page is axe
clean at 390 px and 1280 px, with review screenshots."""
from __future__ import annotations

import itertools
import re

import httpx
from playwright.sync_api import Page, expect

from flint.merchants import service as merchants
from flint.runtime import Runtime
from flint.staff import service as staff
from support.factories import make_order, make_session, pay_session

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


def _seed(server):
    """A merchant (with its API key), a support member, a paid €42.00 order and two open orders."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            n = next(_counter)
            merchant, key = await merchants.create_merchant(runtime, name="Refund Roasters",
                                                            email=f"refund-e2e-{n}@shop.example", password=PASSWORD)
            async with runtime.db.transaction() as conn:
                owner = await staff.ensure_owner(conn, merchant)
            _, token = await staff.invite(runtime, owner, f"support-e2e-{n}@shop.example", "support")
            member = await staff.accept_invitation(runtime, token, PASSWORD)
            session = await make_session(runtime, merchant.id, amount=4200, currency="eur")
            await pay_session(runtime, session)
            to_link = await make_order(runtime, merchant.id, 1500, "eur")
            to_cancel = await make_order(runtime, merchant.id, 900, "eur")
            return key, member, session.order_id, to_link.id, to_cancel.id
        finally:
            await runtime.stop()

    return run_async(seed)


def _accessible_at_both_widths(page: Page) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size
    page.set_viewport_size(VIEWPORTS["desktop"])


def _api(server, key: str, path: str) -> dict:
    answer = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _tab_to(page: Page, name: str, limit: int = 40) -> None:
    """Press Tab until the element with this accessible name has the focus."""
    target = page.get_by_label(name, exact=True)
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_support_refunds_part_of_an_order_with_the_keyboard_only(page: Page, server):
    key, member, order_id, to_link, to_cancel = _seed(server)
    page.goto(f"{server.url}/login?next=/dashboard/orders/{order_id}")
    page.get_by_role("textbox", name="Email").fill(member.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/dashboard/orders/{order_id}")
    actions = page.get_by_role("region", name="Actions")
    expect(actions.get_by_role("button")).to_have_text(["Refund"])  # a paid order: no link, no cancel
    amount = actions.get_by_role("textbox", name="Amount")
    expect(amount).to_have_value("42.00")
    _accessible_at_both_widths(page)
    screenshot(page, "console-order-actions")

    # Keyboard only, from the top of the page.
    page.locator("body").focus()
    _tab_to(page, "Amount")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("10.50")
    page.keyboard.press("Tab")
    reason = actions.get_by_role("combobox", name="Reason")
    expect(reason).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(reason).to_have_value("requested_by_customer")
    page.keyboard.press("Tab")
    expect(actions.get_by_role("button", name="Refund")).to_be_focused()
    sent = page.locator(f'form[action="/dashboard/orders/{order_id}/refund"] input[name="csrf_token"]').input_value()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"/dashboard/orders/{order_id}\?refund=re_\w+$"))
    expect(page.get_by_role("status")).to_have_text("Refunded €10.50.")
    expect(page.locator(".meta .status")).to_have_text("Partially refunded")
    expect(page.locator(".meta .status")).to_have_class(re.compile(r"\bstatus-partially_refunded\b"))
    expect(page.get_by_role("region", name="Amounts")).to_contain_text("€31.50")
    expect(actions.get_by_role("textbox", name="Amount")).to_have_value("31.50")
    order = _api(server, key, f"/v1/orders/{order_id}")
    assert order["status"] == "partially_refunded" and order["amount_refunded"] == 1050
    _accessible_at_both_widths(page)
    screenshot(page, "console-order-refunded")

    # The back button: the page comes back as it is now (it is never cached), not as the stale form.
    page.go_back()
    expect(page).to_have_url(f"{server.url}/dashboard/orders/{order_id}")
    expect(page.locator(".meta .status")).to_have_text("Partially refunded")
    expect(page.get_by_role("textbox", name="Amount")).to_have_value("31.50")
    # The same form sent again (a double submit, or a browser resubmitting it): the first outcome, once.
    again = page.request.post(f"{server.url}/dashboard/orders/{order_id}/refund", max_redirects=0, form={
        "csrf_token": sent, "amount": "10.50", "reason": "requested_by_customer"})
    assert again.status == 303 and re.search(r"\?refund=re_\w+$", again.headers["location"])
    assert _api(server, key, f"/v1/orders/{order_id}")["amount_refunded"] == 1050
    assert len(_api(server, key, "/v1/refunds")["data"]) == 1

    # A payment link for an open order, shown to copy.
    page.goto(f"{server.url}/dashboard/orders/{to_link}")
    page.get_by_role("button", name="Create payment link").click()
    box = page.get_by_role("textbox", name="Payment link")
    links = _api(server, key, f"/v1/payment_links?order={to_link}")["data"]
    assert len(links) == 1
    expect(box).to_have_value(links[0]["url"])
    expect(box).to_have_attribute("readonly", "")
    _accessible_at_both_widths(page)
    screenshot(page, "console-order-payment-link")

    # Cancel order asks first. Without JavaScript the button opens this confirm step (with it, the browser's
    # confirm dialog asks instead: e2e/test_console_live.py), so here the step is opened by its URL.
    page.goto(f"{server.url}/dashboard/orders/{to_cancel}/cancel")
    expect(page).to_have_url(re.compile(rf"/dashboard/orders/{to_cancel}/cancel\??$"))
    expect(page.get_by_role("heading", name="Cancel this order?")).to_be_visible()
    _accessible_at_both_widths(page)
    screenshot(page, "console-order-cancel")
    page.get_by_role("button", name="Cancel order").click()
    expect(page.get_by_role("status")).to_have_text("The order was canceled.")
    assert _api(server, key, f"/v1/orders/{to_cancel}")["status"] == "canceled"

    # The Payment links page: the link made above, and Deactivate.
    page.goto(f"{server.url}/dashboard/payment_links")
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment links")
    row = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=f"Link {links[0]['id']}"))
    expect(row).to_contain_text(to_link)
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("Manual")
    _accessible_at_both_widths(page)
    screenshot(page, "console-payment-links")
    row.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("was deactivated")
    expect(page.get_by_role("listitem").filter(has_text=links[0]["id"])).to_contain_text("Deactivated")
    expect(page.get_by_role("button", name="Deactivate")).to_have_count(0)
    assert _api(server, key, f"/v1/payment_links/{links[0]['id']}")["active"] is False

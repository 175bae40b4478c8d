"""Capture and Void on an authorized order's page in real Chromium (docs/api.md 15 and 17): a support member
captures part of an authorization with the keyboard only (Tab to Amount, type, Enter on Capture); a double
click on Capture and the back button with the same form again move money once (checked through the API);
Void asks in the browser's confirm dialog and releases the authorization. Axe clean at 390 px and 1280 px,
with review screenshots."""
from __future__ import annotations

import itertools
import re

from playwright.sync_api import Page, expect

from flint.actors import Actor
from flint.checkout import service as checkout
from flint.merchants import service as merchants
from flint.runtime import Runtime
from flint.staff import service as staff
from support.factories import new_order, pay_session

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot
from .test_console_live import _sign_in
from .test_console_refund import _api, _tab_to

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


def _seed(server, orders: int = 1):
    """A merchant (with its API key), a support member and ``orders`` €42.00 orders whose manual-capture
    checkout the buyer paid: each order authorized, its payment waiting for capture."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            n = next(_counter)
            merchant, key = await merchants.create_merchant(runtime, name="Capture Cameras",
                                                            email=f"capture-e2e-{n}@shop.example", password=PASSWORD)
            async with runtime.db.transaction() as conn:
                owner = await staff.ensure_owner(conn, merchant)
            _, token = await staff.invite(runtime, owner, f"support-capture-{n}@shop.example", "support")
            member = await staff.accept_invitation(runtime, token, PASSWORD)
            authorized = []
            for _ in range(orders):
                new = checkout.NewSession(mode="embedded", success_url="https://shop.example/thanks", order_id=None,
                                          inline_order=new_order(4200, "eur"), expires_in=3600, capture="manual")
                session = await checkout.create_session(runtime, merchant.id, new, Actor("merchant", merchant.id))
                payment = await pay_session(runtime, session)
                assert payment.status == "authorized"
                authorized.append((session.order_id, payment.id))
            return key, member, authorized
        finally:
            await runtime.stop()

    return run_async(seed)


def _money_moved(server, key: str, order_id: str, payment_id: str) -> tuple:
    order = _api(server, key, f"/v1/orders/{order_id}")
    payment = _api(server, key, f"/v1/payments/{payment_id}")
    captures = [e for e in _api(server, key, f"/v1/orders/{order_id}/events")["data"]
                if e["type"] == "payment.captured"]
    return order["status"], order["amount_paid"], payment["status"], payment["amount_captured"], len(captures)


def _accessible_at_both_widths(page: Page, name: str) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size
    page.set_viewport_size(VIEWPORTS["desktop"])
    screenshot(page, name)


def test_support_captures_part_with_the_keyboard_and_the_back_button_moves_money_once(page: Page, server):
    key, member, [(order_id, payment_id)] = _seed(server)
    _sign_in(page, server, member.email, f"/dashboard/orders/{order_id}")
    actions = page.get_by_role("region", name="Actions")
    expect(actions.get_by_role("button")).to_have_text(["Capture", "Void"])
    expect(page.locator(".meta .status")).to_have_text("Authorized")
    expect(actions.get_by_role("textbox", name="Amount")).to_have_value("42.00")
    _accessible_at_both_widths(page, "console-order-authorized")

    # Keyboard only, from the top of the page.
    page.locator("body").focus()
    _tab_to(page, "Amount")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("30")
    page.keyboard.press("Tab")
    expect(actions.get_by_role("button", name="Capture")).to_be_focused()
    sent = page.locator(f'form[action="/dashboard/orders/{order_id}/capture"] input[name="csrf_token"]').input_value()
    page.keyboard.press("Enter")

    expect(page).to_have_url(f"{server.url}/dashboard/orders/{order_id}?captured={payment_id}")
    expect(page.get_by_role("status")).to_have_text("Captured €30.00; the rest of the €42.00 authorized was released.")
    expect(page.locator(".meta .status")).to_have_text("Paid")
    expect(page.get_by_role("region", name="Timeline")).to_contain_text("Payment captured")
    assert _money_moved(server, key, order_id, payment_id) == ("paid", 3000, "succeeded", 3000, 1)
    _accessible_at_both_widths(page, "console-order-captured")

    # The back button: the page comes back as it is now (never cached), with no Capture form left.
    page.go_back()
    expect(page).to_have_url(f"{server.url}/dashboard/orders/{order_id}")
    expect(page.locator(".meta .status")).to_have_text("Paid")
    expect(page.get_by_role("button", name="Capture")).to_have_count(0)
    # The same form sent again (a browser resubmitting it): the first outcome, and money moved once.
    again = page.request.post(f"{server.url}/dashboard/orders/{order_id}/capture", max_redirects=0,
                              form={"csrf_token": sent, "amount": "30"})
    assert again.status == 303 and again.headers["location"] == f"/dashboard/orders/{order_id}?captured={payment_id}"
    assert _money_moved(server, key, order_id, payment_id) == ("paid", 3000, "succeeded", 3000, 1)


def test_a_double_click_on_capture_captures_once(page: Page, server):
    key, member, [(order_id, payment_id)] = _seed(server)
    _sign_in(page, server, member.email, f"/dashboard/orders/{order_id}")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.get_by_role("button", name="Capture").dblclick()
    expect(page.get_by_role("status")).to_have_text("Captured €42.00.")
    assert _money_moved(server, key, order_id, payment_id) == ("paid", 4200, "succeeded", 4200, 1)
    assert posts and all(url.endswith(f"/dashboard/orders/{order_id}/capture") for url in posts)


def test_void_asks_first_and_releases_the_authorization(page: Page, server):
    key, member, [(order_id, payment_id)] = _seed(server)
    _sign_in(page, server, member.email, f"/dashboard/orders/{order_id}")
    asked: list[str] = []
    answer = {"yes": False}

    def on_dialog(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept() if answer["yes"] else dialog.dismiss()

    # The confirm step (what the button opens without JavaScript), checked by axe, which needs JavaScript.
    page.goto(f"{server.url}/dashboard/orders/{order_id}/void")
    expect(page.get_by_role("heading", name="Void this authorization?")).to_be_visible()
    _accessible_at_both_widths(page, "console-order-void-confirm-step")
    page.goto(f"{server.url}/dashboard/orders/{order_id}")
    page.on("dialog", on_dialog)
    page.get_by_role("button", name="Void").click()  # dismissed: nothing sent
    assert len(asked) == 1 and "€42.00 is released" in asked[0]
    expect(page).to_have_url(f"{server.url}/dashboard/orders/{order_id}")
    assert _api(server, key, f"/v1/payments/{payment_id}")["status"] == "authorized"
    answer["yes"] = True
    page.get_by_role("button", name="Void").click()
    expect(page).to_have_url(f"{server.url}/dashboard/orders/{order_id}?voided={payment_id}")
    expect(page.get_by_role("status")).to_have_text(
        "The authorization was voided: the buyer's €42.00 was released and the order is open again.")
    expect(page.locator(".meta .status")).to_have_text("Open")
    assert _api(server, key, f"/v1/payments/{payment_id}")["status"] == "canceled"
    assert _api(server, key, f"/v1/orders/{order_id}")["status"] == "open"
    _accessible_at_both_widths(page, "console-order-voided")


def test_the_void_confirm_step_without_javascript(browser, server):
    key, member, [(order_id, payment_id)] = _seed(server)
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORTS["mobile"])
    try:
        page = context.new_page()
        _sign_in(page, server, member.email, f"/dashboard/orders/{order_id}")
        page.get_by_role("button", name="Void").click()
        expect(page).to_have_url(re.compile(rf"/dashboard/orders/{order_id}/void\??$"))
        expect(page.get_by_role("heading", name="Void this authorization?")).to_be_visible()
        assert _api(server, key, f"/v1/payments/{payment_id}")["status"] == "authorized"  # asking moved nothing
        screenshot(page, "console-order-void-confirm")
        page.get_by_role("button", name="Void").click()
        expect(page.get_by_role("status")).to_contain_text("The authorization was voided")
        assert _api(server, key, f"/v1/payments/{payment_id}")["status"] == "canceled"
    finally:
        context.close()

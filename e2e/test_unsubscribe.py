"""Unsubscribing from a merchant's recovery emails in real Chromium (docs/api.md 16): the buyer opens the
link of a recovery email, reads which merchant and which address, presses Unsubscribe (keyboard, and with
JavaScript off: it is a plain form) and lands on the confirmation; a link that is not genuine is a readable
page. Each page, and the recovery email's own HTML part, is axe clean at 390 px and 1280 px with no
horizontal scrolling, with review screenshots of both widths."""
from __future__ import annotations

import itertools
import json

from playwright.sync_api import Browser, Page, expect

from flint.mail import service as mail
from flint.mail.compose import render
from flint.merchants import service as merchants
from flint.runtime import Runtime

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

_counter = itertools.count(1)


def _seed(server, brand_color: str = "#0a7c66") -> tuple[str, str, str]:
    """A merchant with a brand colour; returns (its name, a buyer's address, that address's unsubscribe path)."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            n = next(_counter)
            merchant, _ = await merchants.create_merchant(runtime, name=f"Rösterei Nord {n}",
                                                          email=f"unsub-e2e-{n}@shop.example", password="a long password")
            await merchants.update_merchant(runtime, merchant.id, brand_color=brand_color)
            address = f"ada.{n}@example.com"
            return merchant.name, address, f"/unsubscribe/{mail.unsubscribe_token(runtime, merchant.id, address)}"
        finally:
            await runtime.stop()

    return run_async(seed)


def _accessible_at_both_widths(page: Page, violations: list[str] | None = None) -> None:
    """Axe at both widths; ``violations`` (the page's CSP reports so far) must be none before axe is
    injected (the injection's own probe is refused by the strict CSP, as it should be)."""
    assert violations is None or violations == [], violations
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size


def test_a_buyer_unsubscribes_on_the_page_with_the_keyboard(page: Page, server):
    name, address, path = _seed(server)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{server.url}{path}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Stop reminder emails from {name}?")
    expect(page.get_by_text(address)).to_be_visible()
    _accessible_at_both_widths(page, violations)
    screenshot(page, "unsubscribe")
    page.get_by_role("button", name="Unsubscribe").focus()
    violations.clear()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    expect(page.get_by_role("status")).to_have_text(f"{name} will no longer send reminder emails to {address}.")
    _accessible_at_both_widths(page, violations)
    screenshot(page, "unsubscribe-done")
    violations.clear()
    page.goto(f"{server.url}/unsubscribe/not-a-genuine-link")
    expect(page.get_by_role("heading", level=1)).to_have_text("This unsubscribe link is not valid")
    _accessible_at_both_widths(page, violations)
    screenshot(page, "unsubscribe-invalid")


def test_the_page_works_without_javascript_in_german(browser: Browser, server):
    name, address, path = _seed(server)
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORTS["mobile"], locale="de-DE",
                                  extra_http_headers={"Accept-Language": "de-DE,de;q=0.9"})
    try:
        page = context.new_page()
        page.goto(f"{server.url}{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Erinnerungs-E-Mails von {name} abbestellen?")
        page.get_by_role("button", name="Abbestellen").click()
        expect(page.get_by_role("status")).to_have_text(f"{name} sendet keine Erinnerungs-E-Mails mehr an {address}.")
    finally:
        context.close()


def test_the_recovery_emails_html_is_accessible_at_both_widths(page: Page):
    """The HTML part as a mail client shows it (no CSP there: the mail's own markup alone)."""
    context = {"merchant": {"name": "Rösterei Nord", "brand_color": "#0a7c66"},
               "order": {"id": "ord_1", "reference": "R-1001", "currency": "eur", "amount_total": 4850, "amount_paid": 0,
                         "lines": [{"name": "Espresso beans 1 kg", "quantity": 2, "amount": 4000},
                                   {"name": "Filter papers", "quantity": 1, "amount": 850}]},
               "link_url": "https://flint.example/pay/pl_123", "payment": None, "expires_at": "2026-12-03T18:30:00Z"}
    for kind in ("recovery", "payment_link", "receipt"):
        shown = json.loads(json.dumps(context))
        if kind == "receipt":
            shown.update(payment={"brand": "visa", "last4": "4242", "amount": 4850, "paid_at": "2026-11-26T18:21:07Z"},
                         link_url=None, expires_at=None)
            shown["order"]["amount_paid"] = 4850
        _, _, html = render(kind, shown, "en", unsubscribe_url="https://flint.example/unsubscribe/tok",
                            to_address="ada@example.com")
        page.set_content(html)
        _accessible_at_both_widths(page)
        screenshot(page, f"mail-{kind}")

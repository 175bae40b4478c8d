"""The demo partner app's pages in real Chromium (issue 16): the app (examples/partner_app) runs as its
own process against the e2e ``flint serve``, a merchant installs it through Flint's sign-in and consent
pages, and pays, is blocked and forgets the age box, so that every page has rows to show. Every page
(installations, the install's landing page, orders, events, a message page) fits a 1280 px window
without scrolling sideways, neither the page nor any table in it, and a 390 px one too (tables become
cards); it is axe clean at both widths, names the merchant by the name Flint's token answer gave
(``merchant_name``) rather than showing its raw id, and is screenshotted at both widths (test-results/screenshots/partner-app-*)."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from examples.partner_app import registration
from flint.apps import service as apps
from flint.merchants import service as merchants
from flint.runtime import Runtime
from support import free_port
from tests.examples.test_partner_app import start_partner_app

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

PASSWORD = "a long and correct password"
SHOP_NAME = "Acme Coffee Roasters"
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
TIMEOUT = 10_000  # ms


@dataclass
class Installed:
    url: str  # the partner app
    app_id: str
    merchant_id: str
    email: str
    key: str  # the installing merchant's secret key


@pytest.fixture
def partner_app(server, tmp_path: Path):
    """The app registered with its own registration body under a developer merchant, running as
    ``python -m examples.partner_app``; and the merchant who will install it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tag = secrets.token_hex(4)

    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            developer, _ = await merchants.create_merchant(runtime, name="Risk Tools Ltd", password=PASSWORD,
                                                           email=f"dev-{tag}@risk.example")
            app, client_secret, webhook_secret = await apps.create_app(runtime, developer.id, **registration(url))
            shop, key = await merchants.create_merchant(runtime, name=SHOP_NAME, password=PASSWORD,
                                                        email=f"owner-{tag}@acme.example")
            return app, client_secret, webhook_secret, shop, key
        finally:
            await runtime.stop()

    app, client_secret, webhook_secret, shop, key = run_async(seed)
    process = start_partner_app(tmp_path, server.url, port, app.client_id, client_secret, webhook_secret)
    yield Installed(url, app.id, shop.id, shop.email, key)
    process.terminate()
    try:
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / f"partner-app-{port}.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def order_of(unit_amount: int) -> dict:
    return {"currency": "usd", "line_items": [{"name": "Espresso machine", "quantity": 1, "unit_amount": unit_amount}]}


def make_activity(server, installed: Installed) -> list[str]:
    """A paid order, one blocked over the limit, and one whose buyer left the age box unticked (Flint
    refuses that attempt itself, before asking the app): orders, webhooks and hook calls for the pages.
    Returns the order ids."""
    ticked = {"app_fields": {installed.app_id: {"age_confirmed": True}}}
    order_ids = []
    with server.client(installed.key) as owner:
        for amount, fields in ((2400, ticked), (60_000, ticked), (1800, {})):
            made = owner.post("/v1/checkout/sessions", json={"order": order_of(amount), "mode": "embedded",
                                                            "success_url": "https://shop.example/thanks"})
            assert made.status_code == 200, made.text
            session = made.json()
            order_ids.append(session["order_id"])
            with server.client(session["client_token"]) as buyer:
                buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD, **fields})
    return order_ids


def wait_for_rows(installed: Installed, order_ids: list[str], seconds: float = 20) -> None:
    """Until the app's events page lists the payment webhook and the hook calls of the first two."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=installed.url, timeout=10) as client:
        while True:
            text = client.get("/events").text
            calls = re.findall(r'<tr class="hook-call">.*?</tr>', text, re.S)
            if ('<td class="event-type">payment.succeeded</td>' in text
                    and all(any(o in row for row in calls) for o in order_ids[:2])):
                return
            assert time.monotonic() < deadline, "the webhooks and hook calls did not reach the app"
            time.sleep(0.2)


def check_page(page: Page, name: str) -> None:
    """At 390 px and 1280 px: nothing wider than the window (the page, and every table in its scroll
    region), axe clean; then review screenshots at both widths."""
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        width = size["width"]
        scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
        assert scroll_width <= width, f"{name} at {width} px is {scroll_width} px wide"
        wider = page.evaluate("""() => [...document.querySelectorAll('.table-scroll, main, pre, code')]
            .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== 'inline')
            .map(e => `${e.tagName}.${e.className} ${e.scrollWidth}>${e.clientWidth}`)""")
        assert wider == [], f"{name} at {width} px scrolls sideways inside: {wider}"
        assert_accessible(page)
    page.set_viewport_size(VIEWPORTS["desktop"])
    screenshot(page, f"partner-app-{name}")


def expect_merchant_named(page: Page, merchant_id: str) -> None:
    """The merchant as a person reads it: its name, as Flint's token answer gave it (merchant_name,
    docs/api.md 10), and the id's first characters; the whole id is in the title for support, and
    nowhere in the visible text."""
    shown = page.locator("main .merchant")
    expect(shown.first).to_be_visible()
    for i in range(shown.count()):
        merchant = shown.nth(i)
        expect(merchant.locator(".merchant-name")).to_have_text(SHOP_NAME)
        expect(merchant.locator(".merchant-id")).to_have_attribute("title", merchant_id)
        box = merchant.locator(".merchant-id").bounding_box()
        assert box is not None and box.get("width", 0) < 140, box  # short: "mer_" and six characters
    visible = page.evaluate("""() => { const main = document.querySelector('main').cloneNode(true);
        main.querySelectorAll('.visually-hidden').forEach(e => e.remove()); return main.textContent; }""")
    assert merchant_id not in visible


def test_every_page_of_the_partner_app_fits_names_the_merchant_and_is_accessible(page: Page, server, partner_app):
    app = partner_app
    page.goto(f"{app.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Risk Check")
    check_page(page, "home-empty")

    # The install, as the merchant does it: the app's button, Flint's sign-in and consent page.
    page.get_by_role("link", name="Install on Flint").click()
    expect(page).to_have_url(re.compile(re.escape(f"{server.url}/login?next=")), timeout=TIMEOUT)
    page.get_by_role("textbox", name="Email").fill(app.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Install Risk Check?", timeout=TIMEOUT)
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(f"{app.url}/callback?")), timeout=TIMEOUT)
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Installed on {SHOP_NAME}")
    expect_merchant_named(page, app.merchant_id)
    check_page(page, "installed")

    order_ids = make_activity(server, app)
    wait_for_rows(app, order_ids)

    page.goto(f"{app.url}/")
    expect(page.locator("tr.installation")).to_have_count(1)
    expect_merchant_named(page, app.merchant_id)
    check_page(page, "home")

    page.get_by_role("link", name=f"Orders of {SHOP_NAME}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Orders of {SHOP_NAME}")
    for order_id in order_ids:
        expect(page.get_by_role("main").get_by_text(order_id, exact=True)).to_be_visible()
    expect_merchant_named(page, app.merchant_id)
    check_page(page, "orders")

    page.goto(f"{app.url}/events")
    expect(page.locator("tr.hook-call .hook-answer")).to_have_text(["block", "annotate"])
    expect_merchant_named(page, app.merchant_id)
    check_page(page, "events")

    page.goto(f"{app.url}/orders?installation=inst_unknown")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not installed")
    check_page(page, "message")

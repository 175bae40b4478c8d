"""``flint demo``'s mail page in real Chromium (flint.demo_mail; docs/api.md 16): the catcher receives a recovery
email over SMTP as Flint composes it; the list and the message's page are axe clean at 390 px and 1280 px without
horizontal scrolling, break none of their own strict CSP (the mail's inline styles load in their sandboxed frame,
which runs no script), and the mail reads in the frame as a mail client shows it."""
from __future__ import annotations

import asyncio
import json
import threading
from types import SimpleNamespace

import aiosmtplib
import pytest
from playwright.sync_api import Page, expect

from examples.shop.server import serve_shop, wait_listening
from flint.demo_mail import MailCatcher, create_catcher_app
from flint.mail.compose import compose
from support import free_port

from .helpers import VIEWPORTS, assert_accessible, screenshot

CONTEXT = {"merchant": {"name": "Demo Coffee Roasters", "brand_color": "#7a3e12"},
           "order": {"id": "ord_demo", "reference": "R-1001", "currency": "usd", "amount_total": 4800, "amount_paid": 0,
                     "lines": [{"name": "Espresso beans 1 kg", "quantity": 2, "amount": 4800}]},
           "link_url": "http://127.0.0.1:8000/pay/plink_demo", "payment": None, "expires_at": "2026-12-03T18:30:00Z"}


@pytest.fixture(scope="module")
def catcher_page():
    """The catcher and its page in a thread of their own (their own event loop), holding one recovery email."""
    port, ready, stop = free_port(), threading.Event(), {}
    found: dict = {}

    async def main() -> None:
        catcher = await MailCatcher().start()
        stopping = asyncio.Event()
        stop["loop"], stop["event"] = asyncio.get_running_loop(), stopping
        serving = asyncio.create_task(serve_shop(create_catcher_app(catcher), "127.0.0.1", port, stopping.wait))
        await wait_listening("127.0.0.1", port, serving=serving)
        mail = SimpleNamespace(kind="recovery", to_address="ada@buyer.example", locale="en",
                               context=json.dumps(CONTEXT), message_id="<em_demo@flint.test>")
        message = compose(mail, SimpleNamespace(mail_from="mail@flint.test"),
                          unsubscribe_url="http://127.0.0.1:8000/unsubscribe/token")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=catcher.port)
        found["subject"] = str(message["Subject"])
        ready.set()
        await serving
        await catcher.stop()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="demo-mail-page")
    thread.start()
    assert ready.wait(30), "the catcher did not start"
    yield f"http://127.0.0.1:{port}", found["subject"]
    stop["loop"].call_soon_threadsafe(stop["event"].set)
    thread.join(15)


def _clean_at_both_widths(page: Page, violations: list[str]) -> None:
    assert violations == [], violations  # before axe, whose own probe the strict CSP refuses
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size


def test_the_mail_page_lists_the_recovery_email_and_shows_it_safely(page: Page, catcher_page):
    url, subject = catcher_page
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mail sent by the Flint demo")
    expect(page.get_by_role("row")).to_have_count(2)  # the header and the one mail
    expect(page.get_by_role("cell", name="ada@buyer.example")).to_be_visible()
    _clean_at_both_widths(page, violations)
    screenshot(page, "demo-mail")

    violations.clear()
    page.get_by_role("link", name=subject).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(subject)
    expect(page.get_by_role("link", name=CONTEXT["link_url"])).to_be_visible()
    # The HTML part, in its sandboxed frame, as a mail client shows it: its styles applied, no script run.
    frame = page.frame_locator('iframe[title="The mail\'s HTML part"]')
    button = frame.get_by_role("link", name="Pay $48.00")
    expect(button).to_have_attribute("href", CONTEXT["link_url"])
    # Its inline style applies (a link's underline is gone), which the page's own CSP would have refused.
    assert button.evaluate("a => getComputedStyle(a).textDecorationLine") == "none"
    _clean_at_both_widths(page, violations)
    screenshot(page, "demo-mail-message")

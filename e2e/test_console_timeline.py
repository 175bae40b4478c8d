"""An order's timeline in real Chromium (docs/api.md 15): each event with its webhook deliveries (the
endpoint, delivered or failed or pending in words, attempts, the last response, a link to the endpoint's
page) and the hook calls made before its payments (the app, its outcome in words, how long, why), axe
clean at 390 px and 1280 px, with review screenshots; the same story with JavaScript off."""
from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect

from flint.actors import Actor
from flint.apps import service as apps
from flint.checkout import service as checkout
from flint.merchants import service as merchants
from flint.oauth import service as oauth
from flint.runtime import Runtime
from flint.webhooks import service as webhooks
from support.factories import new_order, pay_session
from support.receiver import Receiver

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

PASSWORD = "a long and correct password"
REDIRECT = "http://127.0.0.1:9/callback"
# RFC 7636 appendix B's verifier and its S256 challenge.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


def _seed(server, receiver: Receiver):
    """A merchant with two endpoints (one answers 200, one 500), two installed apps asked before each
    payment (Gift Notes annotates and has its own webhook_url; Risk Check answers 500), and a hosted
    session paid at the second attempt."""
    tag = secrets.token_hex(3)

    async def seed():
        rt = await Runtime.start(server.runtime_config())
        try:
            shop, _ = await merchants.create_merchant(rt, name="Timeline Roasters", password=PASSWORD,
                                                      email=f"timeline-{tag}@shop.example")
            endpoints = {}
            for label, status in (("ok", 200), ("failing", 500)):
                url = receiver.script(f"/{label}-{tag}", [status])
                endpoints[label], _ = await webhooks.create_endpoint(rt, shop.id, url=url, events=["*"],
                                                                     description=None)
            developer, _ = await merchants.create_merchant(rt, name="Dev", password=PASSWORD,
                                                           email=f"dev-{tag}@dev.example")
            gift, _, _ = await apps.create_app(
                rt, developer.id, name="Gift Notes", redirect_uris=[REDIRECT], scopes=["orders:read"],
                hook_url=receiver.script(f"/gift-{tag}", [200],
                                         body=b'{"actions": [{"type": "annotate", "data": {"gift": true}}]}'),
                hooks=["checkout.before_payment"], webhook_url=receiver.script(f"/gift-events-{tag}", [200]),
                webhook_events=["order.*"])
            risk, _, _ = await apps.create_app(
                rt, developer.id, name="Risk Check", redirect_uris=[REDIRECT], scopes=["orders:read"],
                hook_url=receiver.script(f"/risk-{tag}", [500]), hooks=["checkout.before_payment"])
            for app in (gift, risk):  # installed as the consent page does it: a code, exchanged with PKCE
                code = await oauth.issue_code(rt, oauth.AuthorizationRequest(app, REDIRECT, ["orders:read"], None,
                                                                            CHALLENGE), shop.id)
                await oauth.exchange_code(rt, app, code, REDIRECT, VERIFIER)
            session = await checkout.create_session(rt, shop.id, checkout.NewSession(
                mode="hosted", success_url="https://shop.example/thanks", inline_order=new_order(4200, "eur")),
                Actor("merchant", shop.id))
            await pay_session(rt, session, number="4000000000000002")
            await pay_session(rt, session)
            return shop, endpoints, session.order_id
        finally:
            await rt.stop()

    return run_async(seed)


def _sign_in(page: Page, server, email: str, path: str) -> None:
    page.goto(f"{server.url}/login?next={path}")
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{path}")


def _accessible_at_both_widths(page: Page) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size


def _delivered(page: Page) -> None:
    """Reloads until the worker has sent every event once (each delivery has an attempt)."""
    for _ in range(100):
        timeline = page.get_by_role("region", name="Timeline")
        if timeline.get_by_text(re.compile(r": Pending, 0 attempts")).count() == 0:
            return
        page.wait_for_timeout(200)
        page.reload()
    raise AssertionError("deliveries never sent")


def test_the_timeline_shows_deliveries_and_hook_calls_and_is_accessible(page: Page, browser, server, receiver):
    shop, endpoints, order_id = _seed(server, receiver)
    path = f"/dashboard/orders/{order_id}"
    _sign_in(page, server, shop.email, path)
    _delivered(page)
    timeline = page.get_by_role("region", name="Timeline")
    expect(timeline.locator(".what")).to_have_text([
        "Order created", "Checkout session created (hosted)", re.compile("^Hook call to app"),
        re.compile("^Hook call to app"), re.compile("^Payment failed"), re.compile("^Hook call to app"),
        re.compile("^Hook call to app"), re.compile("^Payment succeeded"), re.compile("^Order paid"),
        re.compile("^Checkout session completed")])
    # Each hook call: the app, its outcome as a word beside the colour, how long, why.
    expect(timeline.locator(".what", has_text="Hook call to app Gift Notes")).to_have_count(2)
    expect(timeline.locator(".what", has_text="Hook call to app Gift Notes").first).to_contain_text("Allowed")
    expect(timeline.locator(".what", has_text="Hook call to app Risk Check").first).to_contain_text("Error")
    expect(timeline.locator("li.hook_call", has_text="Risk Check").first).to_contain_text("Reason: HTTP 500")
    expect(timeline.locator("li.hook_call", has_text="Gift Notes").first).to_contain_text("Applied: annotate")
    # Under order.created: the merchant's two endpoints by URL (links to their pages) and the app's by name.
    created = timeline.locator("ol.timeline > li").first
    ok, failing = endpoints["ok"], endpoints["failing"]
    expect(created.locator(".delivery", has_text=ok.url)).to_contain_text(
        re.compile(r"Delivered, 1 attempt, last response HTTP 200"))
    expect(created.locator(".delivery", has_text=failing.url)).to_contain_text(
        re.compile(r"Pending, \d+ attempts?, last response HTTP 500"))
    expect(created.locator(".delivery", has_text="To app Gift Notes")).to_contain_text("Delivered")
    expect(created.get_by_role("link", name=ok.url)).to_have_attribute("href", f"/dashboard/webhooks/{ok.id}")
    _accessible_at_both_widths(page)
    screenshot(page, "console-order-timeline")

    # The endpoint's link leads to its page, with the keyboard.
    created.get_by_role("link", name=failing.url).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/dashboard/webhooks/{failing.id}")

    # With JavaScript off: the same story.
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORTS["mobile"])
    try:
        quiet = context.new_page()
        _sign_in(quiet, server, shop.email, path)
        off = quiet.get_by_role("region", name="Timeline")
        expect(off.locator(".what", has_text="Hook call to app Gift Notes")).to_have_count(2)
        expect(off.locator(".delivery", has_text=ok.url).first).to_contain_text("Delivered")
    finally:
        context.close()

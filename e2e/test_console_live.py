"""The console with JavaScript on, in real Chromium (docs/api.md 15): htmx (vendored, served by Flint with its
SRI hash) and console.js enhance pages that work without them. Choosing a status or typing a search updates
the Orders list in place and the address follows; the webhook deliveries refresh themselves, so a new
attempt (the first one, and the one a Retry sent) shows up without a reload, and not while the person is in
the list; Cancel order, Roll secret, Revoke, Remove and Uninstall ask in a confirm dialog, and dismissing it
sends nothing; the read-only boxes (secret key, signing secret, invitation link, script tag) get a Copy
button that puts their value on the clipboard. No page breaks the CSP. With JavaScript off, Cancel order
still asks on a page of its own and the boxes stay plain selectable text boxes."""
from __future__ import annotations

import itertools
import re
import secrets

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from flint.actors import Actor
from flint.apps import service as apps
from flint.merchants import service as merchants
from flint.orders.models import LineItem, NewOrder
from flint.orders.service import create_order
from flint.runtime import Runtime
from flint.staff import service as staff
from flint.webhooks import service as webhooks
from support import oauth as oauth_steps
from support.factories import make_order, make_session, pay_session
from support.receiver import Receiver
from support.server import start_server, stop_server

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

PASSWORD = "a long and correct password"
BUYER = "Mary.Jackson@Example.com"
ORIGIN = "https://live.shop.example"
_counter = itertools.count(1)

# Every CSP refusal in a page, reported to the console where the test listens (an init script runs outside
# the page's CSP).
CSP_PROBE = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"""


def _watched(context: BrowserContext) -> tuple[Page, list[str]]:
    """A page of this context, and the list every CSP violation or script error on any of its pages lands in."""
    problems: list[str] = []
    context.add_init_script(CSP_PROBE)
    page = context.new_page()
    page.on("console", lambda message: problems.append(message.text)
            if "CSP violation" in message.text or "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    return page, problems


@pytest.fixture
def live(browser: Browser):
    context = browser.new_context(viewport=VIEWPORTS["desktop"], permissions=["clipboard-read", "clipboard-write"])
    page, problems = _watched(context)
    yield page, problems
    context.close()


@pytest.fixture(scope="module")
def slow_retry_server(tmp_path_factory):
    """Flint whose automatic webhook retry waits an hour: a second attempt soon after the first is Retry's."""
    server = start_server(tmp_path_factory.mktemp("e2e-live-slow-retry"), {"FLINT_WEBHOOK_RETRY_SCHEDULE": "3600,3600"})
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def _seed(server, *, orders: bool = False, member: bool = False, endpoint_url: str | None = None,
          app: bool = False):
    """A merchant (its email is its first owner), with: open, paid and canceled orders (one paid by BUYER);
    a developer member; a webhook endpoint; a second key; an installed app. Returns a dict."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            n = next(_counter)
            merchant, key = await merchants.create_merchant(
                runtime, name="Live Roasters", email=f"live-e2e-{n}-{secrets.token_hex(3)}@shop.example",
                password=PASSWORD, origins=[ORIGIN])
            made: dict = {"merchant": merchant, "key": key}
            if orders:
                made["open"] = [(await make_order(runtime, merchant.id, 1000 + i, "eur")).id for i in range(3)]
                paid = await create_order(runtime, merchant.id, NewOrder(
                    currency="eur", line_items=[LineItem("Beans", 1, 2400)], customer_email=BUYER),
                    Actor("merchant", merchant.id))
                await pay_session(runtime, await make_session(runtime, merchant.id, order_id=paid.id, mode="hosted"))
                other = await make_session(runtime, merchant.id, amount=1800, currency="eur", mode="hosted")
                await pay_session(runtime, other)
                made["paid"] = [paid.id, other.order_id]
            if member:
                async with runtime.db.transaction() as conn:
                    owner = await staff.ensure_owner(conn, merchant)
                email = f"dev-{n}-{secrets.token_hex(3)}@shop.example"
                _, token = await staff.invite(runtime, owner, email, "developer")
                await staff.accept_invitation(runtime, token, PASSWORD)
                made["member"] = email
                _, made["second_key"] = await merchants.create_key(runtime, merchant.id)
            if endpoint_url:
                made["endpoint"], _ = await webhooks.create_endpoint(
                    runtime, merchant.id, url=endpoint_url, events=["order.created"], description=None)
            if app:
                dev, _ = await merchants.create_merchant(runtime, name="Stock Sync Ltd", password=PASSWORD,
                                                         email=f"dev-{secrets.token_hex(4)}@dev.example")
                made["app"], client_secret, _ = await apps.create_app(
                    runtime, dev.id, name="Stock Sync", description="Keeps stock levels in step with orders.",
                    redirect_uris=[oauth_steps.REDIRECT], scopes=["orders:read", "payments:read"])
                async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as shop_browser:
                    await oauth_steps.install(server, shop_browser, made["app"], client_secret, merchant.email)
            return made
        finally:
            await runtime.stop()

    return run_async(seed)


def _new_order(server, merchant_id: str) -> str:
    async def make():
        runtime = await Runtime.start(server.runtime_config())
        try:
            return (await make_order(runtime, merchant_id, 700)).id
        finally:
            await runtime.stop()

    return run_async(make)


def _api(server, key: str, path: str) -> dict:
    answer = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sign_in(page: Page, server, email: str, where: str) -> None:
    page.goto(f"{server.url}/login?next={where}")
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{where}")


def _mark(page: Page) -> None:
    """A flag in this document: still there later means no page load happened in between."""
    page.evaluate("window.__sameDocument = true")


def _same_document(page: Page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def _accessible_at_both_widths(page: Page, problems: list[str]) -> None:
    """axe at both widths. assert_accessible first tries an inline <script> tag, which the console's CSP
    refuses (as it should): that one refusal is the test's own, so it is dropped from ``problems``."""
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        before = len(problems)
        assert_accessible(page)
        page.wait_for_timeout(100)  # the refusal's console message, if still on its way
        assert all("inline" in text for text in problems[before:]), problems[before:]
        del problems[before:]
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size
    page.set_viewport_size(VIEWPORTS["desktop"])


# -- the Orders filters ------------------------------------------------------------------------------------

def test_filters_update_the_orders_in_place_and_the_address_follows(live, server):
    page, problems = live
    made = _seed(server, orders=True)
    loads: list[str] = []
    page.on("request", lambda request: loads.append(request.url) if request.resource_type == "document" else None)
    fetched: list[dict] = []
    page.on("request", lambda request: fetched.append(request.headers)
            if request.resource_type in ("xhr", "fetch") else None)
    _sign_in(page, server, made["merchant"].email, "/dashboard/orders")
    rows = page.get_by_role("table").get_by_role("row")
    expect(rows).to_have_count(6)  # the header and five orders
    _mark(page)
    loads.clear()

    page.get_by_role("combobox", name="Status").select_option("Paid")
    expect(page).to_have_url(re.compile(r"/dashboard/orders\?(.*&)?status=paid"))
    expect(rows).to_have_count(3)
    for n in (1, 2):
        expect(rows.nth(n)).to_contain_text("Paid")
    expect(page.get_by_role("table")).to_have_accessible_name("Orders, paid, newest first")
    expect(page.locator("#orders-summary")).to_have_text("2 orders shown")  # read out (role status)
    assert _same_document(page) and loads == []  # no page load: htmx asked for the list alone
    assert fetched and fetched[-1].get("hx-request") == "true"

    page.get_by_role("searchbox", name="Search orders").fill(BUYER.lower())
    expect(page).to_have_url(re.compile(r"q=mary\.jackson%40example\.com"))
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text(BUYER)
    assert _same_document(page) and loads == []
    _accessible_at_both_widths(page, problems)
    screenshot(page, "console-orders-live")

    page.get_by_role("searchbox", name="Search orders").fill("nobody@example.com")
    expect(page.get_by_role("heading", name="No orders")).to_be_visible()
    expect(page.locator("#orders-summary")).to_have_text("No orders")
    assert _same_document(page)

    # Back: the page before, loaded again from Flint (htmx keeps no copy of a page with buyers' data).
    page.go_back()
    expect(page).to_have_url(re.compile(r"q=mary\.jackson%40example\.com"))
    expect(rows).to_have_count(2)
    assert page.evaluate("localStorage.getItem('htmx-history-cache')") is None

    # The plain form still works: Search submits the same filters (htmx answers it in place).
    page.get_by_role("combobox", name="Status").select_option("")
    page.get_by_role("searchbox", name="Search orders").fill("")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(6)
    assert problems == []

    # Signed out meanwhile (here: the cookie gone): the next change loads the sign-in page whole, and
    # signing in comes back to the filtered list.
    page.context.clear_cookies()
    page.get_by_role("combobox", name="Status").select_option("Open")
    expect(page).to_have_url(re.compile(r"/login\?next=/dashboard/orders%3F"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.get_by_role("textbox", name="Email").fill(made["merchant"].email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/orders\?(.*&)?status=open"))
    expect(rows).to_have_count(4)
    assert problems == []


# -- the deliveries refresh themselves --------------------------------------------------------------------

def test_the_deliveries_show_a_new_attempt_without_a_reload(live, slow_retry_server, receiver):
    page, problems = live
    server = slow_retry_server
    path = f"/e2e-live-{secrets.token_hex(4)}"
    url = receiver.script(path, [500, 200])
    made = _seed(server, endpoint_url=url)
    _sign_in(page, server, made["merchant"].email, "/dashboard/webhooks")
    panel = page.get_by_role("region", name=url, exact=True)
    expect(panel).to_contain_text("No deliveries yet")
    _mark(page)

    # An order: its delivery fails (HTTP 500), and the open page shows it within a few seconds.
    _new_order(server, made["merchant"].id)
    receiver.wait_for(path, 1)
    expect(panel).to_contain_text("HTTP 500", timeout=15_000)
    expect(panel).to_contain_text("Retrying")
    assert _same_document(page)

    # Retry: the page comes back saying so, and the new attempt (HTTP 200) arrives on it by itself.
    panel.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("The delivery will be sent again now.")
    _mark(page)
    receiver.wait_for(path, 2)
    attempts = panel.locator("ol.attempts li")
    expect(attempts).to_have_count(2, timeout=15_000)
    expect(attempts.nth(1)).to_contain_text("HTTP 200")
    expect(panel).to_contain_text("Succeeded")
    assert _same_document(page)
    _accessible_at_both_widths(page, problems)

    # The endpoint's own page refreshes too, but not while the person is in the list (a Retry button
    # focused, text selected) nor while the tab is hidden: it waits until none of these holds.
    page.get_by_role("link", name="All deliveries to this endpoint").click()
    expect(page).to_have_url(f"{server.url}/dashboard/webhooks/{made['endpoint'].id}")
    deliveries = page.get_by_role("table").get_by_role("row")
    expect(deliveries).to_have_count(2)
    _mark(page)
    page.get_by_role("button", name="Retry").focus()
    _new_order(server, made["merchant"].id)
    receiver.wait_for(path, 3)
    page.wait_for_timeout(5_500)  # more than one refresh period
    expect(deliveries).to_have_count(2)
    page.get_by_role("link", name="Webhooks", exact=True).first.focus()  # out of the list, but ...
    page.evaluate("getSelection().selectAllChildren(document.querySelector('ol.attempts li'))")  # ... copying
    page.wait_for_timeout(5_500)
    expect(deliveries).to_have_count(2)
    page.evaluate("""getSelection().removeAllRanges();
                     Object.defineProperty(document, "hidden", {configurable: true, get: () => true})""")
    page.wait_for_timeout(5_500)  # another tab in front
    expect(deliveries).to_have_count(2)
    page.evaluate("delete document.hidden")  # back to the page's own (visible)
    expect(deliveries).to_have_count(3, timeout=15_000)
    expect(deliveries.nth(1)).to_contain_text("HTTP 200")
    assert _same_document(page)
    assert problems == []


# -- confirm dialogs ---------------------------------------------------------------------------------------

def test_dangerous_buttons_ask_first_and_a_no_sends_nothing(live, server):
    page, problems = live
    made = _seed(server, orders=True, member=True, endpoint_url="http://127.0.0.1:9/e2e-live-hook", app=True)
    key = made["key"]
    asked: list[str] = []
    answer = {"yes": False}

    def on_dialog(dialog) -> None:
        assert dialog.type == "confirm"
        asked.append(dialog.message)
        dialog.accept() if answer["yes"] else dialog.dismiss()

    page.on("dialog", on_dialog)
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    _sign_in(page, server, made["merchant"].email, "/dashboard")

    def refused(button, question: str) -> None:
        before, sent = page.url, len(posts)
        button.click()  # the dialog is answered (on_dialog) before click() returns
        assert asked[-1] == question, asked
        page.wait_for_timeout(300)
        assert page.url == before and len(posts) == sent, "a dismissed dialog sent the form"

    # Cancel order: no sends nothing; yes cancels at once (no second question on a confirm page).
    order_id = made["open"][0]
    page.goto(f"{server.url}/dashboard/orders/{order_id}")
    refused(page.get_by_role("button", name="Cancel order"),
            f"Cancel order {order_id}? The buyer can no longer pay it, and its open checkout sessions end. "
            "This cannot be undone.")
    assert _api(server, key, f"/v1/orders/{order_id}")["status"] == "open"
    answer["yes"] = True
    page.get_by_role("button", name="Cancel order").click()
    expect(page.get_by_role("status")).to_have_text("The order was canceled.")
    expect(page).to_have_url(f"{server.url}/dashboard/orders/{order_id}?canceled=1")
    assert _api(server, key, f"/v1/orders/{order_id}")["status"] == "canceled"
    answer["yes"] = False

    page.goto(f"{server.url}/dashboard/webhooks")
    refused(page.get_by_role("button", name="Roll secret"),
            "Roll the signing secret of http://127.0.0.1:9/e2e-live-hook? The new secret is shown once; the "
            "current one keeps signing beside it for 24 hours.")
    expect(page.get_by_role("textbox", name="New signing secret")).to_have_count(0)

    page.goto(f"{server.url}/dashboard/api_keys")
    last4 = made["key"][-4:]
    refused(page.get_by_role("button", name=f"Revoke key ending {last4}"),
            f"Revoke the key ending {last4}? Calls made with it are refused from now on. This cannot be undone.")
    assert _api(server, key, "/v1/merchant")["id"] == made["merchant"].id  # still works

    page.goto(f"{server.url}/dashboard/team")
    refused(page.get_by_role("button", name=f"Remove {made['member']}"),
            f"Remove {made['member']} from the team? They are signed out everywhere at once.")
    expect(page.get_by_role("table", name="Members")).to_contain_text(made["member"])

    page.goto(f"{server.url}/dashboard/apps")
    refused(page.get_by_role("button", name="Uninstall Stock Sync"),
            "Uninstall Stock Sync? Its access ends at once, its webhooks stop and the endpoints it made are deleted.")
    expect(page.get_by_role("region", name="Stock Sync")).to_contain_text("Installed")
    assert problems == []


# -- Copy buttons --------------------------------------------------------------------------------------------

def test_copy_buttons_put_each_boxs_value_on_the_clipboard(live, server):
    page, problems = live
    made = _seed(server)
    _sign_in(page, server, made["merchant"].email, "/dashboard/api_keys")

    def copies(box_name: str, button_name: str) -> str:
        box = page.get_by_role("textbox", name=box_name)
        value = box.input_value()
        page.get_by_role("button", name=button_name).click()
        expect(page.get_by_text("Copied", exact=True)).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == value
        return value

    page.get_by_role("button", name="Create key").click()
    assert copies("Secret key", "Copy secret key").startswith("sk_test_")
    _accessible_at_both_widths(page, problems)
    screenshot(page, "console-api-key-copy")

    page.goto(f"{server.url}/dashboard/webhooks")
    add = page.get_by_role("region", name="Add endpoint")
    add.get_by_role("textbox", name="URL").fill("http://127.0.0.1:9/e2e-copy-hook")
    add.get_by_role("textbox", name="Events").fill("order.created")
    add.get_by_role("button", name="Add endpoint").click()
    assert copies("Signing secret", "Copy signing secret").startswith("whsec_")

    page.goto(f"{server.url}/dashboard/team")
    page.get_by_role("textbox", name="Email").fill(f"copy-{secrets.token_hex(3)}@shop.example")
    page.get_by_role("button", name="Invite").click()
    assert "/join/fsi_" in copies("Invitation link", "Copy invitation link")

    page.goto(f"{server.url}/dashboard/settings")
    tag = copies(f"Script tag for {ORIGIN}", f"Copy script tag for {ORIGIN}")
    assert tag.startswith("<script src=") and 'integrity="sha384-' in tag
    _accessible_at_both_widths(page, problems)
    assert problems == []


# -- without JavaScript --------------------------------------------------------------------------------------

def test_without_javascript_cancel_asks_on_its_own_page_and_boxes_have_no_copy_button(browser: Browser, server):
    made = _seed(server, orders=True)
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORTS["mobile"])
    try:
        page = context.new_page()
        _sign_in(page, server, made["merchant"].email, "/dashboard/orders")
        to_cancel, to_link = made["open"][0], made["open"][1]
        page.goto(f"{server.url}/dashboard/orders/{to_cancel}")
        page.get_by_role("button", name="Cancel order").click()
        expect(page).to_have_url(re.compile(rf"/dashboard/orders/{to_cancel}/cancel\??$"))
        expect(page.get_by_role("heading", name="Cancel this order?")).to_be_visible()
        page.get_by_role("button", name="Cancel order").click()
        expect(page.get_by_role("status")).to_have_text("The order was canceled.")
        assert _api(server, made["key"], f"/v1/orders/{to_cancel}")["status"] == "canceled"

        page.goto(f"{server.url}/dashboard/orders/{to_link}")
        page.get_by_role("button", name="Create payment link").click()
        box = page.get_by_role("textbox", name="Payment link")
        expect(box).to_have_attribute("readonly", "")
        expect(box).to_have_value(re.compile(r"/pay/"))
        expect(page.get_by_role("button", name=re.compile("^Copy"))).to_have_count(0)
    finally:
        context.close()

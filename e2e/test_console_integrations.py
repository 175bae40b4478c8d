"""The console's Webhooks and Apps pages in real Chromium (docs/api.md 15): a developer adds an endpoint
(its secret shown once), rolls its secret and retries a failed delivery, then sees the new attempt; an owner
approves an app's pending update and uninstalls it; support reads both pages without their buttons. Every
page is axe clean at 390 px and 1280 px, with review screenshots of both widths."""
from __future__ import annotations

import itertools
import re
import secrets

import httpx
import pytest
from playwright.sync_api import Page, expect

from flint.apps import service as apps
from flint.merchants import service as merchants
from flint.oauth.service import follow_app_change
from flint.runtime import Runtime
from flint.staff import service as staff
from flint.webhooks import service as webhooks
from support import oauth as oauth_steps
from support.factories import make_order
from support.receiver import Receiver
from support.server import start_server, stop_server

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

PASSWORD = "a long and correct password"
_counter = itertools.count(1)


@pytest.fixture(scope="module")
def slow_retry_server(tmp_path_factory):
    """Flint whose automatic webhook retry waits an hour: a second attempt soon after the first is the
    console's Retry."""
    live = start_server(tmp_path_factory.mktemp("e2e-slow-retry"), {"FLINT_WEBHOOK_RETRY_SCHEDULE": "3600,3600"})
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


def _accessible_at_both_widths(page: Page) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size


def _sign_in(page: Page, server, email: str, where: str) -> None:
    page.goto(f"{server.url}/login?next={where}")
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}{where}")


def _team(server, roles: tuple[str, ...]):
    """A merchant, and for each role a member (the owner is the merchant's own email)."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            n = next(_counter)
            merchant, key = await merchants.create_merchant(
                runtime, name="Console Roasters", email=f"hooks-e2e-{n}-{secrets.token_hex(3)}@shop.example",
                password=PASSWORD)
            async with runtime.db.transaction() as conn:
                owner = await staff.ensure_owner(conn, merchant)
            members = {"owner": owner}
            for role in roles:
                if role != "owner":
                    _, token = await staff.invite(runtime, owner, f"{role}-{n}-{secrets.token_hex(3)}@shop.example", role)
                    members[role] = await staff.accept_invitation(runtime, token, PASSWORD)
            return merchant, key, members
        finally:
            await runtime.stop()

    return run_async(seed)


def test_a_developer_adds_an_endpoint_and_retries_a_failed_delivery(page: Page, browser, slow_retry_server, receiver):
    server = slow_retry_server
    merchant, _, members = _team(server, ("developer", "support"))
    path = f"/e2e-retry-{secrets.token_hex(4)}"
    url = receiver.script(path, [500, 200])

    _sign_in(page, server, members["developer"].email, "/dashboard/webhooks")
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    _accessible_at_both_widths(page)
    screenshot(page, "console-webhooks-empty")

    add = page.get_by_role("region", name="Add endpoint")
    add.get_by_role("textbox", name="URL").fill(url)
    add.get_by_role("textbox", name="Events").fill("order.created")
    add.get_by_role("button", name="Add endpoint").click()
    secret_box = page.get_by_role("textbox", name="Signing secret")
    expect(secret_box).to_have_value(re.compile(r"^whsec_"))
    expect(secret_box).to_have_attribute("readonly", "")
    first_secret = secret_box.input_value()
    _accessible_at_both_widths(page)
    screenshot(page, "console-webhooks-secret")

    async def order():
        runtime = await Runtime.start(server.runtime_config())
        try:
            await make_order(runtime, merchant.id)
            [endpoint], _ = await webhooks.list_endpoints(runtime, merchant.id, 10, None)
            return endpoint
        finally:
            await runtime.stop()

    endpoint = run_async(order)
    receiver.wait_for(path, 1)
    endpoint_panel = page.get_by_role("region", name=url, exact=True)
    for _ in range(100):
        page.goto(f"{server.url}/dashboard/webhooks")
        if "HTTP 500" in endpoint_panel.inner_text():
            break
        page.wait_for_timeout(100)
    expect(endpoint_panel).to_contain_text("HTTP 500")
    expect(endpoint_panel).to_contain_text("Retrying")
    _accessible_at_both_widths(page)
    screenshot(page, "console-webhooks-failed")

    endpoint_panel.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("The delivery will be sent again now.")
    receiver.wait_for(path, 2)
    for _ in range(100):
        page.goto(f"{server.url}/dashboard/webhooks")
        if "HTTP 200" in endpoint_panel.inner_text():
            break
        page.wait_for_timeout(100)
    attempts = endpoint_panel.locator("ol.attempts li")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("HTTP 500")
    expect(attempts.nth(1)).to_contain_text("HTTP 200")
    expect(endpoint_panel).to_contain_text("Succeeded")
    _accessible_at_both_widths(page)
    screenshot(page, "console-webhooks-retried")

    page.once("dialog", lambda dialog: dialog.accept())  # Roll secret asks first (console.js)
    endpoint_panel.get_by_role("button", name="Roll secret").click()
    rolled = page.get_by_role("textbox", name="New signing secret")
    expect(rolled).to_have_value(re.compile(r"^whsec_"))
    assert rolled.input_value() != first_secret

    page.get_by_role("link", name="All deliveries to this endpoint").click()
    expect(page).to_have_url(f"{server.url}/dashboard/webhooks/{endpoint.id}")
    expect(page.locator("ol.attempts li")).to_have_count(2)
    _accessible_at_both_widths(page)
    screenshot(page, "console-webhook-endpoint")

    # Support reads the same page, without a button to act.
    context = browser.new_context(viewport=VIEWPORTS["mobile"])
    try:
        support = context.new_page()
        _sign_in(support, server, members["support"].email, "/dashboard/webhooks")
        expect(support.get_by_role("region", name=url, exact=True)).to_contain_text("HTTP 200")
        expect(support.get_by_role("button", name=re.compile("Retry|Roll secret|Add endpoint"))).to_have_count(0)
        assert_accessible(support)
    finally:
        context.close()


def test_an_owner_approves_an_apps_pending_update_and_uninstalls_it(page: Page, server):
    merchant, _, members = _team(server, ())

    async def installed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            dev, _ = await merchants.create_merchant(runtime, name="Stock Sync Ltd",
                                                     email=f"dev-{secrets.token_hex(4)}@dev.example", password=PASSWORD)
            app, client_secret, _ = await apps.create_app(
                runtime, dev.id, name="Stock Sync", description="Keeps your stock levels in step with your orders.",
                redirect_uris=[oauth_steps.REDIRECT], scopes=["orders:read", "payments:read"])
            async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as shop_browser:
                await oauth_steps.install(server, shop_browser, app, client_secret, merchant.email)
            # The developer widens the app: refunds too, and a checkout field. That waits for the merchant.
            await apps.update_app(runtime, dev.id, app.id, {
                "scopes": ["orders:read", "payments:read", "refunds:write"],
                "checkout_fields": [{"key": "gift_wrap", "label": "Gift wrap", "type": "checkbox"}]},
                follow_app_change)
            return app
        finally:
            await runtime.stop()

    app = run_async(installed)
    _sign_in(page, server, members["owner"].email, "/dashboard/apps")
    expect(page.get_by_role("heading", level=1)).to_have_text("Apps")
    panel = page.get_by_role("region", name="Stock Sync")
    expect(panel).to_contain_text("See your orders, checkout sessions and payment links")
    expect(panel).to_contain_text("Update waiting for your approval")
    expect(panel).to_contain_text("Refund payments")
    expect(panel).to_contain_text("Gift wrap (a checkbox, optional)")
    _accessible_at_both_widths(page)
    screenshot(page, "console-apps-pending")

    panel.get_by_role("button", name="Approve update").click()
    expect(page.get_by_role("status")).to_contain_text("The update is approved")
    expect(panel).not_to_contain_text("Update waiting")
    expect(panel).to_contain_text("Refund payments")
    _accessible_at_both_widths(page)
    screenshot(page, "console-apps-approved")

    page.once("dialog", lambda dialog: dialog.accept())  # Uninstall asks first (console.js)
    panel.get_by_role("button", name="Uninstall").click()
    expect(page.get_by_role("status")).to_contain_text("The app is uninstalled")
    expect(panel).to_contain_text("Uninstalled")
    expect(panel.get_by_role("button")).to_have_count(0)
    _accessible_at_both_widths(page)
    screenshot(page, "console-apps-uninstalled")
    assert app.name == "Stock Sync"

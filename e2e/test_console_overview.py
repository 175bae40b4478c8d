"""The console's Overview with a few days of activity, in real Chromium (docs/api.md 15): the charts are
images named by their titles, each with its numbers in a table that opens from its summary; the period
links change the period; the page is axe clean and fits the screen at 390 px and 1280 px, with review
screenshots of both widths.

The activity is made through Flint's own services over four days: this process's clock moves a day at a
time while it seeds, then the server's clock is moved as far (POST /v1/test_helpers/advance_clock), so it is
this test's own server, not the session's."""
from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from flint import clock
from flint.actors import SYSTEM, Actor
from flint.apps import service as apps
from flint.background.webhook_worker import deliver_due
from flint.checkout import store as session_store
from flint.collect import service as collect
from flint.demo_activity import install_app
from flint.links import recovery
from flint.merchants import service as merchants
from flint.refunds.service import NewRefund, issue_refund
from flint.runtime import Runtime
from flint.webhooks import service as webhooks
from support.factories import card, make_merchant, make_order, make_session, pay_session
from support.receiver import Receiver
from support.server import start_server, stop_server

from .conftest import run_async
from .helpers import VIEWPORTS, assert_accessible, screenshot

PASSWORD = "a long and correct password"
DECLINE = "4000000000000002"
DAY = 86400


@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A server of this module's own: the test moves its clock forward."""
    live = start_server(tmp_path_factory.mktemp("overview-server"))
    yield live
    stop_server(live)


def _seed(server, receiver):
    """A shop with four days of payments (some declined), refunds, drop-offs recovered through their links,
    a webhook endpoint that fails and an app whose hook fails, the last day today once the server's clock
    is moved. Returns (merchant, secret key, the seconds this process's clock moved)."""
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        before = clock.offset()
        try:
            merchant, key = await merchants.create_merchant(runtime, name="Overview Roasters",
                                                            email="overview-e2e@shop.example", password=PASSWORD)
            developer, _ = await make_merchant(runtime)
            receiver.script("/hook", [500])
            app, _, _ = await apps.create_app(
                runtime, developer.id, name="Fraud Check", redirect_uris=["http://127.0.0.1:9/callback"],
                scopes=["orders:read"], hook_url=receiver.url("/hook"), hooks=["checkout.before_payment"])
            await install_app(runtime, app, merchant.id)
            await webhooks.create_endpoint(runtime, merchant.id, url=receiver.script("/down", [500]),
                                           events=["order.created"], description=None)
            # Early on a UTC day, so each day's activity stays on its day.
            now = clock.now()
            clock.advance(((now + timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0)
                           - now).total_seconds())
            for day, (paid, declined, eur) in enumerate(((3, 1, 0), (2, 0, 1), (1, 2, 0), (4, 1, 1))):
                if day:
                    clock.advance(DAY)
                for n in range(paid):
                    await pay_session(runtime, await make_session(runtime, merchant.id, amount=1500 + 750 * n))
                for _ in range(declined):
                    await pay_session(runtime, await make_session(runtime, merchant.id, amount=2000), DECLINE)
                for _ in range(eur):
                    session = await make_session(runtime, merchant.id, amount=4200, currency="eur")
                    await pay_session(runtime, session)
                    await issue_refund(runtime, merchant.id, NewRefund(order_id=session.order_id, amount=1200),
                                       Actor("merchant", merchant.id))
                if day == 2:  # two buyers drop off; one pays through the recovery link
                    left = [await make_session(runtime, merchant.id, amount=3300, recovery=True, abandon_after=60)
                            for _ in range(2)]
                    clock.advance(61)
                    await recovery.sweep_dropped_off(runtime, SYSTEM)
                    async with runtime.db.read() as conn:
                        link_id = (await session_store.select_session_by_id(conn, left[0].id)).recovery_payment_link_id
                    await collect.confirm_payment(runtime, collect.Attempt(merchant.id, left[0].order_id, "payment_link",
                                                                           payment_link_id=link_id), card(), SYSTEM)
                await make_order(runtime, merchant.id, 900)
                await deliver_due(runtime)
            return merchant, key, (clock.offset() - before).total_seconds()
        finally:
            clock._offset = before  # (this process's clock as it was: only the seeding moved it)
            await runtime.stop()

    merchant, key, moved = run_async(seed)
    with server.client(key) as api:
        answer = api.post("/v1/test_helpers/advance_clock", json={"seconds": math.ceil(moved)})  # whole seconds
        assert answer.status_code == 200, answer.text
    return merchant


def _accessible_at_both_widths(page: Page) -> None:
    for size in VIEWPORTS.values():
        page.set_viewport_size(size)
        assert_accessible(page)
        # Nothing wider than the screen: the page never scrolls sideways (a wide table may, in its region).
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size


def test_the_overview_draws_its_charts_with_their_numbers_and_is_accessible(page: Page, own_server, receiver):
    merchant = _seed(own_server, receiver)
    page.goto(f"{own_server.url}/login?next=/dashboard")
    page.get_by_role("textbox", name="Email").fill(merchant.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{own_server.url}/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

    periods = page.get_by_role("navigation", name="Period")
    expect(periods.get_by_role("link")).to_have_text(["7 days", "30 days", "90 days"])
    expect(periods.get_by_role("link", name="7 days")).to_have_attribute("aria-current", "true")
    for name in ("Payments per day", "Amount paid per day, USD", "Amount paid per day, EUR", "Drop-off recovery",
                 "Failed webhook deliveries per day", "Failed hook calls per day"):
        expect(page.get_by_role("img", name=name, exact=True)).to_be_visible()
    payments = page.get_by_role("img", name="Payments per day")
    expect(payments).to_have_accessible_description(re.compile(r"^13 payments succeeded and 4 declined"))

    # The numbers beside the chart: a table behind its summary, the last four days as seeded.
    page.get_by_text("Numbers: Payments per day").click()
    table = page.get_by_role("table", name="Payments per day")
    expect(table).to_be_visible()
    rows = table.get_by_role("row")
    expect(rows).to_have_count(8)  # the heading and seven days
    seeded = [("3", "1", "0"), ("3", "0", "1"), ("2", "2", "0"), ("5", "1", "1")]
    for row, (succeeded, declined, refunds) in zip(range(4, 8), seeded):
        expect(rows.nth(row).get_by_role("cell")).to_have_text([succeeded, declined, refunds])
    funnel = page.get_by_role("table", name="Drop-off recovery")
    expect(funnel.get_by_role("row").nth(4).get_by_role("cell")).to_have_text(["1", "50%"])
    expect(page.get_by_role("region", name="Failed webhook deliveries").get_by_role("link", name="Webhooks")) \
        .to_have_attribute("href", "/dashboard/webhooks")
    expect(page.get_by_role("region", name="Recent orders").get_by_role("row")).to_have_count(6)
    _accessible_at_both_widths(page)
    screenshot(page, "console-overview-charts")

    periods.get_by_role("link", name="30 days").click()
    expect(page).to_have_url(f"{own_server.url}/dashboard?period=30d")
    expect(page.get_by_role("navigation", name="Period").get_by_role("link", name="30 days")) \
        .to_have_attribute("aria-current", "true")
    expect(page.get_by_role("img", name="Payments per day")).to_have_accessible_description(
        re.compile(r"^13 payments succeeded"))
    _accessible_at_both_widths(page)

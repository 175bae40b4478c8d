"""The console's Overview (docs/api.md 15): the figures per UTC day of a period, on every backend, from
activity made through Flint's own services on different days (the process clock moved forward a day at a
time): payments that succeeded and were declined with their amounts per currency, refunds, the recovery
funnel, failed webhook deliveries to the merchant's own endpoints and failed hook calls, exactly, and never
another merchant's. Each part only for a role that may read it. The queries read their indexes. The charts'
arithmetic. And over HTTP: the page draws each chart as an SVG image with a title, a description and the
same numbers in a table, with a period selector that works without JavaScript."""
from __future__ import annotations

import dataclasses
import itertools
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from flint import clock
from flint.actors import SYSTEM, Actor
from flint.apps import service as apps
from flint.background.webhook_worker import deliver_due
from flint.checkout import store as session_store
from flint.collect import service as collect
from flint.console import charts, overview, service
from flint.demo_activity import install_app
from flint.errors import FlintError
from flint.hooks import store as hook_store
from flint.links import recovery
from flint.links import service as links
from flint.merchants import service as merchants
from flint.payments import store as payment_store
from flint.refunds import store as refund_store
from flint.refunds.service import NewRefund, issue_refund
from flint.staff import models as staff_models
from flint.staff import service as staff
from flint.webhooks import service as webhooks
from flint.webhooks import store as webhook_store
from support.factories import card, make_merchant, make_order, make_session, pay_session
from support.receiver import Receiver

DECLINE = "4000000000000002"
PASSWORD = "a long and correct password"
DAY = 86400
_counter = itertools.count(1)


@pytest.fixture(scope="module")
def receiver():
    """Webhook endpoints and apps' hooks on loopback: /ok answers 200, the others as scripted per test."""
    live = Receiver().start()
    yield live
    live.stop()


def _owner(merchant) -> service.Viewer:
    return service.Viewer("ws_test", merchant, None)


async def _next_day_early(advance_clock) -> None:
    """To 01:00 UTC of the next day: whatever a test then does in a few seconds happens on one day."""
    now = clock.now()
    target = (now + timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0)
    advance_clock((target - now).total_seconds())


async def _hooked_app(rt, receiver, developer_id: str, path: str, status: int, *, events_path: str | None = None):
    body = json.dumps({"actions": []}).encode() if status == 200 else b""
    receiver.script(path, [status], body=body)
    extra = {"webhook_url": receiver.script(events_path, [500]), "webhook_events": ["order.*"]} if events_path else {}
    app, _, _ = await apps.create_app(rt, developer_id, name=f"Hook {path}", redirect_uris=["http://127.0.0.1:9/callback"],
                                      scopes=["orders:read"], hook_url=receiver.url(path),
                                      hooks=["checkout.before_payment"], **extra)
    return app


async def _refund(rt, merchant_id: str, order_id: str, amount: int | None = None) -> None:
    refund = await issue_refund(rt, merchant_id, NewRefund(order_id=order_id, amount=amount,
                                                           reason="requested_by_customer"), Actor("merchant", merchant_id))
    assert refund.status == "succeeded"


async def _drop_off(rt, advance_clock, merchant_id: str, amounts: list[int]) -> list[str]:
    """Sessions with recovery on that nobody touches for their abandon_after: the sweeper's idle
    drop-offs, each with its recovery link. Returns the links' ids."""
    sessions = [await make_session(rt, merchant_id, amount=a, recovery=True, abandon_after=60) for a in amounts]
    advance_clock(61)
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == len(sessions)
    async with rt.db.read() as conn:
        return [(await session_store.select_session_by_id(conn, s.id)).recovery_payment_link_id for s in sessions]


def _day_rows(view: overview.Overview) -> dict[str, tuple]:
    """Each day of the period with its payment figures (days with none left out)."""
    return {d.day: (d.succeeded, d.declined, d.refunds, d.paid, d.refunded) for d in view.payments.days
            if d.succeeded or d.declined or d.refunds}


async def test_the_figures_per_day_exactly_and_never_another_merchants(rt, advance_clock, receiver):
    shop, _ = await make_merchant(rt)
    other, _ = await make_merchant(rt)
    developer, _ = await make_merchant(rt)
    await _next_day_early(advance_clock)

    # Day A, ten days before today: a payment the last 7 days leave out and the last 30 include.
    day_a = clock.now().date()
    await pay_session(rt, await make_session(rt, shop.id, amount=1000))

    # Day B: endpoints (one answers, one fails), apps with a hook (one fails, one answers; the failing one
    # also has its own failing webhook endpoint, the app's and not the merchant's), payments, a refund.
    advance_clock(7 * DAY)
    day_b = clock.now().date()
    await webhooks.create_endpoint(rt, shop.id, url=receiver.script("/ok", [200]), events=["order.created"],
                                   description=None)
    await webhooks.create_endpoint(rt, shop.id, url=receiver.script("/shop-down", [500]), events=["order.created"],
                                   description=None)
    failing = await _hooked_app(rt, receiver, developer.id, "/hook-fails", 500, events_path="/app-events")
    answering = await _hooked_app(rt, receiver, developer.id, "/hook-answers", 200)
    for app in (failing, answering):
        await install_app(rt, app, shop.id)
    await install_app(rt, failing, other.id)
    usd = await make_session(rt, shop.id, amount=2500)
    assert (await pay_session(rt, usd, DECLINE)).status == "failed"
    await pay_session(rt, usd)
    eur = await make_session(rt, shop.id, amount=4000, currency="eur")
    await pay_session(rt, eur)
    await _refund(rt, shop.id, usd.order_id, 500)
    assert await deliver_due(rt)

    # Day C: two drop-offs get their recovery links, one is paid through it; another buyer is declined.
    advance_clock(DAY)
    day_c = clock.now().date()
    recovered, _ = await _drop_off(rt, advance_clock, shop.id, [3000, 1500])
    link = await links.get_link(rt, shop.id, recovered)
    paid = await collect.confirm_payment(rt, collect.Attempt(shop.id, link.order_id, "payment_link",
                                                             payment_link_id=recovered), card(), SYSTEM)
    assert (paid.status, paid.payment_link_id) == ("succeeded", recovered)
    declined = await make_session(rt, shop.id, amount=999)
    assert (await pay_session(rt, declined, DECLINE)).status == "failed"
    assert await deliver_due(rt)

    # Day D, today: the euro order refunded in full, an order without a session; and the other merchant's
    # whole day of everything, none of which may show in the shop's figures.
    advance_clock(DAY)
    day_d = clock.now().date()
    await _refund(rt, shop.id, eur.order_id)
    await make_order(rt, shop.id, 700)
    await webhooks.create_endpoint(rt, other.id, url=receiver.script("/other-down", [500]), events=["*"],
                                   description=None)
    theirs = await make_session(rt, other.id, amount=5000)
    assert (await pay_session(rt, theirs, DECLINE)).status == "failed"
    await pay_session(rt, theirs)
    await _refund(rt, other.id, theirs.order_id, 100)
    await _drop_off(rt, advance_clock, other.id, [800])
    assert await deliver_due(rt)
    assert clock.now().date() == day_d

    week = await overview.overview(rt, _owner(shop), "7d")
    assert (week.period.key, week.period.days, week.period.last) == ("7d", 7, day_d)
    assert [d.day for d in week.payments.days] == [(day_d - timedelta(days=6 - n)).isoformat() for n in range(7)]
    b, c, d = day_b.isoformat(), day_c.isoformat(), day_d.isoformat()
    assert _day_rows(week) == {
        b: (2, 1, 1, {"usd": 2500, "eur": 4000}, {"usd": 500}),
        c: (1, 1, 0, {"usd": 3000}, {}),
        d: (0, 0, 1, {}, {"eur": 4000}),
    }
    p = week.payments
    assert (p.succeeded, p.declined, p.refunds) == (3, 2, 2)
    assert (p.paid, p.refunded, p.currencies) == ({"usd": 5500, "eur": 4000}, {"usd": 500, "eur": 4000}, ["usd", "eur"])
    # Sessions: two on day B, three on day C (two dropped off); one recovered through its link.
    assert week.funnel == overview.Funnel(sessions=5, dropped_off=2, links=2, recovered=1, in_session=0,
                                          amount_recovered={"usd": 3000})
    # Each order of the shop sent one order.created to its failing endpoint: two on B, three on C, one on D.
    # Those to the answering endpoint, and the app's own endpoint's failures, are not counted.
    assert {x.day: x.failed for x in week.deliveries.days if x.failed} == {b: 2, c: 3, d: 1}
    assert len(receiver.at("/app-events")) > 0  # ...though the app's endpoint did fail
    # Every payment attempt asks both apps: three attempts on B, two on C (one through the recovery link).
    assert {x.day: (x.calls, x.failed) for x in week.hooks.days if x.calls} == {b: (6, 3), c: (4, 2)}
    assert (week.hooks.calls, week.hooks.failed, week.deliveries.failed) == (10, 5, 6)
    assert [o.id for o in week.recent.orders][-1] != theirs.order_id and len(week.recent.orders) == 5

    month = await overview.overview(rt, _owner(shop), "30d")
    assert len(month.payments.days) == 30 and month.period.first == day_d - timedelta(days=29)
    assert _day_rows(month)[day_a.isoformat()] == (1, 0, 0, {"usd": 1000}, {})
    assert (month.payments.succeeded, month.payments.paid["usd"], month.funnel.sessions) == (4, 6500, 6)

    # The other merchant's own figures: only its own.
    theirs_view = await overview.overview(rt, _owner(other), "7d")
    assert _day_rows(theirs_view) == {d: (1, 1, 1, {"usd": 5000}, {"usd": 100})}
    assert (theirs_view.funnel.sessions, theirs_view.funnel.dropped_off, theirs_view.funnel.recovered) == (2, 1, 0)
    assert theirs_view.deliveries.failed > 0 and theirs_view.hooks.failed == 2

    # The charts draw what the figures say, and their tables hold the same numbers.
    drawn = overview.charts_of(week)
    assert drawn.payments.table.rows[-3:] == (
        (overview.table_day(b), ("2", "1", "1")), (overview.table_day(c), ("1", "1", "0")),
        (overview.table_day(d), ("0", "0", "1")))
    assert [chart.id for chart in drawn.amounts] == ["chart-amounts-usd", "chart-amounts-eur"]
    assert drawn.amounts[1].table.rows[-3:] == ((overview.table_day(b), ("€40.00", "€0.00")),
                                                (overview.table_day(c), ("€0.00", "€0.00")),
                                                (overview.table_day(d), ("€0.00", "€40.00")))
    assert [row[1][0] for row in drawn.funnel.table.rows] == ["5", "2", "2", "1"]
    assert drawn.deliveries.table.rows[-3:] == ((overview.table_day(b), ("2",)), (overview.table_day(c), ("3",)),
                                                (overview.table_day(d), ("1",)))
    assert "3 payments succeeded and 2 declined" in drawn.payments.description


async def test_an_empty_period_and_a_bad_period_value(rt):
    shop, _ = await make_merchant(rt)
    for raw in (None, "", "8d", "7", "90D", "30d ", "-1d", "7d;drop"):
        view = await overview.overview(rt, _owner(shop), raw)
        assert (view.period.key, len(view.payments.days)) == ("7d", 7), raw
    view = await overview.overview(rt, _owner(shop), "90d")
    assert len(view.payments.days) == 90 and view.payments.days[-1].day == clock.now().date().isoformat()
    assert (view.payments.succeeded, view.deliveries.failed, view.hooks.failed, view.funnel.sessions) == (0, 0, 0, 0)
    drawn = overview.charts_of(view)  # nothing to draw: the page says so in words instead
    assert (drawn.payments, drawn.amounts, drawn.funnel, drawn.deliveries, drawn.hooks) == (None, [], None, None, None)


def test_the_period_is_whole_utc_days_ending_today():
    late = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    week = overview.period_of("7d", late)
    assert (week.first.isoformat(), week.last.isoformat()) == ("2026-02-23", "2026-03-01")
    assert (clock.iso(week.since), clock.iso(week.until)) == ("2026-02-23T00:00:00.000000Z",
                                                              "2026-03-02T00:00:00.000000Z")
    assert week.label == "Mon Feb 23, 2026 to Sun Mar 1, 2026 (UTC)"
    # A time zone east of UTC on the next morning is still the UTC day.
    assert overview.period_of("30d", datetime(2026, 3, 2, 1, 0, tzinfo=timezone(timedelta(hours=3)))).last.isoformat() \
        == "2026-03-01"


# -- roles -----------------------------------------------------------------------------------------------

async def _team(rt, role: str):
    n = next(_counter)
    merchant, _ = await merchants.create_merchant(rt, name=f"Overview Shop {n}",
                                                  email=f"overview{n}-{id(rt)}@shop.example", password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    if role == "owner":
        return merchant, owner
    _, token = await staff.invite(rt, owner, f"{role}{n}-{id(rt)}@shop.example", role)
    return merchant, await staff.accept_invitation(rt, token, PASSWORD)


@pytest.mark.parametrize("role", ["owner", "developer", "support"])
async def test_every_role_of_the_console_reads_every_part(rt, role):
    merchant, member = await _team(rt, role)
    await pay_session(rt, await make_session(rt, merchant.id, amount=1200))
    view = await overview.overview(rt, service.Viewer("ws_x", merchant, member), "7d")
    assert view.payments.succeeded == 1 and view.payments.paid == {"usd": 1200}
    assert view.funnel.sessions == 1 and view.deliveries is not None and view.hooks is not None
    assert view.recent is not None


async def test_a_role_sees_only_the_parts_it_may_read(rt, monkeypatch):
    merchant, owner = await _team(rt, "owner")
    await pay_session(rt, await make_session(rt, merchant.id))
    nobody = service.Viewer("ws_x", merchant, dataclasses.replace(owner, role="nobody"))
    with pytest.raises(FlintError) as refused:
        await overview.overview(rt, nobody, "7d")
    assert (refused.value.status, refused.value.code) == (403, "role_forbidden")
    # Roles of tomorrow (no role of docs/api.md 15 lacks these permissions): what each may read, no more.
    monkeypatch.setitem(staff_models.PERMISSIONS, "glance", frozenset({"overview:read"}))
    monkeypatch.setitem(staff_models.PERMISSIONS, "ops", frozenset({"overview:read", "webhooks:read"}))
    monkeypatch.setitem(staff_models.PERMISSIONS, "integrator", frozenset({"overview:read", "apps:read"}))
    seen = {}
    for role in ("glance", "ops", "integrator"):
        view = await overview.overview(rt, service.Viewer("ws_x", merchant, dataclasses.replace(owner, role=role)))
        seen[role] = tuple(part is not None for part in (view.payments, view.funnel, view.recent, view.deliveries,
                                                        view.hooks))
    assert seen == {"glance": (False,) * 5, "ops": (False, False, False, True, False),
                    "integrator": (False, False, False, False, True)}


# -- the queries -----------------------------------------------------------------------------------------

class Recording:
    """A connection that notes the SQL it is given, to ask the planner about the store's own query."""

    def __init__(self, conn):
        self.conn, self.seen = conn, []

    async def fetch_one(self, sql, params=None):
        self.seen.append((sql, params))
        return await self.conn.fetch_one(sql, params)

    async def fetch_all(self, sql, params=None):
        self.seen.append((sql, params))
        return await self.conn.fetch_all(sql, params)


COUNTS = [
    (payment_store.count_payments_by_day, "payments", "payments_merchant_created"),
    (refund_store.count_refunds_by_day, "refunds", "refunds_merchant_created"),
    (session_store.count_sessions_created, "checkout_sessions", "checkout_sessions_merchant_created"),
    (webhook_store.count_failed_deliveries_by_day, "webhook_deliveries", "webhook_deliveries_failing"),
    (hook_store.count_calls_by_day, "hook_calls", "hook_calls_merchant"),
]


async def test_each_count_reads_the_period_through_an_index(rt, backend, receiver, advance_clock):
    """Three merchants' payments, declines, refunds, failing deliveries and hook calls, a month ago and
    today; each of the Overview's counts for one of them and the last week searches its index by the
    merchant and the range (never every row of the merchant, never every row of the range)."""
    developer, _ = await make_merchant(rt)
    app = await _hooked_app(rt, receiver, developer.id, "/plan-hook", 500)
    shops = []
    for _ in range(3):
        shop, _ = await make_merchant(rt)
        await install_app(rt, app, shop.id)
        await webhooks.create_endpoint(rt, shop.id, url=receiver.script("/plan-down", [500]), events=["*"],
                                       description=None)
        shops.append(shop)

    async def activity(sessions: int) -> None:
        for shop in shops:
            for n in range(sessions):
                session = await make_session(rt, shop.id, amount=1000 + n)
                if n == 0:
                    await pay_session(rt, session, DECLINE)
                await pay_session(rt, session)
                await _refund(rt, shop.id, session.order_id, 100)
        assert await deliver_due(rt)

    await activity(3)
    advance_clock(30 * DAY)
    await activity(1)
    week = overview.period_of("7d")
    bounds = (shops[1].id, clock.iso(week.since), clock.iso(week.until))
    async with rt.db.transaction() as conn:
        for query, table, index in COUNTS:
            recording = Recording(conn)
            await query(recording, *bounds)
            (sql, params), = recording.seen
            if backend == "postgresql":
                await conn.execute(f"ANALYZE {table}")
                await conn.execute("SET LOCAL enable_seqscan = off")  # tables this small would be scanned
                plan = " ".join(str(row) for row in await conn.fetch_all("EXPLAIN " + sql, params))
                # The index is searched by the merchant and the range, not walked with a filter.
                assert re.search(r"Index Cond: \(\(merchant_id = '[^']+'::text\) AND \(created_at >=", plan), plan
            else:
                plan = " ".join(str(row) for row in await conn.fetch_all("EXPLAIN QUERY PLAN " + sql, params))
                assert "merchant_id=? AND created_at>? AND created_at<?" in plan, plan
            assert index in plan, plan


# -- the charts' arithmetic ------------------------------------------------------------------------------

def test_the_y_axis_steps_are_round_and_reach_the_largest_value():
    assert charts.nice_scale(0) == (1, 1)
    assert charts.nice_scale(1) == (1, 1)
    assert charts.nice_scale(3) == (3, 1)
    assert charts.nice_scale(7) == (8, 2)
    assert charts.nice_scale(2500) == (3000, 1000)
    assert charts.nice_scale(123456) == (150000, 50000)


def test_a_column_chart_draws_each_value_to_scale_and_labels_at_most_a_few_days():
    table = charts.Table("t", ("Day", "A", "B"), ())
    days = [f"Day {n}" for n in range(90)]
    values = tuple(n % 5 for n in range(90))
    chart = charts.column_chart("c", "Title", "Description", days,
                                [charts.Series("A", "ok", values), charts.Series("B", "bad", (0,) * 90, hatched=True)],
                                table=table, x_title="Day (UTC)", y_title="Payments")
    left, top, right, bottom = chart.plot
    assert 0 < left < right <= chart.width and top < bottom < chart.height
    assert len(chart.bars) == 180 and chart.hatched_kinds == ("bad",)
    drawn = [bar for bar in chart.bars if bar.kind == "ok"]
    for bar, value in zip(drawn, values):
        assert bar.height == pytest.approx(value / 4 * (bottom - top), abs=0.02)  # the axis tops out at 4
        assert bar.y + bar.height == pytest.approx(bottom) and left <= bar.x and bar.x + bar.width <= right
    assert [t.text for t in chart.ticks] == ["0", "1", "2", "3", "4"]
    assert 2 <= len(chart.x_labels) <= charts.MAX_X_LABELS + 1 and chart.x_labels[0].text == "Day 0"
    week = charts.column_chart("w", "T", "D", days[:7], [charts.Series("A", "ok", (1,) * 7)], table=table,
                               x_title="x", y_title="y")
    assert [label.text for label in week.x_labels] == days[:7]


def test_a_funnel_draws_each_stage_beside_the_first():
    chart = charts.funnel_chart("f", "Funnel", "D", [("Sessions", 10), ("Dropped off", 5), ("Paid", 0)],
                                table=charts.Table("t", ("Step", "Count"), ()))
    widths = [bar.width for bar in chart.bars]
    assert widths[0] > 0 and widths[1] == pytest.approx(widths[0] / 2) and widths[2] == 0
    assert [label.text for label in chart.labels] == ["Sessions", "10", "Dropped off", "5", "Paid", "0"]
    assert max(bar.x + bar.width for bar in chart.bars) < chart.width


# -- the page --------------------------------------------------------------------------------------------

def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


async def test_the_page_draws_each_chart_with_its_text_alternative(server, server_rt):
    merchant, _ = await merchants.create_merchant(server_rt, name="Chart Shop",
                                                  email=f"charts{next(_counter)}-{id(server_rt)}@shop.example",
                                                  password=PASSWORD)
    first = await make_session(server_rt, merchant.id, amount=2500)
    await pay_session(server_rt, first, DECLINE)
    await pay_session(server_rt, first)
    await pay_session(server_rt, await make_session(server_rt, merchant.id, amount=1250))
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        login = await browser.get("/login")
        assert (await browser.post("/login", data={"csrf_token": csrf_of(login.text), "email": merchant.email,
                                                   "password": PASSWORD})).status_code == 303
        page = await browser.get("/dashboard")
        assert page.status_code == 200
        text = page.text
        # Each chart an image named by its title and described in words; its numbers in a table beside it.
        for chart_id, title in (("chart-payments", "Payments per day"), ("chart-amounts-usd", "Amount paid per day, USD"),
                                ("chart-funnel", "Drop-off recovery")):
            svg = re.search(rf'<svg class="chart-svg" role="img" aria-labelledby="{chart_id}-title" '
                            rf'aria-describedby="{chart_id}-desc" viewBox="0 0 480 \d+" width="100%"', text)
            assert svg, chart_id
            assert f'<title id="{chart_id}-title">{title}</title>' in text
            assert f'<desc id="{chart_id}-desc">' in text and f'<caption id="{chart_id}-caption">' in text
        assert "2 payments succeeded and 1 declined" in text
        today = overview.table_day(clock.now().date())  # the test and the server agree on the day
        rows = re.findall(r'<tr><th scope="row">([^<]+)</th>((?:<td class="num">[^<]*</td>)+)</tr>', text)
        cells = {(head, tuple(re.findall(r'<td class="num">([^<]*)</td>', tds))) for head, tds in rows}
        assert (today, ("2", "1", "0")) in cells and (today, ("$37.50", "$0.00")) in cells
        assert ("Checkout sessions", ("2", "—")) in cells
        assert "No webhook delivery to your endpoints failed in this period." in text
        assert '<a href="/dashboard/webhooks">Webhooks</a>' in text and '<a href="/dashboard/apps">Apps</a>' in text
        assert '<h2 id="recent">Recent orders</h2>' in text
        # The period: links, the chosen one marked; a bad value is the last 7 days.
        assert '<a href="/dashboard?period=7d" aria-current="true">7 days</a>' in text
        month = await browser.get("/dashboard", params={"period": "30d"})
        assert '<a href="/dashboard?period=30d" aria-current="true">30 days</a>' in month.text
        assert len(re.findall(r'<tr><th scope="row">', month.text.split('id="chart-payments-caption"')[1]
                              .split("</table>")[0])) == 30
        bad = await browser.get("/dashboard", params={"period": "<script>"})
        assert bad.status_code == 200 and '<a href="/dashboard?period=7d" aria-current="true">' in bad.text
        for answer in (page, month, bad):
            assert not re.search(r"\sstyle=|\son[a-z]+=", answer.text)  # the CSP allows no inline style or handler
            assert answer.text.count('<svg class="chart-svg" role="img"') >= 3

"""``flint demo``'s week (issue 16, flint.demo_activity): seeded before the demo serves, its orders,
payments, declines, refunds, drop-offs and their recoveries, and the webhook deliveries they make, are
spread over the seven days before today and today's first hours, made on the seeding process's clock
moved back (flint.demo_activity.WeekClock). The clock is put back exactly, also when the seeding fails,
and the demo's server runs on real time."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from flint import clock
from flint.background.webhook_worker import deliver_due
from flint.checkout import service as checkout
from flint.config import Config
from flint.db.migrate import migrate
from flint.demo import DEMO_PASSWORD, seed, shop_origins
from flint.demo_activity import (
    DAYS,
    FAILING_WEBHOOK_DESCRIPTION,
    FAILING_WEBHOOK_PATH,
    LATEST,
    REFERENCE_PREFIX,
    WEEK,
    WeekClock,
    seed_week,
)
from flint.links import service as links
from flint.oauth import service as oauth
from flint.orders import service as orders_service
from flint.payments import service as payments_service
from flint.refunds import service as refunds_service
from flint.runtime import Runtime
from flint.webhooks import service as webhooks
from support import ROOT, TEST_SECRET, free_port
from support.receiver import Receiver
from support.server import stop_process
from tests.examples.test_demo import _all, _answers  # (its helpers: every row of a list, a URL answering)


def _config(tmp_path: Path) -> Config:
    return Config(database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", secret_keys=(TEST_SECRET,),
                  env="development", public_url="http://127.0.0.1:8000")


def _created_at_everywhere(db: Path) -> list[tuple[str, str]]:
    """(table, created_at) of every row of every table that has the column: the whole database."""
    with sqlite3.connect(db) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        found = []
        for table in tables:
            if "created_at" in [column[1] for column in conn.execute(f"PRAGMA table_info({table})")]:
                found += [(table, at) for (at,) in conn.execute(f"SELECT created_at FROM {table}")]
    return found


async def test_the_week_is_spread_over_seven_days_and_the_clock_is_back_at_real_time(tmp_path: Path):
    receiver = Receiver().start()
    try:
        shop_url = receiver.url("/shop")  # the receiver stands in for the shop: 404 at the warehouse's path
        receiver.script(f"/shop{FAILING_WEBHOOK_PATH}", [404])
        assert clock.offset() == timedelta(0)
        started = clock.now()
        seeded = await seed(_config(tmp_path), shop_origins("127.0.0.1", 8001), shop_url, "http://127.0.0.1:8002",
                            past_week=True)
        assert clock.offset() == timedelta(0)  # put back exactly
        finished = clock.now()
        # Nothing of the week is later than this: a story's step due after it (a refund a day after
        # today's order, say) happens then.
        latest = started - LATEST

        # Nothing in the whole database is in the future, nor older than the week.
        stamped = _created_at_everywhere(tmp_path / "demo.sqlite3")
        assert len(stamped) > 300
        assert [(t, at) for t, at in stamped if at > clock.iso(finished)] == []
        assert [(t, at) for t, at in stamped if at < clock.iso(started - timedelta(days=DAYS + 1))] == []

        rt = await Runtime.start(_config(tmp_path))
        try:
            merchant_id = seeded.merchant_id
            orders = await _all(orders_service.list_orders, rt, merchant_id)
            week = sorted((o for o in orders if (o.reference or "").startswith(REFERENCE_PREFIX)),
                          key=lambda o: o.reference)
            assert len(week) == len(WEEK)
            made = [clock.parse(o.created_at) for o in week]
            assert made == sorted(made)  # the week's story, in order
            # Within the last eight days, on at least seven UTC days: every day from the first one on.
            assert started - timedelta(days=DAYS + 1) < made[0] and made[-1] < started
            days = {at.date() for at in made}
            assert len(days) >= DAYS and {made[0].date() + timedelta(days=n) for n in range(DAYS)} <= days
            # The demo merchant joined before its first order; the open checkout for the banner's curl is now.
            others = [o for o in orders if o not in week]
            assert len(others) == 1 and started <= clock.parse(others[0].created_at) <= finished

            statuses = {o.status for o in week}
            assert {"paid", "refunded", "partially_refunded", "canceled", "open"} <= statuses
            payments = await _all(payments_service.list_payments, rt, merchant_id, None)
            by_order = {o.id: o for o in week}
            # Declined (payment.failed), on orders paid later with another card and on orders left open.
            failed = [p for p in payments if p.status == "failed"]
            assert {by_order[p.order_id].status for p in failed} == {"paid", "open"}
            # Recovered: the buyer dropped off, and came back hours later through the recovery link.
            recovery = {link.id: link for link in await _all(links.list_links, rt, merchant_id, None)
                        if link.source == "recovery"}
            recovered = [p for p in payments if p.status == "succeeded" and p.payment_link_id in recovery]
            assert len(recovered) == 3
            for payment in recovered:
                link = recovery[payment.payment_link_id]
                paid = clock.parse(payment.created_at)
                assert by_order[payment.order_id].status == "paid"
                assert paid - clock.parse(link.created_at) >= timedelta(hours=1) or paid >= latest
            # Refunds (fully and partly) come later than their payment, as a merchant makes them.
            refunds = await _all(refunds_service.list_refunds, rt, merchant_id)
            assert len(refunds) == 3 and {by_order[r.order_id].status for r in refunds} == {
                "refunded", "partially_refunded"}
            paid_at = {p.id: clock.parse(p.created_at) for p in payments}
            for refund in refunds:
                made_at = clock.parse(refund.created_at)
                assert made_at - paid_at[refund.payment_id] >= timedelta(minutes=20) or made_at >= latest
            # The declined checkouts nobody came back to expired in their hour, during the week (one
            # whose hour ends after the week is left to the demo's sweeper).
            sessions = await _all(checkout.list_sessions, rt, merchant_id)
            left = [s for s in sessions if s.order_id in by_order and by_order[s.order_id].status == "open"
                    and not s.recovery_enabled]
            assert len(left) == 3
            for session in left:
                if clock.parse(session.expires_at) + timedelta(seconds=30) <= latest:
                    assert session.status == "expired"
                    assert clock.parse(session.expires_at) <= clock.parse(session.updated_at) < started
                else:
                    assert session.status == "open"
            assert sum(s.status == "expired" for s in left) >= 2

            # The warehouse endpoint heard the whole week; its deliveries, made with their events, are
            # sent at real time (nothing listened while the week was seeded), and fail.
            endpoints, _ = await webhooks.list_endpoints(rt, merchant_id, 100, None)
            [failing] = [e for e in endpoints if e.description == FAILING_WEBHOOK_DESCRIPTION]
            assert failing.status == "enabled"
            assert await deliver_due(rt, budget=20)
            deliveries = await _all(webhooks.list_deliveries, rt, merchant_id, failing.id)
            assert len(deliveries) >= 35
            assert {(d.status, d.last_status_code) for d in deliveries} == {("pending", 404)}
            assert len({clock.parse(d.created_at).date() for d in deliveries}) >= DAYS
            attempts = await webhooks.list_attempts(rt, merchant_id, deliveries[-1].id)
            assert [a.status_code for a in attempts] == [404] and attempts[0].attempted_at >= clock.iso(finished)

            # The demo app is installed (today, after the week: its hook waits for the merchant's approval).
            installation = await oauth.active_installation(rt, seeded.partner_app.app_id, merchant_id)
            assert installation is not None and installation.id == seeded.installation_id
            assert clock.parse(installation.created_at) >= started
        finally:
            await rt.stop()
    finally:
        receiver.stop()
    assert clock.offset() == timedelta(0)


async def test_the_clock_is_put_back_when_the_seeding_fails(tmp_path: Path):
    rt = await Runtime.start(_config(tmp_path))
    try:
        await migrate(rt.db)
        week = WeekClock()
        # No such merchant: the week's first order is refused (its foreign key), on the moved clock.
        with pytest.raises(sqlite3.IntegrityError):
            await seed_week(rt, "mer_nobody", "http://127.0.0.1:8001", week)
        assert not week.moved and clock.offset() == timedelta(0)
        # Begun by its caller (flint.demo.seed), it is the caller's to put back: seed_week leaves it moved.
        week.begin()
        try:
            assert week.start <= clock.now() < week.start + timedelta(minutes=1)
            with pytest.raises(sqlite3.IntegrityError):
                await seed_week(rt, "mer_nobody", "http://127.0.0.1:8001", week)
            assert week.moved and clock.now() < week.now - timedelta(days=DAYS - 1)
        finally:
            week.end()
        assert clock.offset() == timedelta(0)
        week.end()  # twice: nothing more
        assert clock.offset() == timedelta(0)
    finally:
        await rt.stop()


@pytest.mark.parametrize("hour, minute", [(0, 5), (7, 20), (12, 0), (23, 30)])
def test_the_weeks_moments_fall_on_every_day_in_opening_hours_and_repeat_for_the_same_day(hour, minute):
    now = datetime(2025, 3, 14, hour, minute, 9, tzinfo=UTC)  # a Friday
    moments = WeekClock(now).moments(len(WEEK))
    assert moments == WeekClock(now).moments(len(WEEK))  # a fixed seed
    assert len(moments) == len(WEEK) and moments == sorted(moments)
    assert {m.date() for m in moments if m.date() < now.date()} == {
        (now - timedelta(days=n)).date() for n in range(1, DAYS + 1)}
    assert all(7 <= m.hour < 22 for m in moments) and moments[-1] <= now - timedelta(minutes=2)
    today = [m for m in moments if m.date() == now.date()]
    if hour < 8:  # too little of today has passed: the week ends yesterday
        assert today == []
    if hour == 23:
        assert today
    per_day = [sum(1 for m in moments if m.date() == (now - timedelta(days=n)).date()) for n in range(1, DAYS + 1)]
    assert len(set(per_day)) > 1  # busier days and quieter ones


def test_the_demo_server_runs_on_real_time_after_seeding_the_past_week(tmp_path: Path):
    port, shop_port, app_port = free_port(), free_port(), free_port()
    flint_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "FLINT_PUBLIC_URL"}
    env.update(FLINT_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", FLINT_SECRET_KEY=TEST_SECRET,
               FLINT_ENV="development")
    out_path, err_path = tmp_path / "demo.out", tmp_path / "demo.err"
    started = time.time()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "flint.cli", "demo", "--port", str(port),
                                    "--shop-port", str(shop_port), "--app-port", str(app_port)],
                                   cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while not (_answers(f"{flint_url}/healthz") and "Press Ctrl+C" in out_path.read_text()):
            assert process.poll() is None, err_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "flint demo did not come up in 30 s:\n" + err_path.read_text()[-3000:]
            time.sleep(0.1)
        printed = out_path.read_text()
        assert f"Console:       {flint_url}/dashboard" in printed and DEMO_PASSWORD in printed
        secret = re.search(r"Secret key:\s+(sk_test_[0-9A-Za-z]+)", printed).group(1)
        with httpx.Client(base_url=flint_url, timeout=30, headers={"Authorization": f"Bearer {secret}"}) as api:
            # The server's clock is not moved: the test clock (development only) says how far it is ahead.
            moved = api.post("/v1/test_helpers/advance_clock", json={"seconds": 0})
            assert moved.status_code == 200 and moved.json()["offset_seconds"] == 0, moved.text
            orders = api.get("/v1/orders", params={"limit": 100}).json()["data"]
        made = [datetime.fromisoformat(o["created_at"]) for o in orders]  # RFC 3339 (docs/api.md 1)
        now = datetime.now(UTC)
        assert len(orders) == len(WEEK) + 1 and max(made) <= now
        assert len({m.date() for m in made if m < now - timedelta(minutes=1)}) >= DAYS
        # The newest, the open checkout the banner's curl pays, was made as the demo started.
        assert max(made) >= datetime.fromtimestamp(started, UTC) - timedelta(seconds=1)
    finally:
        stop_process(process)  # SIGTERM: the demo stops cleanly
    assert process.returncode == 0, err_path.read_text()[-3000:]

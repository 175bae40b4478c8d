"""The mail outbox's SQL (flint/mail/store.py, migration 0019) on SQLite and PostgreSQL: one row per cause,
the claim (due pending rows and lapsed leases only, the attempt counted, disjoint between two processes
without waiting), outcomes only under the claimed lease, listing by merchant and order, suppressions, and
the new columns' defaults."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from flint import clock
from flint.db import open_database
from flint.db.migrate import migrate
from flint.mail import store
from flint.mail.models import Email
from flint.runtime import Runtime
from support.factories import make_merchant, make_order


def _email(merchant_id: str, n: int, **changes) -> Email:
    now = clock.now_iso()
    fields = dict(id=f"em_{n:04d}", merchant_id=merchant_id, order_id=None, payment_link_id=None, kind="payment_link",
                  to_address=f"buyer{n}@example.com", locale="en", cause=f"send:{merchant_id}:{n}", context="{}",
                  message_id=f"<em_{n:04d}@flint.test>", status="pending", attempts=0, last_error=None,
                  next_attempt_at=now, lease_until=None, created_at=now, updated_at=now, sent_at=None)
    fields.update(changes)
    return Email(**fields)


async def _insert(rt: Runtime, *emails: Email) -> list[bool]:
    async with rt.db.transaction() as conn:
        return [await store.insert_email(conn, email) for email in emails]


async def _claim(rt: Runtime, *, limit: int = 50, lease: float = 30, ahead: float = 0) -> list[Email]:
    async with rt.db.transaction() as conn:
        now = clock.now() + timedelta(seconds=ahead)
        return await store.claim_due(conn, now=clock.iso(now), lease_until=clock.iso(now + timedelta(seconds=lease)),
                                     limit=limit)


async def test_one_row_per_cause(rt):
    merchant, _ = await make_merchant(rt)
    first = _email(merchant.id, 1)
    assert await _insert(rt, first) == [True]
    assert await _insert(rt, replace(first, id="em_other", to_address="else@example.com")) == [False]
    async with rt.db.read() as conn:
        assert await store.select_email_by_cause(conn, first.cause) == first
        assert await store.count_by_status(conn) == {"pending": 1}


async def test_a_claim_takes_due_mails_and_lapsed_leases_and_counts_the_attempt(rt):
    merchant, _ = await make_merchant(rt)
    later = clock.later_iso(60)
    await _insert(rt, _email(merchant.id, 1), _email(merchant.id, 2, next_attempt_at=later),
                  _email(merchant.id, 3, status="sent"), _email(merchant.id, 4, status="failed"),
                  _email(merchant.id, 5, status="suppressed"))
    claimed = await _claim(rt, lease=0.5)
    assert [(e.id, e.status, e.attempts) for e in claimed] == [("em_0001", "sending", 1)]
    assert claimed[0].lease_until is not None
    assert await _claim(rt) == []  # leased: nobody else takes it
    # Its worker died: once the lease lapses the row is claimed again, the attempt counted again.
    (again,) = await _claim(rt, ahead=1)
    assert again.id == "em_0001" and again.attempts == 2 and again.lease_until > claimed[0].lease_until
    # A retry comes due at its time.
    due = await _claim(rt, ahead=120)
    assert [e.id for e in due] == ["em_0001", "em_0002"] or [e.id for e in due] == ["em_0002", "em_0001"]


async def test_a_claim_takes_the_oldest_due_first_up_to_its_limit(rt):
    merchant, _ = await make_merchant(rt)
    base = clock.now() - timedelta(seconds=100)
    await _insert(rt, *[_email(merchant.id, n, next_attempt_at=clock.iso(base + timedelta(seconds=n)))
                        for n in (5, 3, 9, 1, 7)])
    assert [e.id for e in sorted(await _claim(rt, limit=3), key=lambda e: e.next_attempt_at)] == \
        ["em_0001", "em_0003", "em_0005"]


async def test_an_outcome_applies_only_under_the_lease_it_was_claimed_with(rt):
    merchant, _ = await make_merchant(rt)
    await _insert(rt, _email(merchant.id, 1))
    (first,) = await _claim(rt, lease=0.5)
    (second,) = await _claim(rt, ahead=1)
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        assert await store.record_outcome(conn, first.id, first.lease_until, {"status": "sent", "sent_at": now}) == 0
        assert await store.record_outcome(conn, second.id, second.lease_until,
                                          {"status": "sent", "sent_at": now, "lease_until": None}) == 1
        # Once recorded, no lease matches any more: a third late outcome changes nothing either.
        assert await store.record_outcome(conn, second.id, second.lease_until, {"status": "failed"}) == 0
        row = await store.select_email(conn, merchant.id, first.id)
    assert row.status == "sent" and row.sent_at == now and row.lease_until is None


async def test_two_processes_claim_disjoint_mails_without_waiting(rt, second_rt):
    merchant, _ = await make_merchant(rt)
    await _insert(rt, *[_email(merchant.id, n) for n in range(60)])
    async with rt.db.transaction() as conn:
        now = clock.now()
        mine = await store.claim_due(conn, now=clock.iso(now), lease_until=clock.iso(now + timedelta(seconds=30)),
                                     limit=20)
        theirs = asyncio.create_task(_claim(second_rt, limit=20))
        if rt.db.dialect == "postgresql":
            # SKIP LOCKED: the other claim returns while this one is open, with rows this one does not hold.
            await asyncio.wait_for(asyncio.shield(theirs), 2)
        else:
            await asyncio.sleep(0.05)  # SQLite: it waits for this transaction, then sees its leases
    other = await theirs
    assert len(mine) == 20 and len(other) == 20
    assert not {e.id for e in mine} & {e.id for e in other}


async def test_many_concurrent_claims_never_share_a_mail(rt, second_rt):
    merchant, _ = await make_merchant(rt)
    await _insert(rt, *[_email(merchant.id, n) for n in range(200)])
    rounds = await asyncio.gather(*[_claim(runtime, limit=7) for runtime in (rt, second_rt) * 20])
    ids = [e.id for claimed in rounds for e in claimed]
    assert len(ids) == len(set(ids)) == 200


async def test_listing_is_per_merchant_newest_first_with_an_order_filter(rt):
    merchant, _ = await make_merchant(rt)
    other, _ = await make_merchant(rt)
    order = await make_order(rt, merchant.id)
    base = clock.now()
    rows = [_email(merchant.id, n, order_id=order.id if n % 2 else None,
                   created_at=clock.iso(base + timedelta(seconds=n))) for n in range(1, 8)]
    await _insert(rt, *rows, _email(other.id, 99))
    async with rt.db.read() as conn:
        page, more = await store.select_emails_page(conn, merchant.id, None, 3, None)
        assert [e.id for e in page] == ["em_0007", "em_0006", "em_0005"] and more
        page, more = await store.select_emails_page(conn, merchant.id, None, 10, "em_0005")
        assert [e.id for e in page] == ["em_0004", "em_0003", "em_0002", "em_0001"] and not more
        page, more = await store.select_emails_page(conn, merchant.id, order.id, 10, None)
        assert [e.id for e in page] == ["em_0007", "em_0005", "em_0003", "em_0001"] and not more
        assert await store.select_email(conn, merchant.id, "em_0099") is None
        assert (await store.select_email(conn, other.id, "em_0099")).merchant_id == other.id


async def test_suppressions_are_per_merchant_address_and_kind_and_stop_waiting_mails(rt):
    merchant, _ = await make_merchant(rt)
    other, _ = await make_merchant(rt)
    to = "ada@example.com"
    await _insert(rt, _email(merchant.id, 1, kind="recovery", to_address=to),
                  _email(merchant.id, 2, kind="receipt", to_address=to),
                  _email(merchant.id, 3, kind="recovery", to_address=to, status="sending", lease_until=clock.later_iso(30)),
                  _email(merchant.id, 4, kind="recovery", to_address="bob@example.com"),
                  _email(other.id, 5, kind="recovery", to_address=to))
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        assert await store.insert_suppression(conn, merchant.id, to, "recovery", now) is True
        assert await store.insert_suppression(conn, merchant.id, to, "recovery", now) is False
        assert await store.suppress_pending(conn, merchant.id, to, "recovery", now) == 1
    async with rt.db.read() as conn:
        assert await store.is_suppressed(conn, merchant.id, to, "recovery")
        assert not await store.is_suppressed(conn, merchant.id, to, "receipt")
        assert not await store.is_suppressed(conn, other.id, to, "recovery")
        statuses = {e.id: e.status for e in (await store.select_emails_page(conn, merchant.id, None, 10, None))[0]}
        assert statuses == {"em_0001": "suppressed", "em_0002": "pending", "em_0003": "sending", "em_0004": "pending"}
        assert (await store.select_email(conn, other.id, "em_0005")).status == "pending"


async def test_migration_0019_keeps_existing_rows_with_the_new_flags_off(db_url):
    """Merchants and sessions made before 0019 read receipts 0, recovery_email 0 and no locale after it."""
    db = await open_database(db_url)
    try:
        await migrate(db, target=18)
        now = clock.now_iso()
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO merchants (id, name, email, password_hash, allowed_origins, created_at) "
                "VALUES ('mer_old', 'Old Shop', 'old@shop.example', 'x', '[]', :now)", {"now": now})
            await conn.execute(
                "INSERT INTO orders (id, merchant_id, status, currency, amount_total, line_items, metadata, "
                "created_at, updated_at) VALUES ('ord_old', 'mer_old', 'open', 'usd', 100, '[]', '{}', :now, :now)",
                {"now": now})
            await conn.execute(
                "INSERT INTO checkout_sessions (id, merchant_id, order_id, mode, status, success_url, expires_at, "
                "created_at, updated_at) VALUES ('cs_old', 'mer_old', 'ord_old', 'hosted', 'open', "
                "'https://shop.example', :now, :now, :now)", {"now": now})
        assert await migrate(db, target=19) == [19]
        async with db.read() as conn:
            assert await conn.fetch_one("SELECT receipts FROM merchants WHERE id = 'mer_old'") == {"receipts": 0}
            assert await conn.fetch_one("SELECT recovery_email, locale FROM checkout_sessions WHERE id = 'cs_old'") \
                == {"recovery_email": 0, "locale": None}
            assert await conn.fetch_one("SELECT COUNT(*) AS n FROM emails") == {"n": 0}
            assert await conn.fetch_one("SELECT COUNT(*) AS n FROM mail_suppressions") == {"n": 0}
    finally:
        await db.close()

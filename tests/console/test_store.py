"""The console's order search in SQL (orders.store.search_orders_page) on every backend: keyset pages both
ways return every order once and in order, even when orders share a timestamp; the filters match only
what they say; an unknown or another merchant's cursor reads the first page; the filters use an index."""
from __future__ import annotations

import dataclasses
import re

import pytest

from flint.actors import Actor
from flint.orders import store
from flint.orders.models import PAID, build_order
from support.factories import make_merchant, new_order


async def _seed(rt, merchant_id: str, count: int, *, same_time_every: int = 3) -> list[str]:
    """``count`` orders, newest last; every ``same_time_every`` share one created_at (ties on the keyset)."""
    ids = []
    async with rt.db.transaction() as conn:
        for n in range(count):
            order = build_order(merchant_id, new_order(100 + n), Actor("merchant", merchant_id))
            order = dataclasses.replace(order, created_at=f"2026-01-01T00:00:{n // same_time_every:02d}.000000Z",
                                        customer_email=f"Buyer{n}@Example.com", reference=f"ref-{n}",
                                        status=PAID if n % 2 else order.status)
            await store.insert_order(conn, order)
            ids.append(order.id)
    return ids


def _newest_first(ids: list[str], created: dict[str, str]) -> list[str]:
    return sorted(ids, key=lambda i: (created[i], i), reverse=True)


async def _walk(rt, merchant_id: str, limit: int, **filters) -> tuple[list[list[str]], list[list[str]]]:
    """Every page forwards (following starting_after), then every page back (ending_before)."""
    forward, cursor = [], None
    async with rt.db.read() as conn:
        while True:
            page, more = await store.search_orders_page(conn, merchant_id, limit=limit, starting_after=cursor,
                                                        **filters)
            forward.append([o.id for o in page])
            if not more:
                break
            cursor = page[-1].id
        backward, cursor = [forward[-1]], forward[-1][0]
        while True:
            page, more = await store.search_orders_page(conn, merchant_id, limit=limit, ending_before=cursor,
                                                        **filters)
            backward.insert(0, [o.id for o in page])
            if not more:
                break
            cursor = page[0].id
    return forward, backward


async def test_keyset_pages_return_every_order_once_both_ways(rt):
    merchant, _ = await make_merchant(rt)
    other, _ = await make_merchant(rt)
    ids = await _seed(rt, merchant.id, 25)
    await _seed(rt, other.id, 5)
    async with rt.db.read() as conn:
        created = {o.id: o.created_at for o in (await store.search_orders_page(conn, merchant.id, limit=100))[0]}
    forward, backward = await _walk(rt, merchant.id, 7)
    assert [len(page) for page in forward] == [7, 7, 7, 4]
    assert [order for page in forward for order in page] == _newest_first(ids, created)  # each once, newest first, ties by id
    assert backward == forward


async def test_status_and_search_filter(rt):
    merchant, _ = await make_merchant(rt)
    ids = await _seed(rt, merchant.id, 12)
    forward, backward = await _walk(rt, merchant.id, 4, status=PAID)
    paid = [order for page in forward for order in page]
    assert sorted(paid) == sorted(ids[1::2]) and backward == forward
    async with rt.db.read() as conn:
        for query, expected in ((ids[4], [ids[4]]), ("ref-7", [ids[7]]), ("buyer3@example.COM", [ids[3]]),
                                ("BUYER3@EXAMPLE.COM", [ids[3]]), ("buyer3", []), ("ref-", []), ("", ids)):
            page, _ = await store.search_orders_page(conn, merchant.id, limit=50, query=query or None)
            assert sorted(o.id for o in page) == sorted(expected), query
        page, _ = await store.search_orders_page(conn, merchant.id, limit=50, query="ref-7", status=PAID)
        assert [o.id for o in page] == [ids[7]]
        page, _ = await store.search_orders_page(conn, merchant.id, limit=50, query="ref-6", status=PAID)
        assert page == []


async def test_an_unknown_or_foreign_cursor_reads_the_first_page(rt):
    merchant, _ = await make_merchant(rt)
    other, _ = await make_merchant(rt)
    await _seed(rt, merchant.id, 6)
    foreign = (await _seed(rt, other.id, 1))[0]
    async with rt.db.read() as conn:
        first, _ = await store.search_orders_page(conn, merchant.id, limit=3)
        for cursor in ("ord_nope", foreign):
            for way in ("starting_after", "ending_before"):
                page, more = await store.search_orders_page(conn, merchant.id, limit=3, **{way: cursor})
                assert [o.id for o in page] == [o.id for o in first] and more


class Recording:
    """A connection that notes the SQL it is given (to ask the planner about the store's own query)."""

    def __init__(self, conn):
        self.conn, self.seen = conn, []

    async def fetch_one(self, sql, params=None):
        return await self.conn.fetch_one(sql, params)

    async def fetch_all(self, sql, params=None):
        self.seen.append((sql, params))
        return await self.conn.fetch_all(sql, params)


@pytest.mark.parametrize("filters, index", [({"status": "paid"}, "orders_merchant_status"),
                                            ({"query": "someone@example.com"}, "orders_merchant_email"),
                                            ({"query": "ref-3"}, "orders_merchant_reference")])
async def test_the_filters_read_an_index(rt, backend, filters, index):
    merchant, _ = await make_merchant(rt)
    await _seed(rt, merchant.id, 30)
    async with rt.db.transaction() as conn:
        recording = Recording(conn)
        await store.search_orders_page(recording, merchant.id, limit=25, **filters)
        (sql, params), = recording.seen
        if backend == "postgresql":
            await conn.execute("ANALYZE orders")
            await conn.execute("SET LOCAL enable_seqscan = off")  # a table this small would be scanned
            plan = " ".join(str(row) for row in await conn.fetch_all("EXPLAIN " + sql, params))
        else:
            plan = " ".join(str(row) for row in await conn.fetch_all("EXPLAIN QUERY PLAN " + sql, params))
    assert index in plan, plan
    # ...and no walk through all the merchant's orders by date (SQLite), or through its id alone (PostgreSQL).
    assert "orders_merchant_created" not in plan and not re.search(r"Index Cond: \(merchant_id = '[^']*'::text\)\"", plan)

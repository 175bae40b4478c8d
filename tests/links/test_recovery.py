"""Drop-off recovery in the services, on a real SQLite database: which sessions get a recovery link,
exactly one each, on the same order, with their events; and the funnel the merchant reads."""
from __future__ import annotations

import json

from flint.closing import service as closing
from flint import clock
from flint.actors import SYSTEM, Actor
from flint.checkout import service as checkout
from flint.checkout import store as session_store
from flint.links import recovery, summary
from flint.links import service as links
from flint.collect import service as collect
from support.factories import card, make_merchant, make_session, pay_session

THREE_DS = "4000 0027 6000 3184"


async def _session(rt, session_id):
    async with rt.db.read() as conn:
        return await session_store.select_session_by_id(conn, session_id)


async def _events(rt, order_id):
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT type, data FROM events WHERE order_id = :o ORDER BY sequence", {"o": order_id})
    return [(r["type"], json.loads(r["data"])["object"]) for r in rows]


async def _backdate(rt, session_id, column="abandon_at"):
    async with rt.db.transaction() as conn:
        await conn.execute(f"UPDATE checkout_sessions SET {column} = '2020-01-01T00:00:00.000000Z' WHERE id = :id",
                           {"id": session_id})


async def _leave(rt, session, *, gone_long_enough=True):
    """The beacon; then, unless told otherwise, abandon_after passes without the buyer coming back."""
    left = await _session(rt, session.id)
    assert await checkout.record_buyer_left(rt, left)
    if gone_long_enough:
        await _backdate(rt, session.id)


async def test_a_buyer_who_left_and_did_not_come_back_gets_one_recovery_link(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, recovery=True, abandon_after=60)
    await _leave(rt, session, gone_long_enough=False)
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 0  # gone for less than abandon_after
    # A reload, or coming back from another page: the widget loads again, so not a drop-off.
    await checkout.buyer_view(rt, await _session(rt, session.id))
    back = await _session(rt, session.id)
    assert back.buyer_left_at is None and back.abandon_at > clock.later_iso(50)
    await _leave(rt, session)
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 1
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 0  # once
    after = await _session(rt, session.id)
    assert after.status == "open"  # the old tab may still pay
    assert (after.drop_off_reason, after.abandon_at) == ("left", None) and after.dropped_off_at
    link = await links.get_link(rt, merchant.id, after.recovery_payment_link_id)
    assert (link.order_id, link.source, link.checkout_session_id, link.active) == (session.order_id, "recovery", session.id, 1)
    assert link.expires_at > clock.later_iso(6 * 86400)
    events = await _events(rt, session.order_id)
    assert [t for t, _ in events][-2:] == ["checkout.session.abandoned", "payment_link.created"]
    abandoned, created = events[-2][1], events[-1][1]
    assert abandoned["recovery"]["payment_link_id"] == link.id and abandoned["recovery"]["drop_off_reason"] == "left"
    assert created["url"] == f"{rt.config.public_url}/pay/{link.id}" and created["source"] == "recovery"
    async with rt.db.read() as conn:
        assert (await conn.fetch_one("SELECT COUNT(*) AS n FROM orders WHERE merchant_id = :m", {"m": merchant.id}))["n"] == 1


async def test_idle_past_abandon_after_counts_and_buyer_activity_pushes_it_back(rt):
    merchant, _ = await make_merchant(rt)
    idle = await make_session(rt, merchant.id, recovery=True, abandon_after=60)
    busy = await make_session(rt, merchant.id, recovery=True, abandon_after=60)
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 0  # nobody idle for a minute yet
    await _backdate(rt, idle.id)
    await _backdate(rt, busy.id)
    # The busy buyer tries a card (declined): activity, so the clock starts again.
    declined = await collect.confirm_payment(rt, collect.Attempt(merchant.id, busy.order_id, "embedded", busy.id),
                                              card("4000 0000 0000 0002"), Actor("buyer", busy.id))
    assert declined.status == "failed"
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 1
    assert (await _session(rt, idle.id)).drop_off_reason == "idle"
    still = await _session(rt, busy.id)
    assert still.recovery_payment_link_id is None and still.abandon_at > clock.later_iso(50)


async def test_no_link_without_recovery_after_payment_or_while_a_payment_is_under_way(rt):
    merchant, _ = await make_merchant(rt)
    off = await make_session(rt, merchant.id)  # recovery not enabled
    paid = await make_session(rt, merchant.id, recovery=True)
    paid_elsewhere = await make_session(rt, merchant.id, recovery=True)
    challenged = await make_session(rt, merchant.id, recovery=True)
    for session in (off, paid, paid_elsewhere, challenged):
        await _leave(rt, session)
    await pay_session(rt, paid)  # came back and paid before the sweeper ran
    manual = await links.create_link(rt, merchant.id, paid_elsewhere.order_id, expires_in=None, actor=SYSTEM)
    await collect.confirm_payment(rt, collect.Attempt(merchant.id, paid_elsewhere.order_id, "payment_link",
                                                        payment_link_id=manual.id), card(), SYSTEM)
    pending = await collect.confirm_payment(
        rt, collect.Attempt(merchant.id, challenged.order_id, "embedded", challenged.id), card(THREE_DS),
        Actor("buyer", challenged.id))
    assert pending.status == "requires_action"
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 0
    for session in (off, paid, paid_elsewhere, challenged):
        assert (await _session(rt, session.id)).recovery_payment_link_id is None
    assert (await _session(rt, paid.id)).status == "complete"
    # Paid through another channel (a link): the session is complete with its order.
    assert (await _session(rt, paid_elsewhere.id)).status == "complete"
    assert (await _session(rt, challenged.id)).abandon_at is not None  # looked at again later


async def test_an_expired_session_with_recovery_gets_a_link_and_without_gets_none(rt):
    merchant, _ = await make_merchant(rt)
    with_recovery = await make_session(rt, merchant.id, recovery=True)
    without = await make_session(rt, merchant.id)
    for session in (with_recovery, without):
        await _backdate(rt, session.id, "expires_at")
    assert await closing.sweep_expired(rt, SYSTEM) == 2
    recovered = await _session(rt, with_recovery.id)
    assert (recovered.status, recovered.drop_off_reason) == ("expired", "expired")
    assert recovered.recovery_payment_link_id is not None
    types = [t for t, _ in await _events(rt, with_recovery.order_id)]
    assert types[-2:] == ["checkout.session.expired", "payment_link.created"]
    assert (await _session(rt, without.id)).recovery_payment_link_id is None
    assert [t for t, _ in await _events(rt, without.order_id)][-1] == "checkout.session.expired"
    listed, _ = await links.list_links(rt, merchant.id, without.order_id, 10, None)
    assert listed == []
    # A session that already has its link (it was abandoned) gets no second one when it expires.
    abandoned = await make_session(rt, merchant.id, recovery=True)
    await _leave(rt, abandoned)
    await recovery.sweep_dropped_off(rt, SYSTEM)
    await _backdate(rt, abandoned.id, "expires_at")
    await closing.sweep_expired(rt, SYSTEM)
    listed, _ = await links.list_links(rt, merchant.id, abandoned.order_id, 10, None)
    assert len(listed) == 1 and [t for t, _ in await _events(rt, abandoned.order_id)].count("payment_link.created") == 1


async def test_a_canceled_order_expires_its_sessions_without_recovery_links(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, recovery=True)
    await closing.cancel_order(rt, merchant.id, session.order_id, Actor("merchant", merchant.id))
    assert (await _session(rt, session.id)).recovery_payment_link_id is None


async def test_paying_through_the_recovery_link_closes_every_other_channel(rt):
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, recovery=True)
    await _leave(rt, session)
    await recovery.sweep_dropped_off(rt, SYSTEM)
    link_id = (await _session(rt, session.id)).recovery_payment_link_id
    manual = await links.create_link(rt, merchant.id, session.order_id, expires_in=None, actor=Actor("merchant", merchant.id))
    paid = await collect.confirm_payment(rt, collect.Attempt(merchant.id, session.order_id, "payment_link",
                                                               payment_link_id=link_id), card(), SYSTEM)
    assert (paid.status, paid.channel, paid.payment_link_id, paid.checkout_session_id) == (
        "succeeded", "payment_link", link_id, None)
    # The session the buyer left is complete with its order: it will not "expire" later, as if the
    # buyer had given up, and hands out no client token.
    assert (await _session(rt, session.id)).status == "complete"
    assert checkout.present(rt, await _session(rt, session.id))["client_token"] is None
    types = [t for t, _ in await _events(rt, session.order_id)]
    assert types[-3:] == ["payment.succeeded", "order.paid", "checkout.session.completed"]
    await _backdate(rt, session.id, "expires_at")
    assert await closing.sweep_expired(rt, SYSTEM) == 0
    for attempt in (collect.Attempt(merchant.id, session.order_id, "embedded", session.id),
                    collect.Attempt(merchant.id, session.order_id, "payment_link", payment_link_id=manual.id),
                    collect.Attempt(merchant.id, session.order_id, "payment_link", payment_link_id=link_id)):
        try:
            await collect.confirm_payment(rt, attempt, card(), SYSTEM)
        except Exception as refused:
            assert getattr(refused, "code", None) == "order_already_paid"
        else:
            raise AssertionError(f"{attempt} paid twice")


async def test_a_link_pays_its_own_order_and_nothing_else(rt):
    merchant, _ = await make_merchant(rt)
    first = await make_session(rt, merchant.id)
    second = await make_session(rt, merchant.id)
    link = await links.create_link(rt, merchant.id, first.order_id, expires_in=None, actor=SYSTEM)
    try:
        await collect.confirm_payment(rt, collect.Attempt(merchant.id, second.order_id, "payment_link",
                                                            payment_link_id=link.id), card(), SYSTEM)
    except Exception as refused:
        assert getattr(refused, "code", None) == "payment_link_not_found"
    else:
        raise AssertionError("a link paid another order")


async def test_the_summary_counts_a_scenario_with_known_figures(rt):
    merchant, _ = await make_merchant(rt)
    left = [await make_session(rt, merchant.id, recovery=True, amount=1000 * (i + 1)) for i in range(3)]
    idle = await make_session(rt, merchant.id, recovery=True, amount=700)
    expired = await make_session(rt, merchant.id, recovery=True, amount=500, currency="eur")
    came_back = await make_session(rt, merchant.id, recovery=True, amount=300)
    for session in (*left, came_back):
        await _leave(rt, session)
    await _backdate(rt, idle.id)
    await _backdate(rt, expired.id, "expires_at")
    await closing.sweep_expired(rt, SYSTEM)
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 5
    async def link_of(session):
        return (await _session(rt, session.id)).recovery_payment_link_id
    # Two of the left ones and the expired one are paid through their links; one buyer comes back
    # to the session they left and pays there.
    for session in (left[0], left[2], expired):
        await collect.confirm_payment(rt, collect.Attempt(merchant.id, session.order_id, "payment_link",
                                                            payment_link_id=await link_of(session)), card(), SYSTEM)
    await pay_session(rt, came_back)
    other, _ = await make_merchant(rt)  # another merchant's drop-offs never count here
    theirs = await make_session(rt, other.id, recovery=True)
    await _leave(rt, theirs)
    await recovery.sweep_dropped_off(rt, SYSTEM)

    figures = await summary.summary(rt, merchant.id, None, None)
    assert figures["drop_offs"] == {"total": 6, "left": 4, "idle": 1, "expired": 1}
    assert (figures["links_created"], figures["links_paid"], figures["recovery_rate"]) == (6, 3, 0.5)
    assert figures["amount_recovered"] == [{"currency": "eur", "amount": 500}, {"currency": "usd", "amount": 4000}]
    assert figures["median_time_to_recovery_seconds"] == 0  # paid within the second here
    assert figures["recovered_in_original_session"] == 1
    # A range that ends before any of it counts nothing.
    empty = await summary.summary(rt, merchant.id, summary.parse_bound("2020-01-01", "from"),
                                  summary.parse_bound("2020-02-01", "to"))
    assert empty["drop_offs"]["total"] == 0 and empty["links_created"] == 0 and empty["recovery_rate"] is None

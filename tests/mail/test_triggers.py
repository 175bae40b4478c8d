"""What puts a mail in the outbox (docs/api.md 16), in the services, on SQLite and PostgreSQL: the receipt
when an order is paid (the merchant's ``receipts`` on, the buyer's address known, mail configured), once per
order even when two confirms race; the recovery email when a drop-off gets its recovery link (the session's
``recovery.email``), not to an address that unsubscribed; and nothing at all without mail configured.

The outbox is looked at directly (no worker runs here): each row is the mail that will be sent.
tests/api/test_emails.py sends them through a real SMTP server."""
from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from flint import clock
from flint.actors import SYSTEM, Actor
from flint.checkout import service as checkout
from flint.checkout import store as session_store
from flint.closing import service as closing
from flint.collect import receipts
from flint.collect import service as collect
from flint.collect.models import Attempt
from flint.config import Config
from flint.db.migrate import migrate
from flint.errors import FlintError
from flint.links import emails, recovery
from flint.links import service as links
from flint.mail import service as mail
from flint.merchants import service as merchants
from flint.orders import store as order_store
from flint.orders.models import LineItem, NewOrder
from flint.orders.service import create_order
from flint.runtime import Runtime
from support import TEST_SECRET
from support.factories import card, make_merchant

from ..conftest import warm_pool

SUCCESS = "4242424242424242"
THREE_DS = "4000002760003184"
BUYER = "Ada.Buyer@Example.COM"


def mail_config(db_url: str) -> Config:
    # Mail configured: an SMTP server nobody listens on (no worker runs here; rows stay pending).
    return Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development", public_url="http://127.0.0.1:9",
                  payment_lease_seconds=60, smtp_url="smtp://127.0.0.1:9", mail_from="Flint <mail@flint.example>")


@pytest.fixture
async def mail_rt(db_url: str):
    runtime = await Runtime.start(mail_config(db_url))
    await migrate(runtime.db)
    yield runtime
    await runtime.stop()


async def _shop(rt, *, receipts_on: bool = True):
    merchant, _ = await make_merchant(rt)
    if receipts_on:
        merchant = await merchants.update_merchant(rt, merchant.id, brand_color="#0a7d5a", receipts=True)
    return merchant


async def _order(rt, merchant_id: str, email: str | None = BUYER):
    new = NewOrder(currency="eur", line_items=[LineItem("Mug", 2, 1200), LineItem("Beans", 1, 900)],
                   customer_email=email, reference="R-17")
    return await create_order(rt, merchant_id, new, Actor("merchant", merchant_id))


async def _session(rt, merchant_id: str, order_id: str, *, recovery_on=False, email=False, expires_in=3600):
    new = checkout.NewSession(mode="embedded", success_url="https://shop.example/thanks", order_id=order_id,
                              expires_in=expires_in, recovery_enabled=recovery_on, abandon_after=60,
                              recovery_email=email)
    return await checkout.create_session(rt, merchant_id, new, Actor("merchant", merchant_id))


async def _pay(rt, session, number: str = SUCCESS, locale: str | None = None):
    attempt = Attempt.for_session(session, channel="embedded", locale=locale)
    return await collect.confirm_payment(rt, attempt, card(number), Actor("buyer", session.id))


async def _stored_order(rt, merchant_id, order_id):
    async with rt.db.read() as conn:
        return await order_store.select_order(conn, merchant_id, order_id)


async def _outbox(rt, merchant_id: str) -> list[dict]:
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT * FROM emails WHERE merchant_id = :m ORDER BY created_at, id",
                                    {"m": merchant_id})
    return [dict(row, context=json.loads(row["context"])) for row in rows]


# -- receipts ------------------------------------------------------------------------------------------------

async def test_a_paid_order_gets_one_receipt_in_the_buyers_language(mail_rt):
    merchant = await _shop(mail_rt)
    order = await _order(mail_rt, merchant.id)
    session = await _session(mail_rt, merchant.id, order.id)
    payment = await _pay(mail_rt, session, locale="de")
    assert payment.status == "succeeded"
    [row] = await _outbox(mail_rt, merchant.id)
    assert (row["kind"], row["to_address"], row["locale"], row["status"]) == (
        "receipt", "ada.buyer@example.com", "de", "pending")
    assert (row["cause"], row["order_id"], row["payment_link_id"]) == (f"receipt:{order.id}", order.id, None)
    assert row["context"] == {
        "merchant": {"name": merchant.name, "brand_color": "#0a7d5a"},
        "order": {"id": order.id, "reference": "R-17", "currency": "eur", "amount_total": 3300,
                  "amount_paid": 3300, "lines": [{"name": "Mug", "quantity": 2, "amount": 2400},
                                                 {"name": "Beans", "quantity": 1, "amount": 900}]},
        "link_url": None,
        "payment": {"brand": "visa", "last4": "4242", "amount": 3300, "paid_at": row["context"]["payment"]["paid_at"]},
        "expires_at": None,
    }
    assert row["context"]["payment"]["paid_at"].endswith("Z")
    stored = json.dumps(row)
    assert SUCCESS not in stored and "424242424242" not in stored  # the card is its brand and last four only
    # The API's object of it.
    [email], more = await mail.list_emails(mail_rt, merchant.id, order_id=order.id, limit=10, starting_after=None)
    assert not more and email.to_dict()["kind"] == "receipt" and email.to_dict()["order"] == order.id


async def test_the_3ds_answer_that_pays_sends_the_receipt_in_its_language(mail_rt):
    merchant = await _shop(mail_rt)
    order = await _order(mail_rt, merchant.id)
    session = await _session(mail_rt, merchant.id, order.id)
    waiting = await _pay(mail_rt, session, THREE_DS, locale="en")
    assert waiting.status == "requires_action" and await _outbox(mail_rt, merchant.id) == []
    paid = await collect.resolve_challenge(mail_rt, merchant.id, waiting.id, True, Actor("buyer", session.id),
                                           checkout_session_id=session.id, locale="fr")
    assert paid.status == "succeeded"
    [row] = await _outbox(mail_rt, merchant.id)
    assert (row["kind"], row["locale"], row["context"]["payment"]["last4"]) == ("receipt", "fr", "3184")


async def test_a_payment_link_payment_sends_the_receipt_too(mail_rt):
    merchant = await _shop(mail_rt)
    order = await _order(mail_rt, merchant.id)
    link = await links.create_link(mail_rt, merchant.id, order.id, expires_in=None, actor=Actor("merchant", merchant.id))
    payment = await collect.confirm_payment(mail_rt, Attempt.for_link(link), card(), Actor("buyer", link.id))
    assert payment.status == "succeeded"
    [row] = await _outbox(mail_rt, merchant.id)
    assert (row["kind"], row["locale"], row["cause"]) == ("receipt", "en", f"receipt:{order.id}")  # no language known


async def test_the_address_the_buyer_typed_comes_before_the_merchants(mail_rt):
    merchant = await _shop(mail_rt)
    order = await _order(mail_rt, merchant.id, email="given@shop.example")
    async with mail_rt.db.transaction() as conn:  # what the checkout keeps of the buyer (docs/api.md 14)
        await conn.execute("UPDATE orders SET customer = :c WHERE id = :id",
                           {"c": json.dumps({"email": "typed@buyer.example", "name": "Ada"}), "id": order.id})
    await _pay(mail_rt, await _session(mail_rt, merchant.id, order.id))
    [row] = await _outbox(mail_rt, merchant.id)
    assert row["to_address"] == "typed@buyer.example"


async def test_no_receipt_when_the_setting_is_off_or_turned_off(mail_rt):
    merchant = await _shop(mail_rt, receipts_on=False)
    await _pay(mail_rt, await _session(mail_rt, merchant.id, (await _order(mail_rt, merchant.id)).id))
    assert await _outbox(mail_rt, merchant.id) == []
    await merchants.update_merchant(mail_rt, merchant.id, receipts=True)
    await merchants.update_merchant(mail_rt, merchant.id, receipts=False)
    await _pay(mail_rt, await _session(mail_rt, merchant.id, (await _order(mail_rt, merchant.id)).id))
    assert await _outbox(mail_rt, merchant.id) == []


@pytest.mark.parametrize("address", [None, "not an address", "ada@", ""])
async def test_no_receipt_without_a_usable_address_and_the_payment_still_goes_through(mail_rt, address):
    merchant = await _shop(mail_rt)
    order = await _order(mail_rt, merchant.id, email=address)
    payment = await _pay(mail_rt, await _session(mail_rt, merchant.id, order.id))
    assert payment.status == "succeeded"  # an unusable address never fails the payment it rides on
    assert await _outbox(mail_rt, merchant.id) == []


async def test_nothing_at_all_when_mail_is_not_configured(rt):
    assert not rt.config.mail_configured
    merchant = await _shop(rt)
    order = await _order(rt, merchant.id)
    assert (await _pay(rt, await _session(rt, merchant.id, order.id))).status == "succeeded"
    assert await _outbox(rt, merchant.id) == []

    class Untouchable:  # the paid path's connection: not one statement for mail
        def __getattr__(self, name):
            raise AssertionError(f"the receipt used the connection ({name}) with mail not configured")

    paid = await _stored_order(rt, merchant.id, order.id)
    assert await receipts.enqueue_receipt(Untouchable(), rt.config, paid, None, locale="de",  # type: ignore[arg-type]
                                          paid_at=clock.now_iso()) is None


async def test_with_mail_on_the_receipt_costs_one_read_and_one_insert(mail_rt):
    """The paid path stays short (issue 19): the merchant's row (setting, name, colour) and the outbox row."""
    merchant = await _shop(mail_rt)
    order = await _order(mail_rt, merchant.id)
    paid = await _pay(mail_rt, await _session(mail_rt, merchant.id, order.id))
    statements: list[str] = []

    class Counting:
        def __init__(self, conn):
            self._conn = conn

        def __getattr__(self, name):
            found = getattr(self._conn, name)
            if name in ("execute", "fetch_one", "fetch_all", "fetch_val"):
                async def counted(sql, *args, **kwargs):
                    statements.append(" ".join(sql.split())[:30])
                    return await found(sql, *args, **kwargs)
                return counted
            return found

    other = await _order(mail_rt, merchant.id)  # a second order: its own cause
    other_paid = replace(await _stored_order(mail_rt, merchant.id, other.id), status="paid", amount_paid=3300)
    async with mail_rt.db.transaction() as conn:
        made = await receipts.enqueue_receipt(Counting(conn), mail_rt.config, other_paid, paid,  # type: ignore[arg-type]
                                              locale=None, paid_at=clock.now_iso())
    assert made is not None and made.cause == f"receipt:{other.id}"
    assert [s.split()[0] for s in statements] == ["SELECT", "INSERT"], statements


async def test_a_receipt_is_written_once_per_order_whatever_runs_twice(mail_rt):
    merchant = await _shop(mail_rt)
    order = await _order(mail_rt, merchant.id)
    payment = await _pay(mail_rt, await _session(mail_rt, merchant.id, order.id))
    paid = await _stored_order(mail_rt, merchant.id, order.id)
    async with mail_rt.db.transaction() as conn:  # the cause again: the unique key keeps the first
        assert await receipts.enqueue_receipt(conn, mail_rt.config, paid, payment, locale="fr",
                                              paid_at=clock.now_iso()) is None
    [row] = await _outbox(mail_rt, merchant.id)
    assert row["locale"] == "en"


async def test_two_confirms_of_one_order_at_once_make_one_receipt(mail_rt):
    """Two sessions of one order paid at the same moment from two processes: one payment, one receipt."""
    second = await Runtime.start(mail_rt.config)
    try:
        await asyncio.gather(warm_pool(mail_rt), warm_pool(second))
        merchant = await _shop(mail_rt)
        for _ in range(3):
            order = await _order(mail_rt, merchant.id)
            one = await _session(mail_rt, merchant.id, order.id)
            two = await _session(mail_rt, merchant.id, order.id)
            results = await asyncio.gather(_pay(mail_rt, one), _pay(second, two), return_exceptions=True)
            succeeded = [r for r in results if not isinstance(r, BaseException) and r.status == "succeeded"]
            refused = [r for r in results if isinstance(r, FlintError)]
            assert len(succeeded) == 1 and len(refused) == 1, results
        rows = await _outbox(mail_rt, merchant.id)
        assert len(rows) == 3 and len({row["cause"] for row in rows}) == 3
    finally:
        await second.stop()


# -- recovery emails -----------------------------------------------------------------------------------------

async def _drop_off(rt, session, *, locale: str | None = None) -> str:
    """The buyer leaves (the widget's beacon, in ``locale``) and stays away: the sweeper makes the link."""
    current = await _stored(rt, session.id)
    assert await checkout.record_buyer_left(rt, current, locale)
    async with rt.db.transaction() as conn:
        await conn.execute("UPDATE checkout_sessions SET abandon_at = '2020-01-01T00:00:00.000000Z' WHERE id = :id",
                           {"id": session.id})
    assert await recovery.sweep_dropped_off(rt, SYSTEM) == 1
    link_id = (await _stored(rt, session.id)).recovery_payment_link_id
    assert link_id
    return link_id


async def _stored(rt, session_id):
    async with rt.db.read() as conn:
        return await session_store.select_session_by_id(conn, session_id)


async def test_a_drop_off_with_recovery_email_mails_its_link_once(mail_rt):
    merchant = await _shop(mail_rt, receipts_on=False)
    order = await _order(mail_rt, merchant.id)
    session = await _session(mail_rt, merchant.id, order.id, recovery_on=True, email=True)
    assert checkout.present(mail_rt, session)["recovery"]["email"] is True
    link_id = await _drop_off(mail_rt, session, locale="fr")
    assert await recovery.sweep_dropped_off(mail_rt, SYSTEM) == 0
    link = await links.get_link(mail_rt, merchant.id, link_id)
    [row] = await _outbox(mail_rt, merchant.id)
    assert (row["kind"], row["to_address"], row["locale"], row["cause"]) == (
        "recovery", "ada.buyer@example.com", "fr", f"recovery:{link_id}")
    assert (row["order_id"], row["payment_link_id"]) == (order.id, link_id)
    assert row["context"]["link_url"] == f"{mail_rt.config.public_url}/pay/{link_id}"
    assert row["context"]["expires_at"] == clock.public(link.expires_at) and row["context"]["payment"] is None
    assert row["context"]["order"]["amount_paid"] == 0


async def test_the_language_of_the_buyers_page_is_kept_from_the_widget_and_the_attempt(mail_rt):
    merchant = await _shop(mail_rt, receipts_on=False)
    order = await _order(mail_rt, merchant.id)
    session = await _session(mail_rt, merchant.id, order.id, recovery_on=True, email=True)
    await checkout.buyer_view(mail_rt, await _stored(mail_rt, session.id), locale="de")
    assert (await _stored(mail_rt, session.id)).locale == "de"
    declined = await _pay(mail_rt, await _stored(mail_rt, session.id), "4000000000000002", locale="fr")
    assert declined.status == "failed" and (await _stored(mail_rt, session.id)).locale == "fr"
    await _drop_off(mail_rt, session)  # a beacon that says nothing keeps what was known
    [row] = await _outbox(mail_rt, merchant.id)
    assert row["locale"] == "fr"


async def test_an_expired_session_with_recovery_email_mails_its_link(mail_rt, advance_clock):
    merchant = await _shop(mail_rt, receipts_on=False)
    order = await _order(mail_rt, merchant.id)
    session = await _session(mail_rt, merchant.id, order.id, recovery_on=True, email=True, expires_in=60)
    advance_clock(61)
    assert await closing.sweep_expired(mail_rt, SYSTEM) == 1
    [row] = await _outbox(mail_rt, merchant.id)
    link_id = (await _stored(mail_rt, session.id)).recovery_payment_link_id
    assert (row["kind"], row["cause"], row["locale"]) == ("recovery", f"recovery:{link_id}", "en")


async def test_no_recovery_email_when_the_session_did_not_ask_or_no_address_is_known(mail_rt):
    merchant = await _shop(mail_rt, receipts_on=False)
    quiet = await _session(mail_rt, merchant.id, (await _order(mail_rt, merchant.id)).id, recovery_on=True)
    assert checkout.present(mail_rt, quiet)["recovery"]["email"] is False
    await _drop_off(mail_rt, quiet)
    nobody = await _session(mail_rt, merchant.id, (await _order(mail_rt, merchant.id, email=None)).id,
                            recovery_on=True, email=True)
    await _drop_off(mail_rt, nobody)
    assert await _outbox(mail_rt, merchant.id) == []  # both still got their recovery link


async def test_an_address_that_unsubscribed_gets_no_recovery_email_from_that_merchant(mail_rt):
    merchant = await _shop(mail_rt, receipts_on=False)
    other = await _shop(mail_rt, receipts_on=False)
    await mail.unsubscribe(mail_rt, mail.unsubscribe_token(mail_rt, merchant.id, "ada.buyer@example.com"))
    session = await _session(mail_rt, merchant.id, (await _order(mail_rt, merchant.id)).id, recovery_on=True, email=True)
    link_id = await _drop_off(mail_rt, session)
    assert link_id and await _outbox(mail_rt, merchant.id) == []  # the link is made; the mail is not
    # Another merchant's recovery email to the same address still goes; and receipts are no recovery email.
    elsewhere = await _session(mail_rt, other.id, (await _order(mail_rt, other.id)).id, recovery_on=True, email=True)
    await _drop_off(mail_rt, elsewhere)
    assert [row["kind"] for row in await _outbox(mail_rt, other.id)] == ["recovery"]
    await merchants.update_merchant(mail_rt, merchant.id, receipts=True)
    await _pay(mail_rt, await _session(mail_rt, merchant.id, (await _order(mail_rt, merchant.id)).id))
    assert [row["kind"] for row in await _outbox(mail_rt, merchant.id)] == ["receipt"]


async def test_no_recovery_email_without_mail_configured(rt):
    merchant = await _shop(rt, receipts_on=False)
    session = await _session(rt, merchant.id, (await _order(rt, merchant.id)).id, recovery_on=True, email=True)
    await _drop_off(rt, session)
    assert await _outbox(rt, merchant.id) == []


# -- a payment link sent on request -------------------------------------------------------------------------

async def test_send_link_refuses_in_order_and_writes_nothing_when_it_refuses(mail_rt, rt):
    merchant = await _shop(mail_rt, receipts_on=False)
    order = await _order(mail_rt, merchant.id)
    link = await links.create_link(mail_rt, merchant.id, order.id, expires_in=None, actor=Actor("merchant", merchant.id))
    actor = Actor("merchant", merchant.id)
    with pytest.raises(FlintError) as refused:  # the same database, without mail configured
        await emails.send_link(rt, merchant.id, link.id, to="a@b.example", actor=actor)
    assert (refused.value.status, refused.value.code) == (409, "mail_not_configured")
    with pytest.raises(FlintError) as refused:
        await emails.send_link(mail_rt, merchant.id, link.id, to="no address", actor=actor)
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "email_invalid", "email")
    other = await _shop(mail_rt, receipts_on=False)
    with pytest.raises(FlintError) as refused:
        await emails.send_link(mail_rt, other.id, link.id, to="a@b.example", actor=Actor("merchant", other.id))
    assert (refused.value.status, refused.value.code) == (404, "payment_link_not_found")
    assert await _outbox(mail_rt, merchant.id) == [] and await _outbox(mail_rt, other.id) == []
    sent = await emails.send_link(mail_rt, merchant.id, link.id, to="Buyer@Example.com", actor=actor, locale="de")
    again = await emails.send_link(mail_rt, merchant.id, link.id, to="buyer@example.com", actor=actor)
    assert (sent.kind, sent.to_address, sent.locale, again.locale) == ("payment_link", "buyer@example.com", "de", "en")
    assert sent.cause.startswith("send:") and sent.cause != again.cause  # each request is its own mail
    await links.deactivate_link(mail_rt, merchant.id, link.id, actor)
    with pytest.raises(FlintError) as refused:
        await emails.send_link(mail_rt, merchant.id, link.id, to="a@b.example", actor=actor)
    assert (refused.value.status, refused.value.code) == (409, "payment_link_inactive")
    assert len(await _outbox(mail_rt, merchant.id)) == 2

"""flint.mail.service on SQLite and PostgreSQL, and the mail settings (flint.config): enqueue inside the cause's
transaction (nothing without mail configured, once per cause, suppression for recovery emails only, a bad
address refused before any SQL, a card number never stored), listing, the unsubscribe token and one-click
unsubscribe, and the outcomes' events written with them."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from types import SimpleNamespace

import itsdangerous.timed
import pytest

from flint import clock
from flint.actors import SYSTEM
from flint.config import Config, parse_smtp_url
from flint.errors import FlintError
from flint.events import service as events
from flint.mail import service, store
from flint.mail.models import FAILED, PENDING, SENT, Outcome
from flint.runtime import Runtime
from flint.security import Signer
from support import TEST_SECRET
from support.factories import make_merchant, make_order

from .conftest import MAIL_FROM, context, enqueue, mail_config

PANS = ["4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242", "378282246310005", "5555555555554444"]


@pytest.fixture
def mail_rt(rt: Runtime) -> Runtime:
    """Configured for mail; nothing here sends (no SMTP server needed)."""
    rt.config = mail_config(rt.config, "smtp://127.0.0.1:9")
    return rt


async def _count(rt: Runtime) -> int:
    async with rt.db.read() as conn:
        return sum((await store.count_by_status(conn)).values())


# -- enqueue ---------------------------------------------------------------------------------------------

async def test_enqueue_writes_one_pending_mail_with_its_message_id(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    order = await make_order(mail_rt, merchant.id)
    (email,) = await enqueue(mail_rt, merchant.id, kind="receipt", order_id=order.id, to="  Ada.Lovelace@Example.COM ",
                             locale="de", cause=f"receipt:{order.id}")
    assert email.id.startswith("em_") and email.status == PENDING and email.attempts == 0
    assert email.to_address == "ada.lovelace@example.com"
    assert email.message_id == f"<{email.id}@flint.test>"
    assert email.next_attempt_at == email.created_at and email.order_id == order.id and email.locale == "de"
    assert json.loads(email.context) == context()
    async with mail_rt.db.read() as conn:
        assert await store.select_email(conn, merchant.id, email.id) == email
    assert email.to_dict() == {
        "id": email.id, "object": "email", "kind": "receipt", "to": "ada.lovelace@example.com", "status": "pending",
        "attempts": 0, "order": order.id, "payment_link": None, "locale": "de", "last_error": None,
        "created_at": clock.public(email.created_at), "sent_at": None}


async def test_enqueue_is_once_per_cause(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    (first,) = await enqueue(mail_rt, merchant.id, cause="receipt:ord_1")
    assert first is not None
    assert await enqueue(mail_rt, merchant.id, cause="receipt:ord_1", to="other@example.com") == [None]
    assert await _count(mail_rt) == 1


async def test_enqueue_commits_or_rolls_back_with_its_cause(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    with pytest.raises(RuntimeError):
        async with mail_rt.db.transaction() as conn:
            assert await service.enqueue(conn, mail_rt.config, merchant_id=merchant.id, kind="receipt",
                                         to="ada@example.com", locale="en", cause="receipt:x", context=context())
            raise RuntimeError("the cause failed")
    assert await _count(mail_rt) == 0


async def test_without_mail_configured_enqueue_writes_nothing_and_sends_are_refused(rt):
    merchant, _ = await make_merchant(rt)
    assert not rt.config.mail_configured
    assert await enqueue(rt, merchant.id) == [None]
    assert await _count(rt) == 0
    with pytest.raises(FlintError) as refused:
        service.require_configured(rt.config)
    assert (refused.value.status, refused.value.code) == (409, "mail_not_configured")
    only_url = replace(rt.config, smtp_url="smtp://127.0.0.1:25")
    assert not only_url.mail_configured and not replace(rt.config, mail_from=MAIL_FROM).mail_configured
    service.require_configured(mail_config(rt.config, "smtp://127.0.0.1:25"))


@pytest.mark.parametrize("bad", ["", "   ", "not an address", "a@b", "ada@example.com\r\nBcc: x@example.com",
                                 "x" * 250 + "@example.com", None])
async def test_a_bad_address_is_400_email_invalid_before_any_sql(rt, bad):
    # rt without mail configured, and a merchant that does not exist: the address is judged first.
    with pytest.raises(FlintError) as refused:
        async with rt.db.transaction() as conn:
            await service.enqueue(conn, rt.config, merchant_id="mer_none", kind="receipt", to=bad, locale="en",
                                  cause="receipt:x", context=context())
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "email_invalid", "email")


async def test_an_unknown_locale_is_english(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    made = [(await enqueue(mail_rt, merchant.id, locale=locale))[0] for locale in ("fr", "es", None, "DE")]
    assert [email.locale for email in made] == ["fr", "en", "en", "en"]


@pytest.mark.parametrize("pan", PANS)
async def test_a_context_holding_a_card_number_is_refused_and_logged(mail_rt, caplog, pan):
    merchant, _ = await make_merchant(mail_rt)
    leaky = context(payment={"brand": "visa", "last4": "4242", "amount": 2500, "note": f"card {pan}"})
    with caplog.at_level(logging.ERROR, logger="flint.mail"):
        assert await enqueue(mail_rt, merchant.id, ctx=leaky) == [None]
    assert await _count(mail_rt) == 0
    assert "card-number-like" in caplog.text and pan not in caplog.text


async def test_digits_that_are_no_card_number_pass(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    fine = context(payment={"brand": "visa", "last4": "4242", "amount": 123456789, "paid_at": "2026-11-26T18:21:07Z"},
                   order={"id": "ord_x", "reference": "4242424242424241", "currency": "usd", "amount_total": 2500,
                          "amount_paid": 2500, "lines": [{"name": "Gift 12", "quantity": 3, "amount": 2500}]})
    (email,) = await enqueue(mail_rt, merchant.id, ctx=fine)
    assert email is not None  # a 16-digit reference failing the Luhn check, a last4, amounts, a date


def test_card_number_in_walks_every_value():
    assert service.card_number_in({"a": [{"b": ("x", 4242424242424242)}]})
    assert not service.card_number_in({"a": [True, None, 1.5, "4242"]})


async def test_a_recovery_email_to_an_unsubscribed_address_is_not_written_other_kinds_are(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    other, _ = await make_merchant(mail_rt)
    token = service.unsubscribe_token(mail_rt, merchant.id, "Ada@Example.com")
    assert await service.unsubscribe(mail_rt, token) == (merchant.id, "ada@example.com")
    assert await enqueue(mail_rt, merchant.id, kind="recovery", to="ada@example.com") == [None]
    assert await enqueue(mail_rt, merchant.id, kind="recovery", to="ADA@example.com") == [None]
    assert (await enqueue(mail_rt, merchant.id, kind="receipt", to="ada@example.com"))[0] is not None
    assert (await enqueue(mail_rt, merchant.id, kind="payment_link", to="ada@example.com"))[0] is not None
    assert (await enqueue(mail_rt, other.id, kind="recovery", to="ada@example.com"))[0] is not None
    assert (await enqueue(mail_rt, merchant.id, kind="recovery", to="bob@example.com"))[0] is not None


# -- unsubscribe ----------------------------------------------------------------------------------------------

async def test_unsubscribe_is_idempotent_and_stops_waiting_recovery_emails(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    (waiting,) = await enqueue(mail_rt, merchant.id, kind="recovery", to="ada@example.com")
    (receipt,) = await enqueue(mail_rt, merchant.id, kind="receipt", to="ada@example.com")
    token = service.unsubscribe_token(mail_rt, merchant.id, "ada@example.com")
    assert service.unsubscribe_target(mail_rt, token) == (merchant.id, "ada@example.com")  # a look writes nothing
    assert (await service.get_email(mail_rt, merchant.id, waiting.id)).status == PENDING
    for _ in range(2):
        assert await service.unsubscribe(mail_rt, token) == (merchant.id, "ada@example.com")
    assert (await service.get_email(mail_rt, merchant.id, waiting.id)).status == "suppressed"
    assert (await service.get_email(mail_rt, merchant.id, receipt.id)).status == PENDING
    assert [e.id for e in await service.claim(mail_rt, limit=10, lease_seconds=30)] == [receipt.id]


@pytest.mark.parametrize("spoil", ["tamper", "other_salt", "garbage", "empty", "other_key", "shape"])
async def test_a_bad_unsubscribe_token_is_404_unsubscribe_invalid(mail_rt, spoil):
    merchant, _ = await make_merchant(mail_rt)
    good = service.unsubscribe_token(mail_rt, merchant.id, "ada@example.com")
    token = {
        "tamper": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "other_salt": mail_rt.signer.dumps("flint.hosted.form.v1", [merchant.id, "ada@example.com"]),
        "garbage": "not-a-token",
        "empty": "",
        "other_key": Signer(("another key",)).dumps(service.UNSUBSCRIBE_SALT, [merchant.id, "ada@example.com"]),
        "shape": mail_rt.signer.dumps(service.UNSUBSCRIBE_SALT, {"m": merchant.id}),
    }[spoil]
    with pytest.raises(FlintError) as refused:
        service.unsubscribe_target(mail_rt, token)
    assert (refused.value.status, refused.value.code) == (404, "unsubscribe_invalid")
    with pytest.raises(FlintError) as refused:
        await service.unsubscribe(mail_rt, token)
    assert (refused.value.status, refused.value.code) == (404, "unsubscribe_invalid")
    async with mail_rt.db.read() as conn:
        assert not await store.is_suppressed(conn, merchant.id, "ada@example.com", "recovery")


async def test_an_unsubscribe_link_works_for_two_years(mail_rt, monkeypatch):
    merchant, _ = await make_merchant(mail_rt)
    token = service.unsubscribe_token(mail_rt, merchant.id, "ada@example.com")
    # itsdangerous reads the wall clock (not flint.clock): its view of the time is moved instead.
    later = lambda days: SimpleNamespace(time=lambda: time.time() + days * 86400)
    monkeypatch.setattr(itsdangerous.timed, "time", later(700))
    assert service.unsubscribe_target(mail_rt, token) == (merchant.id, "ada@example.com")
    monkeypatch.setattr(itsdangerous.timed, "time", later(740))
    with pytest.raises(FlintError) as refused:
        service.unsubscribe_target(mail_rt, token)
    assert refused.value.code == "unsubscribe_invalid"


async def test_the_unsubscribe_link_is_only_on_recovery_emails(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    (recovery,) = await enqueue(mail_rt, merchant.id, kind="recovery", to="ada@example.com")
    (receipt,) = await enqueue(mail_rt, merchant.id, kind="receipt", to="ada@example.com")
    link = service.unsubscribe_link(mail_rt, recovery)
    assert link.startswith(f"{mail_rt.config.public_url}/unsubscribe/")
    assert service.unsubscribe_target(mail_rt, link.rsplit("/", 1)[1]) == (merchant.id, "ada@example.com")
    assert service.unsubscribe_link(mail_rt, receipt) is None


# -- listing ------------------------------------------------------------------------------------------------------

async def test_list_and_get_are_per_merchant(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    other, _ = await make_merchant(mail_rt)
    order = await make_order(mail_rt, merchant.id)
    made = await enqueue(mail_rt, merchant.id, n=3, order_id=order.id) + await enqueue(mail_rt, merchant.id, n=2)
    (theirs,) = await enqueue(mail_rt, other.id)
    listed, more = await service.list_emails(mail_rt, merchant.id, limit=10, starting_after=None)
    assert {e.id for e in listed} == {e.id for e in made} and not more
    listed, more = await service.list_emails(mail_rt, merchant.id, order_id=order.id, limit=2, starting_after=None)
    assert len(listed) == 2 and more
    rest, more = await service.list_emails(mail_rt, merchant.id, order_id=order.id, limit=2,
                                           starting_after=listed[-1].id)
    assert len(rest) == 1 and not more and {e.id for e in listed + rest} == {e.id for e in made[:3]}
    with pytest.raises(FlintError) as refused:
        await service.list_emails(mail_rt, merchant.id, limit=2, starting_after=theirs.id)
    assert refused.value.code == "starting_after_invalid"
    with pytest.raises(FlintError) as refused:
        await service.get_email(mail_rt, merchant.id, theirs.id)
    assert (refused.value.status, refused.value.code) == (404, "email_not_found")
    assert (await service.get_email(mail_rt, other.id, theirs.id)) == theirs


# -- outcomes and their events ------------------------------------------------------------------------------------

async def test_outcomes_write_the_status_and_their_event_together(mail_rt):
    merchant, _ = await make_merchant(mail_rt)
    order = await make_order(mail_rt, merchant.id)
    await enqueue(mail_rt, merchant.id, n=3, order_id=order.id)
    (no_order,) = await enqueue(mail_rt, merchant.id)
    claimed = sorted(await service.claim(mail_rt, limit=10, lease_seconds=30), key=lambda e: e.id)
    by_id = {e.id: e for e in claimed}
    ordered = [e for e in claimed if e.order_id]
    retry_at = clock.later_iso(60)
    outcomes = [Outcome(ordered[0], SENT), Outcome(ordered[1], FAILED, "smtp 550: no such user"),
                Outcome(ordered[2], PENDING, "smtp 451: later", retry_at), Outcome(by_id[no_order.id], SENT)]
    assert await service.record_outcomes(mail_rt, outcomes) == 4

    rows = {e.id: e for e in (await service.list_emails(mail_rt, merchant.id, limit=10, starting_after=None))[0]}
    assert (rows[ordered[0].id].status, rows[ordered[0].id].last_error) == ("sent", None)
    assert rows[ordered[0].id].sent_at is not None and rows[ordered[0].id].lease_until is None
    assert (rows[ordered[1].id].status, rows[ordered[1].id].last_error) == ("failed", "smtp 550: no such user")
    assert (rows[ordered[2].id].status, rows[ordered[2].id].next_attempt_at) == ("pending", retry_at)
    assert rows[ordered[2].id].sent_at is None

    sent, _ = await events.list_events(mail_rt, merchant.id, "email.sent", 10, None)
    failed, _ = await events.list_events(mail_rt, merchant.id, "email.failed", 10, None)
    assert sorted(e.to_dict()["data"]["object"]["id"] for e in sent) == sorted([ordered[0].id, no_order.id])
    assert [e.to_dict()["data"]["object"] for e in failed] == [rows[ordered[1].id].to_dict()]
    assert {e.actor_type for e in sent + failed} == {SYSTEM.type}
    by_object = {e.to_dict()["data"]["object"]["id"]: e for e in sent}
    assert by_object[ordered[0].id].order_id == order.id and by_object[ordered[0].id].sequence == 2
    assert by_object[no_order.id].order_id is None  # a mail of no order is the merchant's event
    # A retry is no event: only an outcome that ends the mail.
    assert len(sent) + len(failed) == 3


async def test_an_outcome_batch_that_fails_writes_neither_statuses_nor_events(mail_rt):
    """The outcome and its event are one transaction: a batch whose write fails part-way (here: an
    outcome naming an order that does not exist) leaves every mail as claimed and no event behind."""
    merchant, _ = await make_merchant(mail_rt)
    await enqueue(mail_rt, merchant.id, n=2)
    first, second = sorted(await service.claim(mail_rt, limit=10, lease_seconds=30), key=lambda e: e.id)
    broken = replace(second, order_id="ord_missing")
    with pytest.raises(AssertionError, match="vanished"):
        await service.record_outcomes(mail_rt, [Outcome(first, SENT), Outcome(broken, SENT)])
    rows = (await service.list_emails(mail_rt, merchant.id, limit=10, starting_after=None))[0]
    assert {e.status for e in rows} == {"sending"}
    assert (await events.list_events(mail_rt, merchant.id, "email.sent", 10, None))[0] == []
    assert await service.record_outcomes(mail_rt, [Outcome(first, SENT), Outcome(second, SENT)]) == 2


# -- the settings -------------------------------------------------------------------------------------------------

def test_smtp_urls():
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.implicit_tls, plain.username, plain.password) == \
        ("mail.example.com", 587, False, None, None)
    tls = parse_smtp_url("smtps://apikey:p%40ss%3Aword@smtp.example.com")
    assert (tls.port, tls.implicit_tls, tls.username, tls.password) == (465, True, "apikey", "p@ss:word")
    assert parse_smtp_url("smtp://127.0.0.1:2525").port == 2525
    # A password goes over TLS only: smtp:// with one to another host requires STARTTLS; not to loopback.
    assert parse_smtp_url("smtp://u:p@mail.example.com:25").require_starttls
    assert not parse_smtp_url("smtp://u:p@127.0.0.1:25").require_starttls
    assert not parse_smtp_url("smtp://u:p@localhost:25").require_starttls
    assert not parse_smtp_url("smtp://mail.example.com:25").require_starttls
    assert not tls.require_starttls
    assert "p@ss:word" not in repr(tls)


@pytest.mark.parametrize("url", ["http://mail.example.com", "mail.example.com:25", "smtp://", "smtp://host:99999",
                                 "smtp://host:port", "smtp://host/path", "smtp://host?x=1"])
def test_a_bad_smtp_url_stops_startup_without_showing_the_password(url):
    with pytest.raises(ValueError, match="FLINT_SMTP_URL"):
        Config.from_env({"FLINT_SMTP_URL": url.replace("host", "user:Pw-9x@host"), "FLINT_SECRET_KEY": TEST_SECRET})
    try:
        Config.from_env({"FLINT_SMTP_URL": url.replace("host", "user:Pw-9x@host"), "FLINT_SECRET_KEY": TEST_SECRET})
    except ValueError as error:
        assert "Pw-9x" not in str(error)


@pytest.mark.parametrize("value", ["not an address", "Shop <>", "Shop <shop@>", "shop@localhost"])
def test_a_bad_mail_from_stops_startup(value):
    with pytest.raises(ValueError, match="FLINT_MAIL_FROM"):
        Config.from_env({"FLINT_MAIL_FROM": value, "FLINT_SECRET_KEY": TEST_SECRET})


def test_mail_settings_from_the_environment():
    config = Config.from_env({
        "FLINT_SECRET_KEY": TEST_SECRET, "FLINT_SMTP_URL": "smtps://u:Pw-9x@smtp.example.com",
        "FLINT_MAIL_FROM": "Kaffee & Co <shop@example.com>", "FLINT_MAIL_RETRY_SCHEDULE": "1,2.5,3",
        "FLINT_MAIL_TIMEOUT_SECONDS": "7", "FLINT_MAIL_CONCURRENCY": "2", "FLINT_MAIL_POLL_INTERVAL": "0.5"})
    assert config.mail_configured and config.smtp.host == "smtp.example.com"
    assert (config.mail_retry_schedule, config.mail_timeout_seconds, config.mail_concurrency,
            config.mail_poll_interval) == ((1.0, 2.5, 3.0), 7.0, 2, 0.5)
    assert "Pw-9x" not in repr(config)
    defaults = Config.from_env({"FLINT_SECRET_KEY": TEST_SECRET})
    assert not defaults.mail_configured and defaults.smtp is None
    assert (defaults.mail_retry_schedule, defaults.mail_timeout_seconds, defaults.mail_concurrency,
            defaults.mail_poll_interval) == ((30, 120, 600, 3600, 21600), 15.0, 4, 0.2)
    for bad in ({"FLINT_MAIL_RETRY_SCHEDULE": "1,-2"}, {"FLINT_MAIL_CONCURRENCY": "0"}):
        with pytest.raises(ValueError):
            Config.from_env({"FLINT_SECRET_KEY": TEST_SECRET, **bad})

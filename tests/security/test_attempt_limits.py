"""Card testing (issue 13, finding 5; docs/api.md 13): a checkout's client_token sits in a public page and
a hosted form hands out a fresh form token per GET, so without a limit anyone holding a checkout
could run card after card through the processor and every hooked app.

The limits live in the database: at most FLINT_MAX_FAILED_ATTEMPTS failed attempts per checkout
session and per payment link in a rolling hour, and at most FLINT_ATTEMPTS_PER_ADDRESS attempts per
client address per minute. Past one: 429 ``too_many_attempts`` with Retry-After (JSON), or a 429
page in the buyer's language (hosted pages); a refused attempt reaches neither the processor nor a
hook. The live server here trusts 127.0.0.1 as its proxy, so each request names its client in
X-Forwarded-For: the per-session tests rotate addresses (as a card tester behind rotating proxies
does), the per-address tests keep one.
"""
from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from dataclasses import replace

import httpx
import pytest

from flint import clock
from flint.background import sweeper
from flint.actors import Actor
from flint.errors import FlintError
from flint.links import service as links
from flint.collect import service as collect
from support.server import start_server, stop_server
from tests.conftest import SERVER_BACKEND, fresh_database
from support.factories import card, make_merchant, make_order, make_session, pay_session
from tests.hooks.test_hook import ORDER, answer, browser, hook_server, hooked_shop, session_of  # noqa: F401 (fixtures)

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
DECLINE = dict(CARD, number="4000 0000 0000 0002")
PER_ADDRESS = 5  # this module's FLINT_ATTEMPTS_PER_ADDRESS (the default, 30, would make the tests slow)
MAX_FAILED = 10  # FLINT_MAX_FAILED_ATTEMPTS, at its default

# RFC 2544 benchmarking addresses: one fresh client per call.
_hosts = itertools.count(1)


def fresh_address() -> str:
    n = next(_hosts)
    return f"198.18.{n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """flint serve behind a trusted proxy (127.0.0.1), with a low per-address limit."""
    tmp = tmp_path_factory.mktemp("limits")
    cleanups: list = []
    live = start_server(tmp, db_url=fresh_database(SERVER_BACKEND, tmp, cleanups), extra_env={
        "FLINT_TRUSTED_PROXIES": "127.0.0.1", "FLINT_ATTEMPTS_PER_ADDRESS": str(PER_ADDRESS)})
    yield live
    stop_server(live)
    for cleanup in cleanups:
        cleanup()


async def confirm_from(server, session: dict, number_card: dict, address: str, **headers: str) -> httpx.Response:
    async with server.async_client(session["client_token"]) as buyer:
        return await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": number_card},
                                headers={"X-Forwarded-For": address, **headers})


async def post_form(server, path: str, number: str, address: str, language: str = "en") -> httpx.Response:
    """A buyer on a hosted page: GET (a fresh form token), then POST the card form."""
    headers = {"X-Forwarded-For": address, "Accept-Language": language}
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=headers) as buyer:
        page = await buyer.get(path)
        token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        return await buyer.post(path, data={"form_token": token, "card_number": number, "expiry": "12 / 34",
                                            "cvc": "123"})


async def count(rt, sql: str, **params) -> int:
    async with rt.db.read() as conn:
        return int((await conn.fetch_one(f"SELECT COUNT(*) AS n FROM {sql}", params))["n"])


async def payments_of(rt, order_id: str) -> list[str]:
    async with rt.db.read() as conn:
        return [r["status"] for r in await conn.fetch_all("SELECT status FROM payments WHERE order_id = :o",
                                                          {"o": order_id})]


async def hook_calls_of(rt, order_id: str) -> int:
    return await count(rt, "hook_calls WHERE order_id = :o", o=order_id)


def assert_limited_page(page: httpx.Response, text: str, back: str) -> None:
    """The 429 page: says when to try again, strict CSP like every buyer page, a way back."""
    assert page.status_code == 429, page.text[:2000]
    assert page.headers["content-type"].startswith("text/html")
    assert text in page.text, re.findall(r"<h1>.*?</p>", page.text, re.S)
    assert 1 <= int(page.headers["Retry-After"]) <= 3600
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    assert f'href="{back}"' in page.text


# -- per checkout session and per payment link (failed attempts, rolling hour) ------------------------

async def test_after_ten_declines_a_session_refuses_the_next_attempt_before_the_hook_and_the_processor(
        server, server_rt, browser, hook_server):
    shop, key, [(app, path, _)] = await hooked_shop(server, server_rt, browser, hook_server, [(answer(), 0, 200)])
    session = await session_of(server, key)
    for _ in range(MAX_FAILED):  # each from another address: rotating proxies do not help
        declined = await confirm_from(server, session, DECLINE, fresh_address())
        assert declined.status_code == 402 and declined.json()["code"] == "card_declined", declined.text
    asked = len(hook_server.at(path))
    idempotency_key = f"limit-{secrets.token_hex(4)}"
    refused = await confirm_from(server, session, CARD, fresh_address(), **{"Idempotency-Key": idempotency_key})
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "too_many_attempts" and problem["status"] == 429
    assert "failed payment attempts" in problem["detail"] and "checkout session" in problem["detail"]
    # Until the oldest of the ten failures is an hour old (they took seconds): whole seconds.
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit() and 3000 < int(retry_after) <= 3600, retry_after
    assert problem["retry_after"] == int(retry_after)
    # Neither the processor (no payment row, the success card did not pay) nor the app was reached.
    assert await payments_of(server_rt, session["order_id"]) == ["failed"] * MAX_FAILED
    assert len(hook_server.at(path)) == asked and await hook_calls_of(server_rt, session["order_id"]) == MAX_FAILED
    async with server.async_client(key) as owner:
        order = (await owner.get(f"/v1/orders/{session['order_id']}")).json()
    assert (order["status"], order["amount_paid"]) == ("open", 0)
    # A 429 is not stored under its Idempotency-Key: the same request is answered afresh, not replayed.
    again = await confirm_from(server, session, CARD, fresh_address(), **{"Idempotency-Key": idempotency_key})
    assert again.status_code == 429 and "Idempotent-Replayed" not in again.headers
    # Another buyer's session of the same merchant is not affected.
    other = await session_of(server, key)
    paid = await confirm_from(server, other, CARD, fresh_address())
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
    assert len(hook_server.at(path)) == asked + 1


async def test_the_hosted_page_answers_a_429_page_in_the_buyers_language(server, server_rt, browser, hook_server):
    shop, key, [(app, path, _)] = await hooked_shop(server, server_rt, browser, hook_server, [(answer(), 0, 200)])
    session = await session_of(server, key, mode="hosted")
    page_path = f"/checkout/{session['id']}"
    for _ in range(MAX_FAILED):
        declined = await post_form(server, page_path, DECLINE["number"], fresh_address())
        assert declined.status_code == 402, declined.text[:500]
    asked = len(hook_server.at(path))
    refused = await post_form(server, page_path, CARD["number"], fresh_address())
    assert_limited_page(refused, "Too many payment attempts. Please try again in 60 minutes.", page_path)
    assert await payments_of(server_rt, session["order_id"]) == ["failed"] * MAX_FAILED
    assert len(hook_server.at(path)) == asked and await hook_calls_of(server_rt, session["order_id"]) == MAX_FAILED
    german = await post_form(server, page_path, CARD["number"], fresh_address(), language="de")
    assert_limited_page(german, "Zu viele Zahlungsversuche. Bitte versuchen Sie es in 60 Minuten erneut.", page_path)
    french = await post_form(server, page_path, CARD["number"], fresh_address(), language="fr")
    assert_limited_page(french, "Trop de tentatives de paiement. Veuillez réessayer dans 60 minutes.", page_path)
    assert await payments_of(server_rt, session["order_id"]) == ["failed"] * MAX_FAILED


async def test_a_payment_link_page_is_limited_on_its_own(server, server_rt, browser, hook_server):
    shop, key, [(app, path, _)] = await hooked_shop(server, server_rt, browser, hook_server, [(answer(), 0, 200)])
    async with server.async_client(key) as owner:
        order = (await owner.post("/v1/orders", json=ORDER)).json()
        link = (await owner.post("/v1/payment_links", json={"order": order["id"]})).json()
    page_path = f"/pay/{link['id']}"
    for _ in range(MAX_FAILED):
        declined = await post_form(server, page_path, DECLINE["number"], fresh_address())
        assert declined.status_code == 402, declined.text[:500]
    asked = len(hook_server.at(path))
    refused = await post_form(server, page_path, CARD["number"], fresh_address())
    assert_limited_page(refused, "Too many payment attempts. Please try again in 60 minutes.", page_path)
    assert await payments_of(server_rt, order["id"]) == ["failed"] * MAX_FAILED
    assert len(hook_server.at(path)) == asked and await hook_calls_of(server_rt, order["id"]) == MAX_FAILED
    # The link's failures are the link's: a checkout session for the same order still takes the card.
    async with server.async_client(key) as owner:
        made = await owner.post("/v1/checkout/sessions", json={"order": order["id"], "mode": "embedded",
                                                                "success_url": "https://shop.example/thanks"})
    paid = await confirm_from(server, made.json(), CARD, fresh_address())
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text


# -- per client address (every attempt, one minute, over all sessions) --------------------------------

async def test_one_address_gets_five_attempts_a_minute_over_all_sessions_and_another_buyer_pays_at_once(
        server, server_rt, browser, hook_server):
    shop, key, [(app, path, _)] = await hooked_shop(server, server_rt, browser, hook_server, [(answer(), 0, 200)])
    attacker, buyer = fresh_address(), fresh_address()
    sessions = [await session_of(server, key) for _ in range(PER_ADDRESS + 1)]
    for session in sessions[:PER_ADDRESS]:  # successes count too: an address is limited in attempts
        paid = await confirm_from(server, session, CARD, attacker)
        assert paid.status_code == 200, paid.text
    asked = len(hook_server.at(path))
    last = sessions[PER_ADDRESS]
    refused = await confirm_from(server, last, CARD, attacker)
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_attempts", refused.text
    assert "address" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    hosted = await session_of(server, key, mode="hosted")
    page = await post_form(server, f"/checkout/{hosted['id']}", CARD["number"], attacker)
    assert_limited_page(page, "Too many payment attempts. Please try again in 1 minute.", f"/checkout/{hosted['id']}")
    assert await payments_of(server_rt, last["order_id"]) == []
    assert await payments_of(server_rt, hosted["order_id"]) == []
    assert len(hook_server.at(path)) == asked
    # Refused attempts are not counted against the address: it holds exactly its five.
    address_rows = await count(server_rt, "address_attempts WHERE address = :a", a=attacker)
    assert address_rows == PER_ADDRESS
    # A buyer at another address, on another session of the same shop, pays at once.
    other = await session_of(server, key)
    paid = await confirm_from(server, other, CARD, buyer)
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
    # A minute later (the clock moved: the attacker's attempts are a minute old) the address may pay.
    async with server_rt.db.transaction() as conn:
        await conn.execute("UPDATE address_attempts SET attempted_at = :at WHERE address = :a",
                           {"at": clock.later_iso(-61), "a": attacker})
    paid = await confirm_from(server, last, CARD, attacker)
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text


# -- the counting itself, on every engine -------------------------------------------------------------

def limited(rt, **settings) -> None:
    rt.config = replace(rt.config, **settings)


def attempt_of(session, address: str | None = None, link=None) -> collect.Attempt:
    where = {"client_address": address} if address is not None else {}  # a service caller may name none
    if link is not None:
        return collect.Attempt(merchant_id=link.merchant_id, order_id=link.order_id, channel="payment_link",
                                payment_link_id=link.id, **where)
    return collect.Attempt(merchant_id=session.merchant_id, order_id=session.order_id, channel=session.mode,
                            checkout_session_id=session.id, **where)


async def pay(rt, session, number: str = "4242424242424242", address: str | None = None, link=None):
    return await collect.confirm_payment(rt, attempt_of(session, address, link), card(number),
                                          Actor("buyer", (link or session).id))


async def test_failed_attempts_are_counted_per_session_in_a_rolling_hour(rt, advance_clock):
    limited(rt, max_failed_attempts=3)
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id, expires_in=86400)  # open past the hour the test moves through
    for _ in range(3):
        assert (await pay_session(rt, session, "4000000000000002")).status == "failed"
    with pytest.raises(FlintError) as refused:
        await pay_session(rt, session)
    assert (refused.value.status, refused.value.code) == (429, "too_many_attempts")
    assert 3590 < int(refused.value.headers["Retry-After"]) <= 3600
    assert await payments_of(rt, session.order_id) == ["failed"] * 3
    # Retry-After counts down to the moment the oldest failure leaves the hour.
    advance_clock(3000)
    with pytest.raises(FlintError) as refused:
        await pay_session(rt, session)
    assert 590 < int(refused.value.headers["Retry-After"]) <= 600
    # An hour after them, the failures no longer count: the buyer may pay.
    advance_clock(601)
    assert (await pay_session(rt, session)).status == "succeeded"


async def test_failed_attempts_are_counted_per_payment_link(rt):
    limited(rt, max_failed_attempts=2)
    merchant, _ = await make_merchant(rt)
    order = await make_order(rt, merchant.id)
    link = await links.create_link(rt, merchant.id, order.id, expires_in=None, actor=Actor("merchant", merchant.id))
    for _ in range(2):
        assert (await pay(rt, None, "4000000000000002", link=link)).status == "failed"
    with pytest.raises(FlintError) as refused:
        await pay(rt, None, link=link)
    assert refused.value.code == "too_many_attempts" and "payment link" in refused.value.detail
    # A session of the same order has its own count.
    session = await make_session(rt, merchant.id, order_id=order.id)
    assert (await pay_session(rt, session)).status == "succeeded"


async def test_the_failed_count_is_checked_again_under_the_order_lock(rt):
    """What the pre-hook check read may be stale by the time the attempt takes the order: begin_attempt
    decides again, under the order's lock, where attempts on one order queue."""
    limited(rt, max_failed_attempts=2)
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    for _ in range(2):
        await pay_session(rt, session, "4000000000000002")
    with pytest.raises(FlintError) as refused:
        await collect.begin_attempt(rt, attempt_of(session), card(), Actor("buyer", session.id))
    assert refused.value.code == "too_many_attempts"
    assert await payments_of(rt, session.order_id) == ["failed"] * 2


async def test_a_burst_on_one_session_never_gets_past_the_failed_limit(rt, second_rt):
    limited(rt, max_failed_attempts=10)
    limited(second_rt, max_failed_attempts=10)
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    for _ in range(7):
        await pay_session(rt, session, "4000000000000002")
    outcomes = []
    for _ in range(4):  # bursts of concurrent declines from two processes, until none gets through
        results = await asyncio.gather(*(pay(runtime, session, "4000000000000002")
                                         for runtime in [rt, second_rt] * 5), return_exceptions=True)
        outcomes += [r.status if not isinstance(r, FlintError) else r.code for r in results]
    assert set(outcomes) <= {"failed", "payment_in_progress", "too_many_attempts"}, outcomes
    assert "too_many_attempts" in outcomes
    assert await payments_of(rt, session.order_id) == ["failed"] * 10


async def test_twenty_concurrent_attempts_from_one_address_let_exactly_five_through(rt, second_rt):
    limited(rt, attempts_per_address=5)
    limited(second_rt, attempts_per_address=5)
    merchant, _ = await make_merchant(rt)
    sessions = [await make_session(rt, merchant.id) for _ in range(20)]
    results = await asyncio.gather(*(pay([rt, second_rt][i % 2], s, address="203.0.113.50")
                                     for i, s in enumerate(sessions)), return_exceptions=True)
    paid = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(paid) == 5 and all(p.status == "succeeded" for p in paid), results
    assert {(e.status, e.code) for e in refused} == {(429, "too_many_attempts")}, refused
    assert all(1 <= int(e.headers["Retry-After"]) <= 60 for e in refused)
    # The refused fifteen left no payment and no count behind.
    assert await count(rt, "payments WHERE merchant_id = :m", m=merchant.id) == 5
    assert await count(rt, "address_attempts WHERE address = :a", a="203.0.113.50") == 5
    # Another address is not affected.
    assert (await pay(rt, await make_session(rt, merchant.id), address="203.0.113.51")).status == "succeeded"


async def test_an_ipv6_client_is_one_address_per_64_prefix(rt):
    """One IPv6 host usually holds a whole /64: counting single addresses would be no limit at all."""
    limited(rt, attempts_per_address=2)
    merchant, _ = await make_merchant(rt)
    for address in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"):
        assert (await pay(rt, await make_session(rt, merchant.id), address=address)).status == "succeeded"
    with pytest.raises(FlintError) as refused:
        await pay(rt, await make_session(rt, merchant.id), address="2001:db8:1:2::7")
    assert refused.value.code == "too_many_attempts"
    assert (await pay(rt, await make_session(rt, merchant.id), address="2001:db8:1:3::1")).status == "succeeded"
    # An IPv4-mapped IPv6 address is its IPv4 address.
    assert (await pay(rt, await make_session(rt, merchant.id), address="192.0.2.1")).status == "succeeded"
    assert (await pay(rt, await make_session(rt, merchant.id), address="::ffff:192.0.2.1")).status == "succeeded"
    with pytest.raises(FlintError):
        await pay(rt, await make_session(rt, merchant.id), address="192.0.2.1")


async def test_an_attempt_on_a_paid_order_is_answered_as_such_and_not_counted(rt):
    """It can reach neither a hook nor the processor, so it costs the address nothing, and the buyer
    who clicks again after paying is told the order is paid, not to wait."""
    limited(rt, attempts_per_address=2)
    merchant, _ = await make_merchant(rt)
    session = await make_session(rt, merchant.id)
    assert (await pay(rt, session, address="203.0.113.70")).status == "succeeded"
    for _ in range(3):
        with pytest.raises(FlintError) as closed:
            await pay(rt, session, address="203.0.113.70")
        assert closed.value.code == "order_already_paid"
    assert await count(rt, "address_attempts WHERE address = :a", a="203.0.113.70") == 1
    assert (await pay(rt, await make_session(rt, merchant.id), address="203.0.113.70")).status == "succeeded"


async def test_the_sweeper_purges_address_counts_past_their_minute(rt, advance_clock):
    merchant, _ = await make_merchant(rt)
    await pay(rt, await make_session(rt, merchant.id), address="203.0.113.60")
    advance_clock(3600)  # an hour later: .60's count is long past its minute
    await pay(rt, await make_session(rt, merchant.id), address="203.0.113.61")
    done = await sweeper.sweep_once(rt)
    assert done["address_attempts_purged"] == 1
    assert await count(rt, "address_attempts WHERE address = :a", a="203.0.113.60") == 0
    assert await count(rt, "address_attempts WHERE address = :a", a="203.0.113.61") == 1

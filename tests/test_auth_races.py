"""Races on the doors into Flint, with several processes on one database (on PostgreSQL each a
Runtime of its own here, with its own pool, and asyncio.gather makes the transactions really run
side by side): OAuth code exchange and refresh-token rotation, installs, app secret rotation, failed
sign-ins, Idempotency-Key takeovers, merchant creation and key revocation. The same tests hold on
SQLite, where BEGIN IMMEDIATE serialises the writes."""
from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest

from flint import clock
from flint.accounts import service as accounts
from flint.apps import service as apps
from flint.errors import FlintError
from flint.idempotency import service as idempotency
from flint.idempotency import store as idempotency_store
from flint.merchants import service as merchants
from flint.oauth import service as oauth
from flint.runtime import Runtime
from support.factories import make_merchant

REDIRECT = "http://127.0.0.1:9/callback"
# RFC 7636 appendix B's verifier and its S256 challenge.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
PASSWORD = "correct horse battery"  # support.factories.make_merchant's


@pytest.fixture
def other(second_rt: Runtime) -> Runtime:
    return second_rt


def _both(rt: Runtime, other: Runtime, n: int) -> list[Runtime]:
    return [(rt, other)[i % 2] for i in range(n)]


def _split(results: list) -> tuple[list, list]:
    """(successes, exceptions); anything but the expected refusals is re-raised."""
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    for error in refused:
        if not isinstance(error, (oauth.OAuthError, FlintError)):
            raise error
    return done, refused


async def _app(rt: Runtime, **settings):
    developer, _ = await make_merchant(rt)
    app, _, _ = await apps.create_app(rt, developer.id, name="Racer", redirect_uris=[REDIRECT],
                                      scopes=["orders:read"], **settings)
    return app


async def _code(rt: Runtime, app, merchant_id: str) -> str:
    request = oauth.AuthorizationRequest(app, REDIRECT, ["orders:read"], None, CHALLENGE)
    return await oauth.issue_code(rt, request, merchant_id)


# -- OAuth ---------------------------------------------------------------------------------------------

async def test_a_code_exchanged_twice_at_once_issues_once_and_the_replay_revokes_it(rt, other):
    app = await _app(rt)
    shop, _ = await make_merchant(rt)
    code = await _code(rt, app, shop.id)
    results = await asyncio.gather(*(oauth.exchange_code(runtime, app, code, REDIRECT, VERIFIER)
                                     for runtime in _both(rt, other, 4)), return_exceptions=True)
    issued, refused = _split(results)
    assert len(issued) == 1 and len(refused) == 3
    assert all(isinstance(e, oauth.OAuthError) and e.error == "invalid_grant" for e in refused)
    # The others were replays of a used code: what it issued is revoked (RFC 6749 4.1.2), as when
    # they come one after the other (with a plain read they all saw it unused and revoked nothing).
    assert await oauth.caller_for_access_token(rt, issued[0]["access_token"]) is None
    async with rt.db.read() as conn:
        installs = await conn.fetch_one("SELECT COUNT(*) AS n FROM installations WHERE app_id = :a", {"a": app.id})
    assert installs["n"] == 1


async def test_one_refresh_token_used_twice_at_once_succeeds_once_and_the_reuse_kills_the_grant(rt, other):
    app = await _app(rt)
    shop, _ = await make_merchant(rt)
    tokens = await oauth.exchange_code(rt, app, await _code(rt, app, shop.id), REDIRECT, VERIFIER)
    results = await asyncio.gather(*(oauth.refresh(runtime, app, tokens["refresh_token"])
                                     for runtime in _both(rt, other, 4)), return_exceptions=True)
    rotated, refused = _split(results)
    assert len(rotated) == 1 and len(refused) == 3
    assert all(isinstance(e, oauth.OAuthError) and e.error == "invalid_grant" for e in refused)
    # A spent refresh token presented again means a copy exists: the grant dies (RFC 9700 4.14.2).
    assert await oauth.caller_for_access_token(rt, rotated[0]["access_token"]) is None
    with pytest.raises(oauth.OAuthError):
        await oauth.refresh(rt, app, rotated[0]["refresh_token"])


async def test_two_codes_for_one_install_at_once_make_one_installation(rt, other):
    app = await _app(rt, webhook_url="http://127.0.0.1:9/app-hooks")
    shop, _ = await make_merchant(rt)
    codes = [await _code(rt, app, shop.id) for _ in range(4)]
    results = await asyncio.gather(*(oauth.exchange_code(runtime, app, code, REDIRECT, VERIFIER)
                                     for runtime, code in zip(_both(rt, other, 4), codes)),
                                   return_exceptions=True)
    issued, refused = _split(results)
    assert refused == [] and len({r["installation_id"] for r in issued}) == 1
    async with rt.db.read() as conn:
        endpoints = await conn.fetch_one("SELECT COUNT(*) AS n FROM webhook_endpoints WHERE app_id = :a", {"a": app.id})
        installed = await conn.fetch_one(
            "SELECT COUNT(*) AS n FROM events WHERE merchant_id = :m AND type = 'app.installed'", {"m": shop.id})
    assert endpoints["n"] == 1 and installed["n"] == 1


async def test_two_app_webhook_secret_rotations_at_once_chain(rt, other):
    app = await _app(rt)
    rotated = await asyncio.gather(*(apps.rotate_webhook_secret(runtime, app.developer_merchant_id, app.id)
                                     for runtime in _both(rt, other, 4)))
    given = {secret for _, secret in rotated}
    now = await apps.get_app(rt, app.developer_merchant_id, app.id)
    current, previous = rt.secrets.open(now.webhook_secret), rt.secrets.open(now.previous_webhook_secret)
    assert current in given and previous in given and current != previous


# -- sign-in -------------------------------------------------------------------------------------------

async def test_concurrent_failed_sign_ins_are_all_counted_and_capped(rt, other):
    shop, _ = await make_merchant(rt)
    attempts = 12
    results = await asyncio.gather(*(accounts.sign_in(runtime, shop.email, "a wrong guess", f"198.51.100.{i}")
                                     for i, runtime in enumerate(_both(rt, other, attempts))),
                                   return_exceptions=True)
    _, refused = _split(results)
    checked = [e for e in refused if e.status == 401]  # reached the password check, and failed
    assert len(checked) + len([e for e in refused if e.status == 429]) == attempts
    # However many come at once, no more reach the password check than the limit allows (a look at
    # the count before recording let all twelve through), and each one that did is on record.
    assert len(checked) <= accounts.MAX_FAILURES_PER_EMAIL
    async with rt.db.read() as conn:
        counted = await conn.fetch_one("SELECT COUNT(*) AS n FROM login_failures WHERE key = :k",
                                       {"k": f"email:{shop.email}"})
    assert counted["n"] == len(checked)
    # What the burst left of the limit, one guess at a time; then even the right password waits.
    for i in range(accounts.MAX_FAILURES_PER_EMAIL - len(checked)):
        with pytest.raises(FlintError) as wrong:
            await accounts.sign_in(other, shop.email, "another guess", "198.51.100.50")
        assert wrong.value.status == 401
    with pytest.raises(FlintError) as blocked:
        await accounts.sign_in(rt, shop.email, PASSWORD, "198.51.100.99")
    assert blocked.value.status == 429


async def test_a_successful_sign_in_takes_back_its_counted_attempt(rt):
    shop, _ = await make_merchant(rt)
    await accounts.sign_in(rt, shop.email, PASSWORD, "198.51.100.7")
    async with rt.db.read() as conn:
        left = await conn.fetch_one("SELECT COUNT(*) AS n FROM login_failures")
    assert left["n"] == 0


# -- Idempotency-Key -----------------------------------------------------------------------------------

async def _takeover(runtime: Runtime, scope: str, key: str):
    return await idempotency.begin(runtime, scope, key, "hash-1")


@pytest.mark.parametrize("stale", ["lock_lapsed", "expired"])
async def test_a_stale_key_is_taken_over_by_one_process_only(rt, other, stale):
    scope, key = f"merchant:mer_{secrets.token_hex(4)}", "order-1"
    long_ago = clock.iso(clock.now() - timedelta(days=8))
    async with rt.db.transaction() as conn:
        # A request that died mid-way: its record still says running, under a lock that lapsed (or
        # so old that it expired, and the sweeper has not purged it yet).
        await idempotency_store.insert_key(conn, scope, key, "hash-1", clock.later_iso(-5),
                                           long_ago if stale == "expired" else clock.now_iso())
    results = await asyncio.gather(*(_takeover(runtime, scope, key) for runtime in _both(rt, other, 6)),
                                   return_exceptions=True)
    took_over, refused = _split(results)
    assert took_over == [None]  # begin() returns None to the one request that may run
    assert all(isinstance(e, FlintError) and e.code == "idempotency_key_in_use" for e in refused)


async def test_a_response_stored_by_one_process_is_replayed_by_another(rt, other):
    scope, key = f"merchant:mer_{secrets.token_hex(4)}", "order-2"
    assert await idempotency.begin(rt, scope, key, "hash-2") is None
    with pytest.raises(FlintError) as running:
        await idempotency.begin(other, scope, key, "hash-2")
    assert running.value.code == "idempotency_key_in_use"
    await idempotency.finish(rt, scope, key, 200, "application/json", '{"id": "ord_1"}')
    replay = await idempotency.begin(other, scope, key, "hash-2")
    assert replay == idempotency.Replay(200, "application/json", '{"id": "ord_1"}')


# -- merchants -----------------------------------------------------------------------------------------

async def test_one_email_registered_twice_at_once_is_a_clean_conflict(rt, other):
    email = f"twice-{secrets.token_hex(4)}@shop.example"
    results = await asyncio.gather(*(merchants.create_merchant(runtime, name="Twice", email=email, password=PASSWORD)
                                     for runtime in _both(rt, other, 4)), return_exceptions=True)
    created, refused = _split(results)
    assert len(created) == 1
    # The loser learns why, not "concurrent_update" (retry) nor a 500.
    assert [(e.status, e.code) for e in refused] == [(409, "email_taken")] * 3


async def test_every_key_revoked_at_once_leaves_one_live_key(rt, other):
    shop, _ = await make_merchant(rt)
    for _ in range(4):
        await merchants.create_key(rt, shop.id)
    keys = await merchants.list_keys(rt, shop.id)
    results = await asyncio.gather(*(merchants.revoke_key(runtime, shop.id, key.id)
                                     for runtime, key in zip(_both(rt, other, len(keys)), keys)),
                                   return_exceptions=True)
    revoked, refused = _split(results)
    # Each revocation counted the live keys before the others committed: without the lock they
    # all saw five and the merchant was locked out of the API for good.
    assert len(revoked) == 4 and [e.code for e in refused] == ["last_api_key"]
    assert len([k for k in await merchants.list_keys(rt, shop.id) if k.revoked_at is None]) == 1

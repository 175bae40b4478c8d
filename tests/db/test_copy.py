"""`flint copy`: a SQLite database moved to PostgreSQL whole.

The source is a realistic demo database made through Flint itself (a live `flint serve` on SQLite,
the demo seeding, HTTP calls, a hosted form, sign-ins, a partner-app install over OAuth, webhooks
and a hook answered by a real receiver), so every table holds rows. The copy runs as the command an
operator runs; afterwards a real `flint serve` on the PostgreSQL copy must answer exactly as the
SQLite one did, accept the old secrets (API key, app token, sign-in cookie, all stored hashed) and
sign webhooks and hook calls with the secrets sealed on SQLite. Refusals write nothing; a copy
that fails half-way leaves the target empty.

PostgreSQL: FLINT_TEST_POSTGRES_URL, else the local CI server.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncpg
import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from standardwebhooks import Webhook

from flint.db import copy as db_copy
from flint.db import open_database
from flint.db.migrate import available, migrate
from flint.demo import DEMO_APP_SCOPES, DEMO_EMAIL, DEMO_PASSWORD, seed
from flint.mail import service as mail_service
from flint.runtime import Runtime
from flint.staff import service as staff
from tests import pg
from support import ROOT, TEST_SECRET
from support.server import start_server, stop_server
from support.factories import make_merchant
from support.receiver import Receiver

POSTGRES_URL = os.environ.get("FLINT_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
LATEST = available()[-1].version
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
DECLINED = dict(CARD, number="4000 0000 0000 0002")
PASSWORD = "correct horse battery"  # support.factories.make_merchant's
HOOK_ANSWER = {"actions": [{"type": "annotate", "data": {"risk": "niedrig", "note": "Kaffee ☕ – ok"}}]}
# What the API shows of the copied data, asked of SQLite before and of PostgreSQL after.
LISTINGS = ["/v1/merchant", "/v1/orders?limit=100", "/v1/events?limit=100", "/v1/payments?limit=100",
            "/v1/refunds?limit=100", "/v1/payment_links?limit=100", "/v1/webhook_endpoints?limit=100",
            "/v1/apps?limit=100", "/v1/installations?limit=100", "/v1/merchant/keys"]


@dataclass
class Demo:
    path: Path
    merchant_id: str
    secret_key: str  # the demo merchant's
    webhook_secret: str  # its endpoint's, shown once on SQLite
    app_webhook_secret: str  # the partner app's (webhooks and hook calls)
    app_id: str  # the partner app's: its required age checkbox is ticked under app_fields.<app_id>
    other_key: str  # the merchant who installed the app
    app_token: dict  # the app's OAuth token on that merchant
    session_cookies: dict  # the demo merchant signed in
    listings: dict[str, object] = field(default_factory=dict)  # path -> JSON, as SQLite answered
    hook_calls: object = None  # the installing merchant's, as SQLite answered
    served_at: str = ""  # the SQLite server's URL (links the API shows start with it)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"


@contextmanager
def connect(path):
    """A sqlite3 connection that commits on success and is always closed."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def _csrf(html: str, name: str = "csrf_token") -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


def _order(name: str, amount: int) -> dict:
    return {"currency": "eur", "line_items": [{"name": name, "quantity": 2, "unit_amount": amount}],
            "customer_email": "käufer@example.com", "metadata": {"shop_ref": name}}


async def _pay_embedded(api: httpx.AsyncClient, order: dict, card: dict = CARD,
                        app_fields: dict | None = None) -> tuple[dict, httpx.Response]:
    session = (await api.post("/v1/checkout/sessions", json={
        "order": order, "mode": "embedded", "success_url": "https://shop.example/thanks"})).json()
    paid = await api.post(f"/v1/checkout/sessions/{session['id']}/confirm",
                          json={"card": card, **({"app_fields": app_fields} if app_fields else {})},
                          headers={"Authorization": f"Bearer {session['client_token']}"})
    return session, paid


async def _sign_in(browser: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await browser.get("/login")
    return await browser.post("/login", data={"csrf_token": _csrf(page.text), "email": email, "password": password})


async def _build(tmp: Path, receiver: Receiver) -> Demo:
    receiver.script("/shop/webhooks", [500, 200])  # a failed attempt, then the retry succeeds
    receiver.script("/app/hook", body=json.dumps(HOOK_ANSWER).encode())
    live = start_server(tmp, extra_env={"FLINT_WEBHOOK_RETRY_SCHEDULE": "0.3,0.3",
                                        "FLINT_WEBHOOK_POLL_INTERVAL": "0.05"})
    try:
        config = live.runtime_config()
        # The demo merchant, its webhook endpoint, the partner app and an open hosted checkout.
        seeded = await seed(config, ["https://xn--caf-dma.example"], receiver.url("/shop"), receiver.url("/app"))
        rt = await Runtime.start(config)
        try:
            other, other_key = await make_merchant(rt)
            await make_merchant(rt)  # a merchant with nothing else
            # A pending invitation to the installing merchant's team (docs/api.md 15): a row in every table.
            async with rt.db.transaction() as conn:
                owner = await staff.ensure_owner(conn, other)
            await staff.invite(rt, owner, "support@shop.example", "support")
            # Email to buyers (docs/api.md 16): a mail in the outbox (this server sends none: it stays
            # pending) and an address unsubscribed from recovery emails.
            mail = replace(config, smtp_url="smtp://127.0.0.1:9", mail_from="Demo <demo@flint.test>")
            async with rt.db.transaction() as conn:
                await mail_service.enqueue(
                    conn, mail, merchant_id=other.id, kind="payment_link", to="käufer@example.com", locale="de",
                    cause="send:copy-demo", context={"merchant": {"name": "Kaffee"}, "link_url": "https://x.example"})
            await mail_service.unsubscribe(rt, mail_service.unsubscribe_token(rt, other.id, "käufer@example.com"))
        finally:
            await rt.stop()

        async with live.async_client(seeded.secret_key) as api:
            opened = []
            for i in range(4):
                made = await api.post("/v1/orders", json=_order(f"Bohnen {i}", 1200 + i),
                                      headers={"Idempotency-Key": f"order-{i}"})
                assert made.is_success, made.text
                opened.append(made.json())
            await api.post(f"/v1/orders/{opened[0]['id']}/cancel")
            link = await api.post("/v1/payment_links", json={"order": opened[1]["id"]})
            assert link.is_success, link.text
            paid = []
            for amount in (2400, 5150, 990):
                _, payment = await _pay_embedded(api, _order("Espresso", amount))
                assert payment.json()["status"] == "succeeded", payment.text
                paid.append(payment.json())
            _, declined = await _pay_embedded(api, _order("Declined", 700), DECLINED)
            assert declined.status_code == 402, declined.text
            refund = await api.post("/v1/refunds", json={"payment": paid[0]["id"], "amount": 500,
                                                         "reason": "requested_by_customer"})
            assert refund.is_success, refund.text
            await api.post("/v1/refunds", json={"payment": paid[1]["id"]})
            await api.post("/v1/webhook_endpoints", json={"url": receiver.url("/shop/payments"),
                                                          "events": ["payment.*"], "description": "Zahlungen"})

        async with httpx.AsyncClient(base_url=live.url, timeout=30) as browser:
            # The seeded hosted checkout, paid through its form (a spent one-time form token).
            page = await browser.get(f"/checkout/{seeded.session_id}")
            done = await browser.post(f"/checkout/{seeded.session_id}", data={
                "form_token": re.search(r'name="form_token" value="([^"]+)"', page.text).group(1),
                "card_number": CARD["number"], "expiry": "12 / 34", "cvc": "123"})
            assert done.status_code == 303, done.text
            assert (await _sign_in(browser, "nobody@shop.example", "wrong")).status_code == 401
            assert (await _sign_in(browser, DEMO_EMAIL, DEMO_PASSWORD)).status_code == 303
            cookies = dict(browser.cookies)

        # The installing merchant signs in and approves the partner app (OAuth 2.0 with PKCE).
        app = seeded.partner_app
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as browser, AsyncOAuth2Client(
                client_id=app.client_id, client_secret=app.client_secret, redirect_uri=receiver.url("/app/callback"),
                scope=" ".join(DEMO_APP_SCOPES), code_challenge_method="S256",
                token_endpoint_auth_method="client_secret_basic") as oauth:
            assert (await _sign_in(browser, other.email, PASSWORD)).status_code == 303
            verifier = secrets.token_urlsafe(48)
            url, state = oauth.create_authorization_url(f"{live.url}/oauth/authorize", code_verifier=verifier)
            consent = await browser.get(url.removeprefix(live.url))
            approved = await browser.post("/oauth/authorize", data={"consent": _csrf(consent.text, "consent"),
                                                                     "decision": "approve"})
            token = await oauth.fetch_token(f"{live.url}/oauth/token", code_verifier=verifier, state=state,
                                            authorization_response=approved.headers["location"])
        # A payment on the installing merchant asks the app's checkout.before_payment hook.
        async with live.async_client(other_key) as api:
            # The demo app's required age checkbox (docs/api.md 14), ticked.
            _, payment = await _pay_embedded(api, _order("Hooked", 1500),
                                             app_fields={app.app_id: {"age_confirmed": True}})
            assert payment.json()["status"] == "succeeded", payment.text
            hook_calls = (await api.get(f"/v1/hook_calls?order={payment.json()['order_id']}")).json()
            assert hook_calls["data"][0]["outcome"] == "answered", hook_calls

        # Every delivery settled before the server stops (first attempts fail with 500, retries succeed).
        deadline = time.monotonic() + 30
        with connect(live.db_url.removeprefix("sqlite:///")) as conn:
            while conn.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'").fetchone()[0]:
                pending = conn.execute("SELECT d.id, d.attempts, d.next_attempt_at, e.url FROM webhook_deliveries d "
                                       "JOIN webhook_endpoints e ON e.id = d.endpoint_id "
                                       "WHERE d.status = 'pending'").fetchall()
                assert time.monotonic() < deadline, f"still pending after 30 s: {pending}\n{live.logs()[-3000:]}"
                await asyncio.sleep(0.1)
        listings = {}
        async with live.async_client(seeded.secret_key) as api:
            for path in LISTINGS:
                answer = await api.get(path)
                assert answer.status_code == 200, (path, answer.text)
                listings[path] = answer.json()
    finally:
        stop_server(live)
    return Demo(path=Path(live.db_url.removeprefix("sqlite:///")), merchant_id=seeded.merchant_id,
                secret_key=seeded.secret_key, webhook_secret=seeded.webhook_secret,
                app_webhook_secret=app.webhook_secret, app_id=app.app_id, other_key=other_key, app_token=dict(token),
                session_cookies=cookies, listings=listings, hook_calls=hook_calls, served_at=live.url)


@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Demo:
    return pg.run_in_thread(lambda: _build(tmp_path_factory.mktemp("demo"), receiver))


@pytest.fixture
def postgres(monkeypatch):
    if not pg.POSTGRES_URL:
        monkeypatch.setattr(pg, "POSTGRES_URL", POSTGRES_URL)


@pytest.fixture
def target(postgres):
    """A FLINT_DATABASE_URL for an empty PostgreSQL schema of this test's own."""
    schema, url = pg.create_schema()
    yield url
    pg.drop_schema(schema)


def flint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLINT_")}
    base.update(FLINT_SECRET_KEY=TEST_SECRET, FLINT_ENV="development", FLINT_LOG_LEVEL="WARNING")
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "flint.cli", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=180)


def copy_to(target: str, source: str) -> subprocess.CompletedProcess:
    return flint("copy", "--from", source, "--to", target)


def sqlite_tables(path: Path) -> list[str]:
    with connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'")]


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: [(v is None, str(v)) for v in row.values()])


def sqlite_rows(path: Path, table: str) -> list[dict]:
    with connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return _sorted([dict(r) for r in conn.execute(f'SELECT * FROM "{table}"')])


async def pg_rows(url: str, table: str) -> list[dict]:
    conn = await asyncpg.connect(url)
    try:
        return _sorted([dict(r) for r in await conn.fetch(f'SELECT * FROM "{table}"')])
    finally:
        await conn.close()


async def pg_counts(url: str) -> dict[str, int]:
    """Rows per table of the schema behind ``url`` (every table it has, schema_migrations too)."""
    conn = await asyncpg.connect(url)
    try:
        names = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        return {n: await conn.fetchval(f'SELECT COUNT(*) FROM "{n}"') for n in sorted(names)}
    finally:
        await conn.close()


async def pg_schema(url: str) -> list:
    """Columns, constraints and indexes of the schema behind ``url``, without its name."""
    conn = await asyncpg.connect(url)
    try:
        schema = await conn.fetchval("SELECT current_schema()")
        columns = await conn.fetch(
            """SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
               WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position""")
        constraints = await conn.fetch(
            """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
               JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = current_schema() ORDER BY 1, 2""")
        indexes = await conn.fetch("SELECT tablename, indexname, indexdef FROM pg_indexes "
                                   "WHERE schemaname = current_schema() ORDER BY 1, 2")
        return [tuple(str(v).replace(f"{schema}.", "") for v in row) for row in columns + constraints + indexes]
    finally:
        await conn.close()


async def migrated_schema() -> list:
    """What `flint migrate` makes on an empty PostgreSQL schema."""
    schema, url = pg.create_schema()
    try:
        assert flint("migrate", env={"FLINT_DATABASE_URL": url}).returncode == 0
        return await pg_schema(url)
    finally:
        pg.drop_schema(schema)


def typed(rows: list[dict]) -> list[dict]:
    """Values with their Python types, so 1 and 1.0 or "1" differ."""
    return [{k: (type(v).__name__, v) for k, v in row.items()} for row in rows]


def clone(demo: Demo, tmp: Path) -> Path:
    """A private copy of the demo database to change (WAL, like a live Flint's)."""
    path = tmp / "source.sqlite3"
    with connect(demo.path) as src, connect(path) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    return path


# --- the whole move ------------------------------------------------------------------------------

async def test_flint_copy_moves_everything_and_flint_runs_on_the_copy(demo: Demo, target: str, receiver: Receiver,
                                                                      tmp_path: Path):
    tables = sqlite_tables(demo.path)
    source = {t: len(sqlite_rows(demo.path, t)) for t in tables}
    assert all(source.values()), f"the demo database should fill every table: {source}"
    before = demo.path.read_bytes()

    done = copy_to(target, demo.url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["copied"] == source and report["rows"] == sum(source.values())
    assert report["schema_version"] == LATEST and report["secret_key"] == "matches"
    assert "FLINT_SECRET_KEY" in report["next"]
    assert demo.path.read_bytes() == before  # the source is only read
    # Keys, indexes and foreign keys are built after loading: exactly as the migrations make them.
    assert await pg_schema(target) == await migrated_schema()

    # Every row of every table, field by field, with its type (TEXT timestamps, BIGINT amounts, 0/1
    # flags, hashed keys, sealed secrets): a demo database is small enough to compare whole.
    for table in tables:
        assert typed(await pg_rows(target, table)) == typed(sqlite_rows(demo.path, table)), table
    events = sqlite_rows(demo.path, "events")
    assert len(events) > 20
    conn = await asyncpg.connect(target)
    try:  # and a sample read back by id, as Flint reads them
        for event in random.Random(7).sample(events, 20):
            assert dict(await conn.fetchrow("SELECT * FROM events WHERE id = $1", event["id"])) == event
    finally:
        await conn.close()

    live = start_server(tmp_path, db_url=target)
    try:
        async with live.async_client(demo.secret_key) as api:
            # The API key (stored as a digest) still works, and the API shows exactly what SQLite showed.
            assert (await api.get("/v1/merchant")).json()["id"] == demo.merchant_id
            for path, answer in demo.listings.items():
                got = await api.get(path)
                if not path.startswith("/v1/events"):  # links are shown on this server's URL; events as sent
                    answer = json.loads(json.dumps(answer).replace(demo.served_at, live.url))
                assert got.status_code == 200 and got.json() == answer, path
            orders = (await api.get("/v1/orders?limit=100")).json()["data"]
            assert {o["status"] for o in orders} >= {"open", "paid", "canceled"}

            # New business on PostgreSQL: an order paid, its webhooks signed with the secret sealed on SQLite.
            shop_before = len(receiver.at("/shop/webhooks"))
            session, paid = await _pay_embedded(api, _order("Nach dem Umzug", 3300))
            assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
            assert (await api.get(f"/v1/orders/{session['order_id']}")).json()["status"] == "paid"
            deadline = time.monotonic() + 20
            while not (mine := [r for r in receiver.at("/shop/webhooks")[shop_before:]
                                if session["order_id"].encode() in r.body]):
                assert time.monotonic() < deadline, "no webhook about the new order reached the shop in 20 s"
                await asyncio.sleep(0.05)
            for request in mine:
                Webhook(demo.webhook_secret).verify(request.body, request.headers)

        # The app's OAuth token on the merchant who installed it and the signed-in merchant's cookie
        # (both stored hashed) still work.
        hooked_order = demo.hook_calls["data"][0]["order_id"]
        async with AsyncOAuth2Client(token=demo.app_token) as app:
            assert (await app.get(f"{live.url}/v1/orders/{hooked_order}")).status_code == 200
        async with httpx.AsyncClient(base_url=live.url, cookies=demo.session_cookies, timeout=30) as browser:
            account = await browser.get("/account")
            assert account.status_code == 200 and DEMO_EMAIL in account.text

        # The installing merchant's hook calls list as before, and its next payment asks the app's hook,
        # signed with the app's secret sealed on SQLite.
        async with live.async_client(demo.other_key) as api:
            assert (await api.get(f"/v1/hook_calls?order={hooked_order}")).json() == demo.hook_calls
            hooks_before = len(receiver.at("/app/hook"))
            _, paid = await _pay_embedded(api, _order("Hooked again", 1800),
                                          app_fields={demo.app_id: {"age_confirmed": True}})
            assert paid.json()["status"] == "succeeded", paid.text
            [hook] = receiver.wait_for("/app/hook", hooks_before + 1)[hooks_before:]
            Webhook(demo.app_webhook_secret).verify(hook.body, hook.headers)
    finally:
        stop_server(live)
    assert "Traceback" not in live.logs()


async def test_a_secret_key_that_does_not_open_the_sources_secrets_is_reported(demo: Demo, target: str):
    done = flint("copy", "--from", demo.url, "--to", target, env={"FLINT_SECRET_KEY": "not-the-key-flint-ran-with"})
    assert done.returncode == 0, done.stderr  # the copy is exact either way; the new deployment needs the old key
    assert json.loads(done.stdout)["secret_key"].startswith("does not match")
    assert "warning: FLINT_SECRET_KEY does not match" in done.stderr


def test_without_flint_secret_key_the_development_key_beside_the_source_is_checked(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'flint.sqlite3'}"
    assert db_copy.secret_keys_for_check(url, {"FLINT_SECRET_KEY": "k"}, ("k",)) == (("k",), None)
    assert db_copy.secret_keys_for_check(url, {}, ("generated",)) == (None, None)
    (tmp_path / "flint-dev-secret-key").write_text("dev-key\n")
    assert db_copy.secret_keys_for_check(url, {}, ("generated",)) == (("dev-key",), str(tmp_path / "flint-dev-secret-key"))


# --- refusals: nothing written --------------------------------------------------------------------

async def test_a_target_holding_data_is_refused_and_left_as_it_was(demo: Demo, target: str):
    made = flint("merchants", "create", "--name", "Already here", "--email", "here@pg.example",
                 "--password", PASSWORD, "--json", env={"FLINT_DATABASE_URL": target})
    assert made.returncode == 0, made.stderr
    before = await pg_counts(target)
    rows_before = await pg_rows(target, "merchants")

    refused = copy_to(target, demo.url)
    assert refused.returncode != 0 and refused.stdout == ""
    assert "already holds data (merchants, api_keys, staff not empty)" in refused.stderr
    assert await pg_counts(target) == before and await pg_rows(target, "merchants") == rows_before


async def test_copying_twice_into_the_same_target_is_refused(demo: Demo, target: str):
    assert copy_to(target, demo.url).returncode == 0
    before = await pg_counts(target)
    again = copy_to(target, demo.url)
    assert again.returncode != 0 and "already holds data" in again.stderr
    assert await pg_counts(target) == before


async def test_an_older_source_schema_is_refused_until_flint_migrate_runs_on_it(tmp_path: Path, target: str):
    path = tmp_path / "old.sqlite3"
    db = await open_database(f"sqlite:///{path}")
    try:
        await migrate(db, target=LATEST - 2)
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO merchants (id, name, email, password_hash, allowed_origins, created_at) "
                "VALUES ('mer_old', 'Old Shop', 'old@shop.example', 'x', '[]', '2026-01-01T00:00:00.000000Z')")
    finally:
        await db.close()
    source_env = {"FLINT_DATABASE_URL": f"sqlite:///{path}"}  # --from defaults to FLINT_DATABASE_URL

    refused = flint("copy", "--to", target, env=source_env)
    assert refused.returncode != 0 and refused.stdout == ""
    assert "older than this Flint" in refused.stderr and "run `flint migrate` on the source first" in refused.stderr
    assert await pg_counts(target) == {}  # not even migrated

    assert flint("migrate", env=source_env).returncode == 0
    done = flint("copy", "--to", target, env=source_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["copied"]["merchants"] == 1
    assert (await pg_rows(target, "merchants"))[0]["name"] == "Old Shop"


async def test_a_source_newer_than_this_flint_is_refused(demo: Demo, tmp_path: Path, target: str):
    path = clone(demo, tmp_path)
    with connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (9999, 'future', '2030-01-01T00:00:00.000000Z')")
    refused = copy_to(target, f"sqlite:///{path}")
    assert refused.returncode != 0 and "newer than this Flint (it has migration 9999" in refused.stderr
    assert await pg_counts(target) == {}


async def test_values_postgresql_would_not_store_exactly_are_refused_before_anything_is_written(
        demo: Demo, tmp_path: Path, target: str):
    path = clone(demo, tmp_path)
    with connect(path) as conn:  # SQLite keeps a REAL in a BIGINT column; COPY would truncate it
        order_id = conn.execute("SELECT id FROM orders ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("UPDATE orders SET amount_total = amount_total + 0.5 WHERE id = ?", (order_id,))
    refused = copy_to(target, f"sqlite:///{path}")
    assert refused.returncode != 0
    assert f"1 row(s) of orders hold a value PostgreSQL would not store exactly, e.g. id = '{order_id}': " \
           f"amount_total (BIGINT) is real" in refused.stderr
    assert await pg_counts(target) == {}


# --- failures: the target is left empty -----------------------------------------------------------

async def test_a_copy_failing_half_way_leaves_the_target_empty_and_can_be_run_again(
        demo: Demo, tmp_path: Path, target: str):
    path = clone(demo, tmp_path)
    with connect(path) as conn:
        order = db_copy.copy_order(db_copy.describe(conn))
        last = order[-1]
        keys = {fk[3] for fk in conn.execute(f'PRAGMA foreign_key_list("{last.name}")')}
        text_column = next(c for c, t in zip(last.columns, last.types) if t == "TEXT" and c != "id" and c not in keys)
        rowid, value = conn.execute(f'SELECT rowid, "{text_column}" FROM "{last.name}" LIMIT 1').fetchone()
        # A NUL character: SQLite stores it, PostgreSQL text cannot; the last table copied fails.
        conn.execute(f'UPDATE "{last.name}" SET "{text_column}" = ? WHERE rowid = ?', (value + "\x00", rowid))
    failed = copy_to(target, f"sqlite:///{path}")
    assert failed.returncode != 0 and failed.stdout == ""
    assert f"copying {last.name} failed" in failed.stderr and "the target is migrated and empty" in failed.stderr
    counts = await pg_counts(target)
    assert counts.pop("schema_migrations") == len(available()) and set(counts.values()) == {0}
    assert set(counts) == {t.name for t in order}
    assert await pg_schema(target) == await migrated_schema()  # keys and indexes dropped for the load are back

    with connect(path) as conn:  # fixed, the same command fills the same target
        conn.execute(f'UPDATE "{last.name}" SET "{text_column}" = ? WHERE rowid = ?', (value, rowid))
    done = copy_to(target, f"sqlite:///{path}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["copied"] == {t: len(sqlite_rows(path, t)) for t in sqlite_tables(path)}


async def test_a_row_whose_parent_is_missing_is_refused_and_the_foreign_keys_built_after_loading_catch_it(
        demo: Demo, tmp_path: Path, target: str, monkeypatch):
    path = clone(demo, tmp_path)
    with connect(path) as conn:  # foreign keys are off on a plain sqlite3 connection
        conn.execute("INSERT INTO webhook_attempts (id, delivery_id, attempted_at, duration_ms) "
                     "VALUES ('wa_orphan', 'wd_gone', '2026-01-01T00:00:00.000000Z', 5)")
    refused = copy_to(target, f"sqlite:///{path}")
    assert refused.returncode != 0 and "1 row(s) of the source reference rows that do not exist, e.g. " \
        "webhook_attempts rowid" in refused.stderr
    assert await pg_counts(target) == {}  # checked before anything was written

    # Without that check, the foreign key rebuilt after the load refuses it, and nothing stays.
    monkeypatch.setattr(db_copy, "check_foreign_keys", lambda conn: None)
    with pytest.raises(db_copy.CopyError, match="break a constraint.*webhook_attempts_delivery_id_fkey"):
        await db_copy.copy_database(f"sqlite:///{path}", target)
    counts = await pg_counts(target)
    assert counts.pop("schema_migrations") == len(available()) and set(counts.values()) == {0}
    assert await pg_schema(target) == await migrated_schema()


async def test_a_source_written_to_during_the_copy_is_refused_and_the_target_left_empty(
        demo: Demo, tmp_path: Path, target: str, monkeypatch):
    path = clone(demo, tmp_path)
    reads = db_copy.rows_of

    def rows_of_while_someone_writes(conn, table, counter):
        if table.name == "orders":  # a flint serve still running on the source commits a change
            with connect(path) as writer:
                writer.execute("UPDATE merchants SET name = name || ' (changed)'")
        return reads(conn, table, counter)

    monkeypatch.setattr(db_copy, "rows_of", rows_of_while_someone_writes)
    with pytest.raises(db_copy.CopyError, match="the source was written to while it was copied"):
        await db_copy.copy_database(f"sqlite:///{path}", target)
    counts = await pg_counts(target)
    counts.pop("schema_migrations")
    assert set(counts.values()) == {0}


# --- the order of tables --------------------------------------------------------------------------

async def test_the_copy_order_covers_every_table_with_parents_first(tmp_path: Path):
    db = await open_database(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    try:
        await migrate(db)
    finally:
        await db.close()
    with connect(tmp_path / "fresh.sqlite3") as conn:
        order = db_copy.copy_order(db_copy.describe(conn))
        names = [t.name for t in order]
        assert sorted(names) == sorted(sqlite_tables(tmp_path / "fresh.sqlite3"))
        for table in names:
            for fk in conn.execute(f'PRAGMA foreign_key_list("{table}")'):
                assert fk[2] == table or names.index(fk[2]) < names.index(table), (fk[2], table)
    assert names.index("merchants") == 0 and names.index("orders") < names.index("payments") < names.index("refunds")


def test_a_foreign_key_cycle_is_reported():
    tables = [db_copy.Table("a", ["id"], ["TEXT"], {"b"}), db_copy.Table("b", ["id"], ["TEXT"], {"a"}),
              db_copy.Table("c", ["id"], ["TEXT"], {"c"})]
    with pytest.raises(db_copy.CopyError, match="cycle.*a, b"):
        db_copy.copy_order(tables)
    assert [t.name for t in db_copy.copy_order(tables[2:])] == ["c"]  # a table may reference itself


def test_urls_are_checked_and_passwords_never_printed():
    with pytest.raises(db_copy.CopyError, match="the source must be a SQLite database"):
        db_copy.sqlite_path("postgresql://u:pw@h/db")
    with pytest.raises(db_copy.CopyError, match="the target must be a PostgreSQL database"):
        db_copy.check_target_url("sqlite:///x.sqlite3")
    assert db_copy.redact("postgresql://flint:s3cret@db.internal:5432/flint") == \
        "postgresql://flint:***@db.internal:5432/flint"
    assert db_copy.redact("postgresql://db.internal/flint?user=flint&password=s3cret&sslmode=require") == \
        "postgresql://db.internal/flint?user=flint&password=***&sslmode=require"
    assert db_copy.redact(POSTGRES_URL) == POSTGRES_URL


async def test_a_missing_source_is_refused(tmp_path: Path, target: str):
    refused = copy_to(target, f"sqlite:///{tmp_path / 'nope.sqlite3'}")
    assert refused.returncode != 0 and "there is no SQLite database at" in refused.stderr
    assert not (tmp_path / "nope.sqlite3").exists() and await pg_counts(target) == {}

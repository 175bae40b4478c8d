"""The right to erasure (docs/api.md 14): POST /v1/orders/{id}/redact erases the buyer's personal data
(customer, customer_email, custom field and app field values) from the order and every stored event of
it, in any status, keeping amounts, statuses and the merchant's reference and metadata; records
``order.redacted`` once; and leaves no copy in the database: not in a row (both engines, every table,
webhook deliveries and attempts included), and on SQLite not in the database file or its WAL either
(scanned as tests/test_card_data.py scans them for card numbers)."""
from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import httpx
import pytest

from flint import clock
from flint.actors import Actor
from flint.apps import service as apps
from flint.closing import service as closing
from flint.collect import service as collect
from flint.errors import FlintError
from flint.merchants import service as merchants
from flint.orders import service as orders
from flint.orders import store as order_store
from flint.orders.models import LineItem, NewOrder
from flint.runtime import Runtime
from flint.webhooks import service as webhooks
from support.factories import make_merchant, make_session, pay_session
from support.oauth import PASSWORD, install
from support.receiver import Receiver
from support.server import start_server, stop_server
from tests.conftest import SERVER_BACKEND, fresh_database
from tests.pg import table_names

EMAIL, NAME, PHONE, STREET = "ada@example.com", "Ada Lovelace", "+4930123456", "Unter den Linden"
GIFT_NOTE = "Tea for the Analytical Engine club"  # a custom field's value
BIRTH_DATE = "1815-12-10"  # an app's checkout field's value
PERSONAL = (EMAIL, NAME, PHONE, STREET, "Analytical Engine", BIRTH_DATE)
BERLIN = {"country": "DE", "line1": "Unter den Linden 1", "line2": None, "city": "Berlin", "postal_code": "10117",
          "state": None}
CUSTOMER = {"email": EMAIL, "name": NAME, "phone": PHONE, "billing_address": None, "shipping_address": BERLIN}
APP = "app_agecheck"  # an app's entry in extension_data: its annotation stays, its buyer's fields go
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


# -- looking inside the database ----------------------------------------------------------------------

async def rows_holding(rt: Runtime, needles=PERSONAL) -> dict[str, set[str]]:
    """Which tables hold which of ``needles`` in some row (every column as text), on either engine."""
    found: dict[str, set[str]] = {}
    async with rt.db.read() as conn:
        for table in await table_names(conn):
            for row in await conn.fetch_all(f"SELECT * FROM {table}"):
                text = " ".join(str(value) for value in row.values())
                for needle in needles:
                    if needle in text:
                        found.setdefault(table, set()).add(needle)
    return found


def sqlite_files(db_url: str) -> list[Path]:
    """The database file, its -wal and its -shm."""
    path = Path(db_url.removeprefix("sqlite:///"))
    return sorted(path.parent.glob(path.name + "*"))


def in_sqlite_files(db_url: str, needles=PERSONAL) -> set[str]:
    """Which of ``needles`` the raw bytes of the database's files hold, free pages and old WAL frames
    included: what someone with a copy of the files could read."""
    raw = b"".join(path.read_bytes() for path in sqlite_files(db_url))
    return {needle for needle in needles if needle.encode() in raw}


# -- service level, both engines ------------------------------------------------------------------------

async def give_buyer_details(rt: Runtime, order_id: str, customer=CUSTOMER, custom=None, app_fields=None) -> None:
    """What the confirm path keeps when an attempt begins (collect.service.begin_attempt), written as it
    writes it: under the order's lock, through the orders store."""
    async with rt.db.transaction() as conn:
        assert await order_store.select_order_by_id(conn, order_id, for_update=True) is not None
        now = clock.now_iso()
        await order_store.record_buyer_details(conn, order_id, customer=customer,
                                               custom_fields=custom or {"gift_note": GIFT_NOTE}, at=now)
        await order_store.merge_extension_data(conn, order_id, {APP: {"checked": True}}, now,
                                               fields={APP: app_fields or {"birth_date": BIRTH_DATE}})


async def order_with_buyer(rt: Runtime, merchant_id: str):
    order = await orders.create_order(
        rt, merchant_id, NewOrder(currency="eur", line_items=[LineItem("Tea", 2, 1250)], customer_email=EMAIL,
                                  reference="A-1001", metadata={"cart": "c_1"}),
        Actor("merchant", merchant_id))
    session = await make_session(rt, merchant_id, order_id=order.id)
    await give_buyer_details(rt, order.id)
    return order, session


async def event_texts(rt: Runtime, merchant_id: str, order_id: str) -> list[tuple[str, str]]:
    listed, has_more = await orders.list_order_events(rt, merchant_id, order_id, 0, 100)
    assert not has_more
    return [(event.type, event.data) for event in listed]


async def test_a_paid_orders_buyer_data_leaves_the_order_its_events_and_the_database(rt):
    merchant, _ = await make_merchant(rt)
    actor = Actor("merchant", merchant.id)
    await webhooks.create_endpoint(rt, merchant.id, url="http://127.0.0.1:9/all", events=["*"], description=None)
    order, session = await order_with_buyer(rt, merchant.id)
    paid = await pay_session(rt, session)
    assert paid.status == "succeeded"
    before = await orders.get_order(rt, merchant.id, order.id)
    assert before.to_dict()["customer"] == CUSTOMER and before.to_dict()["extension_data"][APP]["fields"]
    # The scans see the data while it is there (so their silence afterwards means something).
    stored = await rows_holding(rt)
    assert stored["orders"] == set(PERSONAL) and stored["events"] == set(PERSONAL), stored
    if rt.db.dialect == "sqlite":
        assert in_sqlite_files(rt.config.database_url) == set(PERSONAL)
    events_before = await event_texts(rt, merchant.id, order.id)
    assert [t for t, _ in events_before] == ["order.created", "checkout.session.created", "payment.succeeded",
                                             "order.paid", "checkout.session.completed"]

    redacted = await orders.redact_order(rt, merchant.id, order.id, actor)

    view = redacted.to_dict()
    assert (view["customer"], view["custom_fields"], view["customer_email"]) == (None, {}, None)
    assert view["extension_data"] == {APP: {"checked": True}}  # the app's annotation stays, the buyer's fields go
    assert view["redacted_at"] is not None
    kept = ("status", "amount_total", "amount_paid", "amount_refunded", "line_items", "reference", "metadata",
            "currency", "created_at")
    assert {k: view[k] for k in kept} == {k: before.to_dict()[k] for k in kept}
    assert view["status"] == "paid" and view["amount_paid"] == 2500
    assert (await orders.get_order(rt, merchant.id, order.id)).to_dict() == view

    events_after = await event_texts(rt, merchant.id, order.id)
    assert [t for t, _ in events_after] == [t for t, _ in events_before] + ["order.redacted"]
    for _, data in events_after:
        assert not [needle for needle in PERSONAL if needle in data], data
    snapshots = {t: json.loads(data)["object"] for t, data in events_after}
    assert snapshots["order.redacted"] == view
    # Old snapshots keep what they said about the money and the status, and the merchant's own data.
    assert (snapshots["order.paid"]["status"], snapshots["order.paid"]["amount_paid"]) == ("paid", 2500)
    assert snapshots["order.created"]["reference"] == "A-1001" and snapshots["order.created"]["customer_email"] is None
    assert snapshots["payment.succeeded"]["card"]["last4"] == "4242"  # a payment's card data is not the buyer's

    assert await rows_holding(rt) == {}  # no row anywhere: orders, events, deliveries, attempts, ...
    if rt.db.dialect == "sqlite":
        assert in_sqlite_files(rt.config.database_url) == set()
        assert Path(rt.config.database_url.removeprefix("sqlite:///") + "-wal").stat().st_size == 0
    async with rt.db.read() as conn:
        queued = await conn.fetch_all("SELECT event_type FROM webhook_deliveries WHERE merchant_id = :m",
                                      {"m": merchant.id})
    assert [r["event_type"] for r in queued].count("order.redacted") == 1  # it goes out like any order event

    # Redacting again: the order as it is, no second event.
    again = await orders.redact_order(rt, merchant.id, order.id, actor)
    assert again.to_dict() == view
    assert [t for t, _ in await event_texts(rt, merchant.id, order.id)].count("order.redacted") == 1


async def test_another_merchants_order_is_not_found_and_keeps_its_data(rt):
    owner, _ = await make_merchant(rt)
    stranger, _ = await make_merchant(rt)
    order, _ = await order_with_buyer(rt, owner.id)
    with pytest.raises(FlintError) as refused:
        await orders.redact_order(rt, stranger.id, order.id, Actor("merchant", stranger.id))
    assert (refused.value.status, refused.value.code) == (404, "order_not_found")
    kept = await orders.get_order(rt, owner.id, order.id)
    assert kept.redacted_at is None and kept.to_dict()["customer"] == CUSTOMER and kept.customer_email == EMAIL
    assert [t for t, _ in await event_texts(rt, owner.id, order.id)] == ["order.created", "checkout.session.created"]


async def test_a_canceled_order_is_redacted_and_stays_canceled(rt):
    merchant, _ = await make_merchant(rt)
    order, _ = await order_with_buyer(rt, merchant.id)
    await closing.cancel_order(rt, merchant.id, order.id, Actor("merchant", merchant.id))
    redacted = await orders.redact_order(rt, merchant.id, order.id, Actor("merchant", merchant.id))
    assert (redacted.status, redacted.customer, redacted.customer_email) == ("canceled", None, None)
    texts = await event_texts(rt, merchant.id, order.id)
    assert [t for t, _ in texts][-2:] == ["checkout.session.expired", "order.redacted"]
    assert not [needle for _, data in texts for needle in PERSONAL if needle in data]


async def test_a_payment_in_flight_does_not_bring_the_data_back(rt):
    """Redaction waits for no attempt (it takes the order's lock, as an attempt's start does): a 3-D
    Secure challenge pending at the time completes afterwards, and what it records snapshots the
    redacted order."""
    merchant, _ = await make_merchant(rt)
    order, session = await order_with_buyer(rt, merchant.id)
    challenged = await pay_session(rt, session, "4000002760003184")
    assert challenged.status == "requires_action"
    assert (await orders.get_order(rt, merchant.id, order.id)).attempt_payment_id == challenged.id
    redacted = await orders.redact_order(rt, merchant.id, order.id, Actor("merchant", merchant.id))
    assert (redacted.status, redacted.customer) == ("open", None)
    done = await collect.resolve_challenge(rt, merchant.id, challenged.id, True, Actor("buyer", session.id))
    assert done.status == "succeeded"
    final = await orders.get_order(rt, merchant.id, order.id)
    assert (final.status, final.customer, final.customer_email, final.redacted_at) == \
        ("paid", None, None, redacted.redacted_at)
    texts = await event_texts(rt, merchant.id, order.id)
    assert "order.paid" in [t for t, _ in texts] and [t for t, _ in texts].count("order.redacted") == 1
    assert not [needle for _, data in texts for needle in PERSONAL if needle in data]
    assert await rows_holding(rt) == {}


async def test_details_given_after_a_redaction_are_erased_by_the_next_one(rt):
    merchant, _ = await make_merchant(rt)
    actor = Actor("merchant", merchant.id)
    order, _ = await order_with_buyer(rt, merchant.id)
    first = await orders.redact_order(rt, merchant.id, order.id, actor)
    # The buyer pays the still open order later and gives their details again: new data.
    await give_buyer_details(rt, order.id)
    assert (await orders.get_order(rt, merchant.id, order.id)).customer is not None
    second = await orders.redact_order(rt, merchant.id, order.id, actor)
    assert (second.customer, second.customer_email, second.custom_fields) == (None, None, "{}")
    assert second.redacted_at >= first.redacted_at
    assert [t for t, _ in await event_texts(rt, merchant.id, order.id)].count("order.redacted") == 2
    assert await rows_holding(rt) == {}


# -- over HTTP, with real webhooks, a real app and the server's own database files -----------------------

@pytest.fixture(scope="module")
def receiver():
    live = Receiver().start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def erasure_server(tmp_path_factory: pytest.TempPathFactory):
    """A server of this module's own (its database holds only what these tests write, so its files can
    be scanned), whose failed deliveries wait ten minutes: a pending delivery stays pending until the
    test retries it."""
    tmp = tmp_path_factory.mktemp("erasure")
    cleanups: list = []
    live = start_server(tmp, db_url=fresh_database(SERVER_BACKEND, tmp, cleanups), extra_env={
        "FLINT_WEBHOOK_RETRY_SCHEDULE": "600,600", "FLINT_WEBHOOK_POLL_INTERVAL": "0.05"})
    yield live
    stop_server(live)
    for cleanup in cleanups:
        cleanup()


@pytest.fixture
async def inside(erasure_server):
    """A Runtime over the server's database, to set things up and look inside."""
    runtime = await Runtime.start(erasure_server.runtime_config())
    yield runtime
    await runtime.stop()


async def new_shop(rt: Runtime, name: str):
    return await merchants.create_merchant(rt, name=name, email=f"{secrets.token_hex(4)}@shop.example",
                                           password=PASSWORD)


async def wait_until(check, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        await asyncio.sleep(0.05)


async def test_redact_over_http_erases_everywhere_and_tells_the_webhooks(erasure_server, inside, receiver):
    server = erasure_server
    shop, key = await new_shop(inside, "Erasure")
    _, stranger_key = await new_shop(inside, "Stranger")
    developer, _ = await new_shop(inside, "Age checks")
    app, client_secret, _ = await apps.create_app(
        inside, developer.id, name="Age check", redirect_uris=["http://127.0.0.1:9/callback"], scopes=["orders:read"],
        checkout_fields=[{"key": "birth_date", "label": "Date of birth", "type": "text", "required": False}])
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await install(server, browser, app, client_secret, shop.email, scope="orders:read")
    ok, down = f"/ok-{secrets.token_hex(3)}", f"/down-{secrets.token_hex(3)}"
    receiver.script(down, [500])

    async with server.async_client(key) as owner:
        endpoints = {}
        for path in (ok, down):
            made = await owner.post("/v1/webhook_endpoints", json={"url": receiver.url(path), "events": ["*"]})
            assert made.status_code == 200, made.text
            endpoints[path] = made.json()["id"]
        created = await owner.post("/v1/checkout/sessions", json={
            "order": {"currency": "eur", "line_items": [{"name": "Tea", "quantity": 2, "unit_amount": 1250}],
                      "customer_email": EMAIL, "reference": "A-1001", "metadata": {"cart": "c_1"}},
            "mode": "embedded", "success_url": "https://shop.example/thanks",
            "collect": {"email": "required", "phone": "optional", "shipping_address": {"allowed_countries": ["DE"]}},
            "custom_fields": [{"key": "gift_note", "label": "Gift note", "type": "text", "required": False}]})
        assert created.status_code == 200, created.text
        session = created.json()
        order_id = session["order_id"]
        async with server.async_client(session["client_token"]) as buyer:
            paid = await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={
                "card": CARD,
                "customer": {"email": EMAIL, "name": NAME, "phone": PHONE, "shipping_address": {
                    "country": "DE", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"}},
                "custom_fields": {"gift_note": GIFT_NOTE},
                "app_fields": {app.id: {"birth_date": BIRTH_DATE}}})
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
        before = (await owner.get(f"/v1/orders/{order_id}")).json()
        assert before["customer"]["name"] == NAME and before["customer"]["shipping_address"]["line1"].startswith(STREET)
        assert before["custom_fields"] == {"gift_note": GIFT_NOTE}
        assert before["extension_data"][app.id]["fields"] == {"birth_date": BIRTH_DATE}

        # Delivered to one endpoint, pending (failed once, next try in ten minutes) at the other.
        story = ["order.created", "checkout.session.created", "payment.succeeded", "order.paid",
                 "checkout.session.completed"]
        # (Sent side by side, they may arrive in any order.)
        assert sorted(json.loads(r.body)["type"] for r in receiver.wait_for(ok, 5)) == sorted(story)
        receiver.wait_for(down, 5)

        async def deliveries(path):
            listed = await owner.get(f"/v1/webhook_endpoints/{endpoints[path]}/deliveries", params={"limit": 100})
            return listed.json()["data"]

        async def settled():
            return ({d["status"] for d in await deliveries(ok)} == {"succeeded"} and
                    {(d["status"], d["attempts"]) for d in await deliveries(down)} == {("pending", 1)})

        await wait_until(settled, "the deliveries' outcomes")

        # The scans see the data now, so their silence later means something.
        assert (await rows_holding(inside))["events"] == set(PERSONAL)
        if server.db_url.startswith("sqlite:///"):
            assert in_sqlite_files(server.db_url) == set(PERSONAL)

        # Another merchant cannot redact it (404, as for any order not theirs), and nothing changes.
        async with server.async_client(stranger_key) as theirs:
            refused = await theirs.post(f"/v1/orders/{order_id}/redact")
        assert (refused.status_code, refused.json()["code"]) == (404, "order_not_found")
        assert (await owner.get(f"/v1/orders/{order_id}")).json() == before

        redacted = await owner.post(f"/v1/orders/{order_id}/redact")
        assert redacted.status_code == 200, redacted.text
        view = redacted.json()
        assert (view["customer"], view["custom_fields"], view["customer_email"]) == (None, {}, None)
        assert "fields" not in view["extension_data"].get(app.id, {}) and view["redacted_at"]
        unchanged = ("status", "amount_total", "amount_paid", "amount_refunded", "amount_refundable", "line_items",
                     "reference", "metadata", "currency")
        assert {k: view[k] for k in unchanged} == {k: before[k] for k in unchanged}
        assert (await owner.get(f"/v1/orders/{order_id}")).json() == view

        events = (await owner.get(f"/v1/orders/{order_id}/events")).json()["data"]
        assert [e["type"] for e in events] == story + ["order.redacted"]
        assert not [needle for needle in PERSONAL if needle in json.dumps(events)]
        assert events[-1]["data"]["object"] == view and events[-1]["actor"] == {"type": "merchant", "id": shop.id}

        # Twice: the order as it is, one event.
        again = await owner.post(f"/v1/orders/{order_id}/redact")
        assert (again.status_code, again.json()) == (200, view)
        assert len((await owner.get(f"/v1/orders/{order_id}/events")).json()["data"]) == len(events)

        # The webhook: order.redacted goes out like any order event, with the redacted order.
        told = json.loads(receiver.wait_for(ok, 6)[5].body)
        assert told["type"] == "order.redacted" and told["data"]["object"]["customer"] is None

        # A pending delivery sent after the redaction carries the redacted snapshot: deliveries keep no
        # copy of the body, the worker builds it from the (rewritten) event.
        receiver.script(down, [200])
        order_paid = next(e for e in events if e["type"] == "order.paid")
        pending = next(d for d in await deliveries(down) if d["event_id"] == order_paid["id"])
        retried = await owner.post(f"/v1/webhook_deliveries/{pending['id']}/retry")
        assert retried.status_code == 200, retried.text

        def sends_of_order_paid():
            return [r for r in receiver.at(down) if r.headers.get("webhook-id") == order_paid["id"]]

        async def retried_once():
            return len(sends_of_order_paid()) >= 2  # the failed first attempt, then the retry

        await wait_until(retried_once, "the retried delivery")
        sent = sends_of_order_paid()
        body = json.loads(sent[-1].body)
        assert body["data"]["object"]["customer"] is None and body["data"]["object"]["amount_paid"] == 2500
        assert not [needle for needle in PERSONAL if needle in sent[-1].body.decode()]

    # Nothing anywhere in the database: no row of any table, and on SQLite not in the files, WAL included.
    assert await rows_holding(inside) == {}
    if server.db_url.startswith("sqlite:///"):
        assert in_sqlite_files(server.db_url) == set()


async def test_apps_redact_with_orders_write_only(erasure_server, inside):
    """The scope is the one that cancels (orders:write); an app reading orders only gets 403 and the
    order keeps its data."""
    server = erasure_server
    shop, key = await new_shop(inside, "Scoped")
    developer, _ = await new_shop(inside, "Developer")
    grace = {"email": "grace@example.com", "name": "Grace Hopper", "phone": None, "billing_address": None,
             "shipping_address": None}
    tokens = {}
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        for scopes in ("orders:read", "orders:read orders:write"):
            app, client_secret, _ = await apps.create_app(
                inside, developer.id, name=f"App {len(tokens)}", redirect_uris=["http://127.0.0.1:9/callback"],
                scopes=scopes.split())
            token, _ = await install(server, browser, app, client_secret, shop.email, scope=scopes)
            tokens[scopes] = (app, token["access_token"])
    async with server.async_client(key) as owner:
        order = (await owner.post("/v1/orders", json={
            "currency": "usd", "line_items": [{"name": "Cup", "quantity": 1, "unit_amount": 900}]})).json()
    await give_buyer_details(inside, order["id"], customer=grace, custom={"note": "Grace's COBOL notes"},
                             app_fields={"badge": "Rear Admiral Grace"})
    async with server.async_client(key) as owner:
        before = (await owner.get(f"/v1/orders/{order['id']}")).json()
        assert before["customer"] == grace and before["customer_email"] == "grace@example.com"

        _, reader = tokens["orders:read"]
        async with server.async_client(reader) as app_client:
            refused = await app_client.post(f"/v1/orders/{order['id']}/redact")
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
        assert (await owner.get(f"/v1/orders/{order['id']}")).json() == before

        writer_app, writer = tokens["orders:read orders:write"]
        async with server.async_client(writer) as app_client:
            redacted = await app_client.post(f"/v1/orders/{order['id']}/redact")
        assert redacted.status_code == 200, redacted.text
        assert (redacted.json()["status"], redacted.json()["customer"], redacted.json()["customer_email"]) == \
            ("open", None, None)
        events = (await owner.get(f"/v1/orders/{order['id']}/events")).json()["data"]
    assert events[-1]["type"] == "order.redacted" and events[-1]["actor"] == {"type": "app", "id": writer_app.id}
    assert await rows_holding(inside, ("grace@example.com", "Grace Hopper", "COBOL", "Rear Admiral")) == {}

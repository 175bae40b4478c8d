"""The webhook endpoints API over real HTTP, the outbound-safety rules, and the pieces under them
(signing against the standardwebhooks package, secrets encrypted at rest, filters)."""
from __future__ import annotations

import ipaddress
import json
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from flint.events import service as events
from flint.actors import SYSTEM
from flint.ids import new_id
from flint.security import SecretBox
from flint.webhooks import egress, signing
from flint.webhooks.service import matches
from support import TEST_SECRET
from support.server import start_server, stop_server
from support.factories import make_merchant

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}


@pytest.fixture
def merchant_api(hook_server, hook_merchant):
    _, key = hook_merchant
    with hook_server.client(key) as client:
        yield client


def test_create_shows_the_secret_once_and_never_again(merchant_api, receiver):
    created = merchant_api.post("/v1/webhook_endpoints", json={
        "url": receiver.url("/api"), "events": ["order.paid", "payment.*", "order.paid"], "description": "ERP"})
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["id"].startswith("we_") and body["object"] == "webhook_endpoint"
    assert body["events"] == ["order.paid", "payment.*"]  # deduplicated, sorted
    assert (body["status"], body["description"], body["disabled_reason"]) == ("enabled", "ERP", None)
    secret = body["secret"]
    shown = merchant_api.get(f"/v1/webhook_endpoints/{body['id']}").json()
    assert "secret" not in shown or shown["secret"] is None
    listed = merchant_api.get("/v1/webhook_endpoints").json()
    assert [e["id"] for e in listed["data"]] == [body["id"]] and secret not in json.dumps(listed)


async def test_the_stored_secret_is_encrypted(hook_server, hook_merchant, hook_rt, receiver):
    _, key = hook_merchant
    async with hook_server.async_client(key) as client:
        created = (await client.post("/v1/webhook_endpoints", json={"url": receiver.url("/enc"), "events": ["*"]})).json()
    async with hook_rt.db.read() as conn:
        row = await conn.fetch_one("SELECT secret FROM webhook_endpoints WHERE id = :id", {"id": created["id"]})
    assert created["secret"] not in row["secret"] and "whsec_" not in row["secret"]
    assert hook_rt.secrets.open(row["secret"]) == created["secret"]


def test_update_disable_enable_and_delete(merchant_api, receiver, hook_server):
    hook = merchant_api.post("/v1/webhook_endpoints", json={"url": receiver.url("/upd"), "events": ["*"]}).json()
    changed = merchant_api.post(f"/v1/webhook_endpoints/{hook['id']}", json={"events": ["refund.*"],
                                                                             "description": "refunds"})
    assert changed.json()["events"] == ["refund.*"] and changed.json()["description"] == "refunds"
    off = merchant_api.post(f"/v1/webhook_endpoints/{hook['id']}", json={"status": "disabled"}).json()
    assert (off["status"], off["disabled_reason"]) == ("disabled", "by_merchant")
    merchant_api.post("/v1/orders", json=ORDER)
    on = merchant_api.post(f"/v1/webhook_endpoints/{hook['id']}", json={"status": "enabled"}).json()
    assert (on["status"], on["disabled_reason"]) == ("enabled", None)
    # A disabled endpoint got no delivery for the order made meanwhile.
    assert merchant_api.get(f"/v1/webhook_endpoints/{hook['id']}/deliveries").json()["data"] == []
    deleted = merchant_api.delete(f"/v1/webhook_endpoints/{hook['id']}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert merchant_api.get(f"/v1/webhook_endpoints/{hook['id']}").status_code == 404
    assert merchant_api.delete(f"/v1/webhook_endpoints/{hook['id']}").status_code == 404


@pytest.mark.parametrize("body, code, param", [
    ({"url": "https://shop.example/h", "events": []}, "parameter_invalid", "events"),
    ({"url": "https://shop.example/h", "events": ["order.shipped"]}, "event_type_unknown", "events[0]"),
    ({"url": "https://shop.example/h", "events": ["*", "nope.*"]}, "event_type_unknown", "events[1]"),
    ({"url": "ftp://shop.example/h", "events": ["*"]}, "parameter_invalid", "url"),
    ({"url": "https://user:pw@shop.example/h", "events": ["*"]}, "url_invalid", "url"),
    ({"url": "http://10.0.0.7/hooks", "events": ["*"]}, "url_not_allowed", "url"),
    ({"url": "http://169.254.169.254/latest/meta-data", "events": ["*"]}, "url_not_allowed", "url"),
    ({"url": "http://[fd00::1]/h", "events": ["*"]}, "url_not_allowed", "url"),
    ({"events": ["*"]}, "parameter_missing", "url"),
])
def test_bad_endpoints_are_refused_and_nothing_is_created(merchant_api, body, code, param):
    answer = merchant_api.post("/v1/webhook_endpoints", json=body)
    assert answer.status_code == 400, answer.text
    assert (answer.json()["code"], answer.json()["param"]) == (code, param)
    assert merchant_api.get("/v1/webhook_endpoints").json()["data"] == []


async def test_another_merchants_endpoint_and_delivery_are_404(hook_server, hook_merchant, hook_rt, receiver):
    _, key = hook_merchant
    _, other_key = await make_merchant(hook_rt)
    async with hook_server.async_client(key) as mine, hook_server.async_client(other_key) as theirs:
        hook = (await mine.post("/v1/webhook_endpoints", json={"url": receiver.url("/mine"), "events": ["*"]})).json()
        await mine.post("/v1/orders", json=ORDER)
        deliveries = (await mine.get(f"/v1/webhook_endpoints/{hook['id']}/deliveries")).json()["data"]
        assert len(deliveries) == 1
        for method, path in (("GET", f"/v1/webhook_endpoints/{hook['id']}"),
                             ("GET", f"/v1/webhook_endpoints/{hook['id']}/deliveries"),
                             ("POST", f"/v1/webhook_endpoints/{hook['id']}/rotate_secret"),
                             ("DELETE", f"/v1/webhook_endpoints/{hook['id']}"),
                             ("GET", f"/v1/webhook_deliveries/{deliveries[0]['id']}"),
                             ("GET", f"/v1/webhook_deliveries/{deliveries[0]['id']}/attempts"),
                             ("POST", f"/v1/webhook_deliveries/{deliveries[0]['id']}/retry")):
            answer = await theirs.request(method, path)
            assert answer.status_code == 404, (method, path, answer.text)
        # ... and nothing of theirs reaches my endpoint.
        await theirs.post("/v1/orders", json=ORDER)
        assert len((await mine.get(f"/v1/webhook_endpoints/{hook['id']}/deliveries")).json()["data"]) == 1


def test_retry_of_an_unknown_delivery_is_404(merchant_api):
    assert merchant_api.post("/v1/webhook_deliveries/whd_nothing/retry").json()["code"] == "webhook_delivery_not_found"


# -- production: https and public addresses only, at creation and at every delivery ---------------------

@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("prod-hooks"), extra_env={
        "FLINT_ENV": "production", "FLINT_WEBHOOK_RETRY_SCHEDULE": "0.2", "FLINT_WEBHOOK_POLL_INTERVAL": "0.05"})
    yield live
    stop_server(live)


async def _merchant_on(server):
    from flint.runtime import Runtime

    rt = await Runtime.start(server.runtime_config())
    try:
        return await make_merchant(rt), rt.config
    finally:
        await rt.stop()


@pytest.mark.parametrize("url, code", [
    ("http://hooks.example.com/h", "url_insecure"),
    ("https://localhost/h", "url_not_allowed"),
    ("https://127.0.0.1:8443/h", "url_not_allowed"),
    ("https://[::ffff:127.0.0.1]/h", "url_not_allowed"),
    ("https://192.168.1.20/h", "url_not_allowed"),
    ("https://no-such-host.invalid/h", "url_unresolvable"),
])
async def test_production_refuses_insecure_and_private_destinations(production_server, url, code):
    (merchant, key), _ = await _merchant_on(production_server)
    async with production_server.async_client(key) as client:
        answer = await client.post("/v1/webhook_endpoints", json={"url": url, "events": ["*"]})
    assert answer.status_code == 400 and answer.json()["code"] == code, answer.text


async def test_production_checks_the_destination_again_when_delivering(production_server, receiver):
    """An endpoint whose host resolved to a public address when it was made, and to loopback now (DNS
    rebinding): written straight into the table, as if the DNS answer changed afterwards."""
    from flint.runtime import Runtime

    (merchant, key), _ = await _merchant_on(production_server)
    url = f"https://127.0.0.1:{receiver.port}/rebound"
    rt = await Runtime.start(production_server.runtime_config())
    try:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        async with rt.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO webhook_endpoints (id, merchant_id, url, events, description, status, disabled_reason,
                       secret, previous_secret, previous_expires_at, failing_since, created_at, updated_at)
                   VALUES (:id, :m, :url, '["*"]', NULL, 'enabled', NULL, :secret, NULL, NULL, NULL, :now, :now)""",
                {"id": new_id("we"), "m": merchant.id, "url": url, "secret": rt.secrets.seal(signing.new_secret()),
                 "now": now})
            await events.record(conn, merchant_id=merchant.id, type="order.created", actor=SYSTEM, obj={"id": "ord_x"})
        deadline = time.monotonic() + 10
        while True:
            async with rt.db.read() as conn:
                attempt = await conn.fetch_one("SELECT error, status_code FROM webhook_attempts a JOIN webhook_deliveries d"
                                               " ON d.id = a.delivery_id WHERE d.merchant_id = :m", {"m": merchant.id})
            if attempt or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        await rt.stop()
    assert attempt is not None and attempt["status_code"] is None
    assert attempt["error"].startswith("destination_not_allowed: 127.0.0.1 resolves to 127.0.0.1")
    assert receiver.at("/rebound") == []


# -- the pieces ---------------------------------------------------------------------------------------

def test_signatures_are_the_ones_standardwebhooks_makes_and_checks():
    secret = signing.new_secret()
    body = b'{"id":"evt_1","type":"order.paid"}'
    stamp = int(time.time())
    ours = signing.headers([secret], "evt_1", stamp, body)
    theirs = Webhook(secret).sign("evt_1", datetime.fromtimestamp(stamp, tz=timezone.utc), body.decode())
    assert ours["webhook-signature"] == theirs
    assert Webhook(secret).verify(body, ours) == {"id": "evt_1", "type": "order.paid"}
    both = signing.headers([signing.new_secret(), secret], "evt_1", stamp, body)
    assert Webhook(secret).verify(body, both)["id"] == "evt_1"  # any one matching entry verifies


def test_the_secret_box_reads_secrets_sealed_before_a_key_rotation():
    old = SecretBox(("old-key",))
    sealed = old.seal("whsec_abc")
    rotated = SecretBox(("new-key", "old-key"))  # FLINT_SECRET_KEY lists the newest first
    assert rotated.open(sealed) == "whsec_abc"
    with pytest.raises(RuntimeError):  # sealed under the new key: the old key alone cannot read it
        old.open(rotated.seal("whsec_def"))
    with pytest.raises(RuntimeError):
        SecretBox(("unrelated",)).open(sealed)
    assert SecretBox((TEST_SECRET,)).seal("x") != SecretBox((TEST_SECRET,)).seal("x")  # randomised


@pytest.mark.parametrize("filters, event_type, expected", [
    (["*"], "refund.failed", True),
    (["payment.*"], "payment.succeeded", True),
    (["payment.*"], "payment_link.created", False),
    (["checkout.session.*"], "checkout.session.fallback_used", True),
    (["order.paid"], "order.paid", True),
    (["order.paid"], "order.paid.extra", False),
])
def test_filters(filters, event_type, expected):
    assert matches(filters, event_type) is expected


@pytest.mark.parametrize("address, loopback_ok, allowed", [
    ("8.8.8.8", False, True), ("127.0.0.1", False, False), ("127.0.0.1", True, True),
    ("10.1.2.3", True, False), ("172.16.0.1", True, False), ("192.168.0.1", True, False),
    ("169.254.169.254", True, False), ("100.64.0.1", True, False), ("0.0.0.0", True, False),
    ("224.0.0.1", True, False), ("::1", True, True), ("::1", False, False), ("fe80::1", True, False),
    ("fd12::1", True, False), ("::ffff:10.0.0.1", True, False), ("2606:4700::1111", False, True),
])
def test_which_addresses_webhooks_may_reach(address, loopback_ok, allowed):
    assert egress._allowed(ipaddress.ip_address(address), loopback_ok) is allowed

"""Webhook delivery over real HTTP from a real `flint serve` to a real receiver: every event type a
scenario produces arrives signed so that `standardwebhooks` verifies it as it is; failures retry;
rotation, filters, slow receivers and disabling behave as docs/api.md 9 and the issue say."""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

SUCCESS = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
THREE_DS = dict(SUCCESS, number="4000 0027 6000 3184")
DECLINE = dict(SUCCESS, number="4000 0000 0000 0002")
REFUND_FAILS = dict(SUCCESS, number="4000 0000 0000 5126")
ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}


def api(server, key) -> httpx.Client:
    return server.client(key)


def endpoint(client: httpx.Client, url: str, events=("*",)) -> dict:
    created = client.post("/v1/webhook_endpoints", json={"url": url, "events": list(events)})
    assert created.status_code == 200, created.text
    return created.json()


def session(client: httpx.Client, **fields) -> dict:
    made = client.post("/v1/checkout/sessions", json={"order": ORDER, "mode": "embedded",
                                                       "success_url": "https://shop.example/thanks", **fields})
    assert made.status_code == 200, made.text
    return made.json()


def confirm(server, cs: dict, card: dict) -> httpx.Response:
    with server.client(cs["client_token"]) as buyer:
        return buyer.post(f"/v1/checkout/sessions/{cs['id']}/confirm", json={"card": card})


def verified(secret: str, got) -> dict:
    return Webhook(secret).verify(got.body, got.headers)


@pytest.fixture
def merchant_api(hook_server, hook_merchant):
    _, key = hook_merchant
    with api(hook_server, key) as client:
        yield client


def test_every_event_type_a_scenario_produces_arrives_and_verifies(hook_server, merchant_api, receiver):
    hook = endpoint(merchant_api, receiver.script("/all"))
    assert hook["secret"].startswith("whsec_") and len(base64.b64decode(hook["secret"][6:])) == 32
    gone = endpoint(merchant_api, receiver.script("/gone", [410]), events=["order.created"])

    paid = session(merchant_api)
    assert confirm(hook_server, paid, DECLINE).status_code == 402                 # payment.failed
    challenged = confirm(hook_server, paid, THREE_DS).json()                     # payment.requires_action
    with hook_server.client(paid["client_token"]) as buyer:
        assert buyer.post(f"/v1/checkout/sessions/{paid['id']}/challenge",
                          json={"payment": challenged["id"], "result": "approve"}).status_code == 200
    refund = merchant_api.post("/v1/refunds", json={"order": paid["order_id"], "amount": 1000})
    assert refund.status_code == 200                                              # refund.succeeded
    assert merchant_api.post("/v1/refunds", json={"order": paid["order_id"]}).status_code == 200  # order.refunded
    failing = session(merchant_api)
    assert confirm(hook_server, failing, REFUND_FAILS).status_code == 200
    assert merchant_api.post("/v1/refunds", json={"order": failing["order_id"]}).json()["status"] == "failed"
    canceled = merchant_api.post("/v1/orders", json=ORDER).json()
    assert merchant_api.post(f"/v1/orders/{canceled['id']}/cancel").status_code == 200  # order.canceled
    expired = session(merchant_api)
    assert merchant_api.post(f"/v1/checkout/sessions/{expired['id']}/expire").status_code == 200
    fell_back = session(merchant_api)
    with hook_server.client(fell_back["client_token"]) as buyer:
        assert buyer.post(f"/v1/checkout/sessions/{fell_back['id']}/fallback",
                          json={"reason": "timeout"}).status_code == 200

    expected = {"order.created", "order.paid", "order.canceled", "order.refunded", "checkout.session.created",
                "checkout.session.completed", "checkout.session.expired", "checkout.session.fallback_used",
                "payment.requires_action", "payment.succeeded", "payment.failed", "refund.succeeded",
                "refund.failed", "webhook_endpoint.disabled"}
    listed = []
    starting_after = None
    while True:  # every event Flint recorded for this merchant
        page = merchant_api.get("/v1/events", params={"limit": 100, **({"starting_after": starting_after} if starting_after else {})}).json()
        listed += page["data"]
        if not page["has_more"]:
            break
        starting_after = page["data"][-1]["id"]
    assert {e["type"] for e in listed} == expected
    got = receiver.wait_for("/all", len(listed))
    by_id = {}
    for request in got:
        event = verified(hook["secret"], request)  # the package verifies the bytes as sent
        assert request.headers["webhook-id"] == event["id"]
        assert request.headers["content-type"] == "application/json"
        by_id[event["id"]] = event
    assert by_id.keys() == {e["id"] for e in listed}
    assert {e["type"] for e in by_id.values()} == expected
    # The body is the event as GET /v1/events/{id} shows it.
    sample = listed[0]
    assert by_id[sample["id"]] == merchant_api.get(f"/v1/events/{sample['id']}").json()
    # The 410 endpoint was disabled at its first answer, with an event the merchant sees.
    assert merchant_api.get(f"/v1/webhook_endpoints/{gone['id']}").json()["status"] == "disabled"
    disabled = [e for e in listed if e["type"] == "webhook_endpoint.disabled"]
    assert disabled[0]["data"]["object"]["id"] == gone["id"]
    assert disabled[0]["data"]["object"]["disabled_reason"] == "gone"
    assert "secret" not in disabled[0]["data"]["object"]


def test_a_tampered_body_or_an_old_timestamp_fails_verification(hook_server, merchant_api, receiver):
    hook = endpoint(merchant_api, receiver.script("/tamper"), events=["order.created"])
    merchant_api.post("/v1/orders", json=ORDER)
    got = receiver.wait_for("/tamper", 1)[0]
    assert verified(hook["secret"], got)["type"] == "order.created"
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(got.body.replace(b"2400", b"2"), got.headers)
    old = dict(got.headers, **{"webhook-timestamp": str(int(time.time()) - 600)})
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(got.body, old)
    other = endpoint(merchant_api, receiver.script("/other"), events=["refund.failed"])
    with pytest.raises(WebhookVerificationError):
        Webhook(other["secret"]).verify(got.body, got.headers)
    # The timestamp is the attempt's own, in whole seconds.
    assert abs(int(got.headers["webhook-timestamp"]) - got.at) < 5


def test_three_failures_then_success_is_delivered_once_with_every_attempt_recorded(hook_server, merchant_api, receiver):
    hook = endpoint(merchant_api, receiver.script("/flaky", [500, 500, 500, 200]), events=["order.created"])
    order = merchant_api.post("/v1/orders", json=ORDER).json()
    got = receiver.wait_for("/flaky", 4)
    assert {r.headers["webhook-id"] for r in got} == {got[0].headers["webhook-id"]}  # one message, four tries
    time.sleep(1.5)
    assert len(receiver.at("/flaky")) == 4  # nothing after the success
    deliveries = merchant_api.get(f"/v1/webhook_endpoints/{hook['id']}/deliveries").json()["data"]
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("succeeded", 4, 200)
    assert delivery["event_type"] == "order.created" and delivery["next_attempt_at"] is None
    event = merchant_api.get(f"/v1/events/{delivery['event_id']}").json()
    assert event["data"]["object"]["id"] == order["id"]
    attempts = merchant_api.get(f"/v1/webhook_deliveries/{delivery['id']}/attempts").json()["data"]
    assert [a["status_code"] for a in attempts] == [500, 500, 500, 200]
    # Backoff: each retry waited about its scheduled 0.3 s (±20% jitter), not zero.
    times = [datetime.fromisoformat(a["attempted_at"]).timestamp() for a in attempts]
    assert [r.at for r in got] == sorted(r.at for r in got)
    gaps = [b.at - a.at for a, b in zip(got, got[1:])]
    assert all(gap >= 0.2 for gap in gaps), gaps
    assert times == sorted(times)


def test_a_delivery_that_never_succeeds_fails_after_the_schedule_and_can_be_retried(hook_server, merchant_api, receiver):
    hook = endpoint(merchant_api, receiver.script("/down", [503]), events=["order.created"])
    merchant_api.post("/v1/orders", json=ORDER)
    receiver.wait_for("/down", 6)  # the first attempt and five retries
    deadline = time.monotonic() + 10
    while True:
        delivery = merchant_api.get(f"/v1/webhook_endpoints/{hook['id']}/deliveries").json()["data"][0]
        if delivery["status"] == "failed" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 6, 503)
    time.sleep(1)
    assert len(receiver.at("/down")) == 6
    receiver.script("/down", [200])
    retried = merchant_api.post(f"/v1/webhook_deliveries/{delivery['id']}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    receiver.wait_for("/down", 7)
    deadline = time.monotonic() + 10
    while merchant_api.get(f"/v1/webhook_deliveries/{delivery['id']}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert merchant_api.get(f"/v1/webhook_deliveries/{delivery['id']}").json()["attempts"] == 7


def test_during_a_rotation_either_secret_verifies_every_delivery(hook_server, merchant_api, receiver):
    hook = endpoint(merchant_api, receiver.script("/rotate"), events=["order.created"])
    rotated = merchant_api.post(f"/v1/webhook_endpoints/{hook['id']}/rotate_secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != hook["secret"]
    assert "secret" not in merchant_api.get(f"/v1/webhook_endpoints/{hook['id']}").json()
    for _ in range(3):
        merchant_api.post("/v1/orders", json=ORDER)
    for got in receiver.wait_for("/rotate", 3):
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert verified(hook["secret"], got) == verified(new_secret, got)


def test_an_endpoint_gets_only_the_types_it_subscribed_to(hook_server, merchant_api, receiver):
    payments = endpoint(merchant_api, receiver.script("/payments"), events=["payment.*"])
    exact = endpoint(merchant_api, receiver.script("/paid"), events=["order.paid"])
    cs = session(merchant_api)
    assert confirm(hook_server, cs, DECLINE).status_code == 402
    assert confirm(hook_server, cs, SUCCESS).status_code == 200
    got = receiver.wait_for("/payments", 2)
    assert sorted(verified(payments["secret"], r)["type"] for r in got) == ["payment.failed", "payment.succeeded"]
    assert [verified(exact["secret"], r)["type"] for r in receiver.wait_for("/paid", 1)] == ["order.paid"]
    time.sleep(0.5)
    assert len(receiver.at("/payments")) == 2 and len(receiver.at("/paid")) == 1


def test_a_slow_receiver_times_out_and_is_retried_without_delaying_others(hook_server, merchant_api, receiver):
    slow = endpoint(merchant_api, receiver.script("/slow", [200], delay=15), events=["order.created"])
    fast = endpoint(merchant_api, receiver.script("/fast"), events=["order.created"])
    started = time.time()
    merchant_api.post("/v1/orders", json=ORDER)
    assert receiver.wait_for("/fast", 1, timeout=5)[0].at - started < 2  # not held up by /slow
    merchant_api.post("/v1/orders", json=ORDER)
    assert len(receiver.wait_for("/fast", 2, timeout=5)) == 2
    first = receiver.wait_for("/slow", 1, timeout=5)[0]
    retry = receiver.wait_for("/slow", 3, timeout=20)  # both orders' first tries, then a retry after the timeout
    assert retry[-1].at - first.at >= 9.5
    attempts_url = None
    for delivery in merchant_api.get(f"/v1/webhook_endpoints/{slow['id']}/deliveries").json()["data"]:
        attempts = merchant_api.get(f"/v1/webhook_deliveries/{delivery['id']}/attempts").json()["data"]
        if attempts:
            attempts_url = attempts
            break
    assert attempts_url[0]["error"] == "timeout: no answer within 10 s"
    assert attempts_url[0]["status_code"] is None and attempts_url[0]["duration_ms"] >= 9_500
    assert fast["id"] != slow["id"]
    merchant_api.delete(f"/v1/webhook_endpoints/{slow['id']}")  # stop the slow retries for later tests


def test_an_endpoint_failing_every_attempt_for_long_enough_is_disabled(tmp_path, receiver):
    """The 3-day rule with the clock shortened: FLINT_WEBHOOK_DISABLE_AFTER_SECONDS=1."""
    import asyncio

    from flint.runtime import Runtime
    from support.server import start_server, stop_server
    from support.factories import make_merchant

    live = start_server(tmp_path, extra_env={"FLINT_WEBHOOK_RETRY_SCHEDULE": "0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3",
                                             "FLINT_WEBHOOK_POLL_INTERVAL": "0.05",
                                             "FLINT_WEBHOOK_DISABLE_AFTER_SECONDS": "1"})
    try:
        async def seed():
            rt = await Runtime.start(live.runtime_config())
            try:
                return await make_merchant(rt)
            finally:
                await rt.stop()

        _, key = asyncio.run(seed())
        with live.client(key) as client:
            failing = endpoint(client, receiver.script("/failing", [500]), events=["order.*"])
            healthy = endpoint(client, receiver.script("/healthy"), events=["webhook_endpoint.*"])
            client.post("/v1/orders", json=ORDER)
            deadline = time.monotonic() + 15
            while client.get(f"/v1/webhook_endpoints/{failing['id']}").json()["status"] != "disabled":
                assert time.monotonic() < deadline, "the failing endpoint was not disabled"
                time.sleep(0.1)
            shown = client.get(f"/v1/webhook_endpoints/{failing['id']}").json()
            assert shown["disabled_reason"] == "failing"
            tries = len(receiver.at("/failing"))
            assert tries >= 3  # it failed for over a second, attempt after attempt
            time.sleep(1)
            assert len(receiver.at("/failing")) == tries  # nothing more is sent to it
            delivery = client.get(f"/v1/webhook_endpoints/{failing['id']}/deliveries").json()["data"][0]
            assert (delivery["status"], delivery["last_error"]) == ("failed", "endpoint_disabled")
            # The merchant sees why: an event in GET /v1/events, delivered to its healthy endpoint too.
            disabled = client.get("/v1/events", params={"type": "webhook_endpoint.disabled"}).json()["data"]
            assert [e["data"]["object"]["id"] for e in disabled] == [failing["id"]]
            got = receiver.wait_for("/healthy", 1)
            assert verified(healthy["secret"], got[0])["type"] == "webhook_endpoint.disabled"
            # Re-enabled, then a manual retry delivers the failed delivery once the receiver is back.
            receiver.script("/failing", [200])
            client.post(f"/v1/webhook_endpoints/{failing['id']}", json={"status": "enabled"})
            assert client.post(f"/v1/webhook_deliveries/{delivery['id']}/retry").status_code == 200
            last = receiver.wait_for("/failing", tries + 1)[-1]
            assert verified(failing["secret"], last)["type"] == "order.created"
    finally:
        stop_server(live)


def test_the_request_goes_to_the_checked_address_with_the_urls_host(hook_server, merchant_api, receiver):
    """The worker connects to the address it resolved and checked, and keeps the URL's own host in
    the Host header (and, over TLS, as the server name), so a DNS change between check and connect
    cannot redirect it, and virtual hosts still work."""
    hook = endpoint(merchant_api, receiver.script("/named").replace("127.0.0.1", "localhost"), events=["order.created"])
    merchant_api.post("/v1/orders", json=ORDER)
    got = receiver.wait_for("/named", 1)[0]
    assert got.headers["host"] == f"localhost:{receiver.port}"
    assert got.headers["user-agent"].startswith("Flint-Webhooks/1")
    assert verified(hook["secret"], got)["type"] == "order.created"

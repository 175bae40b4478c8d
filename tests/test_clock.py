"""The clock moves only forward (flint.clock), and the development test clock
(POST /v1/test_helpers/advance_clock) moves a live server's time and runs what time moves at once:
a session expires and its recovery link is made within one advance; in production the path is 404."""
from __future__ import annotations

import pytest

from flint import clock
from support.factories import make_merchant
from support.receiver import Receiver

from .pg import run_in_thread


def test_the_clock_never_moves_backwards():
    before = clock.offset()
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.advance(float("nan"))
    assert clock.offset() == before


async def test_advancing_expires_a_session_and_makes_its_recovery_link_at_once(server, server_rt):
    merchant, key = await make_merchant(server_rt)
    with server.client(key) as api:
        session = api.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 900}]},
            "mode": "embedded", "success_url": "https://shop.example/thanks", "expires_in": 3600,
            "recovery": {"enabled": True}}).json()
        refused = api.post("/v1/test_helpers/advance_clock", json={"seconds": -5})
        assert refused.status_code == 400 and refused.json()["param"] == "seconds"
        moved = api.post("/v1/test_helpers/advance_clock", json={"seconds": 3601})
        assert moved.status_code == 200, moved.text
        assert moved.json()["swept"]["sessions_expired"] >= 1
        after = api.get(f"/v1/checkout/sessions/{session['id']}").json()
        assert after["status"] == "expired" and after["recovery"]["payment_link_id"].startswith("plink_")
        types = [e["type"] for e in api.get(f"/v1/orders/{session['order_id']}/events").json()["data"]]
        assert types[-2:] == ["checkout.session.expired", "payment_link.created"]


async def test_a_delivery_still_on_the_wire_when_the_clock_moves_is_retried_within_that_advance(server, server_rt):
    """The background worker has sent a delivery and is waiting for its answer (a refusal) when a test
    moves the clock: the advance first lets that send finish and records it, so its retry is due and sent
    before the advance answers. (Moved first, the retry would be scheduled from the new time and the test
    would wait for the next advance.)"""
    _, key = await make_merchant(server_rt)
    receiver = Receiver().start()
    try:
        url = receiver.script("/slow", [500, 200], delay=0.5)  # refused once, each answer half a second late
        with server.client(key) as api:
            endpoint = api.post("/v1/webhook_endpoints", json={"url": url, "events": ["order.created"]})
            assert endpoint.status_code == 200, endpoint.text
            api.post("/v1/orders", json={"currency": "usd", "line_items": [
                {"name": "Beans", "quantity": 1, "unit_amount": 900}]}).raise_for_status()
            receiver.wait_for("/slow", 1)  # on the wire: its 500 is half a second away
            moved = api.post("/v1/test_helpers/advance_clock", json={"seconds": 10})  # past the 5 s retry
            assert moved.status_code == 200, moved.text
        assert len(receiver.at("/slow")) == 2  # the retry went within the advance
    finally:
        receiver.stop()


def test_advancing_sends_the_recovery_email_of_the_drop_off_it_made_before_answering(tmp_path):
    """The sweep makes a recovery link and its recovery email; the same call sends that mail. The server
    runs no background worker, so only the test clock can have sent it."""
    from support.server import start_server, stop_server
    from support.smtp import SmtpServer

    smtp = SmtpServer().start()
    server = start_server(tmp_path, extra_env={"FLINT_SMTP_URL": smtp.url, "FLINT_MAIL_FROM": "Shop <shop@flint.test>"},
                          args=("--no-background",))
    try:
        merchant, key = run_in_thread(lambda: _merchant_of(server))  # noqa: RUF059 (the key is what is used)
        with server.client(key) as api:
            session = api.post("/v1/checkout/sessions", json={
                "order": {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 900}],
                          "customer_email": "left@example.com"},
                "mode": "embedded", "success_url": "https://shop.example/thanks", "expires_in": 3600,
                "recovery": {"enabled": True, "email": True}}).json()
            moved = api.post("/v1/test_helpers/advance_clock", json={"seconds": 3601})
            assert moved.status_code == 200, moved.text
            assert moved.json()["mail_sent"] is True
            received = smtp.received()  # already there when the answer came: no waiting
            assert [mail.rcpt_tos for mail in received] == [["left@example.com"]], received
            link = api.get(f"/v1/checkout/sessions/{session['id']}").json()["recovery"]["payment_link_id"]
            assert link in received[0].message.get_body(("plain",)).get_content()
    finally:
        stop_server(server)
        smtp.stop()


async def _merchant_of(server):
    from flint.runtime import Runtime

    runtime = await Runtime.start(server.runtime_config())
    try:
        return await make_merchant(runtime)
    finally:
        await runtime.stop()


def test_the_test_clock_is_not_there_in_production(tmp_path):
    from support.server import start_server, stop_server

    live = start_server(tmp_path, extra_env={"FLINT_ENV": "production"})
    try:
        with live.client("sk_test_whatever") as api:
            answer = api.post("/v1/test_helpers/advance_clock", json={"seconds": 60})
        assert answer.status_code == 404 and answer.json()["code"] == "route_not_found"
    finally:
        stop_server(live)


def test_one_advance_expires_a_session_makes_its_recovery_link_and_retries_a_webhook(tmp_path):
    """The QA kit's server with no background worker, so only the test clock sends: a delivery refused
    once is sent again within the advance that expires its session, and it verifies with standardwebhooks
    as it is although the server's clock moved an hour (signatures carry the wall-clock time)."""
    from flint.testing.server import FlintServer
    from flint.testing.webhooks import WebhookReceiver, Webhooks

    server = FlintServer(tmp_path, env={"FLINT_BACKGROUND": "0"}).start()
    receiver = WebhookReceiver().start(server)
    try:
        webhooks = Webhooks(receiver)
        webhooks.fail_next(2)  # the session's first two events: order.created, checkout.session.created
        with server.client() as api:
            session = api.post("/v1/checkout/sessions", json={
                "order": {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 900}]},
                "mode": "embedded", "success_url": "https://shop.example/thanks", "expires_in": 3600,
                "recovery": {"enabled": True}}).json()
        assert server.advance_clock(0)["webhooks_delivered"] is True  # sent now: both refused (500)
        assert [d.status for d in webhooks.deliveries] == [500, 500]

        moved = server.advance_clock(3601)
        assert moved["swept"]["sessions_expired"] == 1 and moved["webhooks_delivered"] is True
        with server.client() as api:
            after = api.get(f"/v1/checkout/sessions/{session['id']}").json()
        assert after["status"] == "expired" and after["recovery"]["payment_link_id"].startswith("plink_")
        # Already received when the answer came: the retries, and the events of the expiry.
        by_id: dict[str, list[int]] = {}
        for delivery in webhooks.deliveries:
            by_id.setdefault(delivery.headers["webhook-id"], []).append(delivery.status)
        created = next(e for e in webhooks.events if e["type"] == "checkout.session.created")
        assert by_id[created["id"]] == [500, 200]
        assert {e["type"] for e in webhooks.events} == {"order.created", "checkout.session.created",
                                                        "checkout.session.expired", "payment_link.created"}
        assert webhooks.rejected == []
    finally:
        receiver.stop()
        server.stop()

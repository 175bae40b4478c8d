"""The demo shop's webhook receiver (examples/shop, ``POST /webhooks`` and the ``GET /webhooks``
page), as real processes: a real ``flint serve`` signs and sends, the shop verifies with the
``standardwebhooks`` package, keeps what verified (once per ``webhook-id``) and lists it."""
from __future__ import annotations

import asyncio
import html as htmllib
import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from examples.shop import create_shop
from examples.shop.webhooks import KEEP
from flint.webhooks.signing import new_secret
from support import free_port
from support.server import LiveServer

from .live_shop import LiveShop, start_shop, stop_shop

ORDER = {"currency": "usd", "line_items": [{"name": "Espresso beans 1 kg", "quantity": 1, "unit_amount": 2400}]}
ROW = re.compile(r"<tr><td><time [^>]+>[^<]+</time></td><td class=\"event-type\">(?P<type>[^<]+)</td>"
                 r"<td><code class=\"event-id\">(?P<id>[^<]+)</code></td>"
                 r"<td>(?:<code class=\"order-id\">(?P<order>[^<]+)</code>"
                 r"|<span aria-hidden=\"true\">—</span><span class=\"visually-hidden\">none</span>)</td>"
                 r"<td class=\"verified\"><span aria-hidden=\"true\">✓</span> verified</td></tr>")


def rows(page: str) -> list[dict]:
    return [m.groupdict() for m in ROW.finditer(page)]


def event(event_id: str = "evt_0123456789abcdef", type_: str = "order.created",
          order_id: str | None = "ord_0123456789abcdef") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": type_, "created_at": "2030-01-01T00:00:00Z",
                       "order_id": order_id, "sequence": 1, "actor": {"type": "merchant", "id": "m_x"},
                       "data": {"object": {"id": order_id}}}).encode()


def signed(secret: str, body: bytes, msg_id: str, at: datetime | None = None) -> dict[str, str]:
    """Headers as Flint sends them, signed here with ``secret`` (the package's own signer)."""
    at = at or datetime.now(timezone.utc)
    return {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode())}


def assert_csp_safe(page: httpx.Response) -> None:
    """The page works under the shop's CSP: no inline script without its nonce, no inline handlers,
    nothing from another origin."""
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    for tag in re.findall(r"<script\b[^>]*>", page.text):
        assert f'nonce="{nonce}"' in tag, tag
    assert not re.search(r"\son[a-z]+=", page.text)
    for url in re.findall(r'(?:src|href|action)="([^"]+)"', page.text):
        assert url.startswith(("/", "#")), url


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def webhook_shop(tmp_path: Path, server: LiveServer, merchant, secret: str):
    """The shop process with a webhook secret this test made (and signs with)."""
    _, key = merchant
    live = start_shop(tmp_path, server.url, key, webhook_secret=secret)
    yield live
    assert stop_shop(live) == 0, live.logs()[-2000:]


async def test_a_real_delivery_from_flint_is_verified_and_listed(tmp_path: Path, server: LiveServer, merchant):
    _, key = merchant
    port = free_port()  # the shop's URL is needed to register it, before the shop has the secret
    async with server.async_client(key) as flint:
        created = await flint.post("/v1/webhook_endpoints", json={"url": f"http://127.0.0.1:{port}/webhooks",
                                                                  "events": ["*"]})
        assert created.status_code == 200, created.text
        endpoint = created.json()
        assert endpoint["secret"].startswith("whsec_")
        shop = start_shop(tmp_path, server.url, key, webhook_secret=endpoint["secret"], port=port)
        try:
            order = (await flint.post("/v1/orders", json=ORDER)).json()
            async with shop.client() as browser:
                deadline = time.monotonic() + 15
                while True:
                    page = await browser.get("/webhooks")
                    assert page.status_code == 200
                    listed = rows(page.text)
                    if any(r["type"] == "order.created" and r["order"] == order["id"] for r in listed):
                        break
                    assert time.monotonic() < deadline, f"no order.created in 15 s:\n{page.text}\n{shop.logs()}"
                    await asyncio.sleep(0.2)

            # The listed id is the event's, and Flint recorded the shop's 204.
            events = (await flint.get("/v1/events", params={"limit": 100})).json()["data"]
            made = next(e for e in events if e["type"] == "order.created" and e["order_id"] == order["id"])
            assert {"type": "order.created", "id": made["id"], "order": order["id"]} in listed
            while True:  # Flint writes an attempt's outcome just after the answer: wait for it
                deliveries = (await flint.get(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries")).json()["data"]
                delivery = next(d for d in deliveries if d["event_id"] == made["id"])
                if delivery["status"] != "pending" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert delivery["status"] == "succeeded" and delivery["last_status_code"] == 204, delivery

            # The page itself: accessible, linked from the header, fine under its own CSP.
            html = page.text
            assert '<html lang="en">' in html and "<h1>Webhooks</h1>" in html
            assert '<nav class="site-nav" aria-label="Shop">' in html
            assert '<a href="/webhooks" aria-current="page">Webhooks</a>' in html
            assert '<th scope="col">Type</th>' in html and "<caption" in html
            assert htmllib.escape(f"http://127.0.0.1:{port}/webhooks") in html
            assert page.headers["cache-control"] == "no-store"
            assert_csp_safe(page)
            assert "whsec_" not in html and "sk_test_" not in html
        finally:
            assert stop_shop(shop) == 0, shop.logs()[-2000:]


async def test_every_shop_page_links_to_the_webhooks_page(shop: LiveShop):
    async with shop.client() as browser:
        home = await browser.get("/")
    assert '<a href="/webhooks">Webhooks</a>' in home.text
    assert '<a href="/" aria-current="page">Shop</a>' in home.text


async def test_forged_deliveries_are_400_and_not_listed(webhook_shop: LiveShop, secret: str):
    body = event("evt_forged0000000001")
    good = signed(secret, body, "evt_forged0000000001")
    forgeries = {
        "no signature headers": {"content-type": "application/json"},
        "signed with another secret": signed(new_secret(), body, "evt_forged0000000001"),
        "a wrong signature": dict(good, **{"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}),
        "a malformed signature header": dict(good, **{"webhook-signature": "not-a-signature"}),
        "a signature that is not base64": dict(good, **{"webhook-signature": "v1,%%%"}),
        "another id than the one signed": dict(good, **{"webhook-id": "evt_forged0000000002"}),
        "a timestamp out of tolerance": signed(secret, body, "evt_forged0000000001",
                                               at=datetime.now(timezone.utc) - timedelta(hours=1)),
    }
    async with webhook_shop.client() as browser:
        for why, headers in forgeries.items():
            answer = await browser.post("/webhooks", content=body, headers=headers)
            assert answer.status_code == 400, why
            assert answer.headers["content-type"].startswith("text/plain") and answer.text == "invalid signature\n"
        # The signed headers over other bytes: the body is what is signed.
        tampered = await browser.post("/webhooks", content=body.replace(b"order.created", b"order.paid!"),
                                      headers=good)
        assert tampered.status_code == 400
        # A body that is not even UTF-8 or JSON is a 400 too, not a 500.
        junk = await browser.post("/webhooks", content=b"\xff\xfe", headers=signed(secret, b"", "evt_junk"))
        assert junk.status_code == 400

        page = await browser.get("/webhooks")
    assert "evt_forged" not in page.text and rows(page.text) == []
    assert "0 received" in page.text and f"{len(forgeries) + 2} rejected" in page.text
    assert webhook_shop.logs().count("webhook rejected") == len(forgeries) + 2


async def test_a_redelivery_is_acknowledged_and_listed_once(webhook_shop: LiveShop, secret: str):
    first, second = event("evt_replayed00000001"), event("evt_other0000000002", "order.paid")
    async with webhook_shop.client() as browser:
        for _ in range(3):  # Flint's retries re-sign with a fresh timestamp; the webhook-id stays
            answer = await browser.post("/webhooks", content=first, headers=signed(secret, first, "evt_replayed00000001"))
            assert answer.status_code == 204 and answer.content == b""
        answer = await browser.post("/webhooks", content=second, headers=signed(secret, second, "evt_other0000000002"))
        assert answer.status_code == 204
        page = await browser.get("/webhooks")
    assert rows(page.text) == [  # newest first
        {"type": "order.paid", "id": "evt_other0000000002", "order": "ord_0123456789abcdef"},
        {"type": "order.created", "id": "evt_replayed00000001", "order": "ord_0123456789abcdef"}]
    assert "2 received, 2 redeliveries" in page.text


async def test_without_a_secret_webhooks_are_503_and_the_page_says_so(shop: LiveShop):
    body = event()
    async with shop.client() as browser:
        answer = await browser.post("/webhooks", content=body, headers=signed(new_secret(), body, "evt_x"))
        page = await browser.get("/webhooks")
    assert answer.status_code == 503 and answer.text == "webhooks not configured\n"
    assert answer.headers["content-type"].startswith("text/plain")
    assert page.status_code == 200 and "Webhooks are not configured" in page.text
    assert "SHOP_WEBHOOK_SECRET" in page.text and rows(page.text) == []
    assert_csp_safe(page)


def test_a_secret_that_is_not_a_webhook_secret_stops_the_shop_at_startup(tmp_path: Path):
    with pytest.raises(RuntimeError, match="Standard Webhooks secret"):
        start_shop(tmp_path, "http://127.0.0.1:9", "sk_test_unused", webhook_secret="whsec_")


async def test_the_page_keeps_the_latest_fifty_and_shows_events_without_an_order(secret: str):
    app = create_shop("http://127.0.0.1:9", "sk_test_unused", webhook_secret=secret)
    async with app.test_app() as test_app:
        browser = test_app.test_client()
        for n in range(KEEP + 10):
            body = event(f"evt_ring{n:012d}", "payment_link.created" if n == KEEP + 9 else "order.created",
                         None if n == KEEP + 9 else f"ord_ring{n:012d}")
            answer = await browser.post("/webhooks", data=body, headers=signed(secret, body, f"evt_ring{n:012d}"))
            assert answer.status_code == 204
        page = await (await browser.get("/webhooks")).get_data(as_text=True)
    listed = rows(page)
    assert len(listed) == KEEP
    assert listed[0] == {"type": "payment_link.created", "id": f"evt_ring{KEEP + 9:012d}", "order": None}
    assert [r["id"] for r in listed] == [f"evt_ring{n:012d}" for n in range(KEEP + 9, 9, -1)]
    assert f"{KEEP + 10} received" in page

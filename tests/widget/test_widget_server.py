"""The widget's server side over real HTTP: the built files with their integrity manifest and caching,
the card frame's framing policy, the loader's buyer endpoints (client session, fallback, beacon) and
the CORS that lets a merchant's page, and only it, call them."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re

import httpx
import pytest

from flint.closing import service as closing
from flint.checkout import store as session_store
from flint.merchants import service as merchants
from flint.checkout.texts import LOADER_TEXTS
from support.factories import make_merchant, make_session

SHOP = "https://shop.example"


@pytest.fixture
async def shop_merchant(server_rt):
    merchant, key = await make_merchant(server_rt, origins=[SHOP, "http://localhost:8001"])
    return merchant, key


@pytest.fixture
async def embedded(server_rt, shop_merchant):
    merchant, _ = shop_merchant
    session = await make_session(server_rt, merchant.id, mode="embedded", amount=1999)
    from flint.checkout.service import client_token
    return session, client_token(server_rt, session)


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


# -- the built files ------------------------------------------------------------------------------

async def test_the_manifest_lists_every_file_with_the_sha384_of_the_served_bytes(browser):
    manifest = await browser.get("/widget/v1/manifest.json")
    assert manifest.status_code == 200 and manifest.headers["content-type"] == "application/json"
    files = manifest.json()["files"]
    assert [f["path"] for f in files] == ["/widget/v1/flint.js", "/widget/v1/frame.js"]
    for entry in files:
        served = await browser.get(entry["path"], headers={"Accept-Encoding": "identity"})
        assert served.status_code == 200
        assert served.headers["content-type"] == "text/javascript; charset=utf-8"
        digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
        assert entry["integrity"] == f"sha384-{digest}"
        assert entry["bytes"] == len(served.content)


async def test_the_loader_is_small_cached_briefly_and_open_to_every_origin(browser):
    plain = await browser.get("/widget/v1/flint.js", headers={"Accept-Encoding": "identity"})
    zipped = await browser.get("/widget/v1/flint.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decoded it: the same file
    assert int(zipped.headers["content-length"]) <= 4 * 1024  # the goal: at most 4 KB gzipped
    assert plain.headers["cache-control"] == "public, max-age=300, stale-while-revalidate=86400"
    assert plain.headers["access-control-allow-origin"] == "*"
    assert plain.headers["cross-origin-resource-policy"] == "cross-origin"
    assert plain.headers["vary"] == "Accept-Encoding"
    assert "content-security-policy" not in plain.headers  # a script, not a page
    again = await browser.get("/widget/v1/flint.js", headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_the_frame_script_is_immutable_under_its_versioned_url(browser):
    etag = (await browser.get("/widget/v1/frame.js")).headers["etag"].strip('"')
    pinned = await browser.get(f"/widget/v1/frame.js?v={etag}")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = await browser.get("/widget/v1/frame.js?v=old")
    assert stale.headers["cache-control"].startswith("public, max-age=300")
    assert (await browser.get("/widget/v1/nothing.js")).status_code == 404


# -- the card frame ---------------------------------------------------------------------------------

def csp_of(response: httpx.Response) -> dict[str, str]:
    policy = {}
    for directive in response.headers["content-security-policy"].split(";"):
        name, _, value = directive.strip().partition(" ")
        policy[name] = value
    return policy


async def test_the_frame_may_be_framed_only_by_the_merchants_origins(browser, embedded, server):
    session, _ = embedded
    frame = await browser.get(f"/widget/v1/frame/{session.id}")
    assert frame.status_code == 200
    policy = csp_of(frame)
    assert policy["frame-ancestors"] == f"http://localhost:8001 {SHOP}"
    assert policy["connect-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert re.fullmatch(r"'nonce-[A-Za-z0-9_-]+'", policy["script-src"])
    assert "x-frame-options" not in frame.headers  # it cannot list origins; frame-ancestors does
    assert frame.headers["cache-control"] == "no-store"
    html = frame.text
    # The script is Flint's own file, pinned by SRI and the page's nonce; no third-party resource.
    script = re.search(r'<script src="(/widget/v1/frame\.js\?v=[^"]+)" integrity="(sha384-[^"]+)" nonce="([^"]+)">', html)
    assert script and policy["script-src"] == f"'nonce-{script.group(3)}'"
    served = await browser.get(script.group(1), headers={"Accept-Encoding": "identity"})
    assert script.group(2) == "sha384-" + base64.b64encode(hashlib.sha384(served.content).digest()).decode()
    assert not re.search(r'(src|href)="(https?:)?//', html.replace(session.hosted_url(server.url), ""))
    config = json.loads(re.search(r'<script type="application/json" id="flint-frame-config"[^>]*>(.*?)</script>',
                                  html, re.S).group(1))
    assert config["origins"] == ["http://localhost:8001", SHOP]
    assert config["confirmUrl"] == f"/v1/checkout/sessions/{session.id}/confirm"
    assert config["successUrl"] == f"https://shop.example/thanks?session_id={session.id}"
    assert config["unavailable"] is None
    assert config["messages"]["card_declined"] == "Your card was declined."
    # The same accessible card form as the hosted page; without script it posts there, in the top window.
    assert f'<form method="post" action="/checkout/{session.id}" id="card-form" novalidate target="_top">' in html
    for label in ("Card number", "Expiry (MM / YY)", "CVC"):
        assert f">{label}</label>" in html
    assert re.search(r'<button type="submit" id="pay">Pay \$19\.99</button>', html)
    # The frame's own HTML, script and CSS: the goal is at most 15 KB gzipped.
    assert len(gzip.compress(frame.content)) + len(gzip.compress(served.content)) <= 15 * 1024


async def test_a_merchant_without_origins_gets_a_frame_nobody_can_frame(browser, server_rt):
    merchant, _ = await make_merchant(server_rt)
    session = await make_session(server_rt, merchant.id, mode="embedded")
    frame = await browser.get(f"/widget/v1/frame/{session.id}")
    assert csp_of(frame)["frame-ancestors"] == "'none'"


async def test_the_frame_of_a_closed_session_says_why_in_the_buyers_language(browser, embedded, shop_merchant, server_rt):
    session, _ = embedded
    merchant, _ = shop_merchant
    from flint.actors import Actor
    await closing.expire_session(server_rt, merchant.id, session.id, Actor("merchant", merchant.id))
    frame = await browser.get(f"/widget/v1/frame/{session.id}", headers={"Accept-Language": "de-DE,de;q=0.9"})
    config = json.loads(re.search(r'id="flint-frame-config"[^>]*>(.*?)</script>', frame.text, re.S).group(1))
    assert config["unavailable"]["code"] == "session_expired"
    assert config["messages"]["card_declined"] == "Ihre Karte wurde abgelehnt."
    assert "Kartennummer" in frame.text
    assert "19,99\xa0$" in frame.text  # the amount as a German reader writes it


async def test_other_buyer_pages_are_never_framed(browser, embedded):
    session, _ = embedded
    for path in (f"/checkout/{session.id}", "/nowhere"):
        page = await browser.get(path)
        assert csp_of(page)["frame-ancestors"] == "'none'" and page.headers["x-frame-options"] == "DENY"


# -- the loader's buyer endpoints -------------------------------------------------------------------

async def test_the_client_session_tells_the_loader_what_it_needs(browser, embedded, server):
    session, token = embedded
    answer = await browser.get("/v1/checkout/sessions/client", headers={"Authorization": f"Bearer {token}",
                                                                         "Origin": "https://anywhere.example"})
    assert answer.status_code == 200
    assert answer.json() == {
        "object": "checkout.client_session", "id": session.id, "order_id": session.order_id, "mode": "embedded",
        "status": "open", "payable": True, "unavailable": None, "amount_total": 1999, "currency": "usd",
        "url": f"{server.url}/checkout/{session.id}", "frame_url": f"{server.url}/widget/v1/frame/{session.id}",
        "expires_at": answer.json()["expires_at"],
        "messages": LOADER_TEXTS,  # no Accept-Language: English, the texts as marked
    }
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers
    assert "client_token" not in answer.text  # the page already has it; it is never echoed


@pytest.mark.parametrize("token, code", [("", "authentication_required"), ("nonsense", "client_token_invalid")])
async def test_the_client_session_refuses_a_bad_token(browser, token, code):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await browser.get("/v1/checkout/sessions/client", headers=headers)
    assert answer.status_code == 401 and answer.json()["code"] == code
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["access-control-allow-origin"] == "*"  # the page can read why


async def test_a_secret_key_is_not_a_client_token(browser, shop_merchant):
    _, key = shop_merchant
    answer = await browser.get("/v1/checkout/sessions/client", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 401 and answer.json()["code"] == "client_token_invalid"


async def test_a_preflight_is_answered_for_the_loaders_endpoints_only(browser, embedded):
    session, _ = embedded
    ask = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    for path in ("/v1/checkout/sessions/client", f"/v1/checkout/sessions/{session.id}/fallback"):
        answer = await browser.options(path, headers=ask)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "*"
        assert answer.headers["access-control-allow-headers"] == "Authorization, Content-Type, Idempotency-Key"
        assert answer.headers["access-control-allow-methods"] == "GET, POST"
    # The merchant API and the card's confirm endpoint are not for pages on other origins.
    for path in ("/v1/orders", f"/v1/checkout/sessions/{session.id}/confirm", "/v1/checkout/sessions"):
        answer = await browser.options(path, headers=ask)
        assert "access-control-allow-origin" not in answer.headers, path


async def _events(server_rt, session_id: str) -> list[dict]:
    async with server_rt.db.read() as conn:
        rows = await conn.fetch_all(
            "SELECT type, data FROM events WHERE order_id = (SELECT order_id FROM checkout_sessions WHERE id = :id)"
            " ORDER BY sequence", {"id": session_id})
    return [{"type": r["type"], "data": json.loads(r["data"])} for r in rows]


async def test_a_fallback_is_recorded_once_with_its_reason(browser, embedded, server_rt, shop_merchant):
    session, token = embedded
    merchant, key = shop_merchant
    auth = {"Authorization": f"Bearer {token}"}
    first = await browser.post(f"/v1/checkout/sessions/{session.id}/fallback", json={"reason": "frame_blocked"},
                               headers=auth)
    assert first.status_code == 200 and first.json()["object"] == "checkout.client_session"
    again = await browser.post(f"/v1/checkout/sessions/{session.id}/fallback", json={"reason": "timeout"}, headers=auth)
    assert again.status_code == 200
    used = [e for e in await _events(server_rt, session.id) if e["type"] == "checkout.session.fallback_used"]
    assert len(used) == 1
    assert used[0]["data"]["object"]["fallback"]["reason"] == "frame_blocked"
    assert used[0]["data"]["object"]["client_token"] is None  # event snapshots never carry the token
    shown = await browser.get(f"/v1/checkout/sessions/{session.id}", headers={"Authorization": f"Bearer {key}"})
    assert shown.json()["fallback"]["reason"] == "frame_blocked"


@pytest.mark.parametrize("body, code, param", [
    ({"reason": "bored"}, "parameter_invalid", "reason"),
    ({}, "parameter_missing", "reason"),
    ({"reason": "timeout", "extra": 1}, "parameter_unknown", "extra"),
])
async def test_a_bad_fallback_report_changes_nothing(browser, embedded, server_rt, body, code, param):
    session, token = embedded
    answer = await browser.post(f"/v1/checkout/sessions/{session.id}/fallback", json=body,
                                headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400 and (answer.json()["code"], answer.json()["param"]) == (code, param)
    async with server_rt.db.read() as conn:
        assert (await session_store.select_session_by_id(conn, session.id)).fallback_at is None


async def test_a_token_works_only_for_its_own_session(browser, embedded, server_rt, shop_merchant):
    session, token = embedded
    merchant, _ = shop_merchant
    other = await make_session(server_rt, merchant.id, mode="embedded")
    answer = await browser.post(f"/v1/checkout/sessions/{other.id}/fallback", json={"reason": "timeout"},
                                headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401


async def test_the_beacon_records_that_the_buyer_left(browser, embedded, server_rt):
    session, token = embedded
    # As navigator.sendBeacon sends it: text/plain, no Authorization header, the token in the body.
    beacon = await browser.post(f"/v1/checkout/sessions/{session.id}/beacon",
                                content=json.dumps({"client_token": token, "type": "left"}),
                                headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": SHOP})
    assert beacon.status_code == 200
    assert beacon.json() == {"object": "checkout.beacon", "session_id": session.id, "recorded": True}
    assert beacon.headers["access-control-allow-origin"] == "*"
    async with server_rt.db.read() as conn:
        left = (await session_store.select_session_by_id(conn, session.id)).buyer_left_at
    assert left is not None


@pytest.mark.parametrize("body, status", [
    ({"type": "left"}, 401),  # no token anywhere
    ({"client_token": "forged", "type": "left"}, 401),
    ("not json", 401),
])
async def test_a_bad_beacon_records_nothing(browser, embedded, server_rt, body, status):
    session, _ = embedded
    content = body if isinstance(body, str) else json.dumps(body)
    answer = await browser.post(f"/v1/checkout/sessions/{session.id}/beacon", content=content,
                                headers={"Content-Type": "text/plain"})
    assert answer.status_code == status
    async with server_rt.db.read() as conn:
        assert (await session_store.select_session_by_id(conn, session.id)).buyer_left_at is None


async def test_a_beacon_for_a_closed_session_changes_nothing(browser, embedded, server_rt, shop_merchant):
    session, token = embedded
    merchant, _ = shop_merchant
    from flint.actors import Actor
    await closing.expire_session(server_rt, merchant.id, session.id, Actor("merchant", merchant.id))
    answer = await browser.post(f"/v1/checkout/sessions/{session.id}/beacon", json={"type": "left"},
                                headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["recorded"] is False
    async with server_rt.db.read() as conn:
        assert (await session_store.select_session_by_id(conn, session.id)).buyer_left_at is None


async def test_changing_the_merchants_origins_changes_who_may_frame(browser, embedded, server_rt, shop_merchant):
    session, _ = embedded
    merchant, _ = shop_merchant
    await merchants.update_merchant(server_rt, merchant.id, origins=["https://new-shop.example"])
    frame = await browser.get(f"/widget/v1/frame/{session.id}")
    assert csp_of(frame)["frame-ancestors"] == "https://new-shop.example"

"""Finding 6 (issue 13): JSON of any depth or size up to the 1 MiB body limit is accepted or refused
with a 4xx problem, never a 500, and a refused body stores nothing (no idempotency key stays claimed,
nothing is created).

Before the fix a body of 100 000 ``[`` was a 500 on the beacon (unauthenticated: its token may come in
a text/plain JSON body) and on every POST that carried an Idempotency-Key (the key's fingerprint
parsed the body with ``json.loads``, which raises RecursionError, not ValueError).
"""
from __future__ import annotations

import json
import secrets

import httpx
import pytest

from flint.http.auth import declaration
from flint.app import create_app
from flint.config import Config
from support.factories import make_merchant

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}
LIMIT = 1024 * 1024
DEEP_ARRAYS = b"[" * 100_000
DEEP_CLOSED = b"[" * 50_000 + b"]" * 50_000
DEEP_OBJECTS = b'{"a":' * 60_000 + b"1" + b"}" * 60_000
DEEP_IN_A_FIELD = b'{"type":"left","client_token":"x","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
DEEP_BODIES = {"arrays": DEEP_ARRAYS, "closed": DEEP_CLOSED, "objects": DEEP_OBJECTS,
               "in_a_field": DEEP_IN_A_FIELD}
# Every table a refused request could have written to.
TABLES = ("idempotency_keys", "orders", "checkout_sessions", "payments", "events", "payment_links", "refunds",
          "webhook_endpoints", "apps", "hook_calls")


def _log_mark(server) -> int:
    return len(server.logs())


def assert_no_unhandled_error(server, mark: int) -> None:
    """No 500 was logged by this test's own requests (the server is shared by the module)."""
    assert "unhandled error" not in server.logs()[mark:]


async def _counts(rt) -> dict[str, int]:
    counts = {}
    async with rt.db.read() as conn:
        for table in TABLES:
            counts[table] = (await conn.fetch_one(f"SELECT count(*) AS n FROM {table}"))["n"]
    return counts


@pytest.fixture
async def world(server, server_rt):
    """A merchant key, and an open embedded session with its buyer token."""
    merchant, key = await make_merchant(server_rt, origins=["https://shop.example"])
    async with server.async_client(key) as owner:
        session = (await owner.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks"})).json()
    return {"key": key, "session": session}


def assert_refused(response: httpx.Response, status: int = 400, code: str | None = "invalid_json") -> None:
    where = f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
    assert response.status_code == status, where
    assert response.headers["content-type"].startswith("application/problem+json"), where
    if code is not None:
        assert response.json()["code"] == code, where


@pytest.mark.parametrize("shape", DEEP_BODIES)
async def test_the_beacon_takes_no_deep_body_unauthenticated(server, server_rt, world, shape):
    session = world["session"]
    before, mark = await _counts(server_rt), _log_mark(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as anyone:
        for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/json"):
            answer = await anyone.post(f"/v1/checkout/sessions/{session['id']}/beacon", content=DEEP_BODIES[shape],
                                       headers={"Content-Type": content_type})
            # No client_token can be read from a body that does not parse: the beacon's own refusal.
            assert_refused(answer, 401, "authentication_required")
            with_token = await anyone.post(f"/v1/checkout/sessions/{session['id']}/beacon",
                                           content=DEEP_BODIES[shape], headers={
                                               "Content-Type": content_type,
                                               "Authorization": f"Bearer {session['client_token']}"})
            assert_refused(with_token)
    assert await _counts(server_rt) == before
    assert_no_unhandled_error(server, mark)


@pytest.mark.parametrize("shape", DEEP_BODIES)
@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotency_key"])
async def test_merchant_and_buyer_posts_refuse_deep_bodies(server, server_rt, world, shape, idempotent):
    session = world["session"]
    before, mark = await _counts(server_rt), _log_mark(server)
    key = {"Idempotency-Key": f"deep-{secrets.token_hex(6)}"} if idempotent else {}
    async with server.async_client(world["key"]) as owner, server.async_client(session["client_token"]) as buyer:
        for client, path in ((owner, "/v1/orders"), (owner, "/v1/checkout/sessions"),
                             (buyer, f"/v1/checkout/sessions/{session['id']}/confirm")):
            answer = await client.post(path, content=DEEP_BODIES[shape],
                                       headers={"Content-Type": "application/json", **key})
            assert_refused(answer)
            if idempotent:  # the key was not used up: the fixed request goes through with it
                again = await client.post(path, content=DEEP_BODIES[shape],
                                          headers={"Content-Type": "application/json", **key})
                assert_refused(again)
                assert "idempotent-replayed" not in again.headers
    assert await _counts(server_rt) == before
    if idempotent:
        async with server.async_client(world["key"]) as owner:
            made = await owner.post("/v1/orders", json=ORDER, headers=key)
        assert made.status_code == 200, made.text
    assert_no_unhandled_error(server, mark)


def _wide_and_huge(token: str) -> dict[str, bytes]:
    pad = LIMIT - 200
    return {
        "wide_array": b"[" + b"0," * (pad // 2) + b"0]",
        "wide_object": b"{" + b",".join(b'"k%d":0' % i for i in range(pad // 12)) + b"}",
        "huge_string": json.dumps({"client_token": token, "type": "left", "pad": "x" * pad}).encode(),
        "many_small_arrays": b"[" + b"[[[[[[[[[[]]]]]]]]]]," * (pad // 22) + b"[]]",
        "huge_number": b'{"amount": 1' + b"0" * pad + b"}",
        "deep_but_parseable": b"[" * 900 + b"]" * 900,
    }


@pytest.mark.parametrize("shape", ["wide_array", "wide_object", "huge_string", "many_small_arrays", "huge_number",
                                   "deep_but_parseable"])
async def test_wide_and_huge_bodies_are_a_clean_400(server, server_rt, world, shape):
    session = world["session"]
    body = _wide_and_huge(session["client_token"])[shape]
    assert len(body) < LIMIT
    before, mark = await _counts(server_rt), _log_mark(server)
    async with server.async_client(world["key"]) as owner, server.async_client(session["client_token"]) as buyer:
        for client, path in ((owner, "/v1/orders"), (buyer, f"/v1/checkout/sessions/{session['id']}/confirm"),
                             (buyer, f"/v1/checkout/sessions/{session['id']}/beacon")):
            for key in ({}, {"Idempotency-Key": f"wide-{secrets.token_hex(6)}"}):
                answer = await client.post(path, content=body, headers={"Content-Type": "application/json", **key})
                assert_refused(answer, 400, code=None)
    assert await _counts(server_rt) == before
    assert_no_unhandled_error(server, mark)


def _post_routes() -> list[tuple[str, list[str], tuple]]:
    app = create_app(Config(database_url="sqlite:///unused.sqlite3"), run_sweeper=False)
    routes = []
    for rule in app.url_map.iter_rules():
        if "POST" in (rule.methods or ()):
            routes.append((rule.rule, sorted(rule.arguments), declaration(app.view_functions[rule.endpoint])))
    return sorted(routes)


ROUTES = _post_routes()


def test_the_route_walk_sees_the_json_routes():
    paths = {path for path, _, _ in ROUTES}
    assert {"/v1/orders", "/v1/checkout/sessions", "/v1/checkout/sessions/<session_id>/confirm",
            "/v1/checkout/sessions/<session_id>/beacon", "/v1/webhook_endpoints", "/v1/apps"} <= paths
    assert len(ROUTES) >= 25


@pytest.mark.parametrize("path, arguments, declared", ROUTES, ids=[r[0] for r in ROUTES])
async def test_every_post_route_refuses_a_deep_body_without_a_500(server, server_rt, world, path, arguments,
                                                                   declared):
    session = world["session"]
    url = path
    for name in arguments:  # the real session (its buyer token is bound to it), made-up ids elsewhere
        url = url.replace(f"<{name}>", session["id"] if name == "session_id" else f"x_{secrets.token_hex(6)}")
    kind = declared[0] if declared else None
    token = {"scope": world["key"], "client_token": session["client_token"]}.get(kind)
    before, mark = await _counts(server_rt), _log_mark(server)
    for key in ({}, {"Idempotency-Key": f"walk-{secrets.token_hex(6)}"}):
        for body in (DEEP_ARRAYS, DEEP_OBJECTS):
            # A connection of its own: a page that answers (404, 403) without reading the body
            # has the server close the connection, which a pooled client would then reuse.
            async with server.async_client(token) as client:
                answer = await client.post(url, content=body, headers={
                    "Content-Type": "application/json", "Connection": "close", **key})
            assert answer.status_code < 500, f"{path}: {answer.status_code} {answer.text[:300]}"
            if path.startswith("/v1/"):
                assert_refused(answer)
    assert await _counts(server_rt) == before
    assert_no_unhandled_error(server, mark)


@pytest.mark.parametrize("raw", [DEEP_ARRAYS, DEEP_CLOSED, DEEP_OBJECTS, b'{"a": NaN}', b'{"a": Infinity}',
                                 b'{"a": 1e999}', b'{"a": 1, "a": 2}', b"\xff\xfe", b'"\xed\xa0\x80"', b"",
                                 b"1" * 5000, b"[" * 65 + b"]" * 65])
def test_the_safe_parser_raises_only_value_error(raw):
    from flint import jsonsafe

    with pytest.raises(ValueError):
        jsonsafe.loads(raw)


def test_the_safe_parser_takes_ordinary_json():
    from flint import jsonsafe

    assert jsonsafe.loads(b'{"a": [1, 2.5, "x", null, true], "b": {"c": {}}}') == \
        {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    assert jsonsafe.loads("[" * 64 + "]" * 64) == json.loads("[" * 64 + "]" * 64)
    assert jsonsafe.loads(b"[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(ValueError):
        jsonsafe.loads(b"[[[[1]]]]", max_depth=3)


def test_the_idempotency_fingerprint_takes_any_body():
    from flint.idempotency.service import fingerprint

    for raw in (DEEP_ARRAYS, DEEP_CLOSED, DEEP_OBJECTS, b"\xff", b'{"a": NaN}'):
        assert len(fingerprint("POST", "/v1/orders", raw)) == 64
    # Whitespace and key order do not matter for a body that parses.
    assert fingerprint("POST", "/v1/orders", b'{"a": 1, "b": 2}') == fingerprint("POST", "/v1/orders", b'{"b":2,"a":1}')

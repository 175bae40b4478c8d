"""Partner app registration over real HTTP (docs/api.md 10): secrets shown once and kept only as a digest
(client secret) or encrypted (webhook secret), the redirect URI and URL rules, developer isolation,
updates, both rotations, and ``authenticate_client`` for the OAuth token endpoint."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from flint import clock
from flint.apps import service as apps
from flint.runtime import Runtime
from support.server import start_server, stop_server
from support.factories import make_merchant
from tests.pg import table_names

APP = {"name": "Loyalty Points", "redirect_uris": ["https://app.example/oauth/callback"],
       "scopes": ["orders:read", "events:read"]}


@pytest.fixture
def api(server, merchant):
    _, key = merchant
    with server.client(key) as client:
        yield client


def create(api, **fields):
    answer = api.post("/v1/apps", json={**APP, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- registration -------------------------------------------------------------------------------------

def test_create_shows_both_secrets_once_and_never_again(api, merchant):
    body = create(api, scopes=["events:read", "orders:read", "events:read"], description="Points for buyers",
                  redirect_uris=["https://app.example/cb", "http://127.0.0.1:8765/cb", "https://app.example/cb"],
                  webhook_url="http://127.0.0.1:9/flint", webhook_events=["order.paid", "refund.*", "order.paid"],
                  hook_url="http://127.0.0.1:9/hook", hooks=["checkout.before_payment"], hook_failure_mode="block")
    assert body["id"].startswith("app_") and body["object"] == "app"
    assert body["developer"] == merchant[0].id
    assert body["client_id"].startswith("fca_") and len(body["client_id"]) == 4 + 22
    assert body["client_secret"].startswith("fcs_") and len(body["client_secret"]) == 4 + 33
    assert body["webhook_secret"].startswith("whsec_")
    assert body["scopes"] == ["orders:read", "events:read"]  # deduplicated, in the canonical order
    assert body["redirect_uris"] == ["https://app.example/cb", "http://127.0.0.1:8765/cb"]  # as given, once each
    assert body["webhook_events"] == ["order.paid", "refund.*"]
    assert (body["hooks"], body["hook_failure_mode"], body["description"]) == (
        ["checkout.before_payment"], "block", "Points for buyers")

    shown = api.get(f"/v1/apps/{body['id']}").json()
    listed = api.get("/v1/apps").json()
    for secret in (body["client_secret"], body["webhook_secret"]):
        assert secret not in json.dumps(shown) and secret not in json.dumps(listed)
    assert "client_secret" not in shown and "webhook_secret" not in shown
    public = {k: v for k, v in body.items() if k not in ("client_secret", "webhook_secret")}
    assert shown == public and listed["data"][0] == public


def test_defaults(api):
    body = create(api)
    assert (body["webhook_url"], body["webhook_events"], body["hook_url"], body["hooks"], body["hook_failure_mode"],
            body["description"]) == (None, [], None, [], "allow", None)
    # A webhook secret exists from the start, so a webhook_url added later needs no rotation.
    assert body["webhook_secret"].startswith("whsec_")


async def test_secrets_are_stored_as_a_digest_and_encrypted(api, server_rt):
    body = create(api, webhook_url="http://127.0.0.1:9/w", webhook_events=["*"])
    async with server_rt.db.read() as conn:
        row = await conn.fetch_one("SELECT * FROM apps WHERE id = :id", {"id": body["id"]})
        tables = await table_names(conn)
        everything = json.dumps([await conn.fetch_all(f"SELECT * FROM {table}") for table in tables], default=str)
    assert row["client_secret_hash"] == hashlib.sha256(body["client_secret"].encode()).hexdigest()
    assert "whsec_" not in row["webhook_secret"] and server_rt.secrets.open(row["webhook_secret"]) == body["webhook_secret"]
    assert row["previous_webhook_secret"] is None
    # Neither secret is anywhere in the database in clear (this request carried no Idempotency-Key).
    assert body["client_secret"] not in everything and body["webhook_secret"] not in everything
    assert body["client_secret"][4:] not in everything and body["webhook_secret"][6:] not in everything


@pytest.mark.parametrize("redirect_uri", [
    "https://app.example/oauth/callback?source=flint&x=%2F",
    "http://127.0.0.1:8765/callback",
    "http://[::1]:3000/cb",
    "http://localhost/cb",
    "http://LocalHost:8080/cb",
    "https://127.0.0.1/cb",
    "https://app.example",
    "https://app.example:8443/a/../b",
])
def test_accepted_redirect_uris_are_stored_exactly(api, redirect_uri):
    assert create(api, redirect_uris=[redirect_uri])["redirect_uris"] == [redirect_uri]


@pytest.mark.parametrize("fields, code, param", [
    ({"scopes": ["orders:read", "orders:delete"]}, "scope_unknown", "scopes[1]"),
    ({"scopes": ["Orders:Read"]}, "scope_unknown", "scopes[0]"),
    ({"scopes": ["merchant"]}, "scope_unknown", "scopes[0]"),
    ({"scopes": []}, "parameter_invalid", "scopes"),
    ({"redirect_uris": []}, "parameter_invalid", "redirect_uris"),
    ({"redirect_uris": ["https://a.example/cb"] * 11}, "parameter_invalid", "redirect_uris"),
    ({"redirect_uris": ["https://ok.example/cb", "http://app.example/cb"]}, "redirect_uri_insecure",
     "redirect_uris[1]"),
    ({"redirect_uris": ["http://127.0.0.2/cb"]}, "redirect_uri_insecure", "redirect_uris[0]"),
    ({"redirect_uris": ["http://localhost.app.example/cb"]}, "redirect_uri_insecure", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example/cb#done"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example/cb#"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://user:pw@app.example/cb"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example@evil.example/cb"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["/oauth/callback"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https:/app.example/cb"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["com.example.app:/oauth2redirect"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["javascript://app.example/%0aalert(1)"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["HTTPS://app.example/cb"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example/c b"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example\\@evil.example/cb"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example/caf\u00e9"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example/%zz"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example:99999/cb"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example:/cb"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://-bad-.example/cb"]}, "redirect_uri_invalid", "redirect_uris[0]"),
    ({"redirect_uris": ["https://app.example/" + "a" * 2048]}, "parameter_invalid", "redirect_uris[0]"),
    ({"hooks": ["checkout.before_payment"]}, "hook_url_required", "hook_url"),
    ({"hook_url": "http://127.0.0.1:9/hook"}, "hooks_required", "hooks"),
    ({"hooks": ["checkout.after_payment"], "hook_url": "http://127.0.0.1:9/h"}, "hook_unknown", "hooks[0]"),
    ({"webhook_events": ["order.paid"]}, "webhook_url_required", "webhook_url"),
    ({"webhook_url": "http://127.0.0.1:9/w", "webhook_events": ["order.paid", "order.shipped"]},
     "event_type_unknown", "webhook_events[1]"),
    ({"webhook_url": "http://127.0.0.1:9/w", "webhook_events": ["nope.*"]}, "event_type_unknown",
     "webhook_events[0]"),
    ({"hooks": ["checkout.before_payment"], "hook_url": "http://10.0.0.7/hook"}, "url_not_allowed", "hook_url"),
    ({"hooks": ["checkout.before_payment"], "hook_url": "http://169.254.169.254/latest"}, "url_not_allowed",
     "hook_url"),
    ({"webhook_url": "https://user:pw@app.example/w"}, "url_invalid", "webhook_url"),
    ({"webhook_url": "ftp://app.example/w"}, "parameter_invalid", "webhook_url"),
    ({"hook_failure_mode": "retry"}, "parameter_invalid", "hook_failure_mode"),
    ({"name": ""}, "parameter_invalid", "name"),
    ({"name": "   "}, "parameter_invalid", "name"),
    ({"name": "Points\nApp"}, "parameter_invalid", "name"),
    ({"name": "x" * 101}, "parameter_invalid", "name"),
    ({"client_secret": "fcs_mine"}, "parameter_unknown", "client_secret"),
    ({"scopes": "orders:read"}, "parameter_invalid_type", "scopes"),
])
def test_bad_registrations_are_refused_and_nothing_is_created(api, fields, code, param):
    answer = api.post("/v1/apps", json={**APP, **fields})
    assert answer.status_code == 400, answer.text
    assert (answer.json()["code"], answer.json()["param"]) == (code, param), answer.text
    assert api.get("/v1/apps").json()["data"] == []


@pytest.mark.parametrize("missing", ["name", "redirect_uris", "scopes"])
def test_required_fields(api, missing):
    answer = api.post("/v1/apps", json={k: v for k, v in APP.items() if k != missing})
    assert answer.status_code == 400 and (answer.json()["code"], answer.json()["param"]) == ("parameter_missing", missing)


async def test_a_merchant_key_is_required(server, server_rt):
    async def apps() -> int:
        async with server_rt.db.read() as conn:
            return (await conn.fetch_one("SELECT COUNT(*) AS n FROM apps"))["n"]

    before = await apps()
    with server.client() as anonymous, server.client("sk_test_not_a_key") as wrong:
        missing = anonymous.post("/v1/apps", json=APP)
        assert (missing.status_code, missing.json()["code"]) == (401, "authentication_required")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        forged = wrong.post("/v1/apps", json=APP)
        assert (forged.status_code, forged.json()["code"]) == (401, "api_key_invalid")
        listed = wrong.get("/v1/apps")
        assert (listed.status_code, listed.json()["code"]) == (401, "api_key_invalid")
    assert await apps() == before  # refused before anything ran


# -- developers see only their own apps ------------------------------------------------------------------

async def test_another_developers_app_is_404(server, merchant, server_rt):
    _, key = merchant
    _, other_key = await make_merchant(server_rt)
    async with server.async_client(key) as mine, server.async_client(other_key) as theirs:
        app = (await mine.post("/v1/apps", json=APP)).json()
        for method, path, body in (("GET", f"/v1/apps/{app['id']}", None),
                                   ("POST", f"/v1/apps/{app['id']}", {"name": "Mine now"}),
                                   ("POST", f"/v1/apps/{app['id']}/rotate_secret", None),
                                   ("POST", f"/v1/apps/{app['id']}/rotate_webhook_secret", None)):
            answer = await theirs.request(method, path, json=body)
            assert answer.status_code == 404 and answer.json()["code"] == "app_not_found", (path, answer.text)
        assert (await theirs.get("/v1/apps")).json()["data"] == []
        assert (await theirs.get("/v1/apps", params={"starting_after": app["id"]})).status_code == 400
        still = (await mine.get(f"/v1/apps/{app['id']}")).json()
        assert still["name"] == APP["name"]
    assert await apps.authenticate_client(server_rt, app["client_id"], app["client_secret"]) is not None


def test_list_is_newest_first_and_pages(api):
    made = [create(api, name=f"App {i}")["id"] for i in range(3)]
    first = api.get("/v1/apps", params={"limit": 2}).json()
    assert [a["id"] for a in first["data"]] == made[::-1][:2] and first["has_more"] is True
    rest = api.get("/v1/apps", params={"limit": 2, "starting_after": first["data"][-1]["id"]}).json()
    assert [a["id"] for a in rest["data"]] == [made[0]] and rest["has_more"] is False


# -- updates ------------------------------------------------------------------------------------------------

def test_update(api):
    app = create(api, description="old")
    path = f"/v1/apps/{app['id']}"
    changed = api.post(path, json={
        "name": "Points+", "redirect_uris": ["https://new.example/cb", "https://new.example/cb"],
        "webhook_url": "http://127.0.0.1:9/w", "webhook_events": ["payment.*"],
        "hook_url": "http://127.0.0.1:9/h", "hooks": ["checkout.before_payment"], "hook_failure_mode": "block"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["redirect_uris"], body["webhook_url"], body["webhook_events"], body["hook_url"],
            body["hooks"], body["hook_failure_mode"], body["description"]) == (
        "Points+", ["https://new.example/cb"], "http://127.0.0.1:9/w", ["payment.*"], "http://127.0.0.1:9/h",
        ["checkout.before_payment"], "block", "old")
    assert "client_secret" not in body and "webhook_secret" not in body
    assert (body["client_id"], body["scopes"], body["created_at"]) == (app["client_id"], app["scopes"], app["created_at"])

    # null for a field that cannot be removed leaves it as it is; {} changes nothing.
    assert api.post(path, json={"name": None, "redirect_uris": None}).json() == body
    assert api.post(path, json={}).json() == body

    # Removing the hook_url alone would leave a hook with nowhere to call; both go together.
    lone = api.post(path, json={"hook_url": None})
    assert (lone.status_code, lone.json()["code"]) == (400, "hook_url_required")
    lone = api.post(path, json={"hooks": []})
    assert (lone.status_code, lone.json()["code"]) == (400, "hooks_required")
    lone = api.post(path, json={"webhook_url": None})
    assert (lone.status_code, lone.json()["code"]) == (400, "webhook_url_required")
    assert api.get(path).json() == body  # refused updates changed nothing

    cleared = api.post(path, json={"hook_url": None, "hooks": [], "webhook_url": None, "webhook_events": [],
                                   "description": None}).json()
    assert (cleared["hook_url"], cleared["hooks"], cleared["webhook_url"], cleared["webhook_events"],
            cleared["description"]) == (None, [], None, [], None)


@pytest.mark.parametrize("fields, code, param", [
    ({"scopes": ["orders:read", "refunds:everything"]}, "scope_unknown", "scopes[1]"),
    ({"scopes": []}, "parameter_invalid", "scopes"),
    ({"client_id": "fca_mine"}, "parameter_unknown", "client_id"),
    ({"redirect_uris": ["http://app.example/cb"]}, "redirect_uri_insecure", "redirect_uris[0]"),
    ({"redirect_uris": []}, "parameter_invalid", "redirect_uris"),
    ({"webhook_url": "http://192.168.1.20/w"}, "url_not_allowed", "webhook_url"),
    ({"webhook_url": "http://127.0.0.1:9/w", "webhook_events": ["order.shipped"]}, "event_type_unknown",
     "webhook_events[0]"),
    ({"hooks": ["checkout.before_payment"]}, "hook_url_required", "hook_url"),
])
def test_bad_updates_are_refused(api, fields, code, param):
    app = create(api)
    answer = api.post(f"/v1/apps/{app['id']}", json=fields)
    assert answer.status_code == 400, answer.text
    assert (answer.json()["code"], answer.json()["param"]) == (code, param)
    assert api.get(f"/v1/apps/{app['id']}").json() == {k: v for k, v in app.items()
                                                        if k not in ("client_secret", "webhook_secret")}


def test_unknown_app_is_404(api):
    for path in ("/v1/apps/app_nothing", "/v1/apps/app_nothing/rotate_secret"):
        answer = api.post(path, json={})
        assert (answer.status_code, answer.json()["code"]) == (404, "app_not_found")


# -- rotations -----------------------------------------------------------------------------------------------

async def test_rotate_secret_ends_the_old_one_at_once(api, server_rt):
    app = create(api)
    old = app["client_secret"]
    assert (await apps.authenticate_client(server_rt, app["client_id"], old)).id == app["id"]
    rotated = api.post(f"/v1/apps/{app['id']}/rotate_secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["client_secret"]
    assert new.startswith("fcs_") and new != old and "webhook_secret" not in rotated.json()
    assert rotated.json()["client_id"] == app["client_id"]  # the client keeps its id
    assert await apps.authenticate_client(server_rt, app["client_id"], old) is None
    assert (await apps.authenticate_client(server_rt, app["client_id"], new)).id == app["id"]
    assert "client_secret" not in api.get(f"/v1/apps/{app['id']}").json()


async def test_rotate_webhook_secret_keeps_the_previous_one_signing_for_a_day(api, server_rt):
    app = create(api, webhook_url="http://127.0.0.1:9/w")
    old = app["webhook_secret"]
    rotated = api.post(f"/v1/apps/{app['id']}/rotate_webhook_secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["webhook_secret"]
    assert new.startswith("whsec_") and new != old and "client_secret" not in rotated.json()
    async with server_rt.db.read() as conn:
        row = await conn.fetch_one("SELECT previous_webhook_secret, previous_webhook_secret_expires_at FROM apps "
                                   "WHERE id = :id", {"id": app["id"]})
    assert old not in row["previous_webhook_secret"] and server_rt.secrets.open(row["previous_webhook_secret"]) == old
    expires = clock.parse(row["previous_webhook_secret_expires_at"])
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(hours=24))) < timedelta(minutes=1)
    stored = await apps.get_app_by_client_id(server_rt, app["client_id"])
    assert apps.webhook_signing_secrets(server_rt, stored, clock.now_iso()) == [new, old]
    a_day_later = clock.iso(datetime.now(timezone.utc) + timedelta(hours=24, minutes=1))
    assert apps.webhook_signing_secrets(server_rt, stored, a_day_later) == [new]
    # The client secret is untouched by a webhook secret rotation.
    assert await apps.authenticate_client(server_rt, app["client_id"], app["client_secret"]) is not None


# -- the OAuth client ------------------------------------------------------------------------------------------

async def test_authenticate_client(api, server_rt):
    app, other = create(api), create(api, name="Other")
    found = await apps.authenticate_client(server_rt, app["client_id"], app["client_secret"])
    assert found is not None and found.id == app["id"] and found.scope_list == ["orders:read", "events:read"]
    for client_id, secret in ((app["client_id"], app["client_secret"] + "x"),
                              (app["client_id"], app["client_secret"][:-1]),
                              (app["client_id"], other["client_secret"]),  # another app's secret
                              (app["client_id"], ""),
                              (app["client_id"], "\ud800"),  # not encodable: never a secret
                              (app["client_id"], None),
                              ("fca_unknown", app["client_secret"]),
                              ("", app["client_secret"]),
                              (app["id"], app["client_secret"]),  # the app id is not the client id
                              ("x" * 10_000, app["client_secret"])):
        assert await apps.authenticate_client(server_rt, client_id, secret) is None, (client_id, secret)
    assert (await apps.get_app_by_client_id(server_rt, app["client_id"])).id == app["id"]
    assert await apps.get_app_by_client_id(server_rt, "fca_unknown") is None


# -- production: webhook and hook URLs follow the egress rules; loopback redirect URIs stay allowed ---------

@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("prod-apps"), extra_env={"FLINT_ENV": "production"})
    yield live
    stop_server(live)


@pytest.fixture
async def production_key(production_server):
    rt = await Runtime.start(production_server.runtime_config())
    try:
        return (await make_merchant(rt))[1]
    finally:
        await rt.stop()


@pytest.mark.parametrize("fields, code, param", [
    ({"hooks": ["checkout.before_payment"], "hook_url": "https://10.1.2.3/hook"}, "url_not_allowed", "hook_url"),
    ({"hooks": ["checkout.before_payment"], "hook_url": "https://127.0.0.1:8443/hook"}, "url_not_allowed",
     "hook_url"),
    ({"hooks": ["checkout.before_payment"], "hook_url": "https://localhost/hook"}, "url_not_allowed", "hook_url"),
    ({"hooks": ["checkout.before_payment"], "hook_url": "http://hooks.example.com/h"}, "url_insecure", "hook_url"),
    ({"webhook_url": "https://[fd00::1]/w"}, "url_not_allowed", "webhook_url"),
    ({"webhook_url": "http://hooks.example.com/w"}, "url_insecure", "webhook_url"),
    ({"webhook_url": "https://no-such-host.invalid/w"}, "url_unresolvable", "webhook_url"),
    ({"redirect_uris": ["http://app.example/cb"]}, "redirect_uri_insecure", "redirect_uris[0]"),
])
async def test_production_refuses_insecure_and_private_destinations(production_server, production_key, fields,
                                                                    code, param):
    async with production_server.async_client(production_key) as client:
        answer = await client.post("/v1/apps", json={**APP, **fields})
        assert answer.status_code == 400, answer.text
        assert (answer.json()["code"], answer.json()["param"]) == (code, param)
        assert (await client.get("/v1/apps")).json()["data"] == []


async def test_production_allows_loopback_redirect_uris_for_native_apps(production_server, production_key):
    uris = ["http://127.0.0.1:53682/cb", "http://[::1]/cb", "http://localhost:8080/cb", "https://app.example/cb"]
    async with production_server.async_client(production_key) as client:
        answer = await client.post("/v1/apps", json={**APP, "redirect_uris": uris})
    assert answer.status_code == 200, answer.text
    assert answer.json()["redirect_uris"] == uris

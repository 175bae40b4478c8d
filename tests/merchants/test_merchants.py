"""Merchants: hashed keys (several live, revocable), embed origins, the CLI."""
import json
import subprocess
import sys

import pytest

from flint.errors import FlintError
from flint.merchants import service as merchants
from flint.merchants.service import normalise_origin
from flint.security import hash_secret
from support import ROOT
from support.factories import make_merchant


async def test_keys_are_stored_hashed_only(rt):
    merchant, secret = await make_merchant(rt)
    assert secret.startswith("sk_test_") and len(secret) >= 8 + 32
    async with rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT * FROM api_keys WHERE merchant_id = :m", {"m": merchant.id})
    assert len(rows) == 1 and rows[0]["key_hash"] == hash_secret(secret)
    assert all(secret not in str(v) for v in rows[0].values())
    assert (await merchants.authenticate_secret_key(rt, secret)).merchant_id == merchant.id
    assert await merchants.authenticate_secret_key(rt, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None


def test_password_is_argon2():
    from flint.security import hash_password, password_matches

    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2")
    assert password_matches("correct horse battery", stored) and not password_matches("wrong", stored)


async def test_keys_roll_without_downtime_over_http(server, merchant):
    _, first = merchant
    with server.client(first) as client:
        created = client.post("/v1/merchant/keys")
        assert created.status_code == 200
        second = created.json()["secret_key"]
        listed = client.get("/v1/merchant/keys").json()["data"]
        assert len(listed) == 2 and all("secret_key" not in k or k["secret_key"] is None for k in listed)
        with server.client(second) as other:
            # Both keys work at once.
            assert other.get("/v1/merchant").status_code == 200
            first_id = [k["id"] for k in listed if k["id"] != created.json()["id"]][0]
            revoked = other.delete(f"/v1/merchant/keys/{first_id}")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"]
            assert client.get("/v1/merchant").json()["code"] == "api_key_invalid"
            # The last live key cannot be revoked.
            last = other.delete(f"/v1/merchant/keys/{created.json()['id']}")
        assert (last.status_code, last.json()["code"]) == (409, "last_api_key")


async def test_allowed_origins_are_exact_and_normalised(server, merchant):
    _, key = merchant
    with server.client(key) as client:
        updated = client.post("/v1/merchant", json={"allowed_origins": ["https://Shop.Example:443", "http://localhost:8001"]})
        assert updated.status_code == 200
        assert updated.json()["allowed_origins"] == ["http://localhost:8001", "https://shop.example"]
        assert client.get("/v1/merchant").json()["allowed_origins"] == ["http://localhost:8001", "https://shop.example"]
        bad = client.post("/v1/merchant", json={"allowed_origins": ["https://shop.example/checkout"]})
        assert (bad.status_code, bad.json()["code"], bad.json()["param"]) == (400, "origin_invalid", "allowed_origins[0]")


@pytest.mark.parametrize("origin", ["shop.example", "ftp://shop.example", "https://shop.example/", "https://u:p@shop.example",
                                    "https://shop.example?x=1", "https://shop.example:99999"])
def test_bad_origins_are_refused(origin):
    with pytest.raises(FlintError):
        normalise_origin(origin)


async def test_duplicate_email_is_refused(rt):
    await merchants.create_merchant(rt, name="A", email="same@shop.example", password="long enough")
    with pytest.raises(FlintError) as raised:
        await merchants.create_merchant(rt, name="B", email="SAME@shop.example", password="long enough")
    assert raised.value.code == "email_taken"


def test_merchants_create_cli_prints_json_and_the_key_works(server):
    run = subprocess.run(
        [sys.executable, "-m", "flint.cli", "merchants", "create", "--name", "Cli Shop", "--email", "cli@shop.example",
         "--password", "cli-password-1", "--origin", "https://cli.shop.example", "--json"],
        cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    created = json.loads(run.stdout)
    assert created["id"].startswith("mer_") and created["secret_key"].startswith("sk_test_")
    with server.client(created["secret_key"]) as client:
        me = client.get("/v1/merchant").json()
    assert (me["id"], me["name"], me["allowed_origins"]) == (created["id"], "Cli Shop", ["https://cli.shop.example"])

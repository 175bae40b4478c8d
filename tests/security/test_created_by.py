"""Finding 12: payment links created by apps said `source: "manual"`, and nothing showed which app
made an object; the owner's password for `flint merchants create` could only be given on the command
line (visible to every user of the machine in the process list). docs/api.md 12 and 13."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from flint.accounts import service as accounts
from flint.config import Config
from flint.runtime import Runtime
from support import ROOT, TEST_SECRET

from .partner import CARD, ORDER, installed_app

ALL_WRITES = ["orders:read", "orders:write", "checkout:write", "payment_links:write", "payments:read",
              "refunds:write", "webhooks:write"]


async def test_every_object_an_app_creates_names_it(server, server_rt):
    inst = await installed_app(server, server_rt, scopes=ALL_WRITES)
    by_app = {"type": "app", "id": inst.app.id}
    by_merchant = {"type": "merchant", "id": inst.shop.id}
    async with server.async_client(inst.token["access_token"]) as app:
        order = (await app.post("/v1/orders", json=ORDER)).json()
        link = (await app.post("/v1/payment_links", json={"order": order["id"]})).json()
        session = (await app.post("/v1/checkout/sessions", json={
            "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks"})).json()
        endpoint = (await app.post("/v1/webhook_endpoints", json={"url": "http://127.0.0.1:9/x",
                                                                  "events": ["order.paid"]})).json()
    assert order["created_by"] == by_app
    assert (link["source"], link["created_by"]) == ("app", by_app)
    assert session["created_by"] == by_app and endpoint["created_by"] == by_app
    async with server.async_client(inst.shop_key) as owner:
        inline = (await owner.get(f"/v1/orders/{session['order_id']}")).json()
        assert inline["created_by"] == by_app  # the session's inline order: made by the same caller
        mine = (await owner.post("/v1/payment_links", json={"order": order["id"]})).json()
        assert (mine["source"], mine["created_by"]) == ("manual", by_merchant)
        assert (await owner.post("/v1/orders", json=ORDER)).json()["created_by"] == by_merchant
    async with server.async_client(session["client_token"]) as buyer:
        paid = (await buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD})).json()
    async with server.async_client(inst.token["access_token"]) as app:
        refund = (await app.post("/v1/refunds", json={"payment": paid["id"], "amount": 100})).json()
        assert refund["created_by"] == by_app
        assert (await app.get(f"/v1/payment_links/{link['id']}")).json()["created_by"] == by_app


def test_merchants_create_reads_the_password_from_stdin(tmp_path):
    url = f"sqlite:///{tmp_path / 'stdin.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLINT_")}
    env.update(FLINT_DATABASE_URL=url, FLINT_SECRET_KEY=TEST_SECRET, FLINT_LOG_LEVEL="WARNING")
    done = subprocess.run([sys.executable, "-m", "flint.cli", "merchants", "create", "--name", "Stdin Shop",
                           "--email", "stdin@shop.example", "--password-stdin", "--json"],
                          input="a password nobody saw in ps\n", cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["secret_key"].startswith("sk_test_")
    both = subprocess.run([sys.executable, "-m", "flint.cli", "merchants", "create", "--name", "X", "--email",
                           "x@shop.example", "--password", "p", "--password-stdin"], input="p\n", cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert both.returncode != 0 and "not allowed with" in both.stderr

    async def signs_in() -> bool:
        rt = await Runtime.start(Config(database_url=url, secret_keys=(TEST_SECRET,)))
        try:
            return (await accounts.sign_in(rt, "stdin@shop.example", "a password nobody saw in ps", "127.0.0.1")
                    ).merchant.email == "stdin@shop.example"
        finally:
            await rt.stop()

    import asyncio
    assert asyncio.run(signs_in())

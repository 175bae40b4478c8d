"""``flint demo``: everything for a first look, on SQLite."""
from __future__ import annotations

import asyncio
import os
from dataclasses import replace

from .config import Config

DEMO_EMAIL = "demo@flint.test"
DEMO_PASSWORD = "flint-demo-password"


async def _seed(config: Config) -> tuple[str, str, str, str]:
    from .actors import Actor
    from .checkout import service as checkout
    from .db.migrate import migrate
    from .merchants import service as merchants
    from .merchants import store as merchant_store
    from .orders.service import LineItem, NewOrder
    from .runtime import Runtime

    rt = await Runtime.start(config)
    try:
        await migrate(rt.db)
        async with rt.db.read() as conn:
            existing = await merchant_store.select_merchant_by_email(conn, DEMO_EMAIL)
        if existing is None:
            merchant, secret = await merchants.create_merchant(
                rt, name="Demo Coffee Roasters", email=DEMO_EMAIL, password=DEMO_PASSWORD,
                origins=["http://127.0.0.1:8001", "http://localhost:8001"])
        else:
            # Keys are shown once: a re-run gets a fresh key rather than an old one read back.
            merchant = existing
            _, secret = await merchants.create_key(rt, merchant.id)
        session = await checkout.create_session(rt, merchant.id, checkout.NewSession(
            mode="hosted", success_url="http://127.0.0.1:8001/thanks",
            inline_order=NewOrder(currency="usd", line_items=[LineItem("Espresso beans 1 kg", 1, 2400)])),
            Actor("merchant", merchant.id))
        shown = checkout.present(rt, session)
        return merchant.id, secret, shown["id"], shown["client_token"]
    finally:
        await rt.stop()


def run_demo(config: Config, host: str, port: int) -> None:
    from .cli import _serve

    if "FLINT_PUBLIC_URL" not in os.environ:
        config = replace(config, public_url=f"http://{host}:{port}")
    merchant_id, secret, session_id, token = asyncio.run(_seed(config))
    print(f"""
Flint demo is starting on {config.public_url}

  Merchant:      {merchant_id} (login {DEMO_EMAIL} / {DEMO_PASSWORD})
  Secret key:    {secret}
  API reference: {config.public_url}/v1/openapi.json (and docs/api.md)

List your orders:
  curl -s {config.public_url}/v1/orders -H "Authorization: Bearer {secret}"

Pay the demo checkout {session_id} as a buyer would (its client_token is the buyer's credential):
  curl -s {config.public_url}/v1/checkout/sessions/{session_id}/confirm -H "Authorization: Bearer {token}" \\
    -H "Content-Type: application/json" \\
    -d '{{"card": {{"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}}}'
""", flush=True)
    asyncio.run(_serve(config, host, port))

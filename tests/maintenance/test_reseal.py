"""Key rotation: `reseal_all` re-encrypts every sealed column under the newest FLINT_SECRET_KEY,
so the old key can leave the list without losing a webhook secret."""
from __future__ import annotations

import pytest

from flint.apps import service as apps
from flint.config import Config
from flint.idempotency import service as idempotency
from flint.maintenance import store as sealed_store
from flint.maintenance.service import reseal_all
from flint.runtime import Runtime
from flint.security import SecretBox
from flint.webhooks import service as webhooks
from support import TEST_SECRET
from support.factories import make_merchant

NEW_KEY = "the-new-secret-key-for-rotation-tests"


async def _sealed_values(rt) -> dict[str, list[str]]:
    out = {}
    async with rt.db.read() as conn:
        for table, keys, column in sealed_store.SEALED_COLUMNS:
            rows = await conn.fetch_all(f"SELECT {column} AS v FROM {table} WHERE {column} IS NOT NULL")
            out[f"{table}.{column}"] = [row["v"] for row in rows]
    return out


async def test_reseal_moves_every_sealed_secret_to_the_newest_key(rt: Runtime):
    merchant, _ = await make_merchant(rt)
    endpoint, first_secret = await webhooks.create_endpoint(rt, merchant.id, url="http://127.0.0.1:9/hook",
                                                            events=["*"], description=None)
    _, endpoint_secret = await webhooks.rotate_secret(rt, merchant.id, endpoint.id)  # both columns filled
    app, _, app_secret = await apps.create_app(rt, merchant.id, name="Rotating", redirect_uris=["http://127.0.0.1:9/cb"],
                                               scopes=["orders:read"], webhook_url="http://127.0.0.1:9/app",
                                               webhook_events=["order.*"])
    assert await idempotency.begin(rt, f"merchant:{merchant.id}", "rotate-1", "hash") is None
    await idempotency.finish(rt, f"merchant:{merchant.id}", "rotate-1", 200, "application/json", '{"secret_key": "sk_x"}')
    before = await _sealed_values(rt)
    assert all(before[name] for name in ("webhook_endpoints.secret", "apps.webhook_secret",
                                         "idempotency_keys.response_body")), before

    # Every process now lists the new key first; the old one still opens what it sealed.
    rotated = await Runtime.start(Config(database_url=rt.config.database_url, secret_keys=(NEW_KEY, TEST_SECRET), env="development",
                                         public_url=rt.config.public_url))
    try:
        report = await reseal_all(rotated)
    finally:
        await rotated.stop()
    for name, values in before.items():
        assert report[name] == {"resealed": len(values), "unreadable": 0}, (name, report)
    after = await _sealed_values(rt)
    only_new = SecretBox((NEW_KEY,))
    opened = {name: sorted(only_new.open(v) for v in values) for name, values in after.items()}
    assert opened["webhook_endpoints.secret"] == [endpoint_secret]
    assert opened["webhook_endpoints.previous_secret"] == [first_secret]
    assert app_secret in opened["apps.webhook_secret"]
    assert opened["idempotency_keys.response_body"] == ['{"secret_key": "sk_x"}']
    with pytest.raises(RuntimeError):  # and the old key alone no longer opens them
        SecretBox((TEST_SECRET,)).open(after["webhook_endpoints.secret"][0])


async def test_a_value_no_key_opens_is_reported_and_left_alone(rt: Runtime):
    merchant, _ = await make_merchant(rt)
    await webhooks.create_endpoint(rt, merchant.id, url="http://127.0.0.1:9/hook", events=["*"], description=None)
    foreign = SecretBox(("a-key-nobody-has-any-more",)).seal("whsec_lost")
    async with rt.db.transaction() as conn:
        await conn.execute("UPDATE webhook_endpoints SET previous_secret = :v WHERE merchant_id = :m",
                           {"v": foreign, "m": merchant.id})
    report = await reseal_all(rt)
    assert report["webhook_endpoints.previous_secret"] == {"resealed": 0, "unreadable": 1}
    assert report["webhook_endpoints.secret"] == {"resealed": 1, "unreadable": 0}
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT previous_secret FROM webhook_endpoints WHERE merchant_id = :m", {"m": merchant.id})
    assert row["previous_secret"] == foreign

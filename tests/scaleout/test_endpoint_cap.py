"""The webhook endpoint cap (docs/api.md 13: 16 per merchant and per installation) holds across processes:
creations raced over two `flint serve` processes on one database (PostgreSQL when configured, and
SQLite) end with exactly 16, because the count is taken under the merchant's row lock."""
from __future__ import annotations

import asyncio

from tests.scaleout.test_processes import cluster, merchant, rt  # noqa: F401  (fixtures)

CAP = 16


async def test_endpoint_creations_raced_over_two_processes_stop_at_the_cap(cluster, rt, merchant):  # noqa: F811
    _, key = merchant
    clients = [server.async_client(key) for server in cluster.servers]
    try:
        answers = await asyncio.gather(*(
            clients[i % 2].post("/v1/webhook_endpoints", json={"url": f"http://127.0.0.1:9/cap-{i}", "events": ["*"]})
            for i in range(CAP + 14)))
    finally:
        for client in clients:
            await client.aclose()
    assert sorted(a.status_code for a in answers) == [200] * CAP + [400] * 14, [a.text for a in answers][:3]
    assert {a.json()["code"] for a in answers if a.status_code == 400} == {"too_many_endpoints"}
    async with rt.db.read() as conn:
        row = await conn.fetch_one("SELECT COUNT(*) AS n FROM webhook_endpoints WHERE merchant_id = :m",
                                   {"m": merchant[0].id})
    assert row["n"] == CAP

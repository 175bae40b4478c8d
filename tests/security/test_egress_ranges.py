"""Finding 10 (issue 13): webhooks and hook calls refuse every address that is not globally routable,
IPv4 embedded in IPv6 included (judged by the embedded IPv4 address), at endpoint creation and again
when a delivery or a hook call is sent.

Before the fix NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``), 6to4 (``2002::/16``), IPv4-compatible
(``::/96``) and site-local (``fec0::/10``) addresses counted as public: ``64:ff9b::a9fe:a9fe`` is the
cloud metadata service through a NAT64 gateway, ``2002:7f00:1::`` loopback through a 6to4 relay.
"""
from __future__ import annotations

import ipaddress
import secrets
import time
from datetime import datetime, timezone

import pytest

from flint.events import service as events
from flint.actors import SYSTEM
from flint.ids import new_id
from flint.runtime import Runtime
from flint.webhooks import egress, signing
from tests.hooks.test_hook import answer, browser, calls_of, confirm, hook_server, hooked_shop, session_of  # noqa: F401
from tests.webhooks.test_endpoints import _merchant_on, production_server  # noqa: F401

# (address, allowed in development (loopback allowed), allowed in production)
TABLE = [
    # public: stay allowed
    ("8.8.8.8", True, True),
    ("2606:4700::1111", True, True),
    ("2001:4860:4860::8888", True, True),
    ("::ffff:8.8.8.8", True, True),  # IPv4-mapped, RFC 4291 2.5.5.2
    ("64:ff9b::808:808", True, True),  # NAT64 of 8.8.8.8, RFC 6052
    ("2002:808:808::1", True, True),  # 6to4 of 8.8.8.8, RFC 3056
    ("::808:808", True, True),  # IPv4-compatible 8.8.8.8 (deprecated, RFC 4291 2.5.5.1): judged as 8.8.8.8
    # loopback: development only, and only as the host itself knows it (127/8, ::1, IPv4-mapped)
    ("127.0.0.1", True, False),
    ("::1", True, False),
    ("::ffff:127.0.0.1", True, False),
    # IPv4 embedded in IPv6, judged by the IPv4 inside; a translator's loopback is not ours
    ("::ffff:10.0.0.1", False, False),
    ("::ffff:169.254.169.254", False, False),
    ("64:ff9b::7f00:1", False, False),
    ("64:ff9b::a00:1", False, False),
    ("64:ff9b::a9fe:a9fe", False, False),  # 169.254.169.254, the metadata service
    ("64:ff9b::c0a8:1", False, False),
    ("64:ff9b::6440:1", False, False),  # 100.64.0.1, shared address space
    ("64:ff9b:1::808:808", False, False),  # local-use NAT64, RFC 8215: never public
    ("64:ff9b:1::a00:1", False, False),
    ("2002:7f00:1::", False, False),
    ("2002:a00:1::1", False, False),
    ("2002:a9fe:a9fe::", False, False),
    ("2002:c0a8:101::", False, False),
    ("::7f00:1", False, False),
    ("::a00:1", False, False),
    ("::a9fe:a9fe", False, False),
    ("::2", False, False),
    ("::ffff:0:a00:1", False, False),  # IPv4-translated, RFC 2765
    ("::ffff:0:808:808", False, False),
    # Teredo, RFC 4380: a tunnel, never a destination of ours
    ("2001::1", False, False),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False, False),
    ("2001:0:808:808::1", False, False),
    # site-local (deprecated, RFC 3879), unique-local, link-local, multicast, unspecified, documentation
    ("fec0::1", False, False),
    ("feff::1", False, False),
    ("fc00::1", False, False),
    ("fd12:3456::1", False, False),
    ("fe80::1", False, False),
    ("ff02::1", False, False),
    ("ff0e::1", False, False),
    ("::", False, False),
    ("2001:db8::1", False, False),
    ("3fff::1", False, False),  # documentation, RFC 9637
    ("100::1", False, False),  # discard-only, RFC 6666
    ("5f00::1", False, False),  # SRv6 SIDs, RFC 9602
    # IPv4 special ranges
    ("10.1.2.3", False, False), ("172.16.0.1", False, False), ("192.168.0.1", False, False),
    ("169.254.169.254", False, False), ("100.64.0.1", False, False), ("0.0.0.0", False, False),
    ("224.0.0.1", False, False), ("255.255.255.255", False, False), ("192.0.2.1", False, False),
    ("198.18.0.1", False, False), ("240.0.0.1", False, False),
]


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize("address, in_development, in_production", TABLE)
def test_which_addresses_outbound_calls_may_reach(address, in_development, in_production):
    ip = ipaddress.ip_address(address)
    assert egress._allowed(ip, True) is in_development
    assert egress._allowed(ip, False) is in_production


@pytest.mark.parametrize("address, in_development, in_production", TABLE)
async def test_resolve_checks_a_literal_address_in_the_url(address, in_development, in_production):
    url = f"https://{_host(address)}:8443/hook"
    for allow_loopback, allowed in ((True, in_development), (False, in_production)):
        if allowed:
            target = await egress.resolve(url, allow_loopback=allow_loopback)
            assert ipaddress.ip_address(target.address) == ipaddress.ip_address(address) and target.port == 8443
        else:
            with pytest.raises(egress.DestinationRefused) as refused:
                await egress.resolve(url, allow_loopback=allow_loopback)
            assert str(refused.value).startswith("destination_not_allowed: ")


# -- at creation --------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, in_development, in_production", TABLE)
async def test_production_refuses_such_an_endpoint_at_creation(production_server, address, in_development,
                                                               in_production):
    (merchant, key), _ = await _merchant_on(production_server)
    async with production_server.async_client(key) as client:
        made = await client.post("/v1/webhook_endpoints", json={"url": f"https://{_host(address)}/h", "events": ["*"]})
        if in_production:
            assert made.status_code == 200, made.text
            assert (await client.delete(f"/v1/webhook_endpoints/{made.json()['id']}")).status_code == 200
        else:
            assert made.status_code == 400 and made.json()["code"] == "url_not_allowed", made.text
            assert (await client.get("/v1/webhook_endpoints")).json()["data"] == []


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::", "::7f00:1", "fec0::1", "64:ff9b:1::7f00:1"])
async def test_development_refuses_a_translated_loopback_at_creation(server, merchant, address):
    _, key = merchant
    async with server.async_client(key) as client:
        made = await client.post("/v1/webhook_endpoints", json={"url": f"http://{_host(address)}:9/h", "events": ["*"]})
        assert made.status_code == 400 and made.json()["code"] == "url_not_allowed", made.text
        # The host itself stays reachable in development, as docs/api.md 11 says.
        kept = await client.post("/v1/webhook_endpoints", json={"url": "http://[::ffff:127.0.0.1]:9/h", "events": ["*"]})
        assert kept.status_code == 200, kept.text
        await client.delete(f"/v1/webhook_endpoints/{kept.json()['id']}")


# -- when sending -------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "2002:a9fe:a9fe::", "::a00:1", "fec0::1", "64:ff9b:1::808:808"])
async def test_a_delivery_to_such_an_address_is_refused_when_sent(production_server, address):
    """An endpoint row whose URL got past creation (written straight into the table, as an endpoint made
    before this rule was would be): the delivery is refused before any connection is made."""
    (merchant, key), _ = await _merchant_on(production_server)
    rt = await Runtime.start(production_server.runtime_config())
    try:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        async with rt.db.transaction() as conn:
            await conn.execute(
                """INSERT INTO webhook_endpoints (id, merchant_id, url, events, description, status, disabled_reason,
                       secret, previous_secret, previous_expires_at, failing_since, created_at, updated_at)
                   VALUES (:id, :m, :url, '["*"]', NULL, 'enabled', NULL, :secret, NULL, NULL, NULL, :now, :now)""",
                {"id": new_id("we"), "m": merchant.id, "url": f"https://{_host(address)}/h",
                 "secret": rt.secrets.seal(signing.new_secret()), "now": now})
            await events.record(conn, merchant_id=merchant.id, type="order.created", actor=SYSTEM, obj={"id": "ord_x"})
        deadline = time.monotonic() + 15
        while True:
            async with rt.db.read() as conn:
                attempt = await conn.fetch_one("SELECT error, status_code FROM webhook_attempts a JOIN webhook_deliveries d"
                                               " ON d.id = a.delivery_id WHERE d.merchant_id = :m", {"m": merchant.id})
            if attempt or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        await rt.stop()
    assert attempt is not None and attempt["status_code"] is None
    assert attempt["error"].startswith("destination_not_allowed: "), attempt["error"]


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::", "::7f00:1", "fec0::1", "64:ff9b:1::7f00:1"])
async def test_a_hook_call_to_such_an_address_is_recorded_as_an_error(server, server_rt, browser, hook_server,
                                                                     address):
    shop, key, [(app, path, _)] = await hooked_shop(server, server_rt, browser, hook_server, [
        (answer({"type": "block", "message": "should never be asked"}), 0, 200)])
    # The app's hook_url as an old row might hold it (creation refuses it now): straight into the table.
    async with server_rt.db.transaction() as conn:
        await conn.execute("UPDATE apps SET hook_url = :url WHERE id = :id",
                           {"url": f"http://{_host(address)}:{hook_server.port}{path}", "id": app.id})
    asked = len(hook_server.at(path))
    session = await session_of(server, key)
    paid = await confirm(server, session)
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"  # failure mode "allow"
    [call] = await calls_of(server, key, session["order_id"])
    assert call["outcome"] == "error" and call["status_code"] is None
    assert "destination_not_allowed" in call["error"], call["error"]
    assert len(hook_server.at(path)) == asked

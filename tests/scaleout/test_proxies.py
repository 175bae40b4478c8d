"""Behind a load balancer: failed sign-ins are limited per real client, and only a listed proxy's
X-Forwarded-For is believed."""
from __future__ import annotations

import re

import httpx
import pytest

from flint.config import Config
from flint.proxies import client_address, parse_networks
from support.server import start_server, stop_server

TRUSTED = parse_networks(("10.0.0.0/8", "127.0.0.1"))


@pytest.mark.parametrize("remote, forwarded, expected", [
    ("127.0.0.1", "203.0.113.7", "203.0.113.7"),                 # one trusted proxy
    ("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.2.3", "203.0.113.7"),  # the client forged the first entry
    ("192.0.2.9", "203.0.113.7", "192.0.2.9"),                   # not a listed proxy: the header is ignored
    ("127.0.0.1", None, "127.0.0.1"),
    ("127.0.0.1", "not-an-ip, 203.0.113.7", "203.0.113.7"),
    ("127.0.0.1", "10.0.0.5", "10.0.0.5"),                       # only proxies: the farthest one
    (None, "203.0.113.7", "unknown"),
])
def test_client_address(remote, forwarded, expected):
    assert client_address(remote, forwarded, TRUSTED) == expected


def test_without_trusted_proxies_the_header_is_never_believed():
    assert client_address("127.0.0.1", "203.0.113.7", ()) == "127.0.0.1"


def test_a_bad_trusted_proxy_setting_is_refused_at_start():
    with pytest.raises(ValueError, match="FLINT_TRUSTED_PROXIES"):
        Config.from_env({"FLINT_TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"})


async def _fail_sign_ins(url: str, count: int, forwarded: str, start: int) -> list[int]:
    statuses = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as browser:
        for n in range(count):
            page = await browser.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            answer = await browser.post("/login", headers={"X-Forwarded-For": forwarded}, data={
                "csrf_token": token, "email": f"nobody{start + n}@shop.example", "password": "guess"})
            statuses.append(answer.status_code)
    return statuses


@pytest.mark.parametrize("trusted", [True, False])
async def test_failed_sign_ins_are_limited_per_forwarded_client_only_behind_a_trusted_proxy(tmp_path, trusted):
    live = start_server(tmp_path, extra_env={"FLINT_TRUSTED_PROXIES": "127.0.0.1"} if trusted else {})
    try:
        # 20 failures (different emails, so the per-email limit never trips) from one client...
        assert set(await _fail_sign_ins(live.url, 20, "203.0.113.7", 0)) == {401}
        assert await _fail_sign_ins(live.url, 1, "203.0.113.7", 100) == [429]
        # ...and another client behind the same proxy: free to sign in only if the proxy is trusted.
        other = await _fail_sign_ins(live.url, 1, "203.0.113.8", 200)
        assert other == ([401] if trusted else [429])  # untrusted: a forged header evades nothing
    finally:
        stop_server(live)

"""Finding 3 (issue 13): no URL a merchant supplies can add a directive to the Content-Security-Policy
of the hosted page or the card frame, nor a header to any response.

Driven by a table of hostile ``success_url`` / ``cancel_url`` values. Each is either refused at
session creation (400, nothing created) or, if accepted, the pages built from it carry exactly the
expected directives, every source token matches a strict grammar, and the redirect after paying goes
to the URL's own scheme, host and port with no CR/LF in any header. Also: the URL parser and the CSP
builder on their own (the builder drops any token outside the grammar, whoever passes it).
"""
from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import httpx
import pytest

from support.factories import make_merchant

ORDER = {"currency": "usd", "line_items": [{"name": "Beans", "quantity": 1, "unit_amount": 2400}]}
CARD_FORM = {"card_number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123"}
GOOD = "https://shop.example/thanks"
FRAMER = "https://shop.example"  # the merchant's registered origin: the only one that may frame the card frame

PAGE_DIRECTIVES = {"default-src", "script-src", "style-src", "img-src", "form-action", "frame-ancestors", "base-uri"}
FRAME_DIRECTIVES = PAGE_DIRECTIVES | {"connect-src"}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# CSP3 source grammar, narrowed to what Flint emits: keywords, a nonce, data:, and scheme://host[:port]
# with a lower-case LDH or bracketed-IPv6 host (no wildcard, no path).
SOURCE = re.compile(rf"^(?:'self'|'none'|'nonce-[A-Za-z0-9+/_-]+=*'|data:"
                    rf"|https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?)$")

# Accepted: (url, the origin form-action must name for it).
ACCEPTED = [
    (GOOD, "https://shop.example"),
    ("https://Shop.EXAMPLE:443/Thanks?a=1#top", "https://shop.example"),  # default port dropped, host lowered
    ("http://shop.example:8080/ok", "http://shop.example:8080"),
    ("https://shop.example/{CHECKOUT_SESSION_ID}/done", "https://shop.example"),
    # Quotes, ';' and ',' in the path are data of the redirect, never part of the origin.
    ("https://shop.example/a;frame-ancestors,b'c\"d", "https://shop.example"),
    ("https://shop.example/a%0d%0aSet-Cookie:%20x=1", "https://shop.example"),  # encoded CR/LF stay encoded
    # IDN: accepted, and named in the policy by its A-label (a U-label is not a valid CSP source).
    ("https://bücher.example/danke", "https://xn--bcher-kva.example"),
    ("https://[::1]:8443/x", "https://[::1]:8443"),
    ("https://[2001:DB8::1]/x", "https://[2001:db8::1]"),
    ("https://192.0.2.10/x", "https://192.0.2.10"),
]

# Refused at creation: 400 url_invalid (or parameter_invalid from the schema's own pattern).
REFUSED = [
    "https://shop.example;frame-ancestors *;x/ok",  # the example
    "https://shop.example;frame-ancestors/ok",
    "https://shop.example,https://evil.example/x",
    "https://shop.example'/x",
    'https://shop.example"/x',
    "https://shop .example/x",
    "https://shop.example/thank you",
    "https://shop.example/x\r\nSet-Cookie: a=b",
    "https://shop.example/x\nLocation: https://evil.example",
    "https://shop.example\r\n/x",
    "https://shop.example/\tx",
    "https://sh\top.example/x",
    "https://user:secret@shop.example/x",
    "https://evil.example@shop.example/x",
    "https://shop.example@evil.example/x",
    "https://shop.example\u00a0/x",  # NBSP
    "https://shop.example/\u00a0",
    "https://shop.example/\u2028x",  # line separator
    "https://shop\u200b.example/x",  # zero-width space
    "https://shop.example/\u202egnp.exe",  # right-to-left override
    "https://shop.example\\evil.example/x",
    "https://evil.example\\@shop.example/x",
    "https://[::1/x",
    "https://[::1]x/x",
    "https://[fe80::1%25eth0]/x",
    "https://*.shop.example/x",
    "https://shop.example:*/x",
    "https://%73hop.example/x",
    "https://shop.example:0/x",
    "https://shop.example:65536/x",
    "https://shop.example:80a/x",
    "https://shop.example:-1/x",
    "https://shop.example:443:1/x",
    "https://xn--a.example/x",  # not valid punycode
    "https://a..example/x",
    "https://-shop.example/x",
    "https://shop_1.example/x",
    "https://127.1/x",  # a browser reads this as 127.0.0.1
    "https://0x7f.0.0.1/x",
    "https:///x",
    "https://:443/x",
    "https:shop.example/x",
    "javascript:alert(1)//",
    "//evil.example/x",
    "data:text/html,<script>alert(1)</script>",
    "ftp://shop.example/x",
    "https://shop.example/" + "a" * 2100,
]


def directives(header: str) -> dict[str, list[str]]:
    """The policy as {directive: sources}; a directive named twice fails (the browser keeps the first)."""
    found: dict[str, list[str]] = {}
    for part in header.split(";"):
        tokens = part.split()
        assert tokens, f"an empty directive in {header!r}"
        name = tokens[0].lower()
        assert name not in found, f"{name} appears twice in {header!r}"
        found[name] = tokens[1:]
    return found


def check_headers(response: httpx.Response) -> None:
    for name, value in response.headers.raw:
        assert b"\r" not in value and b"\n" not in value, (name, value)


def check_policy(response: httpx.Response, expected: set[str], form_action: set[str],
                 frame_ancestors: list[str]) -> None:
    check_headers(response)
    header = response.headers["content-security-policy"]
    assert "," not in header, f"a comma starts a second policy: {header!r}"
    policy = directives(header)
    assert set(policy) == expected, header
    for name, sources in policy.items():
        for source in sources:
            assert SOURCE.match(source), f"{name}: {source!r} is not a valid source ({header!r})"
    assert set(policy["form-action"]) == {"'self'"} | form_action, header
    assert policy["frame-ancestors"] == frame_ancestors, header


@pytest.fixture
async def shop(server_rt):
    """(merchant, secret key), with the one origin allowed to frame its card frame."""
    return await make_merchant(server_rt, origins=[FRAMER])


async def _counts(server_rt, merchant_id: str) -> tuple[int, int]:
    async with server_rt.db.read() as conn:
        orders = await conn.fetch_one("SELECT count(*) AS n FROM orders WHERE merchant_id = :m", {"m": merchant_id})
        sessions = await conn.fetch_one("SELECT count(*) AS n FROM checkout_sessions WHERE merchant_id = :m",
                                        {"m": merchant_id})
    return orders["n"], sessions["n"]


def _urls(field: str, url: str) -> dict[str, str]:
    return {"success_url": url} if field == "success_url" else {"success_url": GOOD, "cancel_url": url}


@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
@pytest.mark.parametrize("url", REFUSED, ids=[repr(u)[:60] for u in REFUSED])
async def test_a_hostile_url_is_refused_and_nothing_is_created(server, server_rt, shop, field, url):
    merchant, key = shop
    before = await _counts(server_rt, merchant.id)
    async with server.async_client(key) as owner:
        answer = await owner.post("/v1/checkout/sessions", json={"order": ORDER, "mode": "hosted", **_urls(field, url)})
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in ("url_invalid", "parameter_invalid") and answer.json()["param"] == field, answer.text
    check_headers(answer)
    assert await _counts(server_rt, merchant.id) == before


@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
@pytest.mark.parametrize("url, origin", ACCEPTED, ids=[repr(u)[:60] for u, _ in ACCEPTED])
async def test_an_accepted_url_adds_only_its_origin_to_the_pages(server, shop, field, url, origin):
    merchant, key = shop
    urls = _urls(field, url)
    form_action = {origin} | ({"https://shop.example"} if field == "cancel_url" else set())
    async with server.async_client(key) as owner:
        made = {}
        for mode in ("hosted", "embedded"):
            answer = await owner.post("/v1/checkout/sessions", json={"order": ORDER, "mode": mode, **urls})
            assert answer.status_code == 200, answer.text
            made[mode] = answer.json()
    assert made["hosted"][field] == url  # kept as given; only what is built from it is reduced to the origin
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as buyer:
        page = await buyer.get(f"/checkout/{made['hosted']['id']}")
        assert page.status_code == 200
        check_policy(page, PAGE_DIRECTIVES, form_action, ["'none'"])
        frame = await buyer.get(f"/widget/v1/frame/{made['embedded']['id']}")
        assert frame.status_code == 200
        check_policy(frame, FRAME_DIRECTIVES, form_action, [FRAMER])
        if field == "cancel_url":
            link = re.search(r'<a class="back" href="([^"]*)"', page.text)
            assert link is not None and html.unescape(link.group(1)) == url
        token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        paid = await buyer.post(f"/checkout/{made['hosted']['id']}", data={"form_token": token, **CARD_FORM})
    assert paid.status_code == 303, paid.text
    check_headers(paid)
    location = paid.headers["location"]
    success = urls["success_url"]
    assert location.startswith(success.split("?")[0].split("#")[0].replace("{CHECKOUT_SESSION_ID}", made["hosted"]["id"]))
    went, meant = urlsplit(location), urlsplit(success)
    assert (went.scheme, went.hostname, went.port) == (meant.scheme, meant.hostname, meant.port)


# -- the pieces ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", REFUSED, ids=[repr(u)[:60] for u in REFUSED])
def test_the_url_parser_refuses_each_hostile_url(url):
    from flint import urls
    from flint.errors import FlintError

    with pytest.raises(FlintError) as refused:
        urls.parse_url(url, "success_url")
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "url_invalid", "success_url")


@pytest.mark.parametrize("url, origin", ACCEPTED + [
    ("https://ｓｈｏｐ．example/x", "https://shop.example"),  # full-width forms map as a browser maps them
    ("HTTP://SHOP.EXAMPLE:80", "http://shop.example"),
    ("https://[::ffff:192.0.2.1]:443/", "https://[::ffff:c000:201]"),
], ids=lambda v: repr(v)[:60])
def test_the_origin_is_rebuilt_from_the_parsed_parts(url, origin):
    from flint import urls

    parsed = urls.parse_url(url, "success_url")
    assert urls.origin(parsed) == origin == urls.origin(url)
    assert parsed.url == url


def test_production_takes_https_only():
    from flint import urls
    from flint.errors import FlintError

    assert urls.origin(urls.parse_url("https://shop.example/x", "url", production=True)) == "https://shop.example"
    with pytest.raises(FlintError) as refused:
        urls.parse_url("http://shop.example/x", "url", production=True)
    assert refused.value.code == "url_insecure"


@pytest.mark.parametrize("hostile", [
    "https://a.example;frame-ancestors *", "https://a.example frame-ancestors", "*", "https:", "'unsafe-inline'",
    "'unsafe-eval'", "https://*.example", "https://a.example/path", "https://a.example,https://b.example",
    "https://a.example\r\nX-Evil: 1", "https://bücher.example", "javascript:", "", "'nonce-a b'",
])
def test_the_policy_builder_drops_any_source_outside_the_grammar(hostile, caplog):
    from flint.http.headers import content_security_policy

    for header in (content_security_policy("abc_-123", [hostile]),
                   content_security_policy("abc_-123", [], frame_ancestors=[hostile]),
                   content_security_policy(hostile, [])):
        policy = directives(header)
        assert set(policy) <= FRAME_DIRECTIVES and "," not in header and "\n" not in header and "\r" not in header
        for name, sources in policy.items():
            assert sources, f"{name} lost all its sources: {header!r}"
            for source in sources:
                assert SOURCE.match(source), f"{name}: {source!r} in {header!r}"
    assert "dropped" in caplog.text


def test_the_policy_builder_keeps_valid_sources():
    from flint.http.headers import content_security_policy

    policy = directives(content_security_policy("n0nce_-", ["https://shop.example", "http://[::1]:8443"],
                                                frame_ancestors=["https://shop.example:8443"]))
    assert policy["form-action"] == ["'self'", "https://shop.example", "http://[::1]:8443"]
    assert policy["frame-ancestors"] == ["https://shop.example:8443"]
    assert policy["script-src"] == ["'nonce-n0nce_-'"]

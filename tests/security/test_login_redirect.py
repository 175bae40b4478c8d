"""Finding 4 (issue 13): ``/login?next=`` only ever leads to a path on Flint's own origin.

Browsers strip TAB, CR and LF anywhere in a URL, drop leading spaces and control characters, and read
``\\`` as ``/``: ``/<TAB>/evil.example`` becomes ``//evil.example``, another site. Each hostile ``next``
is tried where it can act: the sign-in form must not carry it, the redirect after a correct sign-in must
go to the default page, and so must a signed-in visit to ``/login?next=...``.
"""
from __future__ import annotations

import html
import re
import secrets
from urllib.parse import quote, unquote

import httpx
import pytest

from flint.merchants import service as merchants

PASSWORD = "a long and correct password"
DEFAULT = "/dashboard"  # the console, where a signed-in person lands by default

# As they appear in the query string (already percent-encoded, sent byte for byte).
HOSTILE = [
    "/%09/evil.example", "/%0d%0a/evil.example", "/%0a/evil.example", "/%0d/evil.example", "%09//evil.example",
    "/%09%09/evil.example", "/%00/evil.example", "/%0b/evil.example", "/%0c/evil.example", "/%20/evil.example",
    "%20//evil.example", "/%C2%A0/evil.example", "/%E3%80%80/evil.example", "/%E2%80%8B/evil.example",
    "//evil.example", "///evil.example", "/%5Cevil.example", "%5C%5Cevil.example", "/%5C/evil.example",
    "%2F%2Fevil.example", "/%2F%2Fevil.example", "/%2F/evil.example", "/%252F%252Fevil.example", "/%255Cevil.example",
    "/%2509/evil.example", "https://evil.example", "https:%2F%2Fevil.example", "javascript:alert(1)",
    "%6Aavascript:alert(1)", "evil.example", "account", "", "/account%0d%0aSet-Cookie:%20x=1",
]
# As Flint itself builds them (the consent flow sends the merchant to /login?next=<its own request>).
GOOD = [
    "/account",
    "/oauth/authorize?" + "&".join([
        "response_type=code", "client_id=app_x", "redirect_uri=" + quote("https://app.example/cb", safe=""),
        "scope=orders%3Aread+payments%3Aread", "state=s%20t", "code_challenge=abc", "code_challenge_method=S256"]),
]


def csrf_of(text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


def next_field(text: str) -> str:
    return html.unescape(re.search(r'name="next" value="([^"]*)"', text).group(1))


@pytest.fixture
async def account(server_rt):
    merchant, _ = await merchants.create_merchant(server_rt, name="Web Shop", password=PASSWORD,
                                                  email=f"web{secrets.token_hex(4)}@shop.example")
    return merchant


async def _flow(server, email: str, raw_next: str) -> tuple[str, str, str]:
    """(the form's hidden next, where a correct sign-in goes, where a signed-in /login?next= goes)."""
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        # The raw query goes out byte for byte: httpx would re-encode a str URL's query.
        form = await browser.get(httpx.URL(f"{server.url}/login", query=f"next={raw_next}".encode()))
        assert form.status_code == 200
        hidden = next_field(form.text)
        done = await browser.post("/login", data={"csrf_token": csrf_of(form.text), "email": email,
                                                  "password": PASSWORD, "next": hidden})
        assert done.status_code == 303
        again = await browser.get(httpx.URL(f"{server.url}/login", query=f"next={raw_next}".encode()))
        assert again.status_code == 303
        async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as other:
            # A form posted by hand (or by another site's page) carries whatever next it likes.
            page = await other.get("/login")
            posted = await other.post("/login", data={"csrf_token": csrf_of(page.text), "email": email,
                                                      "password": PASSWORD, "next": unquote(raw_next)})
            assert posted.status_code == 303
        for response in (done, again, posted):
            for name, value in response.headers.raw:
                assert b"\r" not in value and b"\n" not in value, (name, value)
        assert posted.headers["location"] == done.headers["location"]
        return hidden, done.headers["location"], again.headers["location"]


@pytest.mark.parametrize("raw_next", HOSTILE)
async def test_a_hostile_next_signs_in_to_the_default_page(server, account, raw_next):
    hidden, after_sign_in, when_signed_in = await _flow(server, account.email, raw_next)
    assert hidden == ""
    assert after_sign_in == DEFAULT
    assert when_signed_in == DEFAULT


@pytest.mark.parametrize("path", GOOD)
async def test_a_path_on_flint_is_still_followed(server, account, path):
    hidden, after_sign_in, when_signed_in = await _flow(server, account.email, quote(path, safe="/"))
    assert hidden == after_sign_in == when_signed_in == path


def test_safe_next_directly():
    from flint.web.accounts import safe_next

    for raw in HOSTILE:
        assert safe_next(unquote(raw)) is None, raw
    for path in GOOD:
        assert safe_next(path) == path
    assert safe_next(None) is None

"""Merchant sign-in over real HTTP, as a browser does it: the form by its labels, CSRF tokens, the
session cookie's flags, rate limiting, sign-out."""
from __future__ import annotations

import itertools
import re

import httpx
import pytest

from flint.merchants import service as merchants

PASSWORD = "a long and correct password"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
async def account(server_rt):
    n = next(_counter)
    merchant, _ = await merchants.create_merchant(server_rt, name=f"Web Shop {n}", email=f"Web{n}@Shop.Example",
                                                  password=PASSWORD)
    return merchant


_counter = itertools.count(1)


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


async def _sign_in(browser, email, password, next_path="", headers=None):
    page = await browser.get("/login", headers=headers or {})
    return await browser.post("/login", data={"csrf_token": csrf_of(page.text), "email": email,
                                              "password": password, "next": next_path}, headers=headers or {})


async def test_the_form_signs_in_with_a_safe_cookie(browser, account, server_rt):
    page = await browser.get("/login")
    assert page.status_code == 200
    for label, field in (("Email", "email"), ("Password", "password")):
        assert f'<label for="{field}">{label}</label>' in page.text
    assert re.search(r'<button type="submit">Sign in</button>', page.text)
    assert "httponly" in page.headers["set-cookie"].lower() and "samesite=lax" in page.headers["set-cookie"].lower()
    done = await browser.post("/login", data={"csrf_token": csrf_of(page.text), "email": account.email.upper(),
                                              "password": PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("flint_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags and "secure" not in flags
    token = cookie.split(";")[0].split("=", 1)[1]
    shown = await browser.get("/account")
    assert shown.status_code == 200 and account.name in shown.text
    async with server_rt.db.read() as conn:
        rows = await conn.fetch_all("SELECT token_hash FROM web_sessions WHERE merchant_id = :m", {"m": account.id})
    assert rows and all(token not in row["token_hash"] for row in rows)  # only its digest is kept


async def test_over_https_the_cookies_are_secure(browser, account):
    https = {"X-Forwarded-Proto": "https"}  # as a TLS-terminating proxy in front of Flint says
    assert "secure" in (await browser.get("/login", headers=https)).headers["set-cookie"].lower()
    page = await browser.get("/login")  # (this test client speaks plain http, so it keeps this one)
    done = await browser.post("/login", data={"csrf_token": csrf_of(page.text), "email": account.email,
                                              "password": PASSWORD}, headers=https)
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("flint_session="))
    assert "secure" in cookie.lower()


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(browser, account):
    wrong = await _sign_in(browser, account.email, "not the password")
    unknown = await _sign_in(browser, "nobody@shop.example", PASSWORD)
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "That email and password do not match an account." in answer.text
        assert not any(c.startswith("flint_session=") for c in answer.headers.get_list("set-cookie"))
    assert (await browser.get("/account")).status_code == 303


@pytest.mark.parametrize("token", [None, "forged", "other-nonce"])
async def test_a_sign_in_form_without_its_own_token_is_refused(browser, account, server, token):
    if token == "other-nonce":
        async with httpx.AsyncClient(base_url=server.url) as elsewhere:  # another browser's form
            token = csrf_of((await elsewhere.get("/login")).text)
    await browser.get("/login")
    data = {"email": account.email, "password": PASSWORD, **({"csrf_token": token} if token else {})}
    answer = await browser.post("/login", data=data)
    assert answer.status_code == 403
    assert (await browser.get("/account")).status_code == 303


async def test_repeated_failures_are_rate_limited(browser, account):
    for _ in range(5):
        assert (await _sign_in(browser, account.email, "guess")).status_code == 401
    blocked = await _sign_in(browser, account.email, PASSWORD)  # even the right password, for now
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "900"
    assert "Too many failed sign-ins" in blocked.text


async def test_sign_out_needs_its_token_and_kills_the_session(browser, account):
    await _sign_in(browser, account.email, PASSWORD)
    page = await browser.get("/account")
    kept = browser.cookies.get("flint_session")
    assert (await browser.post("/logout", data={})).status_code == 403
    assert (await browser.get("/account")).status_code == 200  # a forged sign-out changed nothing
    out = await browser.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    browser.cookies.set("flint_session", kept)  # the old cookie, replayed
    assert (await browser.get("/account")).status_code == 303


@pytest.mark.parametrize("next_path, lands", [("/oauth/authorize?client_id=x", "/oauth/authorize?client_id=x"),
                                              ("//evil.example/", "/dashboard"), ("https://evil.example/", "/dashboard"),
                                              ("/\\evil.example", "/dashboard")])
async def test_after_sign_in_only_paths_on_flint_are_followed(browser, account, next_path, lands):
    done = await _sign_in(browser, account.email, PASSWORD, next_path=next_path)
    assert done.headers["location"] == lands

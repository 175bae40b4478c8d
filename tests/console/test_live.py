"""The console with JavaScript (docs/api.md 15), over real HTTP. Its two scripts: htmx, vendored from npm and
pinned, and Flint's own console.js, served by Flint under /dashboard/assets/ with the SRI hash the pages name,
cached for good at their versioned URL; nothing else is reachable there. The committed htmx is byte for byte
the pinned npm package's file (widget/node_modules, from `npm ci --prefix widget`, which make test runs).
And what the pages give them: GET /dashboard/orders asked by htmx answers the list alone (the whole page
when htmx restores history), the webhook pages name each endpoint's deliveries region for their 5-second
refresh, and Cancel order's form carries what console.js posts. The behaviour itself in Chromium:
e2e/test_console_live.py."""
from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
from pathlib import Path

import httpx
import pytest

from flint.console import assets
from flint.merchants import service as merchants
from flint.webhooks import service as webhooks
from support.factories import make_order

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC = ROOT / "hosted_pages" / "static" / "console"
PASSWORD = "a long and correct password"


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


@pytest.fixture
async def signed_in(server_rt, browser):
    merchant, _ = await merchants.create_merchant(server_rt, name="Console Shop",
                                                  email=f"assets-{id(browser)}@shop.example", password=PASSWORD)
    login = await browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    done = await browser.post("/login", data={"csrf_token": token, "email": merchant.email, "password": PASSWORD})
    assert done.status_code == 303
    return merchant, browser


def _sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


# -- the vendored copy -----------------------------------------------------------------------------------

def test_the_committed_htmx_is_the_pinned_npm_packages_file():
    package = json.loads((ROOT / "widget" / "package.json").read_text())
    pinned = package["devDependencies"]["htmx.org"]
    assert re.fullmatch(r"2\.0\.\d+", pinned), f"htmx.org is pinned exactly, not a range: {pinned}"
    assert pinned == assets.HTMX_VERSION  # the version the docs name
    lock = json.loads((ROOT / "widget" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/htmx.org"]["version"] == pinned
    npm = ROOT / "widget" / "node_modules" / "htmx.org"
    if not (npm / "package.json").is_file():
        pytest.fail("widget/node_modules/htmx.org is missing: run `npm ci --prefix widget` (make test does)",
                    pytrace=False)
    assert json.loads((npm / "package.json").read_text())["version"] == pinned, \
        "widget/node_modules is not what the lock file pins: run `npm ci --prefix widget`"
    assert (STATIC / "htmx.min.js").read_bytes() == (npm / "dist" / "htmx.min.js").read_bytes(), \
        "hosted_pages/static/console/htmx.min.js is not the pinned package's dist/htmx.min.js: copy it again"


def test_htmx_s_own_configuration_on_the_pages_needs_nothing_the_csp_refuses():
    """The layout's htmx-config: no eval (the CSP has no 'unsafe-eval'), no script tags taken from answers,
    no indicator <style> of its own (not nonce'd), and no copy of a page in localStorage (buyer data)."""
    layout = (ROOT / "hosted_pages" / "templates" / "console" / "layout.html").read_text()
    config = json.loads(re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", layout).group(1))
    assert config["allowEval"] is False and config["allowScriptTags"] is False
    assert config["includeIndicatorStyles"] is False and config["historyCacheSize"] == 0
    assert config["selfRequestsOnly"] is True


# -- serving -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["htmx.min.js", "console.js"])
async def test_each_script_is_served_with_the_sri_the_pages_name_and_cached_for_good(signed_in, name):
    _, client = signed_in
    page = await client.get("/dashboard/orders")
    assert page.status_code == 200
    tag = re.search(rf'<script src="(/dashboard/assets/{re.escape(name)}\?v=[^"]+)" integrity="([^"]+)" '
                    rf'nonce="([^"]+)" defer></script>', page.text)
    assert tag, page.text[:2000]
    url, integrity, nonce = tag.groups()
    assert f"script-src 'nonce-{nonce}'" in page.headers["content-security-policy"]
    served = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert served.status_code == 200
    assert served.headers["content-type"] == "text/javascript; charset=utf-8"
    assert _sri(served.content) == integrity  # the browser would refuse anything else
    assert served.content == (STATIC / name).read_bytes()
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["cross-origin-resource-policy"] == "same-origin"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in served.headers  # a script, not a page
    assert "set-cookie" not in served.headers

    zipped = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.content == served.content  # httpx unzips: the same bytes, so the same hash

    again = await client.get(url, headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_without_its_version_or_with_an_old_one_a_script_is_cached_briefly(browser):
    for url in ("/dashboard/assets/htmx.min.js", "/dashboard/assets/htmx.min.js?v=stale"):
        served = await browser.get(url, headers={"Accept-Encoding": "identity"})
        assert served.status_code == 200 and served.headers["cache-control"] == "public, max-age=300"
        assert _sri(served.content) == assets.SCRIPTS["htmx.min.js"].integrity


async def test_the_scripts_need_no_sign_in(browser):
    served = await browser.get(assets.SCRIPTS["console.js"].url)
    assert served.status_code == 200 and b"data-confirm" in served.content


@pytest.mark.parametrize("path", [
    "/dashboard/assets/unknown.js",
    "/dashboard/assets/htmx.js",
    "/dashboard/assets/",
    "/dashboard/assets/..%2F..%2F..%2Fpyproject.toml",
    "/dashboard/assets/%2e%2e%2fconsole%2fconsole.js",
    "/dashboard/assets/../templates/console/layout.html",
    "/dashboard/assets/..%5Clayout.html",
    "/dashboard/assets/console.js%00.html",
    "/dashboard/assets/static/console/console.js",
    "/dashboard/assets/HTMX.MIN.JS",
])
async def test_nothing_but_the_two_scripts_is_served_there(browser, path):
    answer = await browser.get(path)
    assert answer.status_code == 404, (path, answer.status_code)
    assert b"htmx" not in answer.content and b"[tool.setuptools" not in answer.content


async def test_a_console_page_may_fetch_from_flint_only_and_a_buyer_page_not_at_all(signed_in, server_rt):
    """htmx's requests need connect-src 'self' on the console's pages; a buyer's hosted page keeps none."""
    _, client = signed_in
    page = await client.get("/dashboard/orders")
    csp = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert csp["connect-src"] == "'self'" and csp["default-src"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]
    login = await client.get("/login")  # not a console page: no script, so no connect-src
    assert "connect-src" not in login.headers["content-security-policy"]


async def test_gzip_bytes_are_the_script(browser):
    for script in assets.SCRIPTS.values():
        assert gzip.decompress(script.gzipped) == script.body


# -- what the pages give htmx and console.js ----------------------------------------------------------------

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://127.0.0.1/dashboard/orders", "HX-Target": "orders-results"}


async def test_htmx_asking_for_the_orders_gets_the_list_alone(signed_in, server_rt):
    merchant, client = signed_in
    for amount in (1100, 1200):
        await make_order(server_rt, merchant.id, amount)
    whole = await client.get("/dashboard/orders", params={"status": "open"})
    part = await client.get("/dashboard/orders", params={"status": "open"}, headers=HTMX)
    assert whole.status_code == part.status_code == 200
    assert "<html" in whole.text and "<html" not in part.text and "<nav class=\"side\"" not in part.text
    assert part.text.lstrip().startswith('<p id="orders-summary" class="sr-only" role="status">2 orders shown</p>')
    results = re.search(r'<section class="panel" aria-labelledby="orders-caption" id="orders-results">.*?</section>',
                        whole.text, re.DOTALL).group(0)
    assert results in part.text  # exactly what the page has there: what hx-select picks from either
    assert part.headers["cache-control"] == "no-store" and "content-security-policy" in part.headers
    # Going back, htmx asks for the page it lost: the whole page, never the list alone.
    restore = await client.get("/dashboard/orders", params={"status": "open"},
                                headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text and restore.text.count('id="orders-results"') == 1
    # Signed out, htmx is sent to sign in like anyone (console.js then loads that page whole).
    client.cookies.clear()
    out = await client.get("/dashboard/orders", headers=HTMX)
    assert out.status_code == 303 and out.headers["location"].startswith("/login?next=")


async def test_the_orders_form_works_plain_and_names_what_htmx_swaps(signed_in):
    _, client = signed_in
    page = (await client.get("/dashboard/orders")).text
    form = re.search(r'<form method="get" action="/dashboard/orders" role="search"[^>]*>', page, re.DOTALL).group(0)
    assert 'hx-get="/dashboard/orders"' in form and 'hx-push-url="true"' in form
    assert 'hx-target="#orders-results"' in form and 'hx-select="#orders-results"' in form
    assert 'hx-select-oob="#orders-summary:innerHTML"' in form
    assert page.count('id="orders-summary"') == 1 and page.count('id="orders-results"') == 1


async def test_the_webhook_pages_refresh_each_endpoints_deliveries_and_nothing_else(signed_in, server_rt):
    merchant, client = signed_in
    first, _ = await webhooks.create_endpoint(server_rt, merchant.id, url="http://127.0.0.1:9/a",
                                              events=["order.created"], description=None)
    second, _ = await webhooks.create_endpoint(server_rt, merchant.id, url="http://127.0.0.1:9/b",
                                               events=["order.created"], description=None)
    page = (await client.get("/dashboard/webhooks")).text
    poller = re.search(r'<section class="panel" aria-labelledby="endpoints-heading"([^>]*)>', page).group(1)
    assert 'hx-get="/dashboard/webhooks"' in poller and 'hx-trigger="every 5s"' in poller
    assert 'hx-swap="none"' in poller and " data-live" in poller  # only the regions below are swapped
    regions = re.search(r'hx-select-oob="([^"]+)"', poller).group(1).split(",")
    assert sorted(regions) == sorted([f"#deliveries-{first.id}-live", f"#deliveries-{second.id}-live"])
    for region in regions:
        assert page.count(f'<div id="{region[1:]}" data-live-region>') == 1

    one = (await client.get(f"/dashboard/webhooks/{first.id}")).text
    poller = re.search(r'<section class="panel" aria-labelledby="deliveries-heading"([^>]*)>', one).group(1)
    assert 'hx-get=""' in poller and 'hx-trigger="every 5s"' in poller and 'hx-swap="none"' in poller
    assert f'hx-select-oob="#deliveries-{first.id}-live"' in poller
    assert one.count(f'<div id="deliveries-{first.id}-live" data-live-region>') == 1


async def test_no_endpoint_no_refresh(signed_in):
    _, client = signed_in
    page = (await client.get("/dashboard/webhooks")).text
    assert "hx-trigger" not in page and "No endpoints yet" in page


async def test_cancel_order_asks_in_a_dialog_then_posts_with_the_forms_token(signed_in, server_rt):
    """Without JavaScript the button is a GET to the confirm step; console.js reads the rest."""
    merchant, client = signed_in
    order = await make_order(server_rt, merchant.id, 900)
    page = (await client.get(f"/dashboard/orders/{order.id}")).text
    form = re.search(rf'<form method="get" action="/dashboard/orders/{order.id}/cancel"[^>]*>', page, re.DOTALL)
    assert form, page
    attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', form.group(0)))
    assert html.unescape(attrs["data-confirm"]).startswith(f"Cancel order {order.id}? The buyer can no longer pay")
    assert attrs["data-confirmed-action"] == f"/dashboard/orders/{order.id}/cancel"
    # The confirm step itself (without JavaScript) asks once, on the page, not again in a dialog.
    step = (await client.get(f"/dashboard/orders/{order.id}/cancel")).text
    assert "Cancel this order?" in step and "data-confirm" not in step
    # The token console.js posts is a good one: the same POST the confirm page's form sends.
    done = await client.post(attrs["data-confirmed-action"], data={"csrf_token": attrs["data-confirmed-token"]})
    assert done.status_code == 303 and done.headers["location"] == f"/dashboard/orders/{order.id}?canceled=1"

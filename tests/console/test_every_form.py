"""Every form the console posts to is refused (403) and changes nothing without its single-use token, or
with a token issued to another signed-in session, before it looks at anything else: a sweep over every
POST route of the console that the application registers, so a form added tomorrow is held to it too.

The area tests (test_order_actions, test_payment_links, test_integrations, test_keys_settings, test_team)
show the same per action with real objects, with each role lacking the permission and across merchants;
this one proves no route was left out and that the token is checked first: the ids in the paths below
exist nowhere, and still the answer is the token's 403, never a 404 that would tell what exists."""
from __future__ import annotations

import hashlib
import itertools
import json
import re

import httpx
import pytest

from flint.app import create_app
from flint.config import Config
from flint.merchants import service as merchants
from flint.runtime import Runtime
from support import TEST_SECRET

from ..pg import table_names

PASSWORD = "a long and correct password"
_counter = itertools.count(1)

# What a form of each route sends besides its token: well-formed values, so that only the token is wrong.
FORM_VALUES = {
    "refund": {"amount": "1.00", "reason": "requested_by_customer"},
    "endpoints": {"url": "https://hooks.example/new", "events": "order.*", "description": "x"},
    "origins": {"origin": "https://shop.example"},
    "remove": {"origin": "https://shop.example"},
    "brand_color": {"brand_color": "#112233"},
    "invitations": {"email": "new@shop.example", "role": "support"},
    "keys": {},
}
# Rows that may change on any request of a signed-in person (when the session was last seen; failed
# sign-ins and attempt counters) or that hold a refused token's record: not what a refused action changes.
VOLATILE = {"web_sessions", "login_failures", "client_addresses", "address_attempts", "form_nonces"}


def console_forms() -> list[str]:
    """Every POST route under /dashboard, its path parameters filled with ids that exist nowhere."""
    app = create_app(Config(database_url="sqlite:///:memory:", secret_keys=(TEST_SECRET,), env="development",
                            public_url="http://127.0.0.1:9"), run_sweeper=False)
    paths = []
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and rule.rule.startswith("/dashboard"):
            paths.append(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: f"{m.group(1).split('_')[0][:4]}_nowhere", rule.rule))
    return sorted(paths)


FORMS = console_forms()


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def form_token(page: str, action: str) -> str:
    """The single-use token of the form posting to ``action``."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
                      r'<input type="hidden" name="(?:csrf|form)_token" value="([^"]+)"', page)
    assert found, f"no form to {action}"
    return found.group(1)


def values_for(path: str) -> dict[str, str]:
    return FORM_VALUES.get(path.rstrip("/").rsplit("/", 1)[-1], {})


async def digest(rt: Runtime) -> dict[str, str]:
    """A hash of every row of every table but the volatile ones."""
    found = {}
    async with rt.db.read() as conn:
        for table in sorted(await table_names(conn)):
            if table in VOLATILE or table.startswith(("schema_", "flint_schema")):
                continue
            rows = await conn.fetch_all(f"SELECT * FROM {table}")  # noqa: S608 (names from the schema)
            lines = sorted(json.dumps(dict(row), sort_keys=True, default=str) for row in rows)
            found[table] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return found


async def _signed_in(server, rt) -> tuple[httpx.AsyncClient, str]:
    n = next(_counter)
    merchant, _ = await merchants.create_merchant(rt, name=f"Sweep Shop {n}", email=f"sweep{n}-{id(rt)}@shop.example",
                                                  password=PASSWORD)
    client = httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)
    page = await client.get("/login")
    done = await client.post("/login", data={"csrf_token": csrf_of(page.text), "email": merchant.email,
                                             "password": PASSWORD})
    assert done.status_code == 303
    return client, merchant.id


def test_the_sweep_finds_the_consoles_forms():
    # The sweep reads the application's own routes: if it found few, it would prove little.
    assert len(FORMS) >= 15, FORMS
    for expected in ("/dashboard/orders/orde_nowhere/refund", "/dashboard/team/invitations",
                     "/dashboard/api_keys", "/dashboard/webhooks/endpoints"):
        assert expected in FORMS, (expected, FORMS)


async def test_every_console_form_without_its_token_or_with_another_sessions_is_403_and_changes_nothing(
        server, server_rt):
    owner, _ = await _signed_in(server, server_rt)
    other, _ = await _signed_in(server, server_rt)
    try:
        # A real form token, but issued to another person's session.
        foreign = form_token((await other.get("/dashboard/team")).text, "/dashboard/team/invitations")
        before = await digest(server_rt)
        for path in FORMS:
            for token in (None, "", "forged.token.value", foreign):
                # Under both names the console's forms use for it.
                sent = {"csrf_token": token, "form_token": token} if token is not None else {}
                data = {**values_for(path), **sent}
                answer = await owner.post(path, data=data)
                assert answer.status_code == 403, (path, token, answer.status_code, answer.text[:300])
                assert "text/html" in answer.headers["content-type"], path
                assert "Traceback" not in answer.text
        assert await digest(server_rt) == before
    finally:
        await owner.aclose()
        await other.aclose()


async def test_signed_out_every_console_form_sends_to_sign_in_and_changes_nothing(server, server_rt):
    before = await digest(server_rt)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as stranger:
        for path in FORMS:
            answer = await stranger.post(path, data=values_for(path))
            assert answer.status_code in (303, 403), (path, answer.status_code)
            if answer.status_code == 303:
                assert answer.headers["location"].startswith("/login"), path
    assert await digest(server_rt) == before

"""Partner apps: registration by a developer merchant (docs/api.md 10, first bullet).

An app is an OAuth client (RFC 6749 2): a public ``client_id`` and a ``client_secret`` that is
random, shown once and stored as a SHA-256 digest, like merchant secret keys. Its webhook secret
signs what Flint sends the app, so Flint must read it back: it is encrypted at rest instead.
Installations, grants and tokens build on ``get_app_by_client_id`` and ``authenticate_client``.
"""
from __future__ import annotations

import hmac
import json
import re
from dataclasses import replace
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from flint import clock, urls
from flint.apps import store
from flint.apps.models import ALLOW, HOOKS, App
from flint.buyers import service as buyers
from flint.db import Conn
from flint.errors import FlintError, invalid, not_found
from flint.ids import new_id, new_secret
from flint.merchants.service import ORIGIN_PATTERN
from flint.runtime import Runtime
from flint.scopes import SCOPES
from flint.security import hash_secret
from flint.webhooks import egress, signing
from flint.webhooks.service import ROTATION_OVERLAP_SECONDS, check_filters

CLIENT_ID_PREFIX = "fca"  # new_id adds the "_"
CLIENT_SECRET_PREFIX = "fcs_"
MAX_REDIRECT_URIS = 10
MAX_CHECKOUT_FIELDS = 3
MAX_REDIRECT_URI = 2048
# The characters RFC 3986 allows in a URI (unreserved, reserved and "%"), less "#": a redirect URI
# has no fragment (RFC 6749 3.1.2). Published in the OpenAPI document as the items' pattern.
REDIRECT_URI_PATTERN = r"^https?://[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]+$"
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 8252 7.3: native and development apps receive the code on a loopback listener over plain
# http. Only these hosts count as loopback (a name like "127.0.0.1.example" does not).
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
# Fields an update may set to null to remove them; null for any other field means "unchanged".
CLEARABLE = {"webhook_url", "hook_url", "description"}


# -- validation ---------------------------------------------------------------------------------------

def check_redirect_uri(uri: str, param: str) -> None:
    """RFC 6749 3.1.2 (absolute, no fragment), RFC 9700 2.1 / 4.1 (https; compared exactly later),
    RFC 8252 7.3 (http only on a loopback host). The URI is stored as given, never rewritten."""
    def refuse(detail: str, code: str = "redirect_uri_invalid") -> FlintError:
        return invalid(code, f"'{uri[:200]}': {detail}", param)

    if len(uri) > MAX_REDIRECT_URI:
        raise invalid("redirect_uri_invalid", f"Redirect URIs are at most {MAX_REDIRECT_URI} characters.", param)
    if "#" in uri:
        raise refuse("a redirect URI cannot have a fragment (RFC 6749 3.1.2).")
    if not uri.startswith(("https://", "http://")):
        raise refuse("a redirect URI is an absolute https:// URI (or http:// on a loopback host), "
                     "scheme in lower case.")
    if not re.fullmatch(REDIRECT_URI_PATTERN, uri):
        raise refuse("only URI characters (RFC 3986) are allowed: percent-encode spaces, quotes, "
                     "backslashes and non-ASCII characters.")
    if _PERCENT.search(uri):
        raise refuse("a '%' must start a percent-encoded octet like %2F.")
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. a "[" or "]" in the host that is not a bracketed IPv6 address
        raise refuse("the host (or port) is not valid.") from None
    if "@" in parts.netloc:
        # Credentials in a redirect URI end up in browser history and logs, and "a@b" misleads
        # people reading the consent page about which host receives the code.
        raise refuse("a redirect URI cannot carry user information (user:password@).")
    if not re.fullmatch(ORIGIN_PATTERN[1:-1], f"{parts.scheme}://{parts.netloc}") or parts.port == 0:
        raise refuse("the host (or port) is not valid.")
    try:
        # The rules every merchant- or app-supplied URL follows (docs/api.md 13): a host a browser reads as
        # Flint does (no "127.1"), since the consent page builds its form-action source from it.
        urls.parse_url(uri, param)
    except FlintError:
        raise refuse("the host (or port) is not valid.") from None
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise refuse("redirect URIs use https; plain http is allowed only on a loopback host "
                     "(127.0.0.1, [::1], localhost) for native and development apps (RFC 8252 7.3).",
                     "redirect_uri_insecure")


def _redirect_uris(uris: list[str]) -> list[str]:
    if not uris:
        raise invalid("parameter_invalid", "Register at least one redirect URI.", "redirect_uris")
    if len(uris) > MAX_REDIRECT_URIS:
        raise invalid("parameter_invalid", f"At most {MAX_REDIRECT_URIS} redirect URIs.", "redirect_uris")
    for i, uri in enumerate(uris):
        check_redirect_uri(uri, f"redirect_uris[{i}]")
    return list(dict.fromkeys(uris))  # duplicates dropped, first-seen order kept


def _scopes(scopes: list[str]) -> list[str]:
    for i, name in enumerate(scopes):
        if name not in SCOPES:
            raise invalid("scope_unknown", f"'{name}' is not a scope; scopes are: {', '.join(SCOPES)}.",
                          f"scopes[{i}]")
    if not scopes:
        raise invalid("parameter_invalid", "Ask for at least one scope.", "scopes")
    return [name for name in SCOPES if name in scopes]  # deduplicated, in the canonical order


def _hooks(hooks: list[str]) -> list[str]:
    for i, name in enumerate(hooks):
        if name not in HOOKS:
            raise invalid("hook_unknown", f"'{name}' is not a hook; hooks are: {', '.join(HOOKS)}.", f"hooks[{i}]")
    return [name for name in HOOKS if name in hooks]


def _webhook_events(events: list[str]) -> list[str]:
    """Filters as webhook endpoints take them; an empty list is allowed here (an app always gets
    app.installed and app.uninstalled at its webhook_url)."""
    if not events:
        return []
    try:
        return check_filters(events)
    except FlintError as error:
        if error.param:
            error.param = "webhook_" + error.param  # events[2] -> webhook_events[2]
        raise


def _check_pairs(*, webhook_url: str | None, webhook_events: list[str], hook_url: str | None,
                 hooks: list[str]) -> None:
    """Settings that would silently do nothing are refused, checked on the app as it would be."""
    if hooks and hook_url is None:
        raise invalid("hook_url_required", "Declaring a hook needs a hook_url to call.", "hook_url")
    if hook_url is not None and not hooks:
        raise invalid("hooks_required", 'A hook_url is only called for declared hooks: add hooks: '
                      '["checkout.before_payment"], or remove hook_url (null).', "hooks")
    if webhook_events and webhook_url is None:
        raise invalid("webhook_url_required", "Subscribing to events needs a webhook_url to deliver them to.",
                      "webhook_url")


def _checkout_fields(raw: list[dict[str, Any]]) -> str:
    """At most 3 fields (docs/api.md 14), checked as a session's custom fields are, stored as JSON."""
    specs = buyers.parse_field_specs(raw, limit=MAX_CHECKOUT_FIELDS, param="checkout_fields")
    return json.dumps([spec.to_dict() for spec in specs])


async def _check_url(rt: Runtime, url: str, param: str) -> None:
    # The webhook egress rules: https and public addresses in production, loopback allowed in
    # development. Each delivery and hook call checks the destination again when it is sent.
    await egress.check_destination(url, production=rt.config.is_production, param=param)


# -- registration -------------------------------------------------------------------------------------

async def create_app(rt: Runtime, developer_merchant_id: str, *, name: str, redirect_uris: list[str],
                     scopes: list[str], webhook_url: str | None = None, webhook_events: list[str] | None = None,
                     hook_url: str | None = None, hooks: list[str] | None = None,
                     hook_failure_mode: str = ALLOW, description: str | None = None,
                     checkout_fields: list[dict[str, Any]] | None = None) -> tuple[App, str, str]:
    """Returns the app, its client secret and its webhook secret (both shown once)."""
    fields = _checkout_fields(checkout_fields or [])
    uris = _redirect_uris(redirect_uris)
    granted = _scopes(scopes)
    filters = _webhook_events(webhook_events or [])
    declared = _hooks(hooks or [])
    _check_pairs(webhook_url=webhook_url, webhook_events=filters, hook_url=hook_url, hooks=declared)
    if webhook_url is not None:
        await _check_url(rt, webhook_url, "webhook_url")
    if hook_url is not None:
        await _check_url(rt, hook_url, "hook_url")
    client_secret = new_secret(CLIENT_SECRET_PREFIX)
    # Always made, even without a webhook_url yet: the app can add one later without a rotation.
    webhook_secret = signing.new_secret()
    now = clock.now_iso()
    app = App(
        id=new_id("app"), developer_merchant_id=developer_merchant_id, name=name, description=description,
        client_id=new_id(CLIENT_ID_PREFIX), client_secret_hash=hash_secret(client_secret),
        webhook_secret=rt.secrets.seal(webhook_secret), previous_webhook_secret=None,
        previous_webhook_secret_expires_at=None, redirect_uris=json.dumps(uris), scopes=json.dumps(granted),
        webhook_url=webhook_url, webhook_events=json.dumps(filters), hook_url=hook_url, hooks=json.dumps(declared),
        hook_failure_mode=hook_failure_mode, created_at=now, updated_at=now, checkout_fields=fields,
    )
    async with rt.db.transaction() as conn:
        await store.insert_app(conn, app)
    return app, client_secret, webhook_secret


async def get_app(rt: Runtime, developer_merchant_id: str, app_id: str) -> App:
    async with rt.db.read() as conn:
        app = await store.select_app(conn, developer_merchant_id, app_id)
    if app is None:
        raise not_found("app", app_id)
    return app


async def list_apps(rt: Runtime, developer_merchant_id: str, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_apps_page(conn, developer_merchant_id, limit, starting_after)


# Called inside an app's update with (before, after): installations follow the change (oauth's
# follow_app_change; passed in, since installations build on apps and not the reverse).
FollowChange = Callable[[Conn, App, App], Awaitable[None]]


async def update_app(rt: Runtime, developer_merchant_id: str, app_id: str, changes: dict[str, Any],
                     follow: FollowChange) -> App:
    """``changes``: the fields the request named. null removes a field in CLEARABLE and leaves any
    other as it is. What the change asks of installations beyond what their merchants approved waits
    for them (docs/api.md 12): ``follow`` sees to that in the same transaction."""
    changes = {k: v for k, v in changes.items() if v is not None or k in CLEARABLE}
    fields: dict[str, Any] = {}
    if "name" in changes:
        fields["name"] = changes["name"]
    if "description" in changes:
        fields["description"] = changes["description"]
    if "redirect_uris" in changes:
        fields["redirect_uris"] = json.dumps(_redirect_uris(changes["redirect_uris"]))
    if "scopes" in changes:
        fields["scopes"] = json.dumps(_scopes(changes["scopes"]))
    if "webhook_events" in changes:
        fields["webhook_events"] = json.dumps(_webhook_events(changes["webhook_events"]))
    if "hooks" in changes:
        fields["hooks"] = json.dumps(_hooks(changes["hooks"]))
    if "hook_failure_mode" in changes:
        fields["hook_failure_mode"] = changes["hook_failure_mode"]
    if "checkout_fields" in changes:
        # A new or changed field is a widening: installations show it once their merchant approves.
        fields["checkout_fields"] = _checkout_fields(changes["checkout_fields"])
    for name in ("webhook_url", "hook_url"):
        if name in changes:
            if changes[name] is not None:
                await _check_url(rt, changes[name], name)  # before the transaction: it may look up DNS
            fields[name] = changes[name]
    async with rt.db.transaction() as conn:
        # Locked: the pair checks run on the app as it will be, and the installations follow this
        # change; two updates (or an update and an install) apply one after the other.
        app = await store.select_app(conn, developer_merchant_id, app_id, for_update=True)
        if app is None:
            raise not_found("app", app_id)
        if not fields:
            return app
        merged = replace(app, **fields)
        _check_pairs(webhook_url=merged.webhook_url, webhook_events=merged.event_filters,
                     hook_url=merged.hook_url, hooks=merged.hook_list)
        updated = await store.update_app(conn, app.id, dict(fields, updated_at=clock.now_iso()))
        assert updated is not None
        await follow(conn, app, updated)
    return updated


async def rotate_client_secret(rt: Runtime, developer_merchant_id: str, app_id: str) -> tuple[App, str]:
    """A new client secret; the previous one stops authenticating at once (no overlap: a leaked
    secret must die when it is replaced). Tokens already issued are not affected."""
    secret = new_secret(CLIENT_SECRET_PREFIX)
    async with rt.db.transaction() as conn:
        # Locked, so of two rotations at once the later one's secret is the one that stands, and
        # each caller's answer comes from its own UPDATE (RETURNING).
        if await store.select_app(conn, developer_merchant_id, app_id, for_update=True) is None:
            raise not_found("app", app_id)
        app = await store.update_app(conn, app_id, {"client_secret_hash": hash_secret(secret),
                                                    "updated_at": clock.now_iso()})
    assert app is not None
    return app, secret


async def rotate_webhook_secret(rt: Runtime, developer_merchant_id: str, app_id: str) -> tuple[App, str]:
    """A new webhook secret signs from now on; the current one keeps signing beside it for 24 hours
    (as webhook endpoints rotate), so the app can switch without failing a delivery."""
    secret = signing.new_secret()
    async with rt.db.transaction() as conn:
        # Locked: two rotations at once must chain (S0 -> S1 -> S2, S1 kept as previous), not both
        # keep S0 as previous and lose the S1 that one caller was just given.
        app = await store.select_app(conn, developer_merchant_id, app_id, for_update=True)
        if app is None:
            raise not_found("app", app_id)
        app = await store.update_app(conn, app_id, {
            "webhook_secret": rt.secrets.seal(secret), "previous_webhook_secret": app.webhook_secret,
            "previous_webhook_secret_expires_at": clock.later_iso(ROTATION_OVERLAP_SECONDS),
            "updated_at": clock.now_iso()})
    assert app is not None
    return app, secret


def webhook_signing_secrets(rt: Runtime, app: App, now: str) -> list[str]:
    """The secrets that sign an app delivery or hook call now: the current one, and the previous one
    during the rotation overlap."""
    live = [rt.secrets.open(app.webhook_secret)]
    if (app.previous_webhook_secret and app.previous_webhook_secret_expires_at
            and app.previous_webhook_secret_expires_at > now):
        live.append(rt.secrets.open(app.previous_webhook_secret))
    return live


# -- the OAuth client -----------------------------------------------------------------------------------

async def get_app_by_client_id(rt: Runtime, client_id: str) -> App | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    async with rt.db.read() as conn:
        return await store.select_app_by_client_id(conn, client_id)


# The digest compared when the client_id is unknown, so that path does the same work.
_NO_DIGEST = hash_secret("no client has this secret")


async def authenticate_client(rt: Runtime, client_id: str, client_secret: str) -> App | None:
    """The app whose client_id and client_secret these are (RFC 6749 2.3.1), or None. The digest is
    compared in constant time, and an unknown client_id costs the same comparison."""
    app = await get_app_by_client_id(rt, client_id)
    try:
        presented = hash_secret(client_secret) if isinstance(client_secret, str) else None
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape: no secret looks like that
        presented = None
    expected = app.client_secret_hash if app is not None else _NO_DIGEST
    matched = hmac.compare_digest((presented or "").encode(), expected.encode())
    return app if app is not None and presented is not None and matched else None

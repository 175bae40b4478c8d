"""Console pages (docs/api.md 15): `API keys` and `Settings`.

Both act through flint.merchants.service, the service POST /v1/merchant and /v1/merchant/keys call: keys
are listed (never their values), created (the value shown once, on the answer to the POST, never in a
URL) and revoked; the allowed origins, the brand colour and whether buyers get emailed receipts
(docs/api.md 16) are changed with update_merchant, with the same validation as the API. The merchant's
name cannot be changed there (the service has no verb for it), so Settings shows it read-only and says so.

Roles are checked in the service functions below (console.service.require), not only by hiding buttons:
api_keys:read / api_keys:write and settings:read / settings:write (staff.models). Every form carries a
single-use token (flint.forms) bound to the signed-in web session: a forged, missing or another
session's token is 403 and changes nothing; the same form posted twice acts once (the replay is sent to
where the first ended, as hosted pages do).

Every action passes the staff member as the actor to the merchants service, which records it in the
audit trail (flint.audit: api_key.created, api_key.revoked, settings.updated) in the action's own
transaction; the Team page lists it. The action is also written to the log (``console action``)."""
from __future__ import annotations

import html
import logging
from dataclasses import dataclass

from quart import Blueprint, Response, redirect, request

from flint.actors import Actor
from flint.console import routes as shell
from flint.console import service
from flint.console.service import Viewer
from flint.errors import FlintError
from flint.forms import service as forms
from flint.http import assets
from flint.http.auth import public
from flint.http.context import runtime
from flint.merchants import branding
from flint.merchants import service as merchants
from flint.merchants.models import ApiKey, Merchant
from flint.runtime import Runtime
from flint.staff import service as staff

bp = Blueprint("console_keys_settings", __name__)

log = logging.getLogger("flint.console")

KEYS = f"{shell.PREFIX}/api_keys"
SETTINGS = f"{shell.PREFIX}/settings"
MAX_ORIGINS = 20  # as POST /v1/merchant (api/schemas/merchant.py: allowed_origins max_length)
MAX_FIELD = 300  # longer than any origin or colour: cut before validating, the error says why

# What a redirect after an action says: fixed texts, picked by a key in the URL (nothing reflected).
NOTICES = {
    "revoked": "The key was revoked. Requests with it are refused from now on.",
    "again": "This form was already sent; it acted once. A new key is shown only on the page that created it.",
    "origin_added": "The origin was added. The widget may now be embedded on its pages.",
    "origin_removed": "The origin was removed. Its pages now show the link to the hosted checkout instead of the widget.",
    "brand_color": "The brand colour was saved.",
    "receipts_on": "Buyers will be emailed a receipt when an order is paid.",
    "receipts_off": "Buyers will no longer be emailed receipts.",
}


# -- the service part (no Quart) ---------------------------------------------------------------------------

def _actor(who: Viewer) -> Actor:
    """Who a console action is recorded as: the staff member (a session from before staff existed is the
    merchant's own)."""
    return staff.actor(who.member) if who.member is not None else Actor("merchant", who.merchant.id)


def _acted(who: Viewer, action: str, **fields: str) -> None:
    actor = staff.actor(who.member) if who.member is not None else None
    log.info("console action", extra={"action": action, "merchant_id": who.merchant.id,
                                      "actor_type": actor.type if actor else "merchant",
                                      "actor_id": actor.id if actor else who.merchant.id, **fields})


async def list_keys(rt: Runtime, who: Viewer) -> list[ApiKey]:
    service.require(who, "api_keys:read")
    keys = await merchants.list_keys(rt, who.merchant.id)
    return keys


async def create_key(rt: Runtime, who: Viewer) -> tuple[ApiKey, str]:
    service.require(who, "api_keys:write")
    key, secret = await merchants.create_key(rt, who.merchant.id, _actor(who))
    _acted(who, "api_key.created", api_key=key.id)
    return key, secret


async def revoke_key(rt: Runtime, who: Viewer, key_id: str) -> ApiKey:
    """404 (api_key_not_found) for an unknown key and another merchant's alike."""
    service.require(who, "api_keys:write")
    key = await merchants.revoke_key(rt, who.merchant.id, key_id, _actor(who))
    _acted(who, "api_key.revoked", api_key=key.id)
    return key


def read_settings(who: Viewer) -> Merchant:
    service.require(who, "settings:read")
    return who.merchant


async def set_origins(rt: Runtime, who: Viewer, origins: list[str], action: str) -> Merchant:
    """The whole list, validated as POST /v1/merchant validates allowed_origins (400 origin_invalid)."""
    service.require(who, "settings:write")
    if len(origins) > MAX_ORIGINS:
        raise FlintError(400, "too_many_origins", f"A merchant allows at most {MAX_ORIGINS} origins.",
                         param="allowed_origins")
    merchant = await merchants.update_merchant(rt, who.merchant.id, origins=origins, actor=_actor(who))
    _acted(who, action)
    return merchant


async def add_origin(rt: Runtime, who: Viewer, origin: str) -> Merchant:
    service.require(who, "settings:write")
    merchants.normalise_origin(origin, "origin")  # the error names this form's field
    return await set_origins(rt, who, [*who.merchant.origins, origin], "merchant.origin_added")


async def remove_origin(rt: Runtime, who: Viewer, origin: str) -> Merchant:
    service.require(who, "settings:write")
    return await set_origins(rt, who, [o for o in who.merchant.origins if o != origin], "merchant.origin_removed")


async def set_brand_color(rt: Runtime, who: Viewer, color: str) -> Merchant:
    service.require(who, "settings:write")
    merchant = await merchants.update_merchant(rt, who.merchant.id, brand_color=color, actor=_actor(who))
    _acted(who, "merchant.brand_color_set")
    return merchant


async def set_receipts(rt: Runtime, who: Viewer, receipts: bool) -> Merchant:
    """Email buyers a receipt when an order is paid (docs/api.md 16), as POST /v1/merchant {receipts}."""
    service.require(who, "settings:write")
    merchant = await merchants.update_merchant(rt, who.merchant.id, receipts=receipts, actor=_actor(who))
    _acted(who, "merchant.receipts_set")
    return merchant


@dataclass(frozen=True)
class ScriptTag:
    origin: str
    tag: str


def loader(rt: Runtime) -> tuple[str, str] | None:
    """The loader's URL and its Subresource Integrity, as GET /widget/v1/manifest.json gives them; None
    when this server has no built widget."""
    try:
        files = assets.manifest()["files"]
    except FlintError:
        return None
    found = next(item for item in files if item["path"].endswith("/flint.js"))
    return rt.config.public_url + found["path"], found["integrity"]


def script_tags(rt: Runtime, origins: list[str]) -> list[ScriptTag]:
    """The exact script tag to paste on each allowed origin's checkout page (docs/api.md 5), pinned
    with its SRI hash; the client token is the session's, put in by the merchant's server."""
    found = loader(rt)
    if found is None:
        return []
    url, integrity = found
    tag = (f'<script src="{html.escape(url)}" integrity="{integrity}" crossorigin="anonymous" '
           f'data-client-token="CLIENT_TOKEN_OF_THE_SESSION" data-target="#checkout" async></script>')
    return [ScriptTag(origin, tag) for origin in origins]


# -- the routes --------------------------------------------------------------------------------------------

def _token(rt: Runtime, who: Viewer) -> str:
    return forms.issue(rt, who.session_id)


def _refused_form(who: Viewer, section: str) -> Response:
    """403 for a form without its token (or another session's, or forged): nothing changed, and nothing
    of the page shown (the role is not checked yet)."""
    template = "console/api_keys.html" if section == "api keys" else "console/settings.html"
    return shell._render(template, who, section, 403, refused=True)


async def _posted(section: str) -> tuple[Viewer | None, dict, Response | None, str | None]:
    """(viewer, form, an answer to give instead of acting, the token's nonce)."""
    who = await shell._viewer()
    if who is None:
        return None, {}, redirect("/login", 303), None
    form = await request.form
    try:
        nonce = forms.check(runtime(), form.get("csrf_token"), who.session_id)
    except FlintError:
        return who, form, _refused_form(who, section), None
    return who, form, None, nonce


async def _spend(nonce: str, who: Viewer, back: str) -> Response | None:
    """None when this form is fresh (now spent); the answer for a replay otherwise."""
    async with runtime().db.transaction() as conn:
        earlier = await forms.spend(conn, nonce, who.session_id)
    if earlier is None:
        return None
    return redirect(earlier.get("outcome_url") or f"{back}?notice=again", 303)


def _keys_page(who: Viewer, keys: list[ApiKey], status: int = 200, **context) -> Response:
    rt = runtime()
    return shell._render("console/api_keys.html", who, "api keys", status, keys=keys,
                         may_write=who.may("api_keys:write"), create_token=_token(rt, who),
                         revoke_tokens={key.id: _token(rt, who) for key in keys if key.revoked_at is None},
                         notice=NOTICES.get(request.args.get("notice", "")), **context)


@bp.get(KEYS)
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_keys():
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    try:
        keys = await list_keys(runtime(), who)
    except FlintError as error:
        return shell._refused(who, "api keys", error)
    return _keys_page(who, keys)


@bp.post(KEYS)
@public  # the web session and the form's single-use token, checked here
async def post_key():
    who, _, answer, nonce = await _posted("api keys")
    if answer is not None or who is None or nonce is None:
        return answer
    try:
        service.require(who, "api_keys:write")
    except FlintError as error:
        return shell._refused(who, "api keys", error)
    if (again := await _spend(nonce, who, KEYS)) is not None:
        return again
    key, secret = await create_key(runtime(), who)
    await forms.remember(runtime(), nonce, f"{KEYS}?notice=again")
    # The value is in this answer only (never in a URL, never stored): shown once.
    return _keys_page(who, await list_keys(runtime(), who), created=key, secret=secret)


@bp.post(f"{KEYS}/<key_id>/revoke")
@public  # the web session and the form's single-use token, checked here
async def post_revoke(key_id: str):
    who, _, answer, nonce = await _posted("api keys")
    if answer is not None or who is None or nonce is None:
        return answer
    try:
        service.require(who, "api_keys:write")
    except FlintError as error:
        return shell._refused(who, "api keys", error)
    if (again := await _spend(nonce, who, KEYS)) is not None:
        return again
    try:
        await revoke_key(runtime(), who, key_id[:100])
    except FlintError as error:
        if error.status == 404:
            return shell._render("console/api_keys.html", who, "api keys", 404, missing=True)
        if error.status != 409:
            raise
        return _keys_page(who, await list_keys(runtime(), who), 409, error=error.detail)
    await forms.remember(runtime(), nonce, f"{KEYS}?notice=revoked")
    return redirect(f"{KEYS}?notice=revoked", 303)


def _settings_page(who: Viewer, status: int = 200, **context) -> Response:
    rt = runtime()
    merchant = who.merchant
    context.setdefault("origin_value", "")
    context.setdefault("color_value", merchant.brand_color)
    return shell._render("console/settings.html", who, "settings", status, settings=merchant,
                         brand_text=branding.text_on(merchant.brand_color),
                         may_write=who.may("settings:write"), tags=script_tags(rt, merchant.origins),
                         widget_built=loader(rt) is not None, add_token=_token(rt, who),
                         color_token=_token(rt, who), receipts_token=_token(rt, who),
                         mail_configured=rt.config.mail_configured,
                         remove_tokens={origin: _token(rt, who) for origin in merchant.origins},
                         notice=NOTICES.get(request.args.get("notice", "")), **context)


@bp.get(SETTINGS)
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_settings():
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    try:
        read_settings(who)
    except FlintError as error:
        return shell._refused(who, "settings", error)
    return _settings_page(who)


async def _change(action, field: str, value: str | bool, done: str) -> Response:
    """One Settings form: check, spend, act; a refused value is shown at its field (400)."""
    who, _, answer, nonce = await _posted("settings")
    if answer is not None or who is None or nonce is None:
        return answer
    try:
        service.require(who, "settings:write")
    except FlintError as error:
        return shell._refused(who, "settings", error)
    if (again := await _spend(nonce, who, SETTINGS)) is not None:
        return again
    try:
        await action(runtime(), who, value)
    except FlintError as error:
        if error.status != 400:
            raise
        return _settings_page(who, 400, **{f"{field}_error": error.detail, f"{field}_value": value})
    await forms.remember(runtime(), nonce, f"{SETTINGS}?notice={done}")
    return redirect(f"{SETTINGS}?notice={done}", 303)


async def _field(name: str) -> str:
    return ((await request.form).get(name) or "").strip()[:MAX_FIELD]


@bp.post(f"{SETTINGS}/origins")
@public  # the web session and the form's single-use token, checked here
async def post_origin():
    return await _change(add_origin, "origin", await _field("origin"), "origin_added")


@bp.post(f"{SETTINGS}/origins/remove")
@public  # the web session and the form's single-use token, checked here
async def post_remove_origin():
    return await _change(remove_origin, "origin", await _field("origin"), "origin_removed")


@bp.post(f"{SETTINGS}/brand_color")
@public  # the web session and the form's single-use token, checked here
async def post_brand_color():
    return await _change(set_brand_color, "color", await _field("brand_color"), "brand_color")


@bp.post(f"{SETTINGS}/receipts")
@public  # the web session and the form's single-use token, checked here
async def post_receipts():
    # A checkbox: sent ("on") when ticked, absent when not; the form always carries its token.
    on = (await _field("receipts")) != ""
    return await _change(set_receipts, "receipts", on, "receipts_on" if on else "receipts_off")

"""The console's Webhooks and Apps pages (docs/api.md 15).

``/dashboard/webhooks``: the merchant's own webhook endpoints (what GET /v1/webhook_endpoints shows a
merchant key: never an app's), each with its recent deliveries and their attempts; ``Retry`` per delivery,
``Add endpoint`` and ``Roll secret``, whose new signing secret is shown once. ``/dashboard/apps``: the
installed apps with what each consented to, an update waiting for approval (``Approve update``),
``Uninstall``, and the apps' recent hook calls.

Every action is the service call the JSON API makes (flint.webhooks.service, flint.oauth.service), after
the role check (console.service.require: webhooks:write, apps:write) and with the staff member as the
actor: on the endpoint (created_by), on app.uninstalled, and in the audit trail for Roll secret, Retry and
Approve update (flint.audit, shown on the Team page's Activity list). Every form carries a single-use
token (flint.forms) bound to the signed-in session: a missing or forged one is 403 and changes nothing;
the same form sent twice acts once, the second answer sending the browser where the first one went.

The top half composes what the pages show (no Quart); the routes below only read the request and render.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quart import Blueprint, Response, redirect, request

from flint.actors import Actor
from flint.apps import store as app_store
from flint.apps.consent import Consent
from flint.apps.models import App
from flint.console import routes as shell
from flint.console.service import Viewer, require
from flint.errors import FlintError, invalid
from flint.event_types import EVENT_TYPES
from flint.forms import service as forms
from flint.hooks import service as hooks
from flint.hooks.models import HookCall
from flint.http.auth import public
from flint.http.context import runtime
from flint.oauth import service as oauth
from flint.oauth.models import ACTIVE, Installation
from flint.runtime import Runtime
from flint.scopes import SCOPE_WORDS
from flint.staff import service as staff
from flint.webhooks import service as webhooks
from flint.webhooks.models import Attempt, Delivery, Endpoint

bp = Blueprint("console_integrations", __name__)

WEBHOOKS = f"{shell.PREFIX}/webhooks"
APPS = f"{shell.PREFIX}/apps"
RECENT_DELIVERIES = 5  # per endpoint on the Webhooks page; an endpoint's own page pages through the rest
DELIVERIES_PAGE = 20
RECENT_HOOK_CALLS = 50  # the merchant's latest calls, grouped by app
HOOK_CALLS_PER_APP = 10
MAX_INSTALLATIONS = 100
MAX_URL = 2048
MAX_DESCRIPTION = 500


def _actor(who: Viewer) -> Actor:
    """Who a console action is recorded as: the staff member (a session from before staff existed is the
    merchant's own)."""
    return staff.actor(who.member) if who.member is not None else Actor("merchant", who.merchant.id)


# -- webhooks: what the pages show -----------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryRow:
    delivery: Delivery
    attempts: list[Attempt]


@dataclass(frozen=True)
class EndpointView:
    endpoint: Endpoint
    deliveries: list[DeliveryRow]
    older: str | None  # starting_after cursor of the next (older) page of deliveries, if any


async def _deliveries(rt: Runtime, who: Viewer, endpoint: Endpoint, limit: int,
                      starting_after: str | None = None) -> EndpointView:
    try:
        found, more = await webhooks.list_deliveries(rt, who.merchant.id, endpoint.id, limit, starting_after)
    except FlintError as error:
        if error.code != "starting_after_invalid":
            raise
        found, more = await webhooks.list_deliveries(rt, who.merchant.id, endpoint.id, limit, None)
    rows = [DeliveryRow(d, await webhooks.list_attempts(rt, who.merchant.id, d.id)) for d in found]
    return EndpointView(endpoint, rows, found[-1].id if more and found else None)


async def webhooks_page(rt: Runtime, who: Viewer) -> list[EndpointView]:
    """The merchant's endpoints, newest first, each with its most recent deliveries and their attempts."""
    require(who, "webhooks:read")
    endpoints, _ = await webhooks.list_endpoints(rt, who.merchant.id, webhooks.MAX_ENDPOINTS, None)
    return [await _deliveries(rt, who, endpoint, RECENT_DELIVERIES) for endpoint in endpoints]


async def endpoint_page(rt: Runtime, who: Viewer, endpoint_id: str, starting_after: str | None) -> EndpointView:
    """One endpoint with a page of its deliveries (keyset, newest first); 404 for another merchant's or
    an app's endpoint, as the API."""
    require(who, "webhooks:read")
    endpoint = await webhooks.get_endpoint(rt, who.merchant.id, endpoint_id)
    return await _deliveries(rt, who, endpoint, DELIVERIES_PAGE, starting_after)


def event_filters(raw: str) -> list[str]:
    """What the Events box holds: event types, prefixes like ``payment.*`` or ``*``, separated by commas
    or spaces (checked by the API's own check_filters)."""
    return [part for part in raw.replace(",", " ").split() if part][:webhooks.MAX_FILTERS + 1]


async def add_endpoint(rt: Runtime, who: Viewer, url: str, events: str, description: str) -> tuple[Endpoint, str]:
    require(who, "webhooks:write")
    url = url.strip()
    if not url:
        raise invalid("url_invalid", "Give the URL Flint should send events to.", "url")
    if len(url) > MAX_URL:
        raise invalid("url_invalid", f"URLs have at most {MAX_URL} characters.", "url")
    return await webhooks.create_endpoint(rt, who.merchant.id, url=url, events=event_filters(events),
                                          description=description.strip()[:MAX_DESCRIPTION] or None,
                                          actor=_actor(who))


async def roll_secret(rt: Runtime, who: Viewer, endpoint_id: str) -> tuple[Endpoint, str]:
    require(who, "webhooks:write")
    return await webhooks.rotate_secret(rt, who.merchant.id, endpoint_id, actor=_actor(who))


async def retry(rt: Runtime, who: Viewer, delivery_id: str) -> Delivery:
    require(who, "webhooks:write")
    return await webhooks.retry_delivery(rt, who.merchant.id, delivery_id, actor=_actor(who))


# -- apps: what the page shows ---------------------------------------------------------------------------

HOOK_WORDS = {"checkout.before_payment": "Be asked before each payment, and block it or add to the order"}


@dataclass(frozen=True)
class ConsentWords:
    """A consent as people read it: each part in words, with the technical name beside it."""
    scopes: list[tuple[str, str]]
    events: list[str]
    hooks: list[tuple[str, str]]
    fields: list[str]

    @classmethod
    def of(cls, consent: Consent) -> ConsentWords:
        return cls(scopes=[(SCOPE_WORDS.get(s, s), s) for s in consent.scopes],
                   events=list(consent.webhook_events),
                   hooks=[(HOOK_WORDS.get(h, h), h) for h in consent.hooks],
                   fields=[_field_words(f) for f in consent.checkout_fields])

    def empty(self) -> bool:
        return not (self.scopes or self.events or self.hooks or self.fields)


def _field_words(spec: Any) -> str:
    if not isinstance(spec, dict):
        return str(spec)
    kind = {"checkbox": "a checkbox", "text": "a text box", "select": "a choice", "number": "a number"}.get(
        str(spec.get("type")), str(spec.get("type") or "a field"))
    need = "required" if spec.get("required") else "optional"
    return f"{spec.get('label') or spec.get('key')} ({kind}, {need})"


@dataclass(frozen=True)
class AppView:
    installation: Installation
    name: str
    description: str | None
    consented: ConsentWords
    added: ConsentWords | None  # what a pending update adds, if one waits
    requested_at: str | None
    calls: list[HookCall] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.installation.status == ACTIVE


async def apps_page(rt: Runtime, who: Viewer) -> list[AppView]:
    """The merchant's installations (active first, then uninstalled, newest first within each), what each
    consented to, any update waiting, and each app's calls among the merchant's recent hook calls."""
    require(who, "apps:read")
    installations, _ = await oauth.list_installations(rt, who.merchant.id, MAX_INSTALLATIONS, None)
    async with rt.db.read() as conn:
        apps: dict[str, App] = await app_store.select_apps_by_ids(conn, sorted({i.app_id for i in installations}))
    calls, _ = await hooks.list_calls(rt, who.merchant.id, None, RECENT_HOOK_CALLS, None)
    shown = []
    for installation in installations:
        app = apps.get(installation.app_id)
        pending = installation.pending
        shown.append(AppView(
            installation=installation, name=app.name if app else installation.app_id,
            description=app.description if app else None, consented=ConsentWords.of(installation.consent),
            added=ConsentWords.of(installation.consent.added_in(pending[0])) if pending else None,
            requested_at=pending[1] if pending else None,
            calls=[c for c in calls if c.installation_id == installation.id][:HOOK_CALLS_PER_APP]))
    return sorted(shown, key=lambda view: not view.active)  # stable: newest first within each


async def approve_update(rt: Runtime, who: Viewer, installation_id: str) -> Installation:
    require(who, "apps:write")
    return await oauth.approve_update(rt, who.merchant.id, installation_id, _actor(who))


async def uninstall(rt: Runtime, who: Viewer, installation_id: str) -> Installation:
    require(who, "apps:write")
    return await oauth.uninstall(rt, who.merchant.id, installation_id, _actor(who))


# -- routes ----------------------------------------------------------------------------------------------

NOTICES = {
    "retried": "The delivery will be sent again now.",
    "approved": "The update is approved: the app may now do what it asked for.",
    "uninstalled": "The app is uninstalled: its access ended and it gets no more events.",
    "done": "That was already done.",
}
WEBHOOK_ERRORS = {
    "webhook_endpoint_disabled": "This endpoint is disabled: enable it before retrying its deliveries.",
    "webhook_delivery_in_flight": "This delivery is being sent right now. Reload the page in a moment.",
}


def _form_token(rt: Runtime, who: Viewer):
    """A fresh single-use token for each form on the page."""
    return lambda: forms.issue(rt, who.session_id)


async def _spend(rt: Runtime, who: Viewer, form) -> tuple[str, str | None]:
    """Checks and spends the form's token (403 form_token_* when missing or not this session's): the
    nonce, and where the first use of this form went when it comes again (else None)."""
    nonce, earlier = await forms.spend_token(rt, form.get("csrf_token"), who.session_id)
    if earlier is None:
        return nonce, None
    return nonce, earlier.get("outcome_url") or ""


def _refused_form(who: Viewer, section: str, error: FlintError) -> Response:
    """A form refused before it acted: its token (403), or the role (403), said plainly."""
    if error.code == "role_forbidden":
        return shell._render("console/forbidden.html", who, section, 403)
    if error.status != 403:
        raise error  # not a refusal: the app's own error handling answers it
    return shell._render("console/webhooks_refused.html", who, section, 403, back=WEBHOOKS if section == "webhooks"
                         else APPS)


def _back(target: str | None, default: str) -> str:
    """Where a form sends the browser back to: one of this surface's own pages only."""
    if target and target.startswith(WEBHOOKS + "/") and "//" not in target and "\\" not in target:
        return target
    return default


def _with_notice(url: str, notice: str) -> str:
    return url + ("&" if "?" in url else "?") + f"notice={notice}"


async def _webhooks_view(rt: Runtime, who: Viewer, status: int = 200, **context) -> Response:
    endpoints = await webhooks_page(rt, who)
    values = context.pop("values", {"url": "", "events": "*", "description": ""})
    return shell._render("console/webhooks.html", who, "webhooks", status, endpoints=endpoints,
                         may_act=who.may("webhooks:write"), form_token=_form_token(rt, who), values=values,
                         event_types=EVENT_TYPES, notice=NOTICES.get(request.args.get("notice", "")), **context)


@bp.get(WEBHOOKS)
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_webhooks():
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    try:
        return await _webhooks_view(runtime(), who)
    except FlintError as error:
        return shell._refused(who, "webhooks", error)


@bp.get(f"{WEBHOOKS}/<endpoint_id>")
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_endpoint(endpoint_id: str):
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    rt = runtime()
    try:
        view = await endpoint_page(rt, who, endpoint_id[:100], (request.args.get("starting_after") or "")[:100] or None)
    except FlintError as error:
        if error.status == 404:
            return shell._render("console/webhooks_not_found.html", who, "webhooks", 404)
        return shell._refused(who, "webhooks", error)
    return shell._render("console/webhooks_endpoint.html", who, "webhooks", view=view,
                         paged=bool(request.args.get("starting_after")),
                         may_act=who.may("webhooks:write"), form_token=_form_token(rt, who),
                         notice=NOTICES.get(request.args.get("notice", "")),
                         here=f"{WEBHOOKS}/{view.endpoint.id}")


@bp.post(f"{WEBHOOKS}/endpoints")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_endpoint():
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    rt, form = runtime(), await request.form
    try:
        nonce, earlier = await _spend(rt, who, form)
        if earlier is not None:
            return redirect(_with_notice(earlier or WEBHOOKS, "done"), 303)
        values = {"url": form.get("url", "")[:MAX_URL], "events": form.get("events", "")[:2000],
                  "description": form.get("description", "")[:MAX_DESCRIPTION]}
        try:
            endpoint, secret = await add_endpoint(rt, who, values["url"], values["events"], values["description"])
        except FlintError as error:
            if error.status != 400:
                raise
            return await _webhooks_view(rt, who, 400, values=values, add_error=error.detail,
                                        add_error_field="events" if (error.param or "").startswith("events") else "url")
    except FlintError as error:
        return _refused_form(who, "webhooks", error)
    await forms.remember(rt, nonce, WEBHOOKS)
    # The secret is in this answer only (it is not kept in a URL or shown again).
    return await _webhooks_view(rt, who, 200, new_secret=secret, secret_endpoint=endpoint, secret_kind="created")


@bp.post(f"{WEBHOOKS}/<endpoint_id>/roll_secret")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_roll_secret(endpoint_id: str):
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    rt, form = runtime(), await request.form
    try:
        nonce, earlier = await _spend(rt, who, form)
        if earlier is not None:
            return redirect(_with_notice(earlier or WEBHOOKS, "done"), 303)
        endpoint, secret = await roll_secret(rt, who, endpoint_id[:100])
    except FlintError as error:
        if error.status == 404:
            return shell._render("console/webhooks_not_found.html", who, "webhooks", 404)
        return _refused_form(who, "webhooks", error)
    await forms.remember(rt, nonce, WEBHOOKS)
    return await _webhooks_view(rt, who, 200, new_secret=secret, secret_endpoint=endpoint, secret_kind="rolled")


@bp.post(f"{shell.PREFIX}/webhook_deliveries/<delivery_id>/retry")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_retry(delivery_id: str):
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    rt, form = runtime(), await request.form
    back = _back(form.get("back"), WEBHOOKS)
    try:
        nonce, earlier = await _spend(rt, who, form)
        if earlier is not None:
            return redirect(_with_notice(earlier or back, "done"), 303)
        await retry(rt, who, delivery_id[:100])
    except FlintError as error:
        if error.status == 404:
            return shell._render("console/webhooks_not_found.html", who, "webhooks", 404)
        if error.code in WEBHOOK_ERRORS:
            return await _webhooks_view(rt, who, 409, error=WEBHOOK_ERRORS[error.code])
        return _refused_form(who, "webhooks", error)
    await forms.remember(rt, nonce, back)
    return redirect(_with_notice(back, "retried"), 303)


# -- apps routes -----------------------------------------------------------------------------------------

APP_ERRORS = {
    "no_pending_update": "This app has no update waiting for approval.",
    "installation_not_active": "This app is already uninstalled.",
}


async def _apps_view(rt: Runtime, who: Viewer, status: int = 200, **context) -> Response:
    views = await apps_page(rt, who)
    return shell._render("console/apps.html", who, "apps", status, apps=views, may_act=who.may("apps:write"),
                         form_token=_form_token(rt, who), notice=NOTICES.get(request.args.get("notice", "")),
                         **context)


@bp.get(APPS)
@public  # the signed-in person's web session (cookie), checked here; signed out: to /login
async def get_apps():
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    try:
        return await _apps_view(runtime(), who)
    except FlintError as error:
        return shell._refused(who, "apps", error)


async def _app_action(installation_id: str, act, notice: str) -> Response:
    who = await shell._viewer()
    if who is None:
        return shell._to_sign_in()
    rt, form = runtime(), await request.form
    try:
        nonce, earlier = await _spend(rt, who, form)
        if earlier is not None:
            return redirect(_with_notice(earlier or APPS, "done"), 303)
        await act(rt, who, installation_id[:100])
    except FlintError as error:
        if error.status == 404:
            return shell._render("console/apps_not_found.html", who, "apps", 404)
        if error.code in APP_ERRORS:
            return await _apps_view(rt, who, 409, error=APP_ERRORS[error.code])
        return _refused_form(who, "apps", error)
    await forms.remember(rt, nonce, APPS)
    return redirect(_with_notice(APPS, notice), 303)


@bp.post(f"{APPS}/<installation_id>/approve_update")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_approve_update(installation_id: str):
    return await _app_action(installation_id, approve_update, "approved")


@bp.post(f"{APPS}/<installation_id>/uninstall")
@public  # the signed-in person's web session (cookie) and the form's single-use token, checked here
async def post_uninstall(installation_id: str):
    return await _app_action(installation_id, uninstall, "uninstalled")

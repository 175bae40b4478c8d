"""The authorization server's pages and endpoints (RFC 6749, 7636, 7009, 8414): consent, token, revoke, metadata."""
from __future__ import annotations

import base64
import json
from urllib.parse import unquote_plus, urlencode

from quart import Blueprint, Response, g, redirect, request

from flint import urls
from flint.apps.consent import Consent
from flint.errors import FlintError
from flint.http import pages
from flint.http.auth import public
from flint.http.context import runtime
from flint.merchants import store as merchant_store
from flint.oauth import service
from flint.oauth.service import AuthorizationRequest, NoRedirect, OAuthError
from flint.runtime import Runtime
from flint.scopes import SCOPE_WORDS, SCOPES, grouped_events
from flint.security import CONSENT_SALT
from flint.staff import service as staff
from flint.web import accounts

bp = Blueprint("oauth", __name__)

CONSENT_MAX_AGE = 600

def _with_params(uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return uri + ("&" if "?" in uri else "?") + query


def _refuse_without_redirect(error: NoRedirect) -> Response:
    return pages.page("oauth/error.html", 400, error=error.error, description=error.description)


def consent_words(consent: Consent, *, lifecycle: bool) -> dict:
    """A consent as the merchant reads it: each scope in words, the events grouped by what they reveal,
    the hooks and the checkout fields (``lifecycle``: the app also hears app.installed/uninstalled)."""
    events = list(consent.webhook_events) + (["app.installed", "app.uninstalled"] if lifecycle else [])
    return {"scopes": [(s, SCOPE_WORDS[s]) for s in consent.scopes if s in SCOPE_WORDS],
            "events": grouped_events(events), "hook": bool(consent.hooks),
            "fields": [f.get("label", f.get("key")) for f in consent.checkout_fields]}


async def _consent_page(rt: Runtime, request_: AuthorizationRequest, session_id: str, merchant) -> Response:
    async with rt.db.read() as conn:
        developer = await merchant_store.select_merchant(conn, request_.app.developer_merchant_id)
    shown = service.consent_shown(request_)
    current = await service.active_installation(rt, request_.app.id, merchant.id)
    changes = None
    if current is not None:
        # Asked again by an installed app: say what changes from what this merchant approved before.
        before = current.consent
        changes = {"added": consent_words(before.added_in(shown), lifecycle=False),
                   "removed": consent_words(shown.added_in(before), lifecycle=False)}
    token = rt.signer.dumps(CONSENT_SALT, {"q": request_.sealed(), "w": session_id, "k": shown.to_dict()})
    # The form's answer is a redirect to the app: CSP form-action governs where a form's redirect
    # may land (Chrome enforces it), so the app's redirect origin is allowed on this page only.
    parts = urls.parse_url(request_.redirect_uri, "redirect_uri")  # .netloc: host[:port], as parsed
    g.form_origins = [urls.origin(parts)]
    return pages.page("oauth/consent.html", app=request_.app, developer=developer.name if developer else None,
                 account=merchant, consent=consent_words(shown, lifecycle=bool(request_.app.webhook_url)),
                 changes=changes, form_token=token, returns_to=parts.netloc,
                 # Each field the app adds to checkouts, with its kind and whether buyers must fill it.
                 checkout_fields=[{"label": f.get("label", f.get("key")), "type": f.get("type"),
                                   "required": bool(f.get("required"))} for f in shown.checkout_fields])


@bp.get("/oauth/authorize")
@public
async def get_authorize():
    rt = runtime()
    params = {k: request.args.get(k, "") for k in request.args}
    try:
        checked = await service.check_authorization_request(rt, params)
    except NoRedirect as refused:
        return _refuse_without_redirect(refused)
    except OAuthError as refused:
        return redirect(_with_params(params["redirect_uri"], {"error": refused.error,
                                                              "error_description": refused.description,
                                                              "state": params.get("state")}), 303)
    found = await accounts.signed_in(rt)
    if found is None:
        # The merchant signs in first, then comes back to exactly this request.
        return redirect("/login?" + urlencode({"next": request.full_path}), 303)
    # Installing an app grants it access to the account: owners and developers only (docs/api.md 15).
    staff.require(found.staff, "apps:write")
    return await _consent_page(rt, checked, found[0], found[1])


@bp.post("/oauth/authorize")
@public
async def post_authorize():
    rt = runtime()
    found = await accounts.signed_in(rt)
    form = await request.form
    try:
        sealed = rt.signer.loads(CONSENT_SALT, form.get("consent", ""), CONSENT_MAX_AGE, kind="form_token")
    except FlintError:
        sealed = None
    if found is None or not isinstance(sealed, dict) or sealed.get("w") != found[0]:
        # Not this signed-in merchant's own consent form (CSRF, or an expired page).
        raise FlintError(403, "form_token_invalid", "This form has expired. Reload the page and try again.")
    staff.require(found.staff, "apps:write")
    q = sealed["q"]
    params = {"client_id": q["c"], "redirect_uri": q["r"], "scope": " ".join(q["s"]), "response_type": "code",
              "code_challenge": q["cc"], "code_challenge_method": "S256", **({"state": q["st"]} if q["st"] else {})}
    try:  # the app may have changed its registration since the page was shown
        checked = await service.check_authorization_request(rt, params)
    except NoRedirect as refused:
        return _refuse_without_redirect(refused)
    if form.get("decision") != "approve":
        return redirect(_with_params(checked.redirect_uri, {"error": "access_denied",
                                                            "error_description": "The merchant declined.",
                                                            "state": checked.state}), 303)
    try:
        shown = Consent(**{k: tuple(v) for k, v in sealed["k"].items()})
    except (KeyError, TypeError, AttributeError):  # a form from before consents were recorded
        shown = service.consent_shown(checked)
    code = await service.issue_code(rt, checked, found[1].id, shown)
    return redirect(_with_params(checked.redirect_uri, {"code": code, "state": checked.state}), 303)


def _client_credentials(form) -> tuple[str | None, str | None, bool]:
    """(client_id, client_secret, used Basic): HTTP Basic (RFC 6749 2.3.1: each part form-encoded
    first) or the body, not both."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        if form.get("client_secret"):
            raise OAuthError("invalid_request", "Use one client authentication method, not two.")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            client_id, _, secret = decoded.partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed HTTP Basic credentials.", 401) from None
        return unquote_plus(client_id), unquote_plus(secret), True
    return form.get("client_id"), form.get("client_secret"), False


def _oauth_json(body: dict, status: int = 200, basic: bool = False) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 5.1
    response.headers["Pragma"] = "no-cache"
    if status == 401 and basic:
        response.headers["WWW-Authenticate"] = 'Basic realm="flint"'
    return response


async def _oauth_endpoint(handle) -> Response:
    """The token and revocation endpoints: authenticate the client, run ``handle(rt, app, form)``,
    and answer RFC 6749 5.2 errors as JSON."""
    rt = runtime()
    form = await request.form
    basic = request.headers.get("Authorization", "").lower().startswith("basic ")
    try:
        client_id, secret, basic = _client_credentials(form)
        app = await service.authenticate_client(rt, client_id, secret)
        return await handle(rt, app, form)
    except OAuthError as refused:
        return _oauth_json({"error": refused.error, "error_description": refused.description}, refused.status, basic)


@bp.post("/oauth/token")
@public
async def post_token():
    async def token(rt: Runtime, app, form) -> Response:
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return _oauth_json(await service.exchange_code(rt, app, form.get("code"), form.get("redirect_uri"),
                                                           form.get("code_verifier")))
        if grant == "refresh_token":
            return _oauth_json(await service.refresh(rt, app, form.get("refresh_token")))
        raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code or refresh_token.")

    return await _oauth_endpoint(token)


@bp.post("/oauth/revoke")
@public
async def post_revoke():
    async def revoke(rt: Runtime, app, form) -> Response:
        await service.revoke(rt, app, form.get("token"))  # RFC 7009 2.2: 200 whatever the token was
        return Response("", status=200)

    return await _oauth_endpoint(revoke)


@bp.get("/.well-known/oauth-authorization-server")
@public
async def get_metadata():
    base = runtime().config.public_url
    return _oauth_json({  # RFC 8414
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(SCOPES),
    })

"""The authorization server for partner-app installs (docs/api.md 10): OAuth 2.0 authorization code with
PKCE, to the letter of RFC 6749, RFC 7636 (S256 only), RFC 7009 and RFC 9700.

* Authorization requests are checked in RFC 6749 4.1.2.1's order: an unknown client or a redirect
  URI that is not registered *exactly* gets an error page and never a redirect; everything else is
  answered at the redirect URI with ``error`` and the ``state``.
* Codes, access tokens and refresh tokens are random and stored only as SHA-256 digests. Codes are
  single-use and live 60 s; a replayed code revokes everything it issued (RFC 6749 4.1.2).
* Refresh tokens rotate; presenting a spent one revokes the whole grant (RFC 9700 4.14.2).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from flint import clock
from flint.actors import Actor
from flint.apps import service as apps
from flint.apps import store as app_store
from flint.apps.consent import Consent
from flint.apps.models import App
from flint.audit import service as audit
from flint.db import Conn
from flint.errors import conflict, not_found
from flint.events import service as events
from flint.i18n import N_
from flint.ids import new_id, new_secret
from flint.merchants import store as merchant_store
from flint.oauth import store
from flint.oauth.models import ACTIVE, Installation, consent_columns, pending_column
from flint.runtime import Runtime
from flint.scopes import SCOPES
from flint.security import hash_secret
from flint.webhooks import service as webhooks

CODE_SECONDS = 60
ACCESS_SECONDS = 3600
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 4.1
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")  # base64url(SHA-256), no padding


class OAuthError(Exception):
    """An RFC 6749 error: ``error`` code, a human description, the HTTP status for the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class NoRedirect(OAuthError):
    """An authorization request so wrong (unknown client, unregistered redirect URI) that Flint must
    not redirect anywhere: an error page instead (RFC 6749 4.1.2.1)."""


@dataclass(frozen=True)
class AuthorizationRequest:
    app: App
    redirect_uri: str
    scopes: list[str]
    state: str | None
    code_challenge: str

    def sealed(self) -> dict:
        return {"c": self.app.client_id, "r": self.redirect_uri, "s": self.scopes, "st": self.state,
                "cc": self.code_challenge}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def check_authorization_request(rt: Runtime, params: dict[str, str]) -> AuthorizationRequest:
    client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
    app = await apps.get_app_by_client_id(rt, client_id) if client_id else None
    if app is None:
        raise NoRedirect("invalid_client", N_("This app is not registered with Flint."))
    # Exact string match (RFC 9700 2.1): no prefix, no normalisation, no default.
    if redirect_uri not in app.redirect_uri_list:
        raise NoRedirect("invalid_request", N_("The redirect URI is not one this app registered."))
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "Only response_type=code is supported.")
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if not challenge:
        raise OAuthError("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256.")
    if method != "S256":
        raise OAuthError("invalid_request", "Only the S256 code challenge method is supported (plain is not).")
    if not _CHALLENGE.match(challenge):
        raise OAuthError("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier.")
    requested = params.get("scope")
    scopes = sorted(set(requested.split())) if requested else app.scope_list
    if not scopes or any(s not in SCOPES or s not in app.scope_list for s in scopes):
        raise OAuthError("invalid_scope", "The app asked for a scope it did not register.")
    return AuthorizationRequest(app, redirect_uri, scopes, params.get("state"), challenge)


def consent_shown(request: AuthorizationRequest) -> Consent:
    """What the consent page shows for this request: the scopes it names, the app's events (as the
    concrete types the page lists), hooks and checkout fields."""
    return Consent.of_app(request.app, request.scopes)


async def issue_code(rt: Runtime, request: AuthorizationRequest, merchant_id: str,
                     shown: Consent | None = None) -> str:
    """``shown``: what the page the merchant approved listed (carried in its signed form), which the
    installation records when the code is exchanged; by default what the page shows now."""
    shown = shown or consent_shown(request)
    code = new_secret("fac_")
    async with rt.db.transaction() as conn:
        await store.insert_code(conn, {
            "code_hash": hash_secret(code), "app_id": request.app.id, "merchant_id": merchant_id,
            "redirect_uri": request.redirect_uri, "scopes": json.dumps(request.scopes),
            "code_challenge": request.code_challenge, "expires_at": clock.later_iso(CODE_SECONDS),
            "consent": shown.dumps()})
    return code


async def authenticate_client(rt: Runtime, client_id: str | None, client_secret: str | None) -> App:
    if not client_id or not client_secret:
        raise OAuthError("invalid_client", "Client authentication is required.", 401)
    app = await apps.authenticate_client(rt, client_id, client_secret)
    if app is None:
        raise OAuthError("invalid_client", "Client authentication failed.", 401)
    return app


async def _token_response(conn, access: str, refresh: str, scopes: list[str], installation_id: str,
                          merchant_id: str) -> dict:
    """RFC 6749 5.1, plus which installation and merchant the tokens act for: the merchant's name too,
    so an app can show people a name rather than an id (an app's token cannot read GET /v1/merchant)."""
    merchant = await merchant_store.select_merchant(conn, merchant_id)
    return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_SECONDS, "refresh_token": refresh,
            "scope": " ".join(scopes), "installation_id": installation_id, "merchant_id": merchant_id,
            "merchant_name": merchant.name if merchant else None}


async def _issue_tokens(conn, grant_id: str, now: str) -> tuple[str, str]:
    access, refresh = new_secret("fat_"), new_secret("frt_")
    await store.insert_token(conn, token_hash=hash_secret(access), kind="access", grant_id=grant_id,
                             expires_at=clock.later_iso(ACCESS_SECONDS), created_at=now)
    await store.insert_token(conn, token_hash=hash_secret(refresh), kind="refresh", grant_id=grant_id,
                             expires_at=None, created_at=now)
    return access, refresh


async def exchange_code(rt: Runtime, app: App, code: str | None, redirect_uri: str | None,
                        verifier: str | None) -> dict:
    if not code:
        raise OAuthError("invalid_request", "The code is missing.")
    now = clock.now_iso()
    replayed = None
    async with rt.db.transaction() as conn:
        # Locked: two exchanges of one code at once (two processes) run one after the other, so
        # the second sees the code spent and the grant the first issued, and revokes it, as a
        # replay later would (with a plain read both would see it unspent, and the loser of
        # spend_code would leave the winner's tokens alive).
        row = await store.select_code(conn, hash_secret(code), for_update=True)
        if row is None or row["app_id"] != app.id:
            raise OAuthError("invalid_grant", "The authorization code is not valid.")
        if row["used_at"] is not None:
            replayed = row["grant_id"]
        elif row["expires_at"] <= now:
            raise OAuthError("invalid_grant", "The authorization code has expired.")
        elif redirect_uri != row["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri must be the one the code was issued for.")
        elif not verifier or not _VERIFIER.match(verifier) or not hmac.compare_digest(s256(verifier), row["code_challenge"]):
            raise OAuthError("invalid_grant", "The code_verifier does not match the code_challenge.")
        elif not await store.spend_code(conn, row["code_hash"], now):
            raise OAuthError("invalid_grant", "The authorization code was already used.")
        else:
            return await _install(conn, rt, app, row, now)
        if replayed:
            # A code used twice may be stolen: what it issued is revoked too (RFC 6749 4.1.2).
            await store.revoke_grant(conn, replayed, now)
    raise OAuthError("invalid_grant", "The authorization code was already used.")


async def _install(conn, rt: Runtime, app: App, code: dict, now: str) -> dict:
    requested = json.loads(code["scopes"])
    # The app, locked and read afresh (its client was authenticated before this transaction): two
    # installs of one app on one merchant (two codes at once) apply one after the other, the second
    # finding the first's installation, and a change of the app's settings either comes before (this
    # install compares with it) or after (and finds this installation).
    locked = await app_store.select_app_by_id(conn, app.id, for_update=True)
    assert locked is not None  # apps are never deleted
    app = locked
    # What the page showed, less what the app dropped since; what it added since waits for approval.
    asked_now = Consent.of_app(app, [s for s in requested if s in app.scope_list])
    shown = Consent.loads(code["consent"]) or asked_now
    consent = shown.narrowed_to(asked_now)
    widened = None if asked_now.within(consent) else asked_now
    installation = await store.select_active_installation(conn, app.id, code["merchant_id"], for_update=True)
    if installation is None:
        installation = Installation(id=new_id("inst"), app_id=app.id, merchant_id=code["merchant_id"],
                                    status=ACTIVE, created_at=now, updated_at=now, uninstalled_at=None,
                                    pending_update=pending_column(widened, now), **consent_columns(consent))
        await store.insert_installation(conn, installation)
        if app.webhook_url:
            # Before the event, so app.installed is the app endpoint's first delivery.
            await webhooks.add_app_endpoint(conn, installation_id=installation.id, app_id=app.id,
                                            merchant_id=installation.merchant_id, url=app.webhook_url,
                                            sealed_secret=app.webhook_secret, consent=consent)
        await events.record(conn, merchant_id=code["merchant_id"], type="app.installed",
                            actor=Actor("merchant", code["merchant_id"]), obj=installation.to_dict())
    else:
        # Consent given again: it replaces the old one (fewer scopes narrow every live token); an
        # update still waiting stays, unless this consent covers it.
        waiting = installation.pending
        still = widened or (waiting[0] if waiting and not waiting[0].within(consent) else None)
        installation = await _apply_consent(conn, installation, consent, pending_column(
            still, now if widened else (waiting[1] if waiting else now)), now)
    grant_id = new_id("grant")
    await store.insert_grant(conn, {"id": grant_id, "installation_id": installation.id, "app_id": app.id,
                                    "merchant_id": code["merchant_id"], "scopes": json.dumps(requested),
                                    "created_at": now})
    await store.note_code_grant(conn, code["code_hash"], grant_id)
    access, refresh = await _issue_tokens(conn, grant_id, now)
    return await _token_response(conn, access, refresh, [s for s in requested if s in consent.scopes],
                                 installation.id, code["merchant_id"])


async def _apply_consent(conn: Conn, installation: Installation, consent: Consent, pending: str | None,
                         now: str, *, approved: Consent | None = None) -> Installation:
    """Record a new consent for an installation and make everything follow it in this transaction:
    its grants (a scope taken away leaves every live token and refresh token at once; ``approved``,
    a widening the merchant approved, adds what it added to every live grant), and its endpoints
    (what they receive)."""
    before = installation.consent
    for grant in await store.select_live_grants_of_installation(conn, installation.id):
        granted = json.loads(grant["scopes"])
        added = [s for s in approved.scopes if s not in before.scopes] if approved is not None else []
        kept = [s for s in SCOPES if (s in granted or s in added) and s in consent.scopes]
        if kept != granted:
            await store.update_grant_scopes(conn, grant["id"], json.dumps(kept))
    updated = await store.update_consent(conn, installation.id, consent_columns(consent), pending, now)
    await webhooks.follow_consent(conn, installation.id, consent)
    return updated


async def refresh(rt: Runtime, app: App, refresh_token: str | None) -> dict:
    if not refresh_token:
        raise OAuthError("invalid_request", "The refresh_token is missing.")
    now = clock.now_iso()
    token_hash = hash_secret(refresh_token)
    async with rt.db.transaction() as conn:
        # Locked: of two refreshes with one token at once, the second waits and then reads it spent,
        # which is a reuse (the grant dies), exactly as when the two come one after the other.
        row = await store.select_token(conn, token_hash, for_update=True)
        if row is None or row["kind"] != "refresh" or row["app_id"] != app.id:
            raise OAuthError("invalid_grant", "The refresh token is not valid.")
        dead = row["revoked_at"] or row["grant_revoked_at"] or row["installation_status"] != "active"
        if not dead and row["used_at"] is not None:
            # A spent refresh token presented again: someone holds a copy. The grant dies (RFC 9700 4.14.2).
            await store.revoke_grant(conn, row["grant_id"], now)
            dead = True
        if dead or not await store.spend_refresh_token(conn, token_hash, now):
            raise_after = True
        else:
            raise_after = False
            access, new_refresh = await _issue_tokens(conn, row["grant_id"], now)
            scopes = [s for s in json.loads(row["scopes"]) if s in json.loads(row["installation_scopes"])]
            answer = await _token_response(conn, access, new_refresh, scopes, row["installation_id"],
                                           row["merchant_id"])
    if raise_after:
        raise OAuthError("invalid_grant", "The refresh token is no longer valid.")
    return answer


async def revoke(rt: Runtime, app: App, token: str | None) -> None:
    """RFC 7009: 200 whatever the token was (unknown, another app's, already revoked); a refresh
    token takes its grant with it; an access token only itself."""
    if not token:
        raise OAuthError("invalid_request", "The token is missing.")
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        row = await store.select_token(conn, hash_secret(token))
        if row is None or row["app_id"] != app.id:
            return
        if row["kind"] == "refresh":
            await store.revoke_grant(conn, row["grant_id"], now)
        else:
            await store.revoke_token(conn, row["token_hash"], now)


@dataclass(frozen=True)
class AppCaller:
    app_id: str
    installation_id: str
    merchant_id: str
    scopes: frozenset[str]  # what the token may do: its grant within the installation's consent
    installation_scopes: frozenset[str]  # what the installation consents to


async def caller_for_access_token(rt: Runtime, token: str) -> AppCaller | None:
    """Who an app access token acts for, if it is live: not expired, not revoked, its grant alive and
    its installation active (an uninstall kills every token at once)."""
    async with rt.db.read() as conn:
        row = await store.select_token(conn, hash_secret(token))
    if (row is None or row["kind"] != "access" or row["revoked_at"] or row["grant_revoked_at"]
            or row["installation_status"] != "active" or (row["expires_at"] or "") <= clock.now_iso()):
        return None
    # The grant's scopes within what the installation consents to now (a narrowing applies at once).
    consented = frozenset(json.loads(row["installation_scopes"]))
    return AppCaller(row["app_id"], row["installation_id"], row["merchant_id"],
                     frozenset(json.loads(row["scopes"])) & consented, consented)


async def list_installations(rt: Runtime, merchant_id: str, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_installations_page(conn, merchant_id, limit, starting_after)


async def active_installation(rt: Runtime, app_id: str, merchant_id: str) -> Installation | None:
    async with rt.db.read() as conn:
        return await store.select_active_installation(conn, app_id, merchant_id)


async def get_installation(rt: Runtime, merchant_id: str, installation_id: str) -> Installation:
    async with rt.db.read() as conn:
        installation = await store.select_installation(conn, merchant_id, installation_id)
    if installation is None:
        raise not_found("installation", installation_id)
    return installation


async def approve_update(rt: Runtime, merchant_id: str, installation_id: str,
                         actor: Actor | None = None) -> Installation:
    """The merchant approves what the app's developer widened (docs/api.md 12): the pending set becomes the
    consent, and every live grant gains the scopes it added. Recorded in the audit trail as
    ``installation.update_approved`` with what it added (no event: there is no public event type for it,
    and the app learns it from its installation and its token's scopes)."""
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        found = await store.select_installation(conn, merchant_id, installation_id)
        if found is None:
            raise not_found("installation", installation_id)
        # The app first, then the installation (the order every writer of both takes): an app change
        # racing the approval either lands before (and this approves what it asks now) or after.
        await app_store.select_app_by_id(conn, found.app_id, for_update=True)
        installation = await store.select_installation(conn, merchant_id, installation_id, for_update=True)
        assert installation is not None
        if installation.status != ACTIVE:
            raise conflict("installation_not_active", "This app is uninstalled.")
        pending = installation.pending
        if pending is None:
            raise conflict("no_pending_update", "This installation has no update waiting for approval.")
        added = installation.consent.added_in(pending[0])
        approved = await _apply_consent(conn, installation, pending[0], None, now, approved=pending[0])
        await audit.record(conn, merchant_id=merchant_id, actor=actor or Actor("merchant", merchant_id),
                           action="installation.update_approved", object_id=installation.id, changes={
                               "app_id": installation.app_id, "requested_at": clock.public(pending[1]),
                               "added": {"scopes": list(added.scopes), "webhook_events": list(added.webhook_events),
                                         "hooks": list(added.hooks),
                                         "checkout_fields": [f["key"] for f in added.checkout_fields]}})
        return approved


async def follow_app_change(conn: Conn, before: App, after: App) -> None:
    """Inside the app's update (its row locked): every active installation keeps what its merchant
    approved. What the change takes away applies at once; what it adds waits in pending_update (the API reference (docs/api.md)
    12). A new webhook_url reaches every installation at once: the developer owns both ends."""
    now = clock.now_iso()
    asked = Consent.of_app(after)
    for installation in await store.select_active_installations_of_app(conn, after.id, for_update=True):
        consent = installation.consent.narrowed_to(asked)
        waiting = installation.pending
        if asked.within(consent):
            pending = None
        elif waiting is not None and waiting[0] == asked:
            pending = pending_column(asked, waiting[1])  # the same request, still waiting since then
        else:
            pending = pending_column(asked, now)
        if consent != installation.consent or pending != installation.pending_update:
            installation = await _apply_consent(conn, installation, consent, pending, now)
        if after.webhook_url != before.webhook_url:
            await webhooks.move_app_endpoint(conn, installation_id=installation.id, app_id=after.id,
                                             merchant_id=installation.merchant_id, url=after.webhook_url,
                                             sealed_secret=after.webhook_secret, consent=installation.consent)


async def uninstall(rt: Runtime, merchant_id: str, installation_id: str, actor: Actor) -> Installation:
    now = clock.now_iso()
    async with rt.db.transaction() as conn:
        installation = await store.select_installation(conn, merchant_id, installation_id)
        if installation is None:
            raise not_found("installation", installation_id)
        if not await store.mark_uninstalled(conn, installation_id, now):
            raise conflict("installation_not_active", "This app is already uninstalled.")
        # Every token of every grant dies with it, in the same transaction.
        await store.revoke_grants_of_installation(conn, installation_id, now)
        # The endpoints the app made for itself go first: nothing more is sent to them, not even this.
        await webhooks.delete_installation_endpoints(conn, installation_id, now)
        installation = await store.select_installation(conn, merchant_id, installation_id)
        assert installation is not None
        await events.record(conn, merchant_id=merchant_id, type="app.uninstalled", actor=actor,
                            obj=installation.to_dict())
        # After the event: app.uninstalled is the app endpoint's last delivery; nothing follows it.
        await webhooks.retire_app_endpoint(conn, installation_id, now)
    return installation

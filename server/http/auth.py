"""Who is calling. Every route declares how it authenticates, next to the route:

* ``@scope("orders:read")``: a merchant secret key (all scopes) or, later, an app token
  holding that scope;
* ``@client_token``: a buyer's checkout ``client_token`` for the session in the path;
* ``@public``: no credentials (documents, health).

A before-request hook reads the declaration and resolves the caller into ``g.principal``;
a route with no declaration is refused (fail closed), and a meta-test keeps it that way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from quart import current_app, g, request

from flint import jsonsafe
from flint.actors import Actor
from flint.checkout import service as checkout
from flint.checkout.models import CheckoutSession
from flint.errors import FlintError
from flint.merchants import service as merchants
from flint.oauth.service import caller_for_access_token
from flint.runtime import Runtime
from flint.scopes import MERCHANT_ONLY, SCOPES

F = TypeVar("F", bound=Callable[..., Any])
AUTH_ATTRIBUTE = "_flint_auth"



@dataclass(frozen=True)
class Principal:
    kind: str  # "merchant" | "buyer" | "app"
    merchant_id: str
    actor: Actor
    idempotency_scope: str
    session: CheckoutSession | None = None
    installation_id: str | None = None  # for an app: the installation its token acts through
    # For an app: what its token may do now (its grant within the installation's consent), and what the
    # installation consents to (what the endpoints it makes may receive). None for a merchant: everything.
    scopes: frozenset[str] | None = None
    installation_scopes: frozenset[str] | None = None

    def may(self, scope: str) -> bool:
        """Whether this caller holds ``scope`` (a merchant key holds every scope)."""
        return self.kind == "merchant" or (self.scopes is not None and scope in self.scopes)


def _declare(kind: str, value: str | None) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        setattr(func, AUTH_ATTRIBUTE, (kind, value))
        return func
    return decorator


def scope(name: str) -> Callable[[F], F]:
    assert name in SCOPES or name == MERCHANT_ONLY, name
    return _declare("scope", name)


merchant_only = _declare("scope", MERCHANT_ONLY)
client_token = _declare("client_token", None)
# navigator.sendBeacon cannot set headers: such routes also take the token as the JSON body's
# "client_token" (sent as text/plain, a CORS simple request).
client_token_or_body = _declare("client_token", "body")
public = _declare("public", None)


def declaration(func: Callable[..., Any]) -> tuple[str, str | None] | None:
    return getattr(func, AUTH_ATTRIBUTE, None)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise FlintError(401, "authentication_required", "Send 'Authorization: Bearer <key>'.",
                         headers={"WWW-Authenticate": 'Bearer realm="flint"'})
    if scheme.lower() != "bearer" or not token.strip():
        raise FlintError(401, "authentication_invalid", "Use the Bearer scheme: 'Authorization: Bearer <key>'.",
                         headers={"WWW-Authenticate": 'Bearer realm="flint", error="invalid_request"'})
    return token.strip()


async def authenticate(rt: Runtime) -> Principal | None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:
        return None
    declared = declaration(view)
    if declared is None:
        # Fail closed: an undeclared route is a bug, never an open door.
        raise FlintError(401, "authentication_required", "This route accepts no credentials.")
    kind, variant = declared
    if kind == "public":
        return None
    token = await _token_from_body() if variant == "body" and "Authorization" not in request.headers else _bearer()
    if kind == "client_token":
        try:
            session = await checkout.session_for_client_token(rt, token, (request.view_args or {}).get("session_id"))
        except FlintError as error:
            # RFC 9110 11.6.1 / RFC 6750 3: every 401 names the scheme to use.
            error.headers.setdefault("WWW-Authenticate", 'Bearer realm="flint", error="invalid_token"')
            raise
        return Principal("buyer", session.merchant_id, Actor("buyer", session.id), f"session:{session.id}",
                         session=session)
    if token.startswith("fat_"):
        return await _app_principal(rt, token, declared)
    key = await merchants.authenticate_secret_key(rt, token)
    if key is None:
        raise FlintError(401, "api_key_invalid", "This API key is not valid (or was revoked).",
                         headers={"WWW-Authenticate": 'Bearer realm="flint", error="invalid_token"'})
    return Principal("merchant", key.merchant_id, Actor("merchant", key.merchant_id), f"merchant:{key.merchant_id}")


async def _app_principal(rt: Runtime, token: str, declared: tuple[str, str | None]) -> Principal:
    """An app access token acts for one installation, within the scopes the merchant granted
    (RFC 6750 3.1: 401 invalid_token when it is not live, 403 insufficient_scope when it lacks one)."""
    caller = await caller_for_access_token(rt, token)
    if caller is None:
        raise FlintError(401, "access_token_invalid", "This access token is not valid (expired, revoked or uninstalled).",
                         headers={"WWW-Authenticate": 'Bearer realm="flint", error="invalid_token"'})
    kind, needed = declared
    if kind != "scope" or needed == MERCHANT_ONLY or needed not in caller.scopes:
        what = "the merchant's own key" if kind != "scope" or needed == MERCHANT_ONLY else f"the '{needed}' scope"
        raise FlintError(403, "insufficient_scope", f"This route needs {what}.",
                         headers={"WWW-Authenticate": f'Bearer realm="flint", error="insufficient_scope"'
                                                      + (f', scope="{needed}"' if needed != MERCHANT_ONLY else "")})
    return Principal("app", caller.merchant_id, Actor("app", caller.app_id),
                     f"app:{caller.app_id}:{caller.merchant_id}", installation_id=caller.installation_id,
                     scopes=caller.scopes, installation_scopes=caller.installation_scopes)


async def _token_from_body() -> str:
    # Read before anyone is authenticated: a body that does not parse (deeply nested, say) simply
    # carries no token.
    try:
        body = jsonsafe.loads(await request.get_data(as_text=False) or b"{}")
    except ValueError:
        body = None
    token = body.get("client_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise FlintError(401, "authentication_required", "Send the client_token as a Bearer token or in the body.",
                         headers={"WWW-Authenticate": 'Bearer realm="flint"'})
    return token


def principal() -> Principal:
    found = g.get("principal")
    assert found is not None, "route declared no credentials but asked for a principal"
    return found

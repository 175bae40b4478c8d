"""Merchants: accounts, embed origins, and rolling secret keys.

Changing settings, creating and revoking keys record who did it in the audit trail (flint.audit), in the
same transaction: ``actor`` is the API's caller (the merchant's key) or the console's staff member; the
merchant itself when None (the command line, the demo)."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from flint import clock
from flint.actors import Actor
from flint.audit import service as audit
from flint.errors import FlintError, conflict, invalid, not_found
from flint.ids import new_id, new_secret
from flint.merchants import store
from flint.merchants.models import ApiKey, Merchant
from flint.runtime import Runtime
from flint.security import hash_password, hash_secret
from flint.staff import service as staff_service

SECRET_KEY_PREFIX = "sk_test_"

# The grammar of an origin, published as-is in the OpenAPI document (merchants/schemas.py):
# scheme://host[:port] with a DNS-style host (labels of letters, digits and inner hyphens), an
# IPv4 address or a bracketed IPv6 address (RFC 3986), and a port of 0-65535.
_H16 = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LS32 = rf"(?:{_H16}:{_H16}|{_OCTET}(?:\.{_OCTET}){{3}})"
_IPV6 = "(?:" + "|".join([
    rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}", rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}", rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}", rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
]) + ")"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = "(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
ORIGIN_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:{_LABEL}(?:\.{_LABEL})*|\[{_IPV6}\])(?::{_PORT})?$"


def normalise_origin(origin: str, param: str = "allowed_origins") -> str:
    """An origin is exactly scheme://host[:port]: no path, query, fragment or credentials."""
    if not re.fullmatch(ORIGIN_PATTERN[1:-1], origin):
        raise invalid("origin_invalid", f"'{origin}' is not an origin like https://shop.example.", param)
    try:
        parts = urlsplit(origin)  # raises on e.g. "http://[" or characters that NFKC-normalise to '#'
    except ValueError:
        raise invalid("origin_invalid", f"'{origin}' is not an origin like https://shop.example.", param)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("",)
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or origin != origin.strip()
    ):
        raise invalid("origin_invalid", f"'{origin}' is not an origin like https://shop.example.", param)
    try:
        port = parts.port
    except ValueError:
        raise invalid("origin_invalid", f"'{origin}' has an invalid port.", param)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _new_key(merchant_id: str) -> tuple[ApiKey, str]:
    secret = new_secret(SECRET_KEY_PREFIX)
    key = ApiKey(
        id=new_id("key"),
        merchant_id=merchant_id,
        key_hash=hash_secret(secret),
        last4=secret[-4:],
        created_at=clock.now_iso(),
        revoked_at=None,
    )
    return key, secret


async def create_merchant(
    rt: Runtime, *, name: str, email: str, password: str, origins: list[str] | None = None
) -> tuple[Merchant, str]:
    """Returns the merchant and its first secret key (the only time the key is shown)."""
    if not name.strip():
        raise invalid("name_invalid", "A merchant needs a name.", "name")
    if "@" not in email or len(email) > 254:
        raise invalid("email_invalid", "A merchant needs a valid email address.", "email")
    if len(password) < 8:
        raise invalid("password_too_short", "Passwords need at least 8 characters.", "password")
    normalised = [normalise_origin(o) for o in origins or []]
    merchant = Merchant(
        id=new_id("mer"),
        name=name.strip(),
        email=email.strip().lower(),
        password_hash=hash_password(password),
        allowed_origins=json.dumps(sorted(set(normalised))),
        created_at=clock.now_iso(),
    )
    key, secret = _new_key(merchant.id)
    async with rt.db.transaction() as conn:
        # ON CONFLICT, not a look first: two creations with one email at once both look before
        # either inserts (PostgreSQL), and the loser's INSERT would be a unique violation.
        if not await store.insert_merchant(conn, merchant):
            raise conflict("email_taken", "A merchant with this email already exists.")
        await store.insert_api_key(conn, key)
        # The merchant's own email and password are its first owner (docs/api.md 15).
        await staff_service.ensure_owner(conn, merchant)
    return merchant, secret


async def get_merchant(rt: Runtime, merchant_id: str) -> Merchant:
    async with rt.db.read() as conn:
        merchant = await store.select_merchant(conn, merchant_id)
    if merchant is None:
        raise not_found("merchant", merchant_id)
    return merchant


async def update_merchant(rt: Runtime, merchant_id: str, *, origins: list[str] | None = None,
                          brand_color: str | None = None, receipts: bool | None = None,
                          actor: Actor | None = None) -> Merchant:
    """A change (something actually different) is recorded as ``settings.updated`` with what changed:
    the origins added and removed, the colour before and after, receipts before and after.
    ``receipts``: email buyers a receipt when an order is paid (docs/api.md 16)."""
    normalised = None
    if origins is not None:
        normalised = sorted({normalise_origin(o, f"allowed_origins[{i}]") for i, o in enumerate(origins)})
    if brand_color is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", brand_color):
        raise invalid("brand_color_invalid", "brand_color is a hex colour like #4f46e5.", "brand_color")
    async with rt.db.transaction() as conn:
        # Locked: of two changes at once, the second reads what the first left, so each row of the audit
        # trail says exactly what its own change did.
        await store.lock_merchant(conn, merchant_id)
        before = await store.select_merchant(conn, merchant_id)
        if normalised is not None:
            await store.update_merchant_origins(conn, merchant_id, json.dumps(normalised))
        if brand_color is not None:
            await store.update_merchant_brand_color(conn, merchant_id, brand_color.lower())
        if receipts is not None:
            await store.update_merchant_receipts(conn, merchant_id, receipts)
        merchant = await store.select_merchant(conn, merchant_id)
        assert merchant is not None
        if before is not None and (changes := _settings_changes(before, merchant)):
            await audit.record(conn, merchant_id=merchant_id, actor=actor or Actor("merchant", merchant_id),
                               action="settings.updated", object_id=merchant_id, changes=changes)
    return merchant


def _settings_changes(before: Merchant, after: Merchant) -> dict:
    changes: dict = {}
    if before.origins != after.origins:
        changes["allowed_origins"] = {"added": [o for o in after.origins if o not in before.origins],
                                      "removed": [o for o in before.origins if o not in after.origins]}
    if before.brand_color != after.brand_color:
        changes["brand_color"] = {"from": before.brand_color, "to": after.brand_color}
    if bool(before.receipts) != bool(after.receipts):
        changes["receipts"] = {"from": bool(before.receipts), "to": bool(after.receipts)}
    return changes


async def authenticate_secret_key(rt: Runtime, secret: str) -> ApiKey | None:
    if not secret.startswith(SECRET_KEY_PREFIX):
        return None
    async with rt.db.read() as conn:
        # Lookup by digest: the index finds the row, and only digests are ever compared.
        return await store.select_live_key_by_hash(conn, hash_secret(secret))


async def create_key(rt: Runtime, merchant_id: str, actor: Actor | None = None) -> tuple[ApiKey, str]:
    """A new live key and its value (shown once); recorded as ``api_key.created`` (the key's id only)."""
    key, secret = _new_key(merchant_id)
    async with rt.db.transaction() as conn:
        await store.insert_api_key(conn, key)
        await audit.record(conn, merchant_id=merchant_id, actor=actor or Actor("merchant", merchant_id),
                           action="api_key.created", object_id=key.id)
    return key, secret


async def list_keys(rt: Runtime, merchant_id: str) -> list[ApiKey]:
    async with rt.db.read() as conn:
        return await store.select_keys(conn, merchant_id)


async def revoke_key(rt: Runtime, merchant_id: str, key_id: str, actor: Actor | None = None) -> ApiKey:
    """Recorded as ``api_key.revoked``."""
    async with rt.db.transaction() as conn:
        # The live keys are locked first, then this one read: of two revocations at once the second
        # waits, then sees what the first revoked (two keys revoked at once must not leave none).
        live = await store.count_live_keys(conn, merchant_id, for_update=True)
        key = await store.select_key(conn, merchant_id, key_id)
        if key is None:
            raise not_found("api_key", key_id)
        if key.revoked_at is not None:
            raise conflict("api_key_revoked", "This key is already revoked.")
        if live <= 1:
            # Revoking the last key would lock the merchant out of the API for good.
            raise FlintError(409, "last_api_key", "Create a new key before revoking the last live one.")
        await store.revoke_api_key(conn, merchant_id, key_id, clock.now_iso())
        key = await store.select_key(conn, merchant_id, key_id)
        await audit.record(conn, merchant_id=merchant_id, actor=actor or Actor("merchant", merchant_id),
                           action="api_key.revoked", object_id=key_id)
    assert key is not None
    return key

"""SQL for installations, authorization codes, grants and tokens."""
from __future__ import annotations

import json
from typing import Any

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page
from flint.oauth.models import Installation

INSTALLATION_COLUMNS = ("id, app_id, merchant_id, scopes, status, created_at, updated_at, uninstalled_at, "
                        "consented_webhook_events, consented_hooks, consented_checkout_fields, pending_update")


# -- installations -------------------------------------------------------------------------------------

async def select_active_installation(conn: Conn, app_id: str, merchant_id: str, *,
                                     for_update: bool = False) -> Installation | None:
    """``for_update`` locks it (after the app's lock): an uninstall waits for the grant being added,
    or, having committed first, leaves nothing active to find."""
    row = await conn.fetch_one(
        f"""SELECT {INSTALLATION_COLUMNS} FROM installations
            WHERE app_id = :app_id AND merchant_id = :merchant_id AND status = 'active'"""
        + (lock_suffix(conn) if for_update else ""),
        {"app_id": app_id, "merchant_id": merchant_id})
    return Installation(**row) if row else None


async def select_installation(conn: Conn, merchant_id: str, installation_id: str, *,
                              for_update: bool = False) -> Installation | None:
    row = await conn.fetch_one(
        f"SELECT {INSTALLATION_COLUMNS} FROM installations WHERE id = :id AND merchant_id = :merchant_id"
        + (lock_suffix(conn) if for_update else ""),
        {"id": installation_id, "merchant_id": merchant_id})
    return Installation(**row) if row else None


async def select_installation_by_id(conn: Conn, installation_id: str) -> Installation | None:
    row = await conn.fetch_one(f"SELECT {INSTALLATION_COLUMNS} FROM installations WHERE id = :id",
                               {"id": installation_id})
    return Installation(**row) if row else None


async def select_installations_page(conn: Conn, merchant_id: str, limit: int, starting_after: str | None):
    rows, has_more = await select_page(conn, table="installations", columns=INSTALLATION_COLUMNS,
                                       where="merchant_id = :merchant_id", params={"merchant_id": merchant_id},
                                       limit=limit, starting_after=starting_after)
    return [Installation(**row) for row in rows], has_more


async def select_active_installations_of_app(conn: Conn, app_id: str, *,
                                             for_update: bool = False) -> list[Installation]:
    """``for_update`` locks them in id order (after the app's lock): an uninstall racing an app's
    change either commits first (and drops out of this list) or waits for the change to apply."""
    rows = await conn.fetch_all(
        f"""SELECT {INSTALLATION_COLUMNS} FROM installations WHERE app_id = :app_id AND status = 'active'
            ORDER BY id""" + (lock_suffix(conn) if for_update else ""), {"app_id": app_id})
    return [Installation(**row) for row in rows]


async def select_installations_consenting_to(conn: Conn, merchant_id: str, hook: str) -> list[Installation]:
    """The merchant's active installations whose consent includes ``hook``, oldest first (the order their
    answers combine in). The hook name is matched in the consented JSON list in Python: few rows."""
    rows = await conn.fetch_all(
        f"""SELECT {INSTALLATION_COLUMNS} FROM installations
            WHERE merchant_id = :merchant_id AND status = 'active' ORDER BY created_at, id""",
        {"merchant_id": merchant_id})
    return [Installation(**row) for row in rows if hook in json.loads(row["consented_hooks"])]


async def select_active_installations(conn: Conn, merchant_id: str) -> list[Installation]:
    """The merchant's active installations, oldest first (the order apps' checkout fields appear in)."""
    rows = await conn.fetch_all(
        f"""SELECT {INSTALLATION_COLUMNS} FROM installations
            WHERE merchant_id = :merchant_id AND status = 'active' ORDER BY created_at, id""",
        {"merchant_id": merchant_id})
    return [Installation(**row) for row in rows]


async def insert_installation(conn: Conn, installation: Installation) -> None:
    await conn.execute(
        f"""INSERT INTO installations ({INSTALLATION_COLUMNS})
            VALUES (:id, :app_id, :merchant_id, :scopes, :status, :created_at, :updated_at, :uninstalled_at,
                    :consented_webhook_events, :consented_hooks, :consented_checkout_fields, :pending_update)""",
        installation.__dict__)


async def update_consent(conn: Conn, installation_id: str, consent: dict[str, str], pending_update: str | None,
                         at: str) -> Installation:
    """``consent``: the four consent columns (oauth.models.consent_columns)."""
    row = await conn.fetch_one(
        f"""UPDATE installations SET scopes = :scopes, consented_webhook_events = :consented_webhook_events,
                   consented_hooks = :consented_hooks, consented_checkout_fields = :consented_checkout_fields,
                   pending_update = :pending_update, updated_at = :at
            WHERE id = :id RETURNING {INSTALLATION_COLUMNS}""",
        dict(consent, id=installation_id, pending_update=pending_update, at=at))
    assert row is not None
    return Installation(**row)


async def mark_uninstalled(conn: Conn, installation_id: str, at: str) -> int:
    return await conn.execute(
        """UPDATE installations SET status = 'uninstalled', uninstalled_at = :at, updated_at = :at
           WHERE id = :id AND status = 'active'""", {"id": installation_id, "at": at})


# -- codes ---------------------------------------------------------------------------------------------

async def insert_code(conn: Conn, row: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO oauth_codes (code_hash, app_id, merchant_id, redirect_uri, scopes, code_challenge,
               expires_at, used_at, grant_id, consent)
           VALUES (:code_hash, :app_id, :merchant_id, :redirect_uri, :scopes, :code_challenge, :expires_at, NULL, NULL,
                   :consent)""",
        row)


async def select_code(conn: Conn, code_hash: str, *, for_update: bool = False) -> dict[str, Any] | None:
    """``for_update`` locks the code: a second exchange of it waits for the first to commit, then
    reads it spent, with the grant it issued (which the replay revokes)."""
    return await conn.fetch_one(
        """SELECT code_hash, app_id, merchant_id, redirect_uri, scopes, code_challenge, expires_at, used_at, grant_id,
                  consent
           FROM oauth_codes WHERE code_hash = :code_hash""" + (lock_suffix(conn) if for_update else ""),
        {"code_hash": code_hash})


async def spend_code(conn: Conn, code_hash: str, at: str) -> int:
    """Conditional: of two racing exchanges of one code, only one spends it."""
    return await conn.execute("UPDATE oauth_codes SET used_at = :at WHERE code_hash = :code_hash AND used_at IS NULL",
                              {"code_hash": code_hash, "at": at})


async def note_code_grant(conn: Conn, code_hash: str, grant_id: str) -> None:
    await conn.execute("UPDATE oauth_codes SET grant_id = :grant_id WHERE code_hash = :code_hash",
                       {"code_hash": code_hash, "grant_id": grant_id})


# -- grants and tokens ---------------------------------------------------------------------------------

async def insert_grant(conn: Conn, row: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO oauth_grants (id, installation_id, app_id, merchant_id, scopes, created_at, revoked_at)
           VALUES (:id, :installation_id, :app_id, :merchant_id, :scopes, :created_at, NULL)""", row)


async def insert_token(conn: Conn, *, token_hash: str, kind: str, grant_id: str, expires_at: str | None,
                       created_at: str) -> None:
    await conn.execute(
        """INSERT INTO oauth_tokens (token_hash, kind, grant_id, expires_at, used_at, revoked_at, created_at)
           VALUES (:token_hash, :kind, :grant_id, :expires_at, NULL, NULL, :created_at)""",
        {"token_hash": token_hash, "kind": kind, "grant_id": grant_id, "expires_at": expires_at,
         "created_at": created_at})


async def select_token(conn: Conn, token_hash: str, *, for_update: bool = False) -> dict[str, Any] | None:
    """A token with its grant and installation, whatever their state (the caller decides).

    ``for_update`` locks the token row only (the lock sits in the subquery, so the grant and the
    installation are read, not locked: an uninstall, which locks those first, never waits on a
    refresh that waits on it). A second refresh with the same token waits for the first to
    commit, then reads it spent."""
    return await conn.fetch_one(
        f"""SELECT t.token_hash, t.kind, t.grant_id, t.expires_at, t.used_at, t.revoked_at,
                  g.installation_id, g.app_id, g.merchant_id, g.scopes, g.revoked_at AS grant_revoked_at,
                  i.status AS installation_status, i.scopes AS installation_scopes
           FROM (SELECT token_hash, kind, grant_id, expires_at, used_at, revoked_at FROM oauth_tokens
                 WHERE token_hash = :token_hash{lock_suffix(conn) if for_update else ""}) AS t
                JOIN oauth_grants g ON g.id = t.grant_id JOIN installations i ON i.id = g.installation_id""",
        {"token_hash": token_hash})


async def spend_refresh_token(conn: Conn, token_hash: str, at: str) -> int:
    return await conn.execute(
        """UPDATE oauth_tokens SET used_at = :at
           WHERE token_hash = :token_hash AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL""",
        {"token_hash": token_hash, "at": at})


async def revoke_token(conn: Conn, token_hash: str, at: str) -> int:
    return await conn.execute("UPDATE oauth_tokens SET revoked_at = :at WHERE token_hash = :h AND revoked_at IS NULL",
                              {"h": token_hash, "at": at})


async def revoke_grant(conn: Conn, grant_id: str, at: str) -> None:
    """The whole family: the grant and every token it issued."""
    await conn.execute("UPDATE oauth_grants SET revoked_at = :at WHERE id = :id AND revoked_at IS NULL",
                       {"id": grant_id, "at": at})
    await conn.execute("UPDATE oauth_tokens SET revoked_at = :at WHERE grant_id = :id AND revoked_at IS NULL",
                       {"id": grant_id, "at": at})


async def revoke_grants_of_installation(conn: Conn, installation_id: str, at: str) -> None:
    rows = await conn.fetch_all("SELECT id FROM oauth_grants WHERE installation_id = :id AND revoked_at IS NULL",
                                {"id": installation_id})
    for row in rows:
        await revoke_grant(conn, row["id"], at)


async def select_live_grants_of_installation(conn: Conn, installation_id: str) -> list[dict[str, Any]]:
    return await conn.fetch_all(
        "SELECT id, scopes FROM oauth_grants WHERE installation_id = :id AND revoked_at IS NULL ORDER BY id",
        {"id": installation_id})


async def update_grant_scopes(conn: Conn, grant_id: str, scopes: str) -> None:
    await conn.execute("UPDATE oauth_grants SET scopes = :scopes WHERE id = :id", {"id": grant_id, "scopes": scopes})

"""SQL for merchants and their secret keys."""
from __future__ import annotations

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.merchants.models import ApiKey, Merchant

_MERCHANT = "id, name, email, password_hash, allowed_origins, created_at, brand_color, receipts"
_KEY = "id, merchant_id, key_hash, last4, created_at, revoked_at"


async def insert_merchant(conn: Conn, merchant: Merchant) -> int:
    """0 when the email is taken: the unique index decides, so of two creations with one email at
    once (two processes) the second gets a clean answer instead of a unique violation."""
    return await conn.execute(
        f"""INSERT INTO merchants ({_MERCHANT})
            VALUES (:id, :name, :email, :password_hash, :allowed_origins, :created_at, :brand_color, :receipts)
            ON CONFLICT (email) DO NOTHING""",
        merchant.__dict__,
    )


async def select_merchant(conn: Conn, merchant_id: str) -> Merchant | None:
    row = await conn.fetch_one(f"SELECT {_MERCHANT} FROM merchants WHERE id = :id", {"id": merchant_id})
    return Merchant(**row) if row else None


async def select_merchant_by_email(conn: Conn, email: str) -> Merchant | None:
    row = await conn.fetch_one(f"SELECT {_MERCHANT} FROM merchants WHERE email = :email", {"email": email})
    return Merchant(**row) if row else None


async def update_merchant_origins(conn: Conn, merchant_id: str, origins_json: str) -> None:
    await conn.execute(
        "UPDATE merchants SET allowed_origins = :origins WHERE id = :id",
        {"id": merchant_id, "origins": origins_json},
    )


async def update_merchant_brand_color(conn: Conn, merchant_id: str, color: str) -> None:
    await conn.execute("UPDATE merchants SET brand_color = :color WHERE id = :id", {"id": merchant_id, "color": color})


async def update_merchant_receipts(conn: Conn, merchant_id: str, receipts: bool) -> None:
    await conn.execute("UPDATE merchants SET receipts = :receipts WHERE id = :id",
                       {"id": merchant_id, "receipts": int(receipts)})


async def insert_api_key(conn: Conn, key: ApiKey) -> None:
    await conn.execute(
        f"INSERT INTO api_keys ({_KEY}) VALUES (:id, :merchant_id, :key_hash, :last4, :created_at, :revoked_at)",
        key.__dict__,
    )


async def select_live_key_by_hash(conn: Conn, key_hash: str) -> ApiKey | None:
    row = await conn.fetch_one(
        f"SELECT {_KEY} FROM api_keys WHERE key_hash = :key_hash AND revoked_at IS NULL",
        {"key_hash": key_hash},
    )
    return ApiKey(**row) if row else None


async def select_keys(conn: Conn, merchant_id: str) -> list[ApiKey]:
    rows = await conn.fetch_all(
        f"SELECT {_KEY} FROM api_keys WHERE merchant_id = :merchant_id ORDER BY created_at DESC, id DESC",
        {"merchant_id": merchant_id},
    )
    return [ApiKey(**r) for r in rows]


async def count_live_keys(conn: Conn, merchant_id: str, *, for_update: bool = False) -> int:
    """``for_update`` locks the live keys (in id order) and counts them: of two revocations at once,
    the second waits, then no longer counts the key the first revoked (so the last key stays)."""
    if for_update:  # (PostgreSQL locks no rows under an aggregate: count the locked rows here)
        rows = await conn.fetch_all(
            "SELECT id FROM api_keys WHERE merchant_id = :merchant_id AND revoked_at IS NULL ORDER BY id"
            + lock_suffix(conn), {"merchant_id": merchant_id})
        return len(rows)
    row = await conn.fetch_one(
        "SELECT COUNT(*) AS n FROM api_keys WHERE merchant_id = :merchant_id AND revoked_at IS NULL",
        {"merchant_id": merchant_id},
    )
    return int(row["n"]) if row else 0


async def revoke_api_key(conn: Conn, merchant_id: str, key_id: str, at: str) -> int:
    return await conn.execute(
        "UPDATE api_keys SET revoked_at = :at WHERE id = :id AND merchant_id = :merchant_id AND revoked_at IS NULL",
        {"id": key_id, "merchant_id": merchant_id, "at": at},
    )


async def select_key(conn: Conn, merchant_id: str, key_id: str) -> ApiKey | None:
    row = await conn.fetch_one(
        f"SELECT {_KEY} FROM api_keys WHERE id = :id AND merchant_id = :merchant_id",
        {"id": key_id, "merchant_id": merchant_id},
    )
    return ApiKey(**row) if row else None


async def lock_merchant(conn: Conn, merchant_id: str) -> bool:
    """Locks the merchant row for a count-then-insert against a per-merchant cap (PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serialises): two creations at once then count one after the other.
    FOR NO KEY UPDATE does not block the foreign-key checks of other rows that name the merchant."""
    return await conn.fetch_one("SELECT id FROM merchants WHERE id = :id" + lock_suffix(conn),
                                {"id": merchant_id}) is not None

"""SQL for staff members and their invitations. Every query about a merchant's team names the merchant:
an id of another merchant's member or invitation finds nothing."""
from __future__ import annotations

from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.staff.models import Invitation, Staff

_STAFF = "id, merchant_id, email, role, password_hash, created_at, removed_at"
_INVITATION = ("id, merchant_id, email, role, token_hash, invited_by, created_at, expires_at, accepted_at, "
               "revoked_at, staff_id")


async def insert_member(conn: Conn, member: Staff) -> int:
    """0 when the merchant already has a live member with this email: the partial unique index decides,
    so of two inserts at once (two processes) the second gets a clean answer, not a unique violation."""
    return await conn.execute(
        f"""INSERT INTO staff ({_STAFF})
            VALUES (:id, :merchant_id, :email, :role, :password_hash, :created_at, :removed_at)
            ON CONFLICT (merchant_id, email) WHERE removed_at IS NULL DO NOTHING""",
        member.__dict__,
    )


async def select_member(conn: Conn, merchant_id: str, staff_id: str, *, for_update: bool = False) -> Staff | None:
    row = await conn.fetch_one(
        f"SELECT {_STAFF} FROM staff WHERE id = :id AND merchant_id = :merchant_id"
        + (lock_suffix(conn) if for_update else ""),
        {"id": staff_id, "merchant_id": merchant_id},
    )
    return Staff(**row) if row else None


async def select_member_by_email(conn: Conn, merchant_id: str, email: str) -> Staff | None:
    """The merchant's live member with this email, if any."""
    row = await conn.fetch_one(
        f"SELECT {_STAFF} FROM staff WHERE merchant_id = :merchant_id AND email = :email AND removed_at IS NULL",
        {"merchant_id": merchant_id, "email": email},
    )
    return Staff(**row) if row else None


async def any_member_with_email(conn: Conn, merchant_id: str, email: str) -> bool:
    """Whether the merchant ever had a member with this email, removed ones included."""
    return await conn.fetch_one(
        "SELECT id FROM staff WHERE merchant_id = :merchant_id AND email = :email LIMIT 1",
        {"merchant_id": merchant_id, "email": email},
    ) is not None


async def select_live_members_by_email(conn: Conn, email: str) -> list[Staff]:
    """Every live membership of one email, at any merchant, the oldest first."""
    rows = await conn.fetch_all(
        f"SELECT {_STAFF} FROM staff WHERE email = :email AND removed_at IS NULL ORDER BY created_at, id",
        {"email": email},
    )
    return [Staff(**row) for row in rows]


async def select_team(conn: Conn, merchant_id: str) -> list[Staff]:
    rows = await conn.fetch_all(
        f"""SELECT {_STAFF} FROM staff WHERE merchant_id = :merchant_id AND removed_at IS NULL
            ORDER BY created_at, id""",
        {"merchant_id": merchant_id},
    )
    return [Staff(**row) for row in rows]


async def lock_live_owners(conn: Conn, merchant_id: str) -> int:
    """Locks the merchant's live owners (in id order) and counts them: of two removals of owners at
    once, the second waits, then no longer counts the owner the first removed (so one owner stays).
    PostgreSQL locks no rows under an aggregate: the locked rows are counted here."""
    rows = await conn.fetch_all(
        "SELECT id FROM staff WHERE merchant_id = :merchant_id AND role = 'owner' AND removed_at IS NULL ORDER BY id"
        + lock_suffix(conn),
        {"merchant_id": merchant_id},
    )
    return len(rows)


async def mark_removed(conn: Conn, merchant_id: str, staff_id: str, at: str) -> int:
    return await conn.execute(
        "UPDATE staff SET removed_at = :at WHERE id = :id AND merchant_id = :merchant_id AND removed_at IS NULL",
        {"id": staff_id, "merchant_id": merchant_id, "at": at},
    )


async def revoke_sessions(conn: Conn, staff_id: str, at: str) -> int:
    """Ends a person's web sessions. web_sessions belongs to flint.accounts, which sits above staff; the
    column that names the person (staff_id) is this domain's (migration 0015), and so is this UPDATE."""
    return await conn.execute(
        "UPDATE web_sessions SET revoked_at = :at WHERE staff_id = :staff_id AND revoked_at IS NULL",
        {"staff_id": staff_id, "at": at},
    )


async def insert_invitation(conn: Conn, invitation: Invitation) -> None:
    await conn.execute(
        f"""INSERT INTO staff_invitations ({_INVITATION})
            VALUES (:id, :merchant_id, :email, :role, :token_hash, :invited_by, :created_at, :expires_at,
                    :accepted_at, :revoked_at, :staff_id)""",
        invitation.__dict__,
    )


async def select_invitation(conn: Conn, merchant_id: str, invitation_id: str) -> Invitation | None:
    row = await conn.fetch_one(
        f"SELECT {_INVITATION} FROM staff_invitations WHERE id = :id AND merchant_id = :merchant_id",
        {"id": invitation_id, "merchant_id": merchant_id},
    )
    return Invitation(**row) if row else None


async def select_invitation_by_token(conn: Conn, token_hash: str) -> Invitation | None:
    row = await conn.fetch_one(f"SELECT {_INVITATION} FROM staff_invitations WHERE token_hash = :token_hash",
                               {"token_hash": token_hash})
    return Invitation(**row) if row else None


async def select_pending_invitations(conn: Conn, merchant_id: str, now: str) -> list[Invitation]:
    rows = await conn.fetch_all(
        f"""SELECT {_INVITATION} FROM staff_invitations
            WHERE merchant_id = :merchant_id AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > :now
            ORDER BY created_at, id""",
        {"merchant_id": merchant_id, "now": now},
    )
    return [Invitation(**row) for row in rows]


async def revoke_pending_invitations(conn: Conn, merchant_id: str, *, at: str, email: str | None = None,
                                     invitation_id: str | None = None) -> int:
    """Revokes the merchant's pending invitations of one email, or one invitation by id."""
    where = "email = :email" if invitation_id is None else "id = :id"
    return await conn.execute(
        f"""UPDATE staff_invitations SET revoked_at = :at
            WHERE merchant_id = :merchant_id AND {where} AND accepted_at IS NULL AND revoked_at IS NULL""",
        {"merchant_id": merchant_id, "at": at, **({"email": email} if invitation_id is None else {"id": invitation_id})},
    )


async def claim_invitation(conn: Conn, invitation_id: str, now: str) -> int:
    """Marks a pending invitation used: 1 for the one claim that wins, 0 for every other (PostgreSQL
    re-checks the WHERE after waiting for a concurrent claim's row lock)."""
    return await conn.execute(
        """UPDATE staff_invitations SET accepted_at = :now
           WHERE id = :id AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > :now""",
        {"id": invitation_id, "now": now},
    )


async def set_invitation_member(conn: Conn, invitation_id: str, staff_id: str) -> None:
    await conn.execute("UPDATE staff_invitations SET staff_id = :staff_id WHERE id = :id",
                       {"id": invitation_id, "staff_id": staff_id})

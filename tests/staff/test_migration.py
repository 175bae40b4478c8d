"""Migration 0015 on a database from before staff: every merchant's own email and password become its
first owner, and the sessions of before (which name no member) are signed out."""
from __future__ import annotations

from flint import clock
from flint.accounts import service as accounts
from flint.config import Config
from flint.db.migrate import migrate
from flint.runtime import Runtime
from flint.security import hash_password, hash_secret
from support import TEST_SECRET

PASSWORD = "the password from before"


async def test_every_merchant_becomes_its_own_first_owner(db_url):
    rt = await Runtime.start(Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development"))
    try:
        assert await migrate(rt.db, target=14)
        async with rt.db.transaction() as conn:
            for n in (1, 2):
                await conn.execute(
                    "INSERT INTO merchants (id, name, email, password_hash, allowed_origins, created_at) "
                    "VALUES (:id, :name, :email, :hash, '[]', :at)",
                    {"id": f"mer_Old{n}AAAAAAAAAAAAAAAAAA", "name": f"Old Shop {n}", "email": f"old{n}@shop.example",
                     "hash": hash_password(PASSWORD), "at": f"2026-01-0{n}T00:00:00.000000Z"})
            await conn.execute(
                "INSERT INTO web_sessions (id, merchant_id, token_hash, created_at, expires_at, revoked_at) "
                "VALUES ('ws_old', 'mer_Old1AAAAAAAAAAAAAAAAAA', :hash, :now, :later, NULL)",
                {"hash": hash_secret("fws_old-cookie"), "now": clock.now_iso(), "later": clock.later_iso(3600)})
        assert 15 in await migrate(rt.db)
        async with rt.db.read() as conn:
            rows = await conn.fetch_all("SELECT id, merchant_id, email, role, created_at, removed_at FROM staff "
                                        "ORDER BY merchant_id")
        assert rows == [{"id": f"stf_Old{n}AAAAAAAAAAAAAAAAAA", "merchant_id": f"mer_Old{n}AAAAAAAAAAAAAAAAAA",
                         "email": f"old{n}@shop.example", "role": "owner",
                         "created_at": f"2026-01-0{n}T00:00:00.000000Z", "removed_at": None} for n in (1, 2)]
        # The old password signs in as the owner; the session from before names nobody: signed out.
        signed = await accounts.sign_in(rt, "OLD1@shop.example", PASSWORD, "198.51.100.1")
        assert signed.staff.id == "stf_Old1AAAAAAAAAAAAAAAAAA" and signed.staff.role == "owner"
        assert await accounts.current(rt, "fws_old-cookie") is None
        assert (await accounts.current(rt, signed.token)).role == "owner"
    finally:
        await rt.stop()

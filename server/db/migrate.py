"""Numbered SQL migrations, applied in order, each in its own transaction.

Re-running is a no-op: applied versions are recorded in ``schema_migrations`` and checked
inside the same transaction that applies them, so two processes migrating at once is safe.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flint import clock
from flint.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        # Statements end with ";" at the end of a line; comments are dropped first.
        text = "\n".join(line for line in self.sql.splitlines() if not line.strip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]


def available(dialect: str = "sqlite") -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _NAME.match(path.name)
        if match:
            version = int(match.group(1))
            found[version] = Migration(version, match.group(2), path.read_text())
    # A dialect-specific file (migrations/<dialect>/NNNN_*.sql) replaces the shared one.
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        match = _NAME.match(path.name)
        if match:
            version = int(match.group(1))
            found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def applied_versions(db: Database) -> list[int]:
    async with db.transaction() as conn:
        await db.lock_migrations(conn)  # processes starting together migrate in turn
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    INTEGER PRIMARY KEY,
                   name       TEXT NOT NULL,
                   applied_at TEXT NOT NULL)"""
        )
        rows = await conn.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    return [row["version"] for row in rows]


async def migrate(db: Database, *, target: int | None = None) -> list[int]:
    """Apply pending migrations up to ``target`` (all by default); returns what was applied."""
    await applied_versions(db)
    done: list[int] = []
    for migration in available(db.dialect):
        if target is not None and migration.version > target:
            break
        async with db.transaction() as conn:
            await db.lock_migrations(conn)  # processes starting together migrate in turn
            row = await conn.fetch_one(
                "SELECT version FROM schema_migrations WHERE version = :v", {"v": migration.version}
            )
            if row is not None:
                continue
            for statement in migration.statements():
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)",
                {"v": migration.version, "n": migration.name, "t": clock.now_iso()},
            )
        done.append(migration.version)
    return done

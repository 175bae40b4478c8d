"""``flint copy``: a SQLite database moved to PostgreSQL whole (docs/migrating-to-postgresql.md).

What it guarantees, in order:

1. The source is read in one SQLite read transaction (a consistent snapshot, even in WAL mode
   beside a running Flint) through a read-only connection: the copy never writes to it.
2. Before anything is written to the target, the source is checked: its schema is exactly the one
   this Flint's migrations make (same tables, same columns, every migration applied and none
   unknown: otherwise ``flint migrate`` on the source, or a newer Flint, comes first), every value
   has the storage class of its column (a REAL in a BIGINT column would be truncated by PostgreSQL,
   a number over 2^31 does not fit an INTEGER), and no foreign key points nowhere. The target must
   be a UTF8 database whose Flint tables, if there are any yet, hold no rows.
3. The target is migrated with the same migrations (as ``flint migrate`` would).
4. One PostgreSQL transaction locks every Flint table, checks again that they are empty, streams
   each table with COPY (parents before children, the order derived from the source's foreign
   keys) into the tables stripped of their keys, indexes and foreign keys, builds those again
   (checking every row against them) exactly as the migrations made them, compares the rows in
   the target with the rows in the source, table by table, and makes sure nobody wrote to the
   source meanwhile. Any failure rolls all of it back: the target is left
   migrated and empty, and the same command can simply be run again.

Values are copied as they are (TEXT timestamps, BIGINT minor units, 0/1 flags, hashed keys and
encrypted secrets): Flint on PostgreSQL needs the same FLINT_SECRET_KEY as the SQLite deployment to
read the webhook and app signing secrets it stored.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from flint.db.migrate import available

log = logging.getLogger("flint.copy")

SECRET_KEY_NOTE = (
    "Run Flint on PostgreSQL with the same FLINT_SECRET_KEY as the SQLite deployment: webhook and app "
    "signing secrets were copied encrypted under it, and checkout client tokens and form tokens are signed with it.")

# A column's declared type in the migrations -> the PostgreSQL type they create, the SQLite storage
# class every non-NULL value must have, and the range PostgreSQL accepts.
_TYPES: dict[str, tuple[str, str, tuple[int, int] | None]] = {
    "TEXT": ("text", "text", None),
    "INTEGER": ("integer", "integer", (-2**31, 2**31 - 1)),
    "BIGINT": ("bigint", "integer", (-2**63, 2**63 - 1)),
}


class CopyError(Exception):
    """A refusal or a failed copy, in words for the operator. The source is never changed; the
    target holds no copied rows (it may have been migrated)."""


@dataclass
class Table:
    name: str
    columns: list[str]
    types: list[str]  # declared, upper case: TEXT | INTEGER | BIGINT
    parents: set[str] = field(default_factory=set)  # tables its foreign keys reference
    rows: int = 0  # in the source snapshot


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def redact(url: str) -> str:
    """A database URL fit to print: the password, if any (user:password@ or ?password=), replaced."""
    parts = urlsplit(url)
    if parts.password is not None:
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        parts = parts._replace(query=urlencode([(k, "***" if k == "password" else v) for k, v in query], safe="*"))
    return urlunsplit(parts)


def sqlite_path(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise CopyError(f"the source must be a SQLite database (--from sqlite:///path/to/flint.sqlite3), "
                        f"not {redact(url).split(':', 1)[0]}://...")
    return Path(url[len("sqlite:///"):])


def check_target_url(url: str) -> None:
    if not url.startswith(("postgresql://", "postgres://")):
        raise CopyError("the target must be a PostgreSQL database (--to postgresql://user@host:5432/dbname)")


# --- the source --------------------------------------------------------------------------------

def open_source(path: Path) -> sqlite3.Connection:
    """Read-only (``mode=ro``): nothing this command does can change the source."""
    if not path.is_file():
        raise CopyError(f"there is no SQLite database at {path}")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        raise CopyError(f"{path} cannot be read as a SQLite database: {error}") from None
    return conn


def _tables_of(conn: sqlite3.Connection) -> list[str]:
    """Every table but SQLite's own and the migration log, in creation order."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "AND name <> 'schema_migrations' ORDER BY rowid").fetchall()
    return [row[0] for row in rows]


def describe(conn: sqlite3.Connection) -> list[Table]:
    tables = []
    for name in _tables_of(conn):
        info = conn.execute(f"PRAGMA table_info({_q(name)})").fetchall()  # cid, name, type, notnull, dflt, pk
        parents = {row[2] for row in conn.execute(f"PRAGMA foreign_key_list({_q(name)})").fetchall()}
        tables.append(Table(name, [row[1] for row in info], [row[2].upper() for row in info], parents - {name}))
    return tables


def copy_order(tables: list[Table]) -> list[Table]:
    """Parents before children, otherwise in creation order: the order in which every row finds
    its parents already in the target. (The copy builds the foreign keys after loading, but keeps
    this order so that it would stay right were they checked row by row.) A table referencing
    itself needs nothing more: PostgreSQL checks a foreign key at the end of the statement."""
    names = {table.name for table in tables}
    placed: list[Table] = []
    done: set[str] = set()
    waiting = list(tables)
    while waiting:
        ready = next((t for t in waiting if ((t.parents - {t.name}) & names) <= done), None)
        if ready is None:
            cycle = ", ".join(t.name for t in waiting)
            raise CopyError(f"the foreign keys between these tables form a cycle, so no order can copy them: {cycle}")
        placed.append(ready)
        done.add(ready.name)
        waiting.remove(ready)
    return placed


def expected_schema() -> tuple[list[int], dict[str, list[tuple[str, str]]]]:
    """The migration versions and the tables (columns and declared types) this Flint's own
    migrations make on SQLite, built in memory."""
    migrations = available("sqlite")
    memory = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for migration in migrations:
            for statement in migration.statements():
                memory.execute(statement)
        return [m.version for m in migrations], {t.name: list(zip(t.columns, t.types)) for t in describe(memory)}
    finally:
        memory.close()


def check_source_schema(conn: sqlite3.Connection, path: Path, tables: list[Table]) -> int:
    """The source is exactly at this Flint's schema; returns its version."""
    versions, schema = expected_schema()
    latest = versions[-1]
    has_log = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if not has_log:
        raise CopyError(f"{path} is not a Flint database (it has no schema_migrations table)")
    applied = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    unknown = [v for v in applied if v not in versions]
    if unknown:
        raise CopyError(f"the source's schema is newer than this Flint (it has migration {max(unknown)}, this "
                        f"Flint knows up to {latest}): run `flint copy` from the Flint version that last ran on it")
    missing = [v for v in versions if v not in applied]
    if missing:
        raise CopyError(f"the source's schema is older than this Flint (migration {missing[0]} and later are not "
                        f"applied): run `flint migrate` on the source first (FLINT_DATABASE_URL=sqlite:///{path} "
                        f"flint migrate), then copy again")
    found = {t.name: list(zip(t.columns, t.types)) for t in tables}
    for name in sorted(set(found) | set(schema)):
        if found.get(name) != schema.get(name):
            what = ("is not one of Flint's tables" if name not in schema else
                    "is missing" if name not in found else
                    f"has columns {found[name]}, where Flint's migrations make {schema[name]}")
            raise CopyError(f"the source's schema differs from the one Flint's migrations make: table {name} {what}")
    return latest


def check_values(conn: sqlite3.Connection, table: Table) -> None:
    """Every value fits its PostgreSQL column exactly: SQLite stores whatever it is given, and
    COPY would refuse a string in an integer column but silently truncate a REAL."""
    conditions = []
    for column, declared in zip(table.columns, table.types):
        if declared not in _TYPES:
            raise CopyError(f"{table.name}.{column} is declared {declared}, which `flint copy` cannot carry")
        _, storage, bounds = _TYPES[declared]
        test = f"typeof({_q(column)}) NOT IN ('{storage}', 'null')"
        if bounds:
            test += f" OR {_q(column)} NOT BETWEEN {bounds[0]} AND {bounds[1]}"
        conditions.append(f"({test})")
    where = " OR ".join(conditions)
    bad = conn.execute(f"SELECT COUNT(*) FROM {_q(table.name)} WHERE {where}").fetchone()[0]
    if not bad:
        return
    cursor = conn.execute(f"SELECT {', '.join(_q(c) for c in table.columns)} FROM {_q(table.name)} "
                          f"WHERE {where} LIMIT 1")
    row = cursor.fetchone()
    for column, declared, value in zip(table.columns, table.types, row):
        _, storage, bounds = _TYPES[declared]
        kind = {str: "text", int: "integer", float: "real", bytes: "blob", type(None): "null"}[type(value)]
        if kind not in (storage, "null") or (bounds and value is not None and not bounds[0] <= value <= bounds[1]):
            raise CopyError(
                f"{bad} row(s) of {table.name} hold a value PostgreSQL would not store exactly, e.g. "
                f"{table.columns[0]} = {row[0]!r}: {column} ({declared}) is {kind} {value!r}; fix the source and copy again")


def check_foreign_keys(conn: sqlite3.Connection) -> None:
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()  # table, rowid, parent, fkid
    if broken:
        table, rowid, parent, _ = broken[0]
        raise CopyError(f"{len(broken)} row(s) of the source reference rows that do not exist, e.g. {table} "
                        f"rowid {rowid} -> {parent}; PostgreSQL would refuse them: fix the source and copy again")


def check_secret_key(conn: sqlite3.Connection, secret_keys: tuple[str, ...] | None) -> str:
    """Whether ``secret_keys`` open the encrypted secrets of the source (it cannot: they would not
    be usable on the new deployment either)."""
    if not secret_keys:
        return "not checked (no FLINT_SECRET_KEY given)"
    from flint.security import SecretBox

    sealed = [row[0] for row in conn.execute(
        "SELECT secret FROM webhook_endpoints WHERE status <> 'deleted' "
        "UNION ALL SELECT webhook_secret FROM apps LIMIT 20")]
    if not sealed:
        return "not checked (no encrypted secrets in the source)"
    box = SecretBox(secret_keys)
    failed = 0
    for value in sealed:
        try:
            box.open(value)
        except RuntimeError:
            failed += 1
    if failed:
        return f"does not match ({failed} of {len(sealed)} encrypted secrets checked do not open with it)"
    return "matches"


def rows_of(conn: sqlite3.Connection, table: Table, counter: list[int]) -> Iterator[tuple[Any, ...]]:
    cursor = conn.execute(f"SELECT {', '.join(_q(c) for c in table.columns)} FROM {_q(table.name)}")
    cursor.arraysize = 1000
    while True:
        batch = cursor.fetchmany()
        if not batch:
            return
        counter[0] += len(batch)
        yield from batch


# --- the target --------------------------------------------------------------------------------

async def _target_tables(pg) -> dict[str, dict[str, str]]:
    rows = await pg.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")
    tables: dict[str, dict[str, str]] = {}
    for row in rows:
        tables.setdefault(row["table_name"], {})[row["column_name"]] = row["data_type"]
    return tables


async def _nonempty(pg, names: list[str]) -> list[str]:
    if not names:
        return []
    sql = " UNION ALL ".join(f"SELECT {i} AS i WHERE EXISTS (SELECT 1 FROM {_q(n)})" for i, n in enumerate(names))
    return [names[row["i"]] for row in await pg.fetch(sql)]


async def check_target_before(pg, tables: list[Table], versions: list[int]) -> None:
    """Nothing written yet: a UTF8 database with a schema to create tables in, not migrated by a
    newer Flint, and no row in any Flint table."""
    encoding = await pg.fetchval("SHOW server_encoding")
    if encoding != "UTF8":
        raise CopyError(f"the target database's encoding is {encoding}; Flint needs UTF8 "
                        f"(CREATE DATABASE flint ENCODING 'UTF8' TEMPLATE template0)")
    if await pg.fetchval("SELECT current_schema()") is None:
        raise CopyError("the target has no schema to create tables in (its search_path names no existing schema): "
                        "create the schema first, or drop search_path from the URL to use public")
    present = await _target_tables(pg)
    if "schema_migrations" in present:
        applied = [r["version"] for r in await pg.fetch("SELECT version FROM schema_migrations")]
        newer = [v for v in applied if v not in versions]
        if newer:
            raise CopyError(f"the target was migrated by a newer Flint (migration {max(newer)}); "
                            f"copy into an empty database")
    full = await _nonempty(pg, [t.name for t in tables if t.name in present])
    if full:
        raise CopyError(f"the target already holds data ({', '.join(full)} not empty); `flint copy` only fills an "
                        f"empty database. Nothing was written. Copy into a new database, or drop this one's "
                        f"Flint tables if, and only if, you are sure they hold nothing you need")


async def check_target_after_migrate(pg, tables: list[Table], versions: list[int]) -> None:
    applied = sorted(r["version"] for r in await pg.fetch("SELECT version FROM schema_migrations"))
    if applied != versions:
        raise CopyError(f"the target's migrations are {applied} after migrating, not {versions}")
    present = await _target_tables(pg)
    for table in tables:
        columns = present.get(table.name)
        wanted = {c: _TYPES[t][0] for c, t in zip(table.columns, table.types)}
        if columns != wanted:
            raise CopyError(f"table {table.name} in the target is {columns}, not {wanted} as in the source: "
                            f"was it created by something other than Flint's migrations?")


async def _migrate_target(url: str) -> None:
    from flint.db.migrate import migrate
    from flint.db.postgres import PostgresDatabase

    db = PostgresDatabase(url, pool_size=2)
    await db.open()
    try:
        await migrate(db)
    finally:
        await db.close()


@dataclass(frozen=True)
class _Structure:
    """What the load drops and builds again, as PostgreSQL itself prints it: (table, name, definition)."""
    keys: tuple[tuple[str, str, str], ...]  # primary keys and unique constraints
    indexes: tuple[tuple[str, str, str], ...]  # the other indexes
    foreign: tuple[tuple[str, str, str], ...]  # foreign keys
    not_null: tuple[tuple[str, str], ...]  # (table, column): compared, never dropped


async def _structure(pg, names: list[str]) -> _Structure:
    constraints = await pg.fetch(
        """SELECT t.relname AS tab, c.conname AS name, c.contype::text AS kind, pg_get_constraintdef(c.oid) AS def
           FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
           WHERE t.relnamespace = current_schema()::regnamespace AND c.contype IN ('p', 'u', 'f') ORDER BY 1, 2""")
    indexes = await pg.fetch(
        "SELECT tablename AS tab, indexname AS name, indexdef AS def FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY 1, 2")
    not_null = await pg.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_nullable = 'NO' ORDER BY 1, 2")
    wanted = set(names)
    keys = tuple((r["tab"], r["name"], r["def"]) for r in constraints if r["kind"] in "pu" and r["tab"] in wanted)
    backing = {name for _, name, _ in keys}  # a key's index has the key's name
    return _Structure(
        keys=keys,
        indexes=tuple((r["tab"], r["name"], r["def"]) for r in indexes if r["tab"] in wanted and r["name"] not in backing),
        foreign=tuple((r["tab"], r["name"], r["def"]) for r in constraints if r["kind"] == "f" and r["tab"] in wanted),
        not_null=tuple((r["table_name"], r["column_name"]) for r in not_null if r["table_name"] in wanted))


async def _fill(pg, src: sqlite3.Connection, tables: list[Table], data_version: int) -> dict[str, int]:
    """One transaction: lock, check empty, COPY every table, verify, check the source did not
    change. Raises (and so rolls back) on any difference.

    Loading into bare tables and building the keys, indexes and foreign keys afterwards (as
    PostgreSQL's "Populating a Database" advises) is about three times faster than maintaining
    them row by row: each index is built in one sort, each foreign key checked in one join. They
    are rebuilt from PostgreSQL's own definitions, with their names, in this same transaction, and
    the result is compared with what the migrations made; a duplicate key or a missing parent
    fails the rebuild, which rolls everything back."""
    import asyncpg

    copied: dict[str, int] = {}
    names = [t.name for t in tables]
    async with pg.transaction():
        await pg.execute("SET LOCAL lock_timeout = '10s'")
        # A statement_timeout meant for the application's queries must not cut a bulk load short
        # (pg_restore does the same).
        await pg.execute("SET LOCAL statement_timeout = 0")
        try:
            await pg.execute(f"LOCK TABLE {', '.join(_q(n) for n in names)} IN ACCESS EXCLUSIVE MODE")
        except asyncpg.LockNotAvailableError:
            raise CopyError("the target's tables are in use by another process (a flint serve or worker on it?): "
                            "stop it and copy again") from None
        full = await _nonempty(pg, names)
        if full:
            raise CopyError(f"the target was written to while this copy prepared it ({', '.join(full)}): "
                            f"stop whatever writes to it and copy into an empty database")

        migrated = await _structure(pg, names)
        schema = _q(await pg.fetchval("SELECT current_schema()"))
        for table, name, _ in migrated.foreign + migrated.keys:
            await pg.execute(f"ALTER TABLE {schema}.{_q(table)} DROP CONSTRAINT {_q(name)}")
        for _, name, _ in migrated.indexes:
            await pg.execute(f"DROP INDEX {schema}.{_q(name)}")

        for table in tables:
            started = time.monotonic()
            streamed = [0]
            try:
                await pg.copy_records_to_table(table.name, records=rows_of(src, table, streamed), columns=table.columns)
            except Exception as error:
                raise CopyError(f"copying {table.name} failed ({type(error).__name__}: {error}); nothing was "
                                f"copied, the target is migrated and empty: fix the cause and copy again") from error
            in_target = await pg.fetchval(f"SELECT COUNT(*) FROM {_q(table.name)}")
            if not table.rows == streamed[0] == in_target:
                raise CopyError(f"{table.name}: the source has {table.rows} rows, {streamed[0]} were read and the "
                                f"target has {in_target}; nothing was copied")
            copied[table.name] = in_target
            log.info("copied %s", table.name, extra={"table": table.name, "rows": in_target,
                                                     "seconds": round(time.monotonic() - started, 3)})

        started = time.monotonic()
        add = "ALTER TABLE {}.{} ADD CONSTRAINT {} {}"
        statements = ([add.format(schema, _q(table), _q(name), definition) for table, name, definition in migrated.keys]
                      + [definition for _, _, definition in migrated.indexes]  # CREATE INDEX ... ON schema.table
                      + [add.format(schema, _q(table), _q(name), definition) for table, name, definition in migrated.foreign])
        for statement in statements:
            try:
                await pg.execute(statement)
            except asyncpg.PostgresError as error:
                detail = f" ({error.detail})" if getattr(error, "detail", None) else ""
                raise CopyError(f"the copied rows break a constraint of the schema: {error}{detail}; nothing was "
                                f"copied, the target is migrated and empty: fix the source and copy again") from error
        if await _structure(pg, names) != migrated:
            raise CopyError("the target's keys and indexes differ from the migrations' after the copy; nothing was copied")
        log.info("built keys, indexes and foreign keys", extra={"seconds": round(time.monotonic() - started, 3)})

        # The snapshot ends here; any commit to the source since it began shows as a new data_version.
        src.execute("COMMIT")
        if src.execute("PRAGMA data_version").fetchone()[0] != data_version:
            raise CopyError("the source was written to while it was copied (is a flint serve or worker still "
                            "running on it?): stop every writer and copy again; nothing was copied")
    return copied


async def copy_database(source_url: str, target_url: str, *,
                        secret_keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Copy the SQLite database at ``source_url`` into the empty PostgreSQL database at
    ``target_url``; returns the report ``flint copy`` prints. Raises CopyError."""
    import asyncpg

    from flint.db.postgres import split_url

    started = time.monotonic()
    path = sqlite_path(source_url)
    check_target_url(target_url)
    src = open_source(path)
    try:
        try:
            src.execute("BEGIN")  # deferred: a read transaction, its snapshot taken by the first read
            tables = describe(src)
            data_version = src.execute("PRAGMA data_version").fetchone()[0]
            version = check_source_schema(src, path, tables)
            tables = copy_order(tables)
            for table in tables:
                check_values(src, table)
                table.rows = src.execute(f"SELECT COUNT(*) FROM {_q(table.name)}").fetchone()[0]
            check_foreign_keys(src)
            secret_key = check_secret_key(src, secret_keys)
        except sqlite3.DatabaseError as error:
            raise CopyError(f"reading the source {path} failed: {error}; nothing was written") from error
        versions = [m.version for m in available("postgresql")]

        try:
            pg = await asyncpg.connect(split_url(target_url)[0])
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise CopyError(f"cannot connect to the target {redact(target_url)}: {error}") from None
        try:
            try:
                await check_target_before(pg, tables, versions)
                await _migrate_target(target_url)
                await check_target_after_migrate(pg, tables, versions)
                copied = await _fill(pg, src, tables, data_version)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                raise CopyError(f"the target failed ({type(error).__name__}: {error}); PostgreSQL rolled back "
                                f"whatever this copy had written (the target may be migrated, but holds no copied "
                                f"rows): fix the cause and copy again") from error
            try:
                # Fresh planner statistics now, rather than whenever autovacuum gets to the new tables.
                await pg.execute(f"ANALYZE {', '.join(_q(t.name) for t in tables)}")
            except asyncpg.PostgresError as error:
                log.warning("ANALYZE after the copy failed: %s", error)
        finally:
            await pg.close()
    finally:
        if src.in_transaction:
            src.execute("ROLLBACK")
        src.close()

    seconds = time.monotonic() - started
    return {
        "copied": copied,
        "rows": sum(copied.values()),
        "schema_version": version,
        "from": source_url,
        "to": redact(target_url),
        "verified": "every table's row count in the target equals the source's",
        "seconds": round(seconds, 3),
        "secret_key": secret_key,
        "next": ("Stop here if anything above looks wrong: the SQLite file is unchanged. Otherwise set "
                 "FLINT_DATABASE_URL to the target and start Flint. " + SECRET_KEY_NOTE),
    }


def secret_keys_for_check(source_url: str, environ: dict[str, str],
                          configured: tuple[str, ...]) -> tuple[tuple[str, ...] | None, str | None]:
    """The keys to check the source's encrypted secrets with, and where they come from when that is
    not FLINT_SECRET_KEY: a development deployment without it kept a key file beside its database."""
    if environ.get("FLINT_SECRET_KEY"):
        return configured, None
    try:
        dev_key = sqlite_path(source_url).parent / "flint-dev-secret-key"
    except CopyError:
        return None, None
    if dev_key.is_file():
        return (dev_key.read_text().strip(),), str(dev_key)
    return None, None

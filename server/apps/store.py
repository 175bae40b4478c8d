"""SQL for partner apps."""
from __future__ import annotations

from typing import Any

from flint.apps.models import App
from flint.db import Conn
from flint.db import for_update as lock_suffix
from flint.db.pages import select_page

APP_COLUMNS = (
    "id, developer_merchant_id, name, description, client_id, client_secret_hash, webhook_secret, "
    "previous_webhook_secret, previous_webhook_secret_expires_at, redirect_uris, scopes, webhook_url, "
    "webhook_events, hook_url, hooks, hook_failure_mode, created_at, updated_at, checkout_fields"
)


async def insert_app(conn: Conn, app: App) -> None:
    await conn.execute(
        f"""INSERT INTO apps ({APP_COLUMNS})
            VALUES (:id, :developer_merchant_id, :name, :description, :client_id, :client_secret_hash,
                    :webhook_secret, :previous_webhook_secret, :previous_webhook_secret_expires_at,
                    :redirect_uris, :scopes, :webhook_url, :webhook_events, :hook_url, :hooks,
                    :hook_failure_mode, :created_at, :updated_at, :checkout_fields)""",
        app.__dict__,
    )


async def select_app(conn: Conn, developer_merchant_id: str, app_id: str, *, for_update: bool = False) -> App | None:
    """One of the developer's own apps (None for anyone else's: the caller answers 404).

    ``for_update`` locks the app (PostgreSQL): the root of its settings, its secrets and its
    installations' endpoints, taken before any installation or endpoint row."""
    row = await conn.fetch_one(
        f"SELECT {APP_COLUMNS} FROM apps WHERE id = :id AND developer_merchant_id = :developer"
        + (lock_suffix(conn) if for_update else ""),
        {"id": app_id, "developer": developer_merchant_id},
    )
    return App(**row) if row else None


async def select_app_by_id(conn: Conn, app_id: str, *, for_update: bool = False) -> App | None:
    """Any app by id (an install reads the app it installs; ``for_update`` as in select_app)."""
    row = await conn.fetch_one(
        f"SELECT {APP_COLUMNS} FROM apps WHERE id = :id" + (lock_suffix(conn) if for_update else ""), {"id": app_id})
    return App(**row) if row else None


async def select_apps_by_ids(conn: Conn, app_ids: list[str]) -> dict[str, App]:
    if not app_ids:
        return {}
    binds = {f"a{i}": value for i, value in enumerate(app_ids)}
    rows = await conn.fetch_all(
        f"SELECT {APP_COLUMNS} FROM apps WHERE id IN ({', '.join(':' + k for k in binds)})", binds)
    return {row["id"]: App(**row) for row in rows}


async def select_app_by_client_id(conn: Conn, client_id: str) -> App | None:
    row = await conn.fetch_one(f"SELECT {APP_COLUMNS} FROM apps WHERE client_id = :client_id",
                               {"client_id": client_id})
    return App(**row) if row else None


async def select_apps_page(conn: Conn, developer_merchant_id: str, limit: int, starting_after: str | None):
    rows, has_more = await select_page(
        conn, table="apps", columns=APP_COLUMNS, where="developer_merchant_id = :developer",
        params={"developer": developer_merchant_id}, limit=limit, starting_after=starting_after,
    )
    return [App(**r) for r in rows], has_more


async def update_app(conn: Conn, app_id: str, fields: dict[str, Any]) -> App | None:
    sets = ", ".join(f"{name} = :{name}" for name in fields)
    row = await conn.fetch_one(f"UPDATE apps SET {sets} WHERE id = :id RETURNING {APP_COLUMNS}",
                               dict(fields, id=app_id))
    return App(**row) if row else None


async def select_webhook_secrets(conn: Conn, app_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The signing secrets (sealed) of apps whose endpoints are being sent to: every installation's
    endpoint signs with its app's current ones (and the previous one during a rotation)."""
    if not app_ids:
        return {}
    binds = {f"a{i}": value for i, value in enumerate(app_ids)}
    rows = await conn.fetch_all(
        f"""SELECT id, webhook_secret, previous_webhook_secret, previous_webhook_secret_expires_at FROM apps
            WHERE id IN ({', '.join(':' + k for k in binds)})""", binds)
    return {row["id"]: row for row in rows}

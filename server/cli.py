"""The ``flint`` command: a parser, and one small function per command (COMMANDS)."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable

from flint.config import Config

log = logging.getLogger("flint")


def _config(*, require_secret: bool = True) -> Config:
    try:
        return Config.from_env(require_secret=require_secret)
    except ValueError as error:
        sys.exit(f"flint: {error}")


def _announce_mode(config: Config) -> None:
    """Development is never silent: it allows loopback webhook and hook targets and a key file."""
    if not config.is_production:
        log.warning("FLINT_ENV=development: loopback webhook and hook targets are allowed, a missing "
                    "FLINT_SECRET_KEY is generated into a file. Never use it in production.")


def uvicorn_options(host: str, port: int) -> dict:
    """How `flint serve` runs: Uvicorn with httptools, the ASGI server that costs least per request
    (issue 19: 13% less CPU per paid checkout than Hypercorn and h11, measured in bench/README.md)."""
    return dict(
        host=host, port=port, http="httptools", loop="asyncio", lifespan="on",
        log_config=None,  # flint.logs configures logging; Uvicorn's loggers go through it
        access_log=False,  # our own structured request log replaces it
        # The client address is the socket's peer: Flint alone decides which X-Forwarded-For to believe
        # (FLINT_TRUSTED_PROXIES, flint.proxies); Uvicorn would otherwise believe loopback's.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _runtime(config: Config, *, migrated: bool = True):
    from flint.db.migrate import migrate
    from flint.runtime import Runtime

    rt = await Runtime.start(config)
    if migrated:
        await migrate(rt.db)
    return rt


# -- the commands (composition roots: each imports what it runs) ----------------------------------------

def serve(args: argparse.Namespace, config: Config) -> None:
    if args.workers < 1:
        sys.exit("flint: --workers must be at least 1")
    if "FLINT_PUBLIC_URL" not in os.environ:
        # Without a configured public URL, links point at where this process listens.
        os.environ["FLINT_PUBLIC_URL"] = f"http://{args.host}:{args.port}"
    if args.no_background:
        os.environ["FLINT_BACKGROUND"] = "0"
    import uvicorn

    if args.workers > 1:
        # Uvicorn's worker processes share one listening socket; each builds the app from the FLINT_*
        # environment (flint/asgi.py). Migrate once, before they start.
        migrate(args, config)
        uvicorn.run("flint.asgi:app", workers=args.workers, **uvicorn_options(args.host, args.port))
        return

    from flint.app import create_app

    # SIGINT and SIGTERM stop it gracefully: Uvicorn finishes the requests in flight, then Quart's
    # after_serving closes the runtime (and commits the database's open group).
    server = uvicorn.Server(uvicorn.Config(create_app(_config()), **uvicorn_options(args.host, args.port)))
    asyncio.run(server.serve())
    if not server.started:
        sys.exit(1)  # the port was taken, or the app failed to start (Uvicorn logged why)


def worker(args: argparse.Namespace, config: Config) -> None:
    from flint.background import mail_worker, sweeper, webhook_worker

    async def run() -> None:
        rt = await _runtime(config)
        try:
            tasks = [asyncio.create_task(sweeper.run(rt)), asyncio.create_task(webhook_worker.run(rt)),
                     asyncio.create_task(mail_worker.run(rt))]
            await _until_signalled()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await rt.stop()

    asyncio.run(run())


def migrate(args: argparse.Namespace, config: Config) -> None:
    from flint.db import open_database
    from flint.db.migrate import migrate as apply

    async def run() -> list[int]:
        db = await open_database(config.database_url)
        try:
            return await apply(db)
        finally:
            await db.close()

    applied = asyncio.run(run())
    if args.command == "migrate":
        print(json.dumps({"applied": applied}))


def reseal_secrets(args: argparse.Namespace, config: Config) -> None:
    from flint.maintenance.service import reseal_all

    async def run() -> dict:
        rt = await _runtime(config, migrated=False)
        try:
            return await reseal_all(rt)
        finally:
            await rt.stop()

    print(json.dumps({"resealed": asyncio.run(run())}))


def merchants_create(args: argparse.Namespace, config: Config) -> None:
    from flint.errors import FlintError
    from flint.merchants import service as merchants

    password = args.password
    if args.password_stdin:
        # Like `docker login --password-stdin`: one line, its newline dropped.
        password = sys.stdin.readline().rstrip("\r\n")

    async def run():
        rt = await _runtime(config)
        try:
            return await merchants.create_merchant(rt, name=args.name, email=args.email, password=password,
                                                   origins=args.origin)
        finally:
            await rt.stop()

    try:
        merchant, secret = asyncio.run(run())
    except FlintError as error:
        sys.exit(f"flint: {error.code}: {error.detail}")
    if args.json:
        print(json.dumps({"id": merchant.id, "secret_key": secret}))
    else:
        print(f"Merchant {merchant.id} created.\nSecret key (shown once): {secret}")


def copy(args: argparse.Namespace, config: Config) -> None:
    from flint.db.copy import CopyError, copy_database, secret_keys_for_check

    source = args.source or config.database_url
    keys, dev_key_file = secret_keys_for_check(source, dict(os.environ), config.secret_keys)
    try:
        report = asyncio.run(copy_database(source, args.to, secret_keys=keys))
    except CopyError as error:
        sys.exit(f"flint copy: {error}")
    if dev_key_file:
        report["next"] += (f" The source ran without FLINT_SECRET_KEY: its key is in {dev_key_file}; "
                           f"set FLINT_SECRET_KEY to that file's contents on the PostgreSQL deployment.")
    if report["secret_key"].startswith("does not match"):
        print(f"flint copy: warning: FLINT_SECRET_KEY {report['secret_key']}: the new deployment needs the "
              f"key the SQLite deployment used", file=sys.stderr)
    print(json.dumps(report))


def demo(args: argparse.Namespace, config: Config) -> None:
    from flint.demo import run_demo

    run_demo(config, args.host, args.port, args.shop_port, args.app_port)


COMMANDS: dict[str, Callable[[argparse.Namespace, Config], None]] = {
    "serve": serve, "worker": worker, "migrate": migrate, "reseal-secrets": reseal_secrets,
    "merchants create": merchants_create, "copy": copy, "demo": demo,
}
# Commands that run with development unless FLINT_ENV says otherwise (said in their log), and those
# that sign and open nothing (they run in production without FLINT_SECRET_KEY).
DEVELOPMENT_BY_DEFAULT = {"demo"}
NO_SECRET_NEEDED = {"migrate"}
ANNOUNCED = {"serve", "worker", "demo"}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="flint", description="Flint: order-backed checkout payments.")
    commands = root.add_subparsers(dest="command", required=True)

    serve_ = commands.add_parser(
        "serve", help="run the API server (with the webhook and mail workers and the sweeper in-process)")
    serve_.add_argument("--host", default="127.0.0.1")
    serve_.add_argument("--port", type=int, default=8000)
    serve_.add_argument("--workers", type=int, default=1, metavar="N",
                        help="server processes sharing the port (several need PostgreSQL or one machine's SQLite file)")
    serve_.add_argument("--no-background", action="store_true",
                        help="deliver no webhooks or mail and sweep nothing here: `flint worker` processes do it")

    commands.add_parser("worker", help="run the background worker and sweeper alone")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser(
        "reseal-secrets", help="re-encrypt stored secrets under the newest FLINT_SECRET_KEY (key rotation)",
        description="After putting a new key first in FLINT_SECRET_KEY (NEW,OLD), re-encrypt every stored "
                    "secret (webhook and app signing secrets, stored idempotent responses) under it, so the old "
                    "key can later leave the list. Safe while Flint serves. See docs/deploy.md.")

    merchants = commands.add_parser("merchants", help="manage merchants")
    merchant_commands = merchants.add_subparsers(dest="merchants_command", required=True)
    create = merchant_commands.add_parser("create", help="create a merchant and its first secret key")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    secret = create.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password", help="the owner's password (visible to other users of this machine "
                                           "in the process list: prefer --password-stdin)")
    secret.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (its first line)")
    create.add_argument("--origin", action="append", default=[], help="an origin allowed to embed (repeatable)")
    create.add_argument("--json", action="store_true", help="print {id, secret_key} as JSON")

    copy_ = commands.add_parser(
        "copy", help="copy a SQLite database into an empty PostgreSQL database (moving to PostgreSQL)",
        description="Migrate the PostgreSQL database, then copy every table of the SQLite database into it in "
                    "one transaction, and verify the row counts; refuses a target that holds data and a source "
                    "whose schema is not this Flint's (run `flint migrate` on it first). Stop every flint serve "
                    "and worker on the source first. Values are copied unchanged: run Flint on PostgreSQL with "
                    "the same FLINT_SECRET_KEY, or it cannot read the webhook and app signing secrets. "
                    "See docs/migrating-to-postgresql.md.")
    copy_.add_argument("--to", required=True, metavar="postgresql://...", help="the target PostgreSQL database")
    copy_.add_argument("--from", dest="source", metavar="sqlite:///PATH",
                       help="the SQLite database to copy (default: FLINT_DATABASE_URL)")

    demo_ = commands.add_parser(
        "demo", help="migrate, seed a demo merchant, its webhook endpoint and a demo partner app, and run Flint, "
                     "a demo merchant shop (examples/shop) that receives the webhooks and the partner app "
                     "(examples/partner_app)")
    demo_.add_argument("--host", default="127.0.0.1", help="where the servers listen")
    demo_.add_argument("--port", type=int, default=8000, help="Flint's port")
    demo_.add_argument("--shop-port", type=int, default=8001, help="the demo shop's port (its own origin)")
    demo_.add_argument("--app-port", type=int, default=8002, help="the demo partner app's port (its own origin)")
    return root


def main(argv: list[str] | None = None) -> None:
    from flint.logs import configure

    args = parser().parse_args(argv)
    name = " ".join(filter(None, (args.command, getattr(args, "merchants_command", None))))
    if name in DEVELOPMENT_BY_DEFAULT:
        # The demo is a local first look: development, chosen here explicitly (and said in its log).
        os.environ.setdefault("FLINT_ENV", "development")
    config = _config(require_secret=name not in NO_SECRET_NEEDED)
    configure(config.log_level)
    if name in ANNOUNCED:
        _announce_mode(config)
    COMMANDS[name](args, config)


if __name__ == "__main__":  # pragma: no cover
    main()

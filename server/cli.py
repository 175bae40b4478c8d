"""The ``flint`` command: serve | worker | migrate | copy | merchants create | demo."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from flint.config import Config


def _config(*, require_secret: bool = True) -> Config:
    try:
        return Config.from_env(require_secret=require_secret)
    except ValueError as error:
        sys.exit(f"flint: {error}")


def _announce_mode(config: Config) -> None:
    """Development is never silent: it allows loopback webhook and hook targets and a key file."""
    if not config.is_production:
        logging.getLogger("flint").warning(
            "FLINT_ENV=development: loopback webhook and hook targets are allowed, a missing "
            "FLINT_SECRET_KEY is generated into a file. Never use it in production.")


def _hypercorn(host: str, port: int):
    from hypercorn.config import Config as HypercornConfig

    hyper = HypercornConfig()
    hyper.bind = [f"{host}:{port}"]
    hyper.accesslog = None  # our own structured request log replaces it
    hyper.errorlog = logging.getLogger("hypercorn.error")  # through our JSON handler, once
    hyper.graceful_timeout = 5
    return hyper


def _serve_processes(host: str, port: int, workers: int) -> int:
    """Hypercorn's own worker processes, sharing one listening socket; each builds the app from
    the FLINT_* environment (server/asgi.py). SIGTERM or SIGINT stops them all."""
    from hypercorn.run import run

    hyper = _hypercorn(host, port)
    hyper.workers = workers
    hyper.application_path = "flint.asgi:app"
    return run(hyper)


async def _serve(config: Config, host: str, port: int) -> None:
    from hypercorn.asyncio import serve

    from flint.app import create_app

    app = create_app(config)
    hyper = _hypercorn(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(app, hyper, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


async def _worker(config: Config) -> None:
    from flint.background import sweeper, webhook_worker
    from flint.db.migrate import migrate
    from flint.runtime import Runtime

    rt = await Runtime.start(config)
    try:
        await migrate(rt.db)
        tasks = [asyncio.create_task(sweeper.run(rt)), asyncio.create_task(webhook_worker.run(rt))]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await rt.stop()


async def _reseal(config: Config) -> dict:
    from flint.maintenance.reseal import reseal_all
    from flint.runtime import Runtime

    rt = await Runtime.start(config)
    try:
        return await reseal_all(rt)
    finally:
        await rt.stop()


async def _migrate(config: Config) -> list[int]:
    from flint.db import open_database
    from flint.db.migrate import migrate

    db = await open_database(config.database_url)
    try:
        return await migrate(db)
    finally:
        await db.close()


async def _create_merchant(config: Config, name: str, email: str, password: str, origins: list[str]):
    from flint.db.migrate import migrate
    from flint.merchants import service as merchants
    from flint.runtime import Runtime

    rt = await Runtime.start(config)
    try:
        await migrate(rt.db)
        return await merchants.create_merchant(rt, name=name, email=email, password=password, origins=origins)
    finally:
        await rt.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="flint", description="Flint: order-backed checkout payments.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server (with the webhook worker and sweeper in-process)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="server processes sharing the port (several need PostgreSQL or one machine's SQLite file)")
    serve.add_argument("--no-background", action="store_true",
                       help="deliver no webhooks and sweep nothing here: `flint worker` processes do it")

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

    copy = commands.add_parser(
        "copy", help="copy a SQLite database into an empty PostgreSQL database (moving to PostgreSQL)",
        description="Migrate the PostgreSQL database, then copy every table of the SQLite database into it in "
                    "one transaction, and verify the row counts; refuses a target that holds data and a source "
                    "whose schema is not this Flint's (run `flint migrate` on it first). Stop every flint serve "
                    "and worker on the source first. Values are copied unchanged: run Flint on PostgreSQL with "
                    "the same FLINT_SECRET_KEY, or it cannot read the webhook and app signing secrets. "
                    "See docs/migrating-to-postgresql.md.")
    copy.add_argument("--to", required=True, metavar="postgresql://...", help="the target PostgreSQL database")
    copy.add_argument("--from", dest="source", metavar="sqlite:///PATH",
                      help="the SQLite database to copy (default: FLINT_DATABASE_URL)")

    demo = commands.add_parser(
        "demo", help="migrate, seed a demo merchant, its webhook endpoint and a demo partner app, and run Flint, "
                     "a demo merchant shop (examples/shop) that receives the webhooks and the partner app "
                     "(examples/partner_app)")
    demo.add_argument("--host", default="127.0.0.1", help="where the servers listen")
    demo.add_argument("--port", type=int, default=8000, help="Flint's port")
    demo.add_argument("--shop-port", type=int, default=8001, help="the demo shop's port (its own origin)")
    demo.add_argument("--app-port", type=int, default=8002, help="the demo partner app's port (its own origin)")

    args = parser.parse_args(argv)
    from flint.logs import configure

    if args.command == "demo":
        # The demo is a local first look: development, chosen here explicitly (and said in its log).
        os.environ.setdefault("FLINT_ENV", "development")
    config = _config(require_secret=args.command not in ("migrate",))
    configure(config.log_level)
    if args.command in ("serve", "worker", "demo"):
        _announce_mode(config)

    if args.command == "serve":
        if args.workers < 1:
            sys.exit("flint: --workers must be at least 1")
        if "FLINT_PUBLIC_URL" not in os.environ:
            # Without a configured public URL, links point at where this process listens.
            os.environ["FLINT_PUBLIC_URL"] = f"http://{args.host}:{args.port}"
        if args.no_background:
            os.environ["FLINT_BACKGROUND"] = "0"
        if args.workers > 1:
            asyncio.run(_migrate(config))  # once, before the processes start
            sys.exit(_serve_processes(args.host, args.port, args.workers))
        asyncio.run(_serve(_config(), args.host, args.port))
    elif args.command == "reseal-secrets":
        print(json.dumps({"resealed": asyncio.run(_reseal(config))}))
    elif args.command == "worker":
        asyncio.run(_worker(config))
    elif args.command == "migrate":
        applied = asyncio.run(_migrate(config))
        print(json.dumps({"applied": applied}))
    elif args.command == "merchants":
        from flint.errors import FlintError

        password = args.password
        if args.password_stdin:
            # Like `docker login --password-stdin`: one line, its newline dropped.
            password = sys.stdin.readline().rstrip("\r\n")
        try:
            merchant, secret = asyncio.run(
                _create_merchant(config, args.name, args.email, password, args.origin))
        except FlintError as error:
            sys.exit(f"flint: {error.code}: {error.detail}")
        if args.json:
            print(json.dumps({"id": merchant.id, "secret_key": secret}))
        else:
            print(f"Merchant {merchant.id} created.\nSecret key (shown once): {secret}")
    elif args.command == "copy":
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
    elif args.command == "demo":
        from flint.demo import run_demo

        run_demo(config, args.host, args.port, args.shop_port, args.app_port)


if __name__ == "__main__":  # pragma: no cover
    main()

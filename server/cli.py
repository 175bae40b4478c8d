"""The ``flint`` command: serve | worker | migrate | merchants create | demo."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import replace

from .config import Config


def _config() -> Config:
    try:
        return Config.from_env()
    except ValueError as error:
        sys.exit(f"flint: {error}")


async def _serve(config: Config, host: str, port: int) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config as HypercornConfig

    from .app import create_app

    app = create_app(config)
    hyper = HypercornConfig()
    hyper.bind = [f"{host}:{port}"]
    hyper.accesslog = None  # our own structured request log replaces it
    hyper.errorlog = logging.getLogger("hypercorn.error")  # through our JSON handler, once
    hyper.graceful_timeout = 5
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(app, hyper, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


async def _worker(config: Config) -> None:
    from . import sweeper
    from .db.migrate import migrate
    from .runtime import Runtime
    from .webhooks import worker as webhook_worker

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


async def _migrate(config: Config) -> list[int]:
    from .db import open_database
    from .db.migrate import migrate

    db = await open_database(config.database_url)
    try:
        return await migrate(db)
    finally:
        await db.close()


async def _create_merchant(config: Config, name: str, email: str, password: str, origins: list[str]):
    from .db.migrate import migrate
    from .merchants import service as merchants
    from .runtime import Runtime

    rt = await Runtime.start(config)
    try:
        await migrate(rt.db)
        return await merchants.create_merchant(rt, name=name, email=email, password=password, origins=origins)
    finally:
        await rt.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="flint", description="Flint: order-backed checkout payments.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server (with the sweeper in-process)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    commands.add_parser("worker", help="run the background worker and sweeper alone")
    commands.add_parser("migrate", help="create or upgrade the database schema")

    merchants = commands.add_parser("merchants", help="manage merchants")
    merchant_commands = merchants.add_subparsers(dest="merchants_command", required=True)
    create = merchant_commands.add_parser("create", help="create a merchant and its first secret key")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--origin", action="append", default=[], help="an origin allowed to embed (repeatable)")
    create.add_argument("--json", action="store_true", help="print {id, secret_key} as JSON")

    demo = commands.add_parser(
        "demo", help="migrate, seed a demo merchant, its webhook endpoint and a demo partner app, and run Flint, "
                     "a demo merchant shop (examples/shop) that receives the webhooks and the partner app "
                     "(examples/partner_app)")
    demo.add_argument("--host", default="127.0.0.1", help="where the servers listen")
    demo.add_argument("--port", type=int, default=8000, help="Flint's port")
    demo.add_argument("--shop-port", type=int, default=8001, help="the demo shop's port (its own origin)")
    demo.add_argument("--app-port", type=int, default=8002, help="the demo partner app's port (its own origin)")

    args = parser.parse_args(argv)
    from .logs import configure

    config = _config()
    configure(config.log_level)

    if args.command == "serve":
        if "FLINT_PUBLIC_URL" not in os.environ:
            # Without a configured public URL, links point at where this process listens.
            config = replace(config, public_url=f"http://{args.host}:{args.port}")
        asyncio.run(_serve(config, args.host, args.port))
    elif args.command == "worker":
        asyncio.run(_worker(config))
    elif args.command == "migrate":
        applied = asyncio.run(_migrate(config))
        print(json.dumps({"applied": applied}))
    elif args.command == "merchants":
        from .errors import FlintError

        try:
            merchant, secret = asyncio.run(
                _create_merchant(config, args.name, args.email, args.password, args.origin))
        except FlintError as error:
            sys.exit(f"flint: {error.code}: {error.detail}")
        if args.json:
            print(json.dumps({"id": merchant.id, "secret_key": secret}))
        else:
            print(f"Merchant {merchant.id} created.\nSecret key (shown once): {secret}")
    elif args.command == "demo":
        from .demo import run_demo

        run_demo(config, args.host, args.port, args.shop_port, args.app_port)


if __name__ == "__main__":  # pragma: no cover
    main()

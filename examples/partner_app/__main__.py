"""``python -m examples.partner_app``: run the partner app against a Flint server.

    PARTNER_APP_CLIENT_ID=fca_... PARTNER_APP_CLIENT_SECRET=fcs_... PARTNER_APP_WEBHOOK_SECRET=whsec_... \
        python -m examples.partner_app --flint-url http://127.0.0.1:8000 --port 8002
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

# The shop's Hypercorn helpers serve any Quart app next to others on one event loop.
from examples.shop.server import connect_host, serve_shop, wait_listening

from .app import BLOCK_OVER, create_partner_app


async def _run(args: argparse.Namespace) -> None:
    host = connect_host(args.host)
    public_url = args.public_url or f"http://{f'[{host}]' if ':' in host else host}:{args.port}"
    app = create_partner_app(args.flint_url, args.client_id, args.client_secret, args.webhook_secret,
                             public_url=public_url, flint_public_url=args.flint_public_url, block_over=args.block_over)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(serve_shop(app, args.host, args.port, stop.wait))
    try:
        await wait_listening(args.host, args.port, serving=serving)
    except BaseException:
        stop.set()
        await asyncio.gather(serving, return_exceptions=True)
        raise
    print(f"partner app listening on {public_url.rstrip('/')}", flush=True)
    await serving


def main(argv: list[str] | None = None) -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m examples.partner_app",
                                     description="A small Flint partner app: OAuth install, webhooks, checkout hook.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--public-url", default=env("PARTNER_APP_PUBLIC_URL"),
                        help="where browsers reach this app; its /callback is the registered redirect URI "
                             "(env PARTNER_APP_PUBLIC_URL; default http://HOST:PORT)")
    parser.add_argument("--flint-url", default=env("PARTNER_APP_FLINT_URL", "http://127.0.0.1:8000"),
                        help="Flint, as this server reaches it (env PARTNER_APP_FLINT_URL)")
    parser.add_argument("--flint-public-url", default=env("PARTNER_APP_FLINT_PUBLIC_URL"),
                        help="Flint, as browsers reach it (env PARTNER_APP_FLINT_PUBLIC_URL; default --flint-url)")
    parser.add_argument("--client-id", default=env("PARTNER_APP_CLIENT_ID"), help="fca_... (env PARTNER_APP_CLIENT_ID)")
    parser.add_argument("--client-secret", default=env("PARTNER_APP_CLIENT_SECRET"),
                        help="fcs_... (env PARTNER_APP_CLIENT_SECRET, preferred: argv shows in ps)")
    parser.add_argument("--webhook-secret", default=env("PARTNER_APP_WEBHOOK_SECRET"),
                        help="the app's whsec_... (env PARTNER_APP_WEBHOOK_SECRET, preferred)")
    parser.add_argument("--block-over", type=int, default=int(env("PARTNER_APP_BLOCK_OVER", BLOCK_OVER)),
                        help=f"block orders whose total exceeds this, in minor units (default {BLOCK_OVER})")
    args = parser.parse_args(argv)
    for name in ("client_id", "client_secret", "webhook_secret"):
        if not getattr(args, name):
            option = name.replace("_", "-")
            parser.error(f"--{option} (or PARTNER_APP_{name.upper()}) is needed")
    logging.basicConfig(level=env("PARTNER_APP_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_run(args))
    except (ValueError, OSError, TimeoutError, RuntimeError) as error:  # ValueError: a secret not whsec_...
        sys.exit(f"partner app: {error}")


if __name__ == "__main__":
    main()

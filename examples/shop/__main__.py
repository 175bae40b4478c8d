"""``python -m examples.shop``: run the demo shop against a Flint server.

    SHOP_SECRET_KEY=sk_test_... SHOP_WEBHOOK_SECRET=whsec_... \
        python -m examples.shop --flint-url http://127.0.0.1:8000 --port 8001
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .app import create_shop
from .server import connect_host, serve_shop, wait_listening
from .webhooks import check_secret


async def _run(args: argparse.Namespace) -> None:
    # Drop-off recovery on the shop's checkouts (docs/api.md 7): what `flint demo` asks for, and what the
    # shop's own tests (examples/shop/tests) need to recover a checkout the buyer left.
    recovery = {"enabled": True, "abandon_after": args.recovery_after} if args.recovery_after else None
    app = create_shop(args.flint_url, args.secret_key, args.flint_public_url, args.webhook_secret, recovery=recovery)
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
    host = connect_host(args.host)
    shown = f"[{host}]" if ":" in host else host
    print(f"shop listening on http://{shown}:{args.port}", flush=True)
    await serving


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.shop",
                                     description="A demo merchant shop that takes payments with Flint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--flint-url", default=os.environ.get("SHOP_FLINT_URL", "http://127.0.0.1:8000"),
                        help="Flint's API, as this server reaches it (env SHOP_FLINT_URL)")
    parser.add_argument("--flint-public-url", default=os.environ.get("SHOP_FLINT_PUBLIC_URL"),
                        help="Flint as buyers' browsers reach it (env SHOP_FLINT_PUBLIC_URL; default --flint-url)")
    parser.add_argument("--secret-key", default=os.environ.get("SHOP_SECRET_KEY"),
                        help="the merchant's secret key, sk_test_... (env SHOP_SECRET_KEY, preferred)")
    parser.add_argument("--webhook-secret", default=os.environ.get("SHOP_WEBHOOK_SECRET") or None,
                        help="the webhook endpoint's signing secret, whsec_... (env SHOP_WEBHOOK_SECRET, "
                             "preferred); without it POST /webhooks answers 503")
    parser.add_argument("--recovery-after", type=int, metavar="SECONDS",
                        default=os.environ.get("SHOP_RECOVERY_AFTER") or None,
                        help="ask Flint for drop-off recovery on every checkout: a payment link once the buyer "
                             "has been gone this long, 5 to 86400 (env SHOP_RECOVERY_AFTER; default: no recovery)")
    args = parser.parse_args(argv)
    if not args.secret_key:
        parser.error("a secret key is needed: --secret-key or SHOP_SECRET_KEY")
    if args.recovery_after is not None and not 5 <= args.recovery_after <= 86400:
        parser.error("--recovery-after must be between 5 and 86400 seconds")
    if args.webhook_secret:
        try:
            check_secret(args.webhook_secret)
        except ValueError as error:
            parser.error(str(error))
    logging.basicConfig(level=os.environ.get("SHOP_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_run(args))
    except (OSError, TimeoutError, RuntimeError) as error:
        sys.exit(f"shop: {error}")


if __name__ == "__main__":
    main()

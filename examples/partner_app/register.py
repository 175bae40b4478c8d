"""``python -m examples.partner_app.register``: register the partner app with Flint (``POST /v1/apps``)
under its developer's merchant account, and print the three secrets the app runs with (shown once).

    PARTNER_APP_DEVELOPER_KEY=sk_test_... python -m examples.partner_app.register \\
        --flint-url http://127.0.0.1:8000 --public-url http://127.0.0.1:8002

The body is ``registration(public_url)`` of app.py: scopes, webhooks, the hook and the checkbox the app
adds to its merchants' checkouts (``checkout_fields``).
"""
from __future__ import annotations

import argparse
import os
import sys

import httpx

from .app import registration


def main(argv: list[str] | None = None) -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m examples.partner_app.register",
                                     description="Register the demo partner app with Flint and print its secrets.")
    parser.add_argument("--flint-url", default=env("PARTNER_APP_FLINT_URL", "http://127.0.0.1:8000"),
                        help="Flint's API (env PARTNER_APP_FLINT_URL)")
    parser.add_argument("--public-url", default=env("PARTNER_APP_PUBLIC_URL", "http://127.0.0.1:8002"),
                        help="where the app will be reached (env PARTNER_APP_PUBLIC_URL)")
    parser.add_argument("--developer-key", default=env("PARTNER_APP_DEVELOPER_KEY"),
                        help="the developer merchant's secret key, sk_test_... (env PARTNER_APP_DEVELOPER_KEY, "
                             "preferred: argv shows in ps)")
    args = parser.parse_args(argv)
    if not args.developer_key:
        parser.error("--developer-key (or PARTNER_APP_DEVELOPER_KEY) is needed")
    try:
        answer = httpx.post(f"{args.flint_url.rstrip('/')}/v1/apps", json=registration(args.public_url),
                            headers={"Authorization": f"Bearer {args.developer_key}"}, timeout=10)
    except httpx.HTTPError as error:
        sys.exit(f"register: Flint could not be reached: {error}")
    if not answer.is_success:
        sys.exit(f"register: Flint refused the app ({answer.status_code}): {answer.text[:500]}")
    app = answer.json()
    print(f"registered {app['id']}; run the app with:", flush=True)
    print(f"PARTNER_APP_CLIENT_ID={app['client_id']}")
    print(f"PARTNER_APP_CLIENT_SECRET={app['client_secret']}")
    print(f"PARTNER_APP_WEBHOOK_SECRET={app['webhook_secret']}")


if __name__ == "__main__":
    main()

"""``flint demo``: everything for a first look, on SQLite: migrate, seed a demo merchant and its
webhook endpoint (all events, to the shop's ``/webhooks``), register a demo partner app with the
demo merchant as its developer and, on the first run, a week of activity for the console
(flint.demo_activity), then run Flint, the demo merchant shop (examples/shop), the partner app
(examples/partner_app) and a mail catcher (flint.demo_mail: Flint's email goes to a local SMTP server
whose page lists it), each on its own origin, in one process, and print the URLs, the console's
address and the login.

Email (docs/api.md 16): the demo merchant emails receipts, and the shop's checkouts ask for recovery by
email (abandoned after DEMO_ABANDON_AFTER seconds), so a buyer who gives the shop an email address and
leaves the checkout unpaid gets the recovery email, on the catcher's page, about a minute later."""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from flint import logs
from flint.config import Config

if TYPE_CHECKING:
    from flint.runtime import Runtime

DEMO_EMAIL = "demo@flint.test"
DEMO_PASSWORD = "flint-demo-password"
DEMO_NAME = "Demo Coffee Roasters"
DEMO_WEBHOOK_DESCRIPTION = "The demo shop (flint demo)"
DEMO_APP_NAME = "Risk Check (flint demo)"
DEMO_APP_SCOPES = ["orders:read", "payments:read", "events:read"]
# Where the demo's mail comes from (the display name is each mail's merchant's): a .test domain, which
# no mail leaves for (RFC 2606), since it all goes to the demo's own catcher anyway.
DEMO_MAIL_FROM = "mail@flint.test"
# The shop's checkouts count as dropped off after this long without the buyer: a minute, so that a first
# look sees its recovery email (a real shop waits longer: the API's default is 15 minutes).
DEMO_ABANDON_AFTER = 60
DEMO_RECOVERY = {"enabled": True, "email": True, "abandon_after": DEMO_ABANDON_AFTER}

log = logging.getLogger("flint.demo")


@dataclass(frozen=True)
class Seeded:
    merchant_id: str
    secret_key: str
    session_id: str
    client_token: str
    allowed_origins: tuple[str, ...]
    webhook_endpoint_id: str | None = None
    webhook_secret: str | None = None  # whsec_..., for the in-process shop; None: webhooks are off
    partner_app: PartnerApp | None = None  # None: no partner app this run
    installation_id: str | None = None  # the partner app's installation on the demo merchant, if any
    app_update_pending: bool = False  # that installation has an update waiting for the merchant's approval


@dataclass(frozen=True)
class PartnerApp:
    """The demo partner app's registration, with fresh secrets for the in-process app."""
    app_id: str
    client_id: str
    client_secret: str
    webhook_secret: str


def _url_host(host: str) -> str:
    """A host as it appears in a URL; wildcard binds are shown as loopback."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def shop_origins(host: str, shop_port: int) -> list[str]:
    """The shop's origins, as a browser may reach it: the bound host and localhost."""
    return sorted({f"http://{_url_host(host)}:{shop_port}", f"http://localhost:{shop_port}"})


async def _webhook_endpoint(rt: Runtime, merchant_id: str, url: str) -> tuple[str, str] | None:
    """The demo merchant's endpoint for every event at the shop's ``url``, and a secret for it:
    created on a first run; on a re-run the same endpoint (pointed at this run's shop, re-enabled
    if need be) with a rotated secret, since secrets are shown once and never read back. None when
    this Flint refuses the URL (production wants https and a public address): the demo then runs
    without webhooks."""
    from flint.errors import FlintError
    from flint.webhooks import service as webhooks

    mine: list = []
    after = None
    while True:
        endpoints, has_more = await webhooks.list_endpoints(rt, merchant_id, 100, after)
        mine += [e for e in endpoints if e.url == url or e.description == DEMO_WEBHOOK_DESCRIPTION]
        if not has_more or not endpoints:
            break
        after = endpoints[-1].id
    existing = next((e for e in mine if e.url == url), mine[0] if mine else None)
    try:
        if existing is None:
            endpoint, secret = await webhooks.create_endpoint(rt, merchant_id, url=url, events=["*"],
                                                              description=DEMO_WEBHOOK_DESCRIPTION)
            return endpoint.id, secret
        if existing.url != url or existing.status != "enabled" or existing.event_filters != ["*"]:
            await webhooks.update_endpoint(rt, merchant_id, existing.id, url=url, events=["*"], status="enabled")
        endpoint, secret = await webhooks.rotate_secret(rt, merchant_id, existing.id)
        return endpoint.id, secret
    except FlintError as error:
        log.warning("demo webhooks are off: %s: %s", error.code, error.detail)
        return None


async def _partner_app(rt: Runtime, developer_id: str, app_url: str, *, install: bool = False) -> PartnerApp | None:
    """The demo partner app, developed by the demo merchant: registered on a first run; on a re-run
    the same app (found by name), pointed at this run's app URL, with both its secrets rotated, since
    they are shown once and never read back. None when this Flint refuses the app's URLs (production
    wants https and a public address for webhooks and hooks): the demo then runs without it.

    ``install`` (the run that seeds the week): the demo merchant installs it too, for the console's
    Apps page. A new app is registered first as it was before its age check (read access and its
    webhooks), installed so, and then given its hook and checkout field: that change is a widening, so
    the installation shows an update waiting for approval (docs/api.md 12), and the demo's checkouts
    ask nothing more until the merchant approves it (on the console, or by clicking Install on the app)."""
    from examples.partner_app import CHECKOUT_FIELDS
    from flint.apps import service as apps
    from flint.demo_activity import install_app
    from flint.errors import FlintError
    from flint.oauth.service import active_installation, follow_app_change

    # The age checkbox it adds to every checkout of the merchants who install it, checked in its hook.
    reading = {"redirect_uris": [f"{app_url}/callback"], "webhook_url": f"{app_url}/webhooks",
               "webhook_events": ["order.*", "payment.*"]}
    settings = {**reading, "hook_url": f"{app_url}/hook", "hooks": ["checkout.before_payment"],
                "checkout_fields": CHECKOUT_FIELDS}
    existing = None
    after = None
    while existing is None:
        page, has_more = await apps.list_apps(rt, developer_id, 100, after)
        existing = next((a for a in page if a.name == DEMO_APP_NAME), None)
        if not has_more or not page:
            break
        after = page[-1].id
    try:
        if existing is None:
            app, client_secret, webhook_secret = await apps.create_app(
                rt, developer_id, name=DEMO_APP_NAME, scopes=DEMO_APP_SCOPES, description=(
                    "A demo partner app (examples/partner_app): asks buyers to confirm they are 18 or older, "
                    "blocks orders over $500.00 and gives the others a risk score."), **reading)
            if install:
                await install_app(rt, app, developer_id)
            app = await apps.update_app(rt, developer_id, app.id, settings, follow_app_change)
        else:
            # Installations made by an earlier run keep their webhook endpoint at the URL of that run.
            # The demo's own app on the demo's own merchant: a re-seed changes it as its developer
            # would, and the demo merchant's installation follows (widenings wait for approval).
            await apps.update_app(rt, developer_id, existing.id, settings, follow_app_change)
            _, client_secret = await apps.rotate_client_secret(rt, developer_id, existing.id)
            app, webhook_secret = await apps.rotate_webhook_secret(rt, developer_id, existing.id)
            if install and await active_installation(rt, app.id, developer_id) is None:
                await install_app(rt, app, developer_id)  # an older demo database: installed as it is now
    except FlintError as error:
        log.warning("the demo partner app is off: %s: %s", error.code, error.detail)
        return None
    return PartnerApp(app.id, app.client_id, client_secret, webhook_secret)


async def seed(config: Config, origins: list[str], shop_url: str, app_url: str | None = None, *,
               past_week: bool = False) -> Seeded:
    """Idempotent: a first run creates the demo merchant, its webhook endpoint and (with
    ``app_url``) the demo partner app, and seeds a week of activity (flint.demo_activity: orders, a
    failing webhook endpoint, the app installed); a re-run makes sure the shop's origins are allowed
    and the endpoint and app are there, and makes a fresh secret key, webhook secret and app secrets
    (all are shown once, never read back), and adds no second week.

    ``past_week``: the first run's merchant joined a week ago and its week is spread over the seven
    days before today and today's first hours, made on this process's clock moved back and put back
    exactly as it was before this returns (flint.demo_activity.WeekClock). Only for a database no
    running Flint serves meanwhile, as run_demo's, which seeds before it serves; otherwise the week
    happens now."""
    from flint import demo_activity
    from flint.actors import Actor
    from flint.checkout import service as checkout
    from flint.db.migrate import migrate
    from flint.errors import FlintError
    from flint.merchants import service as merchants
    from flint.merchants import store as merchant_store
    from flint.oauth import service as oauth
    from flint.orders.models import LineItem, NewOrder
    from flint.runtime import Runtime

    rt = await Runtime.start(config)
    # (past_week: the clock, moved back below, is put back whatever happens, in the finally: run_demo's
    # server, in this same process, must never run on a moved clock)
    week_clock = demo_activity.WeekClock() if past_week else None
    try:
        await migrate(rt.db)
        async with rt.db.read() as conn:
            existing = await merchant_store.select_merchant_by_email(conn, DEMO_EMAIL)
        if existing is None:
            if week_clock:
                week_clock.begin()  # the demo merchant joined Flint a week ago, before its first order
            merchant, secret = await merchants.create_merchant(
                rt, name=DEMO_NAME, email=DEMO_EMAIL, password=DEMO_PASSWORD, origins=origins)
        else:
            # Keep any origin added since, and add this run's shop origins (its port may differ).
            current = json.loads(existing.allowed_origins or "[]")
            merchant = await merchants.update_merchant(rt, existing.id, origins=sorted(set(current) | set(origins)))
            _, secret = await merchants.create_key(rt, merchant.id)
        # Before the checkout below, so its events (order.created, ...) reach the shop too.
        webhook = await _webhook_endpoint(rt, merchant.id, f"{shop_url}/webhooks")
        # The week, once: not when it is there already, nor on a demo merchant that installed apps
        # before (a database of an older demo: their hooks and fields would change its checkouts).
        week = not await demo_activity.week_seeded(rt, merchant.id) and not any(
            i.status == "active" for i in (await oauth.list_installations(rt, merchant.id, 100, None))[0])
        if week:
            if week_clock:
                week_clock.begin()  # (begun already on a first run)
            try:
                await demo_activity.failing_endpoint(rt, merchant.id, shop_url)  # first: it hears the week
            except FlintError as error:
                log.warning("the demo's failing webhook endpoint is off: %s: %s", error.code, error.detail)
            await demo_activity.seed_week(rt, merchant.id, shop_url, week_clock)
        if week_clock:
            week_clock.end()  # real time again: the app's install and the open checkout below are now
        # Receipts by email from now on (after the week: its orders were paid long ago and get none).
        merchant = await merchants.update_merchant(rt, merchant.id, receipts=True)
        # After the week: the app's endpoint hears its install, not the week's orders.
        partner = await _partner_app(rt, merchant.id, app_url, install=week) if app_url else None
        installation = await oauth.active_installation(rt, partner.app_id, merchant.id) if partner else None
        # An open hosted checkout for the buyer curl below; it returns to the shop's success page.
        session = await checkout.create_session(rt, merchant.id, checkout.NewSession(
            mode="hosted", success_url=f"{shop_url}/success?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{shop_url}/",
            inline_order=NewOrder(currency="usd", line_items=[LineItem("Espresso beans 1 kg", 1, 2400)])),
            Actor("merchant", merchant.id))
        shown = checkout.present(rt, session)
        return Seeded(merchant.id, secret, shown["id"], shown["client_token"],
                      tuple(json.loads(merchant.allowed_origins)),
                      webhook_endpoint_id=webhook[0] if webhook else None,
                      webhook_secret=webhook[1] if webhook else None, partner_app=partner,
                      installation_id=installation.id if installation else None,
                      app_update_pending=bool(installation and installation.pending))
    finally:
        if week_clock:
            week_clock.end()
        await rt.stop()


def _check_port_free(host: str, port: int) -> None:
    """Fail early and plainly when a port is taken, before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Hypercorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "is already in use" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
            sys.exit(f"flint demo: {host}:{port} {reason}; choose another with --port / --shop-port / --app-port.")


def _banner(config: Config, seeded: Seeded, shop_url: str, app_url: str, log_path: Path,
            mail_url: str | None = None) -> str:
    flint = config.public_url
    mail = ""
    if mail_url:
        mail = (f"\n  Mail:          {mail_url}/\n"
                f"      the email Flint sent (receipts, recovery emails, payment links), caught by a local SMTP\n"
                f"      server ({config.smtp_url}): nothing leaves this machine. Give the shop your email and\n"
                f"      leave its checkout unpaid: about a minute later its recovery email is there.")
    if seeded.webhook_endpoint_id:
        webhooks = (f"{shop_url}/webhooks\n      the events Flint signed and sent to the shop "
                    f"(endpoint {seeded.webhook_endpoint_id}, all events), as the shop verified them.")
    else:
        webhooks = f"off (this Flint refused {shop_url}/webhooks as a webhook URL)"
    if seeded.partner_app:
        partner = (f"{app_url}/\n      Risk Check, a demo partner app (app {seeded.partner_app.app_id}): "
                   f"sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}, then click Install.\n"
                   f"      Installed, it asks buyers to confirm they are 18 or older, blocks orders over\n"
                   f"      $500.00 and gives the others a risk score.")
        if seeded.installation_id and seeded.app_update_pending:
            partner += ("\n      The demo merchant has an earlier version installed (the console's Apps), and its age\n"
                        "      check waits there as an update to approve (Install approves it too).")
        elif seeded.installation_id:
            partner += "\n      The demo merchant has it installed (the console's Apps); Install gives the app its tokens."
    else:
        partner = f"off (this Flint refused {app_url} for the app's webhooks and hook)"
    return f"""
Flint demo is running.

  Open this in a browser: {shop_url}/
      {DEMO_NAME}, a demo merchant shop on its own origin, paying with Flint's embedded checkout.
  Console:       {flint}/dashboard
      sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}: the demo merchant's week of orders (paid,
      declined, refunded, recovered), payment links, webhooks (one endpoint failing) and installed apps.
  Webhooks:      {webhooks}
  Partner app:   {partner}{mail}
  Flint:         {flint}
  Merchant:      {seeded.merchant_id} (login {DEMO_EMAIL} / {DEMO_PASSWORD})
  Secret key:    {seeded.secret_key}
  API reference: {flint}/v1/openapi.json (and docs/api.md)
  Logs:          {log_path} (one JSON line per request)

List your orders:
  curl -s {flint}/v1/orders -H "Authorization: Bearer {seeded.secret_key}"

Pay the demo checkout {seeded.session_id} as a buyer would (its client_token is the buyer's credential):
  curl -s {flint}/v1/checkout/sessions/{seeded.session_id}/confirm -H "Authorization: Bearer {seeded.client_token}" \\
    -H "Content-Type: application/json" \\
    -d '{{"card": {{"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}}}'

Press Ctrl+C to stop the servers.
"""


async def _run(config: Config, host: str, port: int, shop_port: int, seeded: Seeded, shop_url: str,
               app_port: int, app_url: str, log_path: Path, mail_port: int) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config as HypercornConfig

    from examples.partner_app import create_partner_app
    from examples.shop import create_shop, serve_shop, wait_listening
    from flint.app import create_app
    from flint.demo_mail import MailCatcher, create_catcher_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    # The shop and the partner app call Flint's API where this process listens; browsers load the
    # widget and the consent page from Flint's public URL. They start first: Flint's delivery worker
    # starts with Flint and sends the seeded checkout's events at once (a refused first attempt would
    # wait for its retry).
    flint_api = f"http://{_url_host(host)}:{port}"
    shop = create_shop(flint_api, seeded.secret_key, config.public_url, webhook_secret=seeded.webhook_secret,
                       recovery=DEMO_RECOVERY)
    started = [(asyncio.create_task(serve_shop(shop, host, shop_port, stop.wait)), shop_port)]
    # The mail catcher: its SMTP server on a loopback port of its own (Flint sends there), its page beside
    # the shop. Started before Flint, whose mail worker connects at once.
    catcher = await MailCatcher().start()
    config = replace(config, smtp_url=catcher.url, mail_from=DEMO_MAIL_FROM)
    started.append((asyncio.create_task(serve_shop(create_catcher_app(catcher), host, mail_port, stop.wait)), mail_port))
    mail_url = f"http://{_url_host(host)}:{mail_port}"
    if seeded.partner_app:
        partner = create_partner_app(flint_api, seeded.partner_app.client_id, seeded.partner_app.client_secret,
                                     seeded.partner_app.webhook_secret, public_url=app_url,
                                     flint_public_url=config.public_url)
        started.append((asyncio.create_task(serve_shop(partner, host, app_port, stop.wait)), app_port))
    try:
        for task, task_port in started:
            await wait_listening(host, task_port, serving=task)
    except BaseException:
        stop.set()
        await asyncio.gather(*(task for task, _ in started), return_exceptions=True)
        await catcher.stop()
        raise

    hyper = HypercornConfig()
    hyper.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hyper.accesslog = None  # Flint's own structured request log replaces it
    hyper.errorlog = logging.getLogger("hypercorn.error")
    hyper.graceful_timeout = 5
    flint_task = asyncio.create_task(serve(create_app(config), hyper, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    tasks = (flint_task, *(task for task, _ in started))
    try:
        await wait_listening(host, port, serving=flint_task)
    except BaseException:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await catcher.stop()
        raise
    print(_banner(config, seeded, shop_url, app_url, log_path, mail_url), flush=True)

    # All stop on SIGINT/SIGTERM; if one server ends on its own, stop the others too.
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await catcher.stop()  # after Flint: its mail worker's last sends still land
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def _examples_present() -> bool:
    """The demo shop and partner app live in the source checkout's examples/, which the wheel does not
    carry (they are examples to read, not part of Flint). From a checkout (an editable install, where
    the package is server/), the checkout's root is where they are imported from."""
    import importlib.util

    from flint import datafiles

    checkout = datafiles.PACKAGE.parent
    if (checkout / "examples" / "shop").is_dir() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("examples.shop", "examples.partner_app"))
    except ModuleNotFoundError:  # no `examples` package at all
        return False


def _mail_port(host: str, taken: set[int], preferred: int) -> int:
    """The mail catcher page's port: ``preferred`` (the partner app's + 1, 8003 by default) when it is
    free, else one the system picks (the banner names it either way)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in (preferred, 0):
        if candidate in taken or candidate > 65535:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Hypercorn binds
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return probe.getsockname()[1]
    sys.exit(f"flint demo: no free port for the mail catcher's page on {host}.")


def run_demo(config: Config, host: str, port: int, shop_port: int = 8001, app_port: int = 8002) -> None:
    if not _examples_present():
        sys.exit("flint demo: the demo shop and partner app come with the source checkout (examples/); from a "
                 "clone of Flint run `make demo`. An installed Flint serves with `flint serve`.")
    if len({port, shop_port, app_port}) < 3:
        sys.exit("flint demo: Flint, the shop and the partner app need different ports "
                 "(--port, --shop-port, --app-port).")
    if "FLINT_PUBLIC_URL" not in os.environ:
        config = replace(config, public_url=f"http://{_url_host(host)}:{port}")
    for taken in (port, shop_port, app_port):
        _check_port_free(host, taken)
    mail_port = _mail_port(host, {port, shop_port, app_port}, app_port + 1)
    shop_url = f"http://{_url_host(host)}:{shop_port}"
    app_url = f"http://{_url_host(host)}:{app_port}"
    # The terminal is for people: the URLs and the login. Request logs (one JSON line each) go to a
    # file beside the demo's database, which the banner names.
    log_path = demo_log_path(config)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("a", encoding="utf-8", buffering=1)
    logs.configure(config.log_level, stream=log_file)
    # Seeded before this demo serves the database: its week can be spread over the past (see seed).
    # Seeded without mail (the week's orders were paid long ago); the demo then serves with its catcher.
    seeded = asyncio.run(seed(replace(config, smtp_url=None, mail_from=None), shop_origins(host, shop_port), shop_url,
                              app_url, past_week=True))
    try:
        asyncio.run(_run(config, host, port, shop_port, seeded, shop_url, app_port, app_url, log_path, mail_port))
    except (OSError, TimeoutError, RuntimeError) as error:
        sys.exit(f"flint demo: {error} (the log: {log_path})")
    finally:
        log_file.close()


def demo_log_path(config: Config) -> Path:
    """var/flint-demo.log, or beside the SQLite database the demo runs on."""
    folder = config.sqlite_path().parent if config.database_url.startswith("sqlite:///") else Path("var")
    return folder / "flint-demo.log"

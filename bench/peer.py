"""The peer: localstripe (the runnable Python payments API) taking the same paid checkouts as Flint's
``checkout`` scenario, through the same load generator, in the same run (issue 19: Flint >= 20x).

Run by ``python -m bench.run`` after the load scenarios and the widget, once the load server has stopped
(``--peer-only`` / ``--no-peer``); see bench/README.md.

localstripe (a test-time tool, GPL-3.0) runs as a process of its own, started here exactly as
tests/processors/conftest.py starts it: its aiohttp app on a free 127.0.0.1 port, from the bench's Python.
Flint never imports it; neither does this module (it is a ``-c`` script in that process).

One checkout is what a Stripe integration sends localstripe for a card payment, back to back on one
keep-alive connection, form-encoded as Stripe's API is:

1. ``POST /v1/payment_methods`` ``type=card`` and the success card (4242..., as Flint's confirm gets it):
   what Stripe.js sends from the buyer's page;
2. ``POST /v1/payment_intents`` ``amount``, ``currency``, ``payment_method=<pm id from 1>``, ``confirm=true``:
   the PaymentIntent created and confirmed in one call.

Two requests, as Flint's create + confirm. On Stripe itself the browser would confirm the intent with the
card inline (``payment_method_data``), but localstripe refuses both that and ``payment_method`` on
``/confirm`` (400 "Unexpected", 500 "Not implemented"); PaymentMethod first, then create-and-confirm, is the
cheapest card-carrying checkout it accepts, so the ratio is the least favourable to Flint. Every request
uses the secret key (localstripe accepts a publishable key only on a few routes).

A checkout counts when the PaymentIntent's answer arrives inside the window with ``status`` "succeeded".
localstripe keeps its objects in memory and pickles the whole store to /tmp/localstripe.pickle after every
write (its only persistence; no fsync), so its cost per checkout grows with the objects it holds: it starts
empty here, and ``checkouts_held_at_end`` says how many it held by the end.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from support.localstripe import LocalStripe

from . import harness
from .harness import INLINE_ORDER, SUCCESS_CARD

GOAL_RATIO = 20.0
SECRET_KEY = "sk_test_flint_bench_peer"
# The card as Stripe.js posts it, and the order's total as the PaymentIntent's amount.
PAYMENT_METHOD_FORM = urlencode({
    "type": "card", "card[number]": SUCCESS_CARD["number"], "card[exp_month]": SUCCESS_CARD["exp_month"],
    "card[exp_year]": SUCCESS_CARD["exp_year"], "card[cvc]": SUCCESS_CARD["cvc"]}).encode()
AMOUNT = sum(item["quantity"] * item["unit_amount"] for item in INLINE_ORDER["line_items"])
PAYMENT_INTENT_FORM = (urlencode({"amount": AMOUNT, "currency": INLINE_ORDER["currency"], "confirm": "true"})
                       + "&payment_method={pm}").encode()
PAYMENT_METHOD_ID = rb'"id"\s*:\s*"(pm_\w+)"'
FORM = "application/x-www-form-urlencoded"

def _check_intent(body: bytes) -> str | None:
    try:
        intent = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:200]!r}"
    if intent.get("object") != "payment_intent" or intent.get("status") != "succeeded":
        return f"payment intent {intent.get('status')!r}: {body[:300]!r}"
    return None


def run(tmp: Path, *, flint_checkout: dict | None, connections: int, workers: int, warmup: float, duration: float,
        timeout: float, log: Callable[[str], None] = print) -> dict:
    peer = LocalStripe(tmp, SECRET_KEY)
    notes: list[str] = []
    try:
        host = f"127.0.0.1:{peer.port}"
        first = harness.http_request("POST", "/v1/payment_methods", host, token=SECRET_KEY, body=PAYMENT_METHOD_FORM,
                                     headers={"Content-Type": FORM})
        intent = harness.chained_request("POST", "/v1/payment_intents", host, token=SECRET_KEY, content_type=FORM,
                                         body=PAYMENT_INTENT_FORM)
        chain = [harness.Step("payment_method", capture={"pm": PAYMENT_METHOD_ID}),
                 harness.Step("payment_intent", request=intent)]
        generator = harness.LoadGenerator([peer.port], connections=connections, workers=workers)
        window: dict = {}

        def during(moment: str) -> None:
            if moment == "measure":
                window["cpu"] = harness.CpuWindow({"server": [peer.process.pid], "client": generator.pids})
            elif moment == "end":
                window["split"] = window["cpu"].split()

        log(f"peer: localstripe (pid {peer.process.pid}) PaymentMethod + PaymentIntent create-and-confirm, "
            f"{warmup:g} s warm-up + {duration:g} s at {connections} connections")
        try:
            raw = generator.run([first], cyclic=True, warmup=warmup, duration=duration, timeout=timeout,
                                keep_bodies=True, during=during, chain=chain)
        finally:
            generator.close()
        row = harness.phase_row("localstripe_checkout", raw, window.get("split"), _check_intent, per_unit=len(chain))
        row["unit"] = ("POST /v1/payment_methods (card) + POST /v1/payment_intents (payment_method, confirm=true), "
                       "back to back on one connection")
        # What localstripe held (and pickled on each write) by the end: every checkout it took, warm-up included.
        counts = harness.tally(raw, _check_intent)
        row["checkouts_held_at_end"] = counts["warmup_ok"] + counts["requests"] + counts["after_window_ok"]
        if note := harness.noise_note("peer (during the window)", row.get("cpu", {})):
            notes.append(note)
    finally:
        peer.stop()
    flint = (flint_checkout or {}).get("rps")
    ratio = round(flint / row["rps"], 2) if flint and row["rps"] else None
    if flint_checkout is None:
        notes.append("peer: Flint's checkout scenario did not run in this benchmark, so there is no ratio "
                     "(run it with the load scenarios: no --peer-only, checkout in --scenarios)")
    if row["errors_total"]:
        notes.append(f"peer: {row['errors_total']} localstripe errors ({row['error_kinds']})")
    out = {
        "config": {"peer": "localstripe (pip), its own process on 127.0.0.1", "connections": connections,
                   "client_workers": workers, "warmup_s": warmup, "duration_s": duration,
                   "unit": row["unit"], "amount": AMOUNT, "currency": INLINE_ORDER["currency"]},
        "localstripe": row,
        "flint_checkout_per_s": flint,
        "flint_over_localstripe": ratio,
        "notes": notes,
    }
    out["goals"] = goals_for(out)
    return out


def goals_for(out: dict) -> dict:
    ratio = out.get("flint_over_localstripe")
    row = out.get("localstripe") or {}
    return {
        f"peer_flint_checkout_ge_{int(GOAL_RATIO)}x_localstripe": {
            "target_ratio": GOAL_RATIO, "actual_ratio": ratio, "flint_checkout_per_s": out.get("flint_checkout_per_s"),
            "localstripe_checkout_per_s": row.get("rps"), "localstripe_errors": row.get("errors_total"),
            "pass": ratio is not None and ratio >= GOAL_RATIO and row.get("errors_total") == 0,
        },
    }


def report(out: dict) -> str:
    if out.get("error"):
        return f"peer: failed: {out['error']}"
    row = out["localstripe"]
    cpu = row.get("cpu") or {}
    return "\n".join([
        f"peer: localstripe, {row['unit']}; {out['config']['connections']} connections, same load generator",
        (f"  localstripe {row['rps']} checkouts/s ({row.get('http_rps')} requests/s), p50 {row['p50_ms']} ms, "
         f"p90 {row['p90_ms']} ms, p99 {row['p99_ms']} ms, errors {row['errors_total']}; server CPU "
         f"{cpu.get('server_cpu_ms_per_request')} ms per checkout ({cpu.get('server_cores')} cores), client "
         f"{cpu.get('client_cpu_ms_per_http_request')} ms per HTTP request"),
        (f"  Flint checkout (this run) {out['flint_checkout_per_s']}/s -> Flint / localstripe = "
         f"{out['flint_over_localstripe']}x (goal >= {GOAL_RATIO:g}x)" if out["flint_over_localstripe"] is not None
         else f"  no ratio: Flint's checkout did not run in this benchmark (goal >= {GOAL_RATIO:g}x)"),
    ])

"""The embedded widget's part of the benchmark (issue 4): what a buyer's browser downloads, and how long
the widget takes to be ready in real Chromium. Called by ``bench.run`` against its own ``flint serve``.

Sizes (no browser): the loader ``/widget/v1/flint.js``; the card frame as served for a real embedded
session (``/widget/v1/frame/{id}``: HTML with its CSS inline) plus every script and stylesheet that
page loads from Flint (``frame.js``); and, as context, the hosted checkout page ``/checkout/{id}``.
Each file is gzipped at level 9 on its own and the parts are summed.

Ready time (Playwright's sync API driving Debian's Chromium, headless): a merchant page on the shop of
support/shop.py (``http://localhost:PORT``, another origin and site than Flint on ``127.0.0.1``, listed in
the merchant's ``allowed_origins``) with

    <script>window.__t0 = performance.now()</script>
    <script src="{FLINT}/widget/v1/flint.js" data-client-token="..." data-target="#checkout"></script>

The measured tag is a classic (blocking) one, so ``__t0`` is taken when the parser reaches the tag,
before the loader is downloaded: the time counts the loader's download, its run, the client-session
call (CORS preflight + GET), the frame's document, ``frame.js``, the hello/init/ready handshake, up
to the ``flint:ready`` DOM event (``performance.now()`` in a document listener). Each run gets a
fresh checkout session and a fresh page, in two conditions:

- ``cold``: a new browser context per run (empty HTTP cache, no open connections, no cached
  preflight): a buyer's first checkout. The goal applies to this one.
- ``warm``: one context kept across runs (flint.js, frame.js and the preflight answer cached,
  connections maybe reused): a returning buyer.

Baseline, same conditions and as many runs, interleaved with the widget's: a script that takes
``__t0`` and inserts a plain iframe of a trivial document on Flint's origin
(``/widget/v1/manifest.json``; ``/healthz`` refuses to be framed), up to that iframe's ``load``.
One cross-origin frame load on the same browser, server and machine; the ratio is widget / baseline.
"""
from __future__ import annotations

import gzip
import html
import json
import os
import re
import time
import urllib.parse
from typing import Any, Callable

from support.browser import CHROMIUM, CHROMIUM_ARGS, CONTEXT_OPTIONS

from . import harness
from .harness import median, percentile

LOADER_GZIP_LIMIT = 4 * 1024   # flint.js, gzipped
FRAME_GZIP_LIMIT = 15 * 1024   # the frame's HTML (CSS inline) + its scripts/styles, each gzipped
READY_MEDIAN_GOAL_MS = 300.0   # script tag -> flint:ready, median, cold, on localhost

ORDER = {"currency": "usd", "line_items": [{"name": "Bench beans", "quantity": 1, "unit_amount": 2400}]}
BASELINE_PATH = "/widget/v1/manifest.json"
READY_TIMEOUT_MS = 12_000  # per run; the loader itself falls back after 8 s

# The points of a widget run, in the order they should happen (ms on the merchant page's clock).
POINTS = ("t0", "loader_ran", "dom_content_loaded", "client_call_start", "client_call_end", "frame_nav_start",
          "frame_first_byte", "frame_received", "frame_js_requested", "frame_js_received", "frame_parsed", "hello",
          "ready_msg", "flint_ready")
STAGES = {  # stage -> (from point, to point, what it is)
    "loader_run": ("t0", "loader_ran", "flint.js runs (its download too, unless the preload scanner had it already)"),
    "wait_dom_ready": ("loader_ran", "dom_content_loaded", "the page's DOMContentLoaded (the loader mounts then)"),
    "mount": ("dom_content_loaded", "client_call_start", "Flint.mount up to the client-session call"),
    "client_session_call": ("client_call_start", "client_call_end",
                            "GET /v1/checkout/sessions/client (a CORS preflight first when not cached)"),
    "frame_insert": ("client_call_end", "frame_nav_start", "JSON parsed, iframe inserted, its navigation starts"),
    "frame_server": ("frame_nav_start", "frame_first_byte", "frame document requested, first byte back"),
    "frame_body": ("frame_first_byte", "frame_received", "rest of the frame document"),
    "frame_commit": ("frame_received", "frame_js_requested",
                     "frame document committed (in a renderer for Flint's site) until frame.js is requested"),
    "frame_js_fetch": ("frame_js_requested", "frame_js_received", "frame.js requested and received"),
    "frame_js_run": ("frame_js_received", "frame_parsed",
                     "frame.js checked (SRI), compiled and run (it posts hello), the frame's parsing ends"),
    "hello_delivery": ("frame_parsed", "hello", "the hello message reaches the loader (can be ~0 or slightly < 0)"),
    "handshake": ("hello", "ready_msg", "init to the frame, ready back"),
    "dispatch": ("ready_msg", "flint_ready", "the loader fires flint:ready"),
}

# Installed before anything else on every bench page: records flint:* events and the first time
# each message type of the widget's envelope reaches the page.
PROBE = """<script>
window.__b = {marks: {}, events: []};
window.addEventListener("message", function (e) {
  var d = e.data;
  if (d && d.ns === "flint" && typeof d.type === "string" && !(d.type in __b.marks)) __b.marks[d.type] = performance.now();
});
document.addEventListener("load", function (e) {  // a script's load event: it has just run
  if (e.target.tagName === "SCRIPT" && /\/widget\/v1\/flint\.js/.test(e.target.src) && !__b.loaderRan) __b.loaderRan = performance.now();
}, true);
["flint:ready", "flint:fallback", "flint:error"].forEach(function (name) {
  document.addEventListener(name, function (e) { __b.events.push({type: name, t: performance.now(), detail: e.detail}); });
});
</script>"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bench checkout</title></head>
<body>
%s
<h1>Checkout</h1>
<div id="checkout"></div>
%s
</body></html>
"""

PARENT_JS = """() => {
  const all = performance.getEntriesByType("resource");
  const pick = (part) => {
    const e = all.find((r) => r.name.includes(part));
    return e ? {start: e.startTime, end: e.responseEnd, transfer: e.transferSize} : null;
  };
  const nav = performance.getEntriesByType("navigation")[0];
  return {t0: window.__t0, origin: performance.timeOrigin, marks: window.__b.marks, events: window.__b.events,
          loaderRan: window.__b.loaderRan || null, dcl: nav ? nav.domContentLoadedEventStart : null,
          loader: pick("/widget/v1/flint.js"), client: pick("/v1/checkout/sessions/client"),
          frame: pick("/widget/v1/frame/")};
}"""

FRAME_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const js = performance.getEntriesByType("resource").find((r) => r.name.includes("/widget/v1/frame.js"));
  return {origin: performance.timeOrigin,
          nav: nav ? {responseStart: nav.responseStart, responseEnd: nav.responseEnd, domInteractive: nav.domInteractive} : null,
          js: js ? {start: js.startTime, end: js.responseEnd, transfer: js.transferSize} : null};
}"""


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------

def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _stats(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"runs": len(ordered), "median_ms": _r(median(ordered)), "p90_ms": _r(percentile(ordered, 90)),
            "min_ms": _r(ordered[0] if ordered else None), "max_ms": _r(ordered[-1] if ordered else None),
            "samples_ms": [_r(v) for v in values]}


def _api(method: str, url: str, token: str, body: Any = None) -> dict:
    status, raw = harness.fetch(method, url, token, body)
    if not 200 <= status < 300:
        raise RuntimeError(f"{method} {url} -> {status}: {raw[:300]!r}")
    return json.loads(raw)


def _gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


# ----------------------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------------------

def _subresources(page: bytes) -> list[tuple[str, str]]:
    """(kind, reference) of every script and stylesheet a page loads itself."""
    found = []
    for tag in re.findall(rb"<(?:script|link)\b[^>]*>", page, re.I):
        if tag[:7].lower() == b"<script":
            src = re.search(rb'\bsrc="([^"]+)"', tag)
            if src:
                found.append(("script", html.unescape(src.group(1).decode())))
        elif re.search(rb'\brel="?[^">]*stylesheet', tag, re.I):
            href = re.search(rb'\bhref="([^"]+)"', tag)
            if href:
                found.append(("stylesheet", html.unescape(href.group(1).decode())))
    return found


def measure_sizes(flint: str, secret: str, success_url: str) -> dict:
    session = _api("POST", f"{flint}/v1/checkout/sessions", secret,
                   {"order": ORDER, "mode": "embedded", "success_url": success_url})
    status, loader = harness.fetch("GET", f"{flint}/widget/v1/flint.js")  # urllib asks for no gzip: raw bytes
    if status != 200:
        raise RuntimeError(f"GET /widget/v1/flint.js -> {status} (is the widget built? `make widget`)")
    status, frame_html = harness.fetch("GET", f"{flint}/widget/v1/frame/{session['id']}")
    if status != 200:
        raise RuntimeError(f"GET /widget/v1/frame/{session['id']} -> {status}: {frame_html[:300]!r}")
    # Everything the frame page itself loads: scripts and stylesheets, on Flint or elsewhere.
    parts = [{"name": "html", "what": "frame document (HTML, CSS inline)", "path": f"/widget/v1/frame/{session['id']}",
              "bytes": len(frame_html), "gzip_bytes": _gz(frame_html)}]
    external = []
    for kind, ref in _subresources(frame_html):
        url = urllib.parse.urljoin(flint + "/", ref)
        if not url.startswith(flint + "/"):
            external.append(url)
            continue
        status, body = harness.fetch("GET", url)
        if status != 200:
            raise RuntimeError(f"GET {url} (loaded by the frame) -> {status}")
        parts.append({"name": urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1], "what": kind,
                      "path": url[len(flint):], "bytes": len(body), "gzip_bytes": _gz(body)})
    inline_css = sum(len(m) for m in re.findall(rb"<style\b[^>]*>(.*?)</style>", frame_html, re.S | re.I))
    status, hosted_html = harness.fetch("GET", f"{flint}/checkout/{session['id']}")
    if status != 200:
        raise RuntimeError(f"GET /checkout/{session['id']} -> {status}")
    frame_total = sum(p["gzip_bytes"] for p in parts)
    hosted_gz = _gz(hosted_html)
    return {
        "loader": {"path": "/widget/v1/flint.js", "bytes": len(loader), "gzip_bytes": _gz(loader),
                   "limit_bytes": LOADER_GZIP_LIMIT},
        "frame": {"parts": parts, "inline_css_bytes": inline_css, "external_refs": external,
                  "gzip_bytes": frame_total, "limit_bytes": FRAME_GZIP_LIMIT},
        "hosted_page": {"path": "/checkout/{id}", "bytes": len(hosted_html), "gzip_bytes": hosted_gz,
                        "frame_gzip_to_hosted_gzip": round(frame_total / hosted_gz, 2) if hosted_gz else None},
        "gzip": "each file on its own, gzip level 9",
    }


# ----------------------------------------------------------------------------------------------
# Ready time in Chromium
# ----------------------------------------------------------------------------------------------

def _widget_page(flint: str, token: str, *, blocking: bool = True) -> str:
    tag = (f'<script src="{flint}/widget/v1/flint.js" data-client-token="{html.escape(token)}" '
           f'data-target="#checkout"{"" if blocking else " async"}></script>')
    return PAGE % (PROBE, "<script>window.__t0 = performance.now()</script>\n" + tag)


def _baseline_page(flint: str) -> str:
    script = ("<script>window.__t0 = performance.now();\n"
              "var f = document.createElement('iframe'); f.title = 'baseline';\n"
              "f.addEventListener('load', function () { __b.events.push({type: 'load', t: performance.now()}); });\n"
              f"f.src = {json.dumps(flint + BASELINE_PATH)};\n"
              "document.getElementById('checkout').appendChild(f);</script>")
    return PAGE % (PROBE, script)


def _points(parent: dict, frame: dict | None) -> dict[str, float | None]:
    """The run's points in ms after t0, on the merchant page's clock (the frame's own timings are
    moved onto it through the two documents' timeOrigin)."""
    t0 = parent["t0"]
    marks = parent["marks"]
    ready = next((e["t"] for e in parent["events"] if e["type"] == "flint:ready"), None)
    points: dict[str, float | None] = dict.fromkeys(POINTS)
    points["t0"] = t0
    points["loader_ran"] = parent["loaderRan"]
    points["dom_content_loaded"] = parent["dcl"] or None
    if parent["client"]:
        points["client_call_start"] = parent["client"]["start"]
        points["client_call_end"] = parent["client"]["end"]
    if frame and frame.get("nav"):
        shift = frame["origin"] - parent["origin"]
        points["frame_nav_start"] = shift
        points["frame_first_byte"] = shift + frame["nav"]["responseStart"]
        points["frame_received"] = shift + frame["nav"]["responseEnd"]
        points["frame_parsed"] = shift + frame["nav"]["domInteractive"] if frame["nav"]["domInteractive"] else None
        if frame.get("js"):
            points["frame_js_requested"] = shift + frame["js"]["start"]
            points["frame_js_received"] = shift + frame["js"]["end"]
    elif parent["frame"]:  # the iframe's entry in the page's own timeline (no first-byte detail)
        points["frame_nav_start"] = parent["frame"]["start"]
        points["frame_received"] = parent["frame"]["end"]
    points["hello"] = marks.get("hello")
    points["ready_msg"] = marks.get("ready")
    points["flint_ready"] = ready
    # Not in the chain: when flint.js was requested (the preload scanner usually asks before t0).
    points["loader_requested"] = parent["loader"]["start"] if parent["loader"] else None
    return {k: (None if v is None else v - t0) for k, v in points.items()}


class _Runner:
    def __init__(self, browser, flint: str, secret: str, shop, log: Callable[[str], None]) -> None:
        self.browser = browser
        self.flint = flint
        self.secret = secret
        self.shop = shop
        self.log = log
        self.count = 0
        self.warm = None  # the context kept across warm runs

    def _context(self, warm: bool):
        if not warm:
            return self.browser.new_context(**CONTEXT_OPTIONS)
        if self.warm is None:
            self.warm = self.browser.new_context(**CONTEXT_OPTIONS)
        return self.warm

    def close(self) -> None:
        if self.warm is not None:
            self.warm.close()
            self.warm = None

    def run(self, kind: str, warm: bool, *, blocking: bool = True) -> dict:
        """One run on a fresh page (and a fresh context unless warm): {"ms": ..., ...} or {"error": ...}."""
        self.count += 1
        path = f"/bench/{kind}-{'warm' if warm else 'cold'}-{self.count}"
        session_id = None
        if kind == "widget":
            try:  # un-timed: a fresh session for this run
                session = _api("POST", f"{self.flint}/v1/checkout/sessions", self.secret,
                               {"order": ORDER, "mode": "embedded", "success_url": f"{self.shop.url}/thanks"})
            except Exception as error:
                return {"error": f"creating the session: {type(error).__name__}: {str(error)[:300]}"}
            session_id = session["id"]
            url = self.shop.serve(path, _widget_page(self.flint, session["client_token"], blocking=blocking))
        else:
            url = self.shop.serve(path, _baseline_page(self.flint))
        context = self._context(warm)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning") else None)
        try:
            page.goto(url, wait_until="commit")
            done = ("['flint:ready','flint:fallback','flint:error'].includes(e.type)" if kind == "widget"
                    else "e.type === 'load'")
            page.wait_for_function(f"() => window.__b && window.__b.events.some((e) => {done})",
                                   timeout=READY_TIMEOUT_MS)
            parent = page.evaluate(PARENT_JS)
            if kind == "baseline":
                load = next(e["t"] for e in parent["events"] if e["type"] == "load")
                return {"ms": load - parent["t0"]}
            bad = [e for e in parent["events"] if e["type"] != "flint:ready"]
            if bad or not any(e["type"] == "flint:ready" for e in parent["events"]):
                return {"error": f"{bad[0]['type']}: {json.dumps(bad[0].get('detail'))}"
                        + (f" ({'; '.join(problems[:3])})" if problems else "")}
            frame_timing = None
            for frame in page.frames:
                if "/widget/v1/frame/" in frame.url:
                    frame_timing = frame.evaluate(FRAME_JS)
                    break
            points = _points(parent, frame_timing)
            return {"ms": points["flint_ready"], "points": points, "session": session_id,
                    "frame_js_from_cache": bool(frame_timing and frame_timing.get("js"))
                    and frame_timing["js"]["transfer"] == 0,
                    "loader_requested_before_t0": bool(parent["loader"]) and parent["loader"]["start"] < parent["t0"]}
        except Exception as error:  # a timeout or a crashed page: reported, the bench goes on
            return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
                    + (f" ({'; '.join(problems[:3])})" if problems else "")}
        finally:
            page.close()
            if not warm:
                context.close()


def _stage_medians(runs: list[dict]) -> dict:
    out = {}
    for stage, (start, end, what) in STAGES.items():
        values = sorted(r["points"][end] - r["points"][start] for r in runs
                        if r["points"].get(start) is not None and r["points"].get(end) is not None)
        out[stage] = {"median_ms": _r(median(values)), "p90_ms": _r(percentile(values, 90)),
                      "runs": len(values), "what": what}
    return out


def measure_ready(flint: str, secret: str, shop, *, runs: int, warmup: int, budget_s: float,
                  log: Callable[[str], None]) -> dict:
    from playwright.sync_api import sync_playwright

    variants = [("widget", False), ("baseline", False), ("widget", True), ("baseline", True)]
    results: dict[tuple[str, bool], list[dict]] = {v: [] for v in variants}
    errors: dict[str, list[str]] = {}
    notes: list[str] = []
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        runner = _Runner(browser, flint, secret, shop, log)
        window = harness.CpuWindow({"bench": harness.tree_cpu})
        try:
            for i in range(warmup + runs):
                if i >= warmup and time.monotonic() - started > budget_s:
                    notes.append(f"widget: stopped after {i - warmup} of {runs} runs per variant "
                                 f"(the {budget_s:g} s budget ran out)")
                    break
                # Interleaved, the order alternating, so a drift of the machine hits every variant alike.
                order = variants if i % 2 == 0 else variants[::-1]
                for kind, warm in order:
                    outcome = runner.run(kind, warm)
                    label = f"{kind}_{'warm' if warm else 'cold'}"
                    if "error" in outcome:
                        errors.setdefault(label, []).append(outcome["error"])
                    elif i >= warmup:
                        results[(kind, warm)].append(outcome)
            cpu = window.split()
            # The tag exactly as merchants paste it (async): once, to check it readies too.
            async_run = runner.run("widget", False, blocking=False)
            version = browser.version
        finally:
            runner.close()
            browser.close()
    elapsed = time.monotonic() - started

    def block(kind: str, warm: bool) -> dict:
        got = results[(kind, warm)]
        return _stats([r["ms"] for r in got])

    out: dict[str, Any] = {"browser": f"Chromium {version} (headless, Playwright)", "runs_per_variant": runs,
                           "warmup_runs": warmup, "runtime_s": round(elapsed, 1)}
    # Who used the CPU during the runs: this benchmark's processes (bench, server, browser) and the rest.
    out["cpu"] = {"bench_server_browser_cores": round(cpu["cores"]["bench"], 2),
                  "machine_busy_pct": round(cpu["machine_busy_pct"], 1), "other_cores": round(cpu["other_cores"], 2),
                  "cpu_count": harness.CORES}
    if note := harness.noise_note("widget (during the browser runs)", out["cpu"]):
        notes.append(note)
    for warm in (False, True):
        cond = "warm" if warm else "cold"
        widget_runs = results[("widget", warm)]
        widget, base = block("widget", warm), block("baseline", warm)
        ratio = (round(widget["median_ms"] / base["median_ms"], 2)
                 if widget["median_ms"] and base["median_ms"] else None)
        p90_ratio = (round(widget["p90_ms"] / base["p90_ms"], 2) if widget["p90_ms"] and base["p90_ms"] else None)
        out[cond] = {
            "widget_ready": widget,
            "baseline_iframe_load": base,
            "ratio_median": ratio,
            "ratio_p90": p90_ratio,
            "stages": _stage_medians(widget_runs),
            # Including the loader's download: from the moment flint.js was requested.
            "widget_ready_from_loader_request": _stats([r["ms"] - r["points"]["loader_requested"] for r in widget_runs
                                                        if r["points"]["loader_requested"] is not None]),
            "frame_js_from_cache": sum(r["frame_js_from_cache"] for r in widget_runs),
            "loader_requested_before_t0": sum(r["loader_requested_before_t0"] for r in widget_runs),
            "runs_detail": [{"session": r["session"], "points_ms": {k: _r(v) for k, v in r["points"].items()}}
                            for r in widget_runs],
        }
    out["async_tag_check"] = ({"ready": True, "ms": _r(async_run["ms"])} if "error" not in async_run
                              else {"ready": False, "error": async_run["error"]})
    out["errors"] = {k: {"count": len(v), "sample": v[0]} for k, v in errors.items()}
    out["notes"] = notes
    return out


# ----------------------------------------------------------------------------------------------
# The section
# ----------------------------------------------------------------------------------------------

def run(flint: str, secret: str, *, runs: int = 15, warmup: int = 2, budget_s: float = 50.0,
        log: Callable[[str], None] = print) -> dict:
    """Sizes and ready time against a running Flint; returns {"sizes", "ready", "goals", "notes"}."""
    from support.shop import start_shop, stop_shop

    started = time.monotonic()
    notes: list[str] = []
    shop, httpd, thread = start_shop()
    out: dict[str, Any] = {"flint": flint, "merchant_origin": shop.origin}
    try:
        # The merchant page must be on an allowed origin, or the frame is refused (CSP frame-ancestors).
        _api("POST", f"{flint}/v1/merchant", secret, {"allowed_origins": [shop.origin]})
        try:
            out["sizes"] = measure_sizes(flint, secret, f"{shop.url}/thanks")
        except Exception as error:
            out["sizes"] = {"error": f"{type(error).__name__}: {error}"}
            notes.append(f"widget sizes not measured: {out['sizes']['error'][:300]}")
        else:
            s = out["sizes"]
            log(f"  sizes (gzip -9): flint.js {s['loader']['gzip_bytes']} B, frame "
                f"{s['frame']['gzip_bytes']} B ({' + '.join(str(p['gzip_bytes']) for p in s['frame']['parts'])}), "
                f"hosted page {s['hosted_page']['gzip_bytes']} B")
        if not os.access(CHROMIUM, os.X_OK):
            out["ready"] = {"error": f"{CHROMIUM} is missing (make chromium)"}
        else:
            try:
                log(f"  ready time in Chromium: {warmup} warm-up + {runs} runs x (widget, baseline) x (cold, warm)")
                out["ready"] = measure_ready(flint, secret, shop, runs=runs, warmup=warmup, budget_s=budget_s, log=log)
            except Exception as error:
                out["ready"] = {"error": f"{type(error).__name__}: {str(error)[:500]}"}
        if "error" in out["ready"]:
            notes.append(f"widget ready time not measured: {out['ready']['error'][:300]}")
        else:
            notes.extend(out["ready"].pop("notes"))
            if not out["ready"]["async_tag_check"]["ready"]:
                notes.append(f"widget: the async script tag did not get ready: {out['ready']['async_tag_check']['error'][:200]}")
            for label, err in out["ready"]["errors"].items():
                notes.append(f"widget: {err['count']} failed {label} run(s), e.g. {err['sample'][:200]}")
    finally:
        stop_shop(httpd, thread)
    out["goals"] = goals_for(out)
    out["notes"] = notes
    out["runtime_s"] = round(time.monotonic() - started, 1)
    return out


def goals_for(out: dict) -> dict:
    sizes, ready = out.get("sizes", {}), out.get("ready", {})
    goals: dict[str, Any] = {}
    loader = sizes.get("loader")
    goals["widget_loader_le_4kb_gzip"] = {
        "actual": loader["gzip_bytes"] if loader else None, "limit_bytes": LOADER_GZIP_LIMIT,
        "pass": bool(loader) and loader["gzip_bytes"] <= LOADER_GZIP_LIMIT}
    frame = sizes.get("frame")
    goals["widget_frame_html_js_css_le_15kb_gzip"] = {
        "actual": frame["gzip_bytes"] if frame else None, "limit_bytes": FRAME_GZIP_LIMIT,
        **({"parts": {p["name"]: p["gzip_bytes"] for p in frame["parts"]},
            "external_refs": len(frame["external_refs"])} if frame else {}),
        "pass": bool(frame) and frame["gzip_bytes"] <= FRAME_GZIP_LIMIT and not frame["external_refs"]}
    cold = ready.get("cold", {}).get("widget_ready", {})
    errors = sum(e["count"] for k, e in ready.get("errors", {}).items() if k.startswith("widget"))
    goals["widget_ready_median_lt_300ms_cold"] = {
        "actual": cold.get("median_ms"), "target_ms": READY_MEDIAN_GOAL_MS, "p90_ms": cold.get("p90_ms"),
        "failed_runs": errors,
        "pass": cold.get("median_ms") is not None and cold["median_ms"] < READY_MEDIAN_GOAL_MS and errors == 0}
    return goals


def report(out: dict) -> str:
    """The widget's lines of the printed report."""
    lines = []
    if "error" in out:
        return f"widget: not measured ({out['error'][:300]})"
    sizes, ready = out.get("sizes", {}), out.get("ready", {})
    if "error" in sizes:
        lines += [f"widget sizes: not measured ({sizes['error'][:200]})", ""]
    if "loader" in sizes:
        frame = sizes["frame"]
        parts = " + ".join(f"{p['name']} {p['gzip_bytes']}" for p in frame["parts"])
        lines += [
            "widget sizes (gzip -9)       bytes    limit",
            f"  loader flint.js         {sizes['loader']['gzip_bytes']:>7}  {LOADER_GZIP_LIMIT:>7}",
            f"  frame (html+js+css)     {frame['gzip_bytes']:>7}  {FRAME_GZIP_LIMIT:>7}   ({parts})",
            f"  hosted page (context)   {sizes['hosted_page']['gzip_bytes']:>7}        -   "
            f"(frame = {sizes['hosted_page']['frame_gzip_to_hosted_gzip']} x hosted page)",
            "",
        ]
    if "cold" in ready:
        header = f"{'widget ready (ms)':<28} {'median':>8} {'p90':>8} {'runs':>5} {'x baseline':>11}"
        lines += [header, "-" * len(header)]
        for cond in ("cold", "warm"):
            block = ready[cond]
            w, b = block["widget_ready"], block["baseline_iframe_load"]

            def fmt(v, spec="8.1f"):
                return format(v, spec) if v is not None else "-".rjust(8)
            lines.append(f"{'script tag -> flint:ready ' + cond:<28} {fmt(w['median_ms'])} {fmt(w['p90_ms'])} "
                         f"{w['runs']:>5} {fmt(block['ratio_median'], '11.2f')}")
            lines.append(f"{'baseline iframe load ' + cond:<28} {fmt(b['median_ms'])} {fmt(b['p90_ms'])} {b['runs']:>5}")
        cold = ready["cold"]
        lines.append("")
        lines.append(f"flint.js was requested before t0 (preload scanner) in {cold['loader_requested_before_t0']} of "
                     f"{cold['widget_ready']['runs']} cold runs; from its request to flint:ready: median "
                     f"{cold['widget_ready_from_loader_request']['median_ms']} ms, p90 "
                     f"{cold['widget_ready_from_loader_request']['p90_ms']} ms")
        for cond in ("cold", "warm"):
            stages = ready[cond]["stages"]
            lines.append(f"where the {cond} time goes (median ms): " + ", ".join(
                f"{name} {s['median_ms']}" for name, s in stages.items() if s["median_ms"] is not None))
        cpu = ready.get("cpu", {})
        lines.append(f"cpu during the runs: bench+server+browser {cpu.get('bench_server_browser_cores')} cores, "
                     f"other processes {cpu.get('other_cores')} cores (machine {cpu.get('machine_busy_pct')}% busy); "
                     f"{ready['browser']}")
        check = ready.get("async_tag_check", {})
        lines.append("async tag (as pasted), one cold run: "
                     + (f"ready in {check['ms']} ms" if check.get("ready") else f"NOT ready: {check.get('error')}"))
    elif "error" in ready:
        lines.append(f"widget ready time: not measured ({ready['error'][:200]})")
    return "\n".join(lines)

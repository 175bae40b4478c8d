"""The checkout hook's part of the benchmark (issue 7): what ``checkout.before_payment`` adds to a confirm
when the merchant has an app installed whose hook answers at once, on loopback. Called by ``bench.run``.

Goal (the issue): "The hook adds at most 5 ms p50 to a confirm on top of the app's own answer time with a
local app answering at once".

Set-up (un-timed): a real ``flint serve`` of its own (bench/harness.py, through support.server: its own
SQLite file, sweeper idle, FLINT_LOG_LEVEL=WARNING) and the real loopback receiver of support/receiver.py in
a thread of this process, scripted to answer ``{"actions": []}`` (200) at once. Two merchants, made with the
services over the server's database: **hooked**, with one app installed whose hook is that receiver (an app
registered by another merchant with ``apps.create_app(hook_url=..., hooks=["checkout.before_payment"])``, then
installed through the real OAuth flow, support/oauth.install: sign-in, consent, code exchange with Authlib), and **plain**, with no app. Then, through the API with each merchant's secret key, one fresh embedded
checkout session per confirm to come (16 requests in flight).

Measured: ``confirms`` confirms per merchant, ``POST /v1/checkout/sessions/{id}/confirm`` with the success card
and ``Bearer <client_token>``, ONE AT A TIME, on one keep-alive connection (a blocking socket, pre-built request
bytes), after ``warmup`` discarded confirms of each. The two kinds alternate in pairs whose order flips each time
(hooked, plain, plain, hooked, ...), so a drift of the machine's speed hits both alike. Latency is from the first
byte written to the last byte read. The overhead is p50(hooked) - p50(plain); the median of the paired
differences is reported beside it.

The app's own answer time is taken where the app is: the receiver wraps its streams and stamps, for each hook
request, the moment it has read the request line and the moment it hands the answer to the socket (so what the
app itself spends, not the network or Flint's client). The goal's figure is
``overhead p50 - app answer p50``. It is about 0.1 ms here; the rest is Flint's.

Context, no goal: what a bare loopback call to the same receiver costs from another process, with the same body
and headers: httpx called as the hook calls it (a pooled AsyncClient, ``send(stream=True)``, the body read in
chunks, ``aclose()``), and a raw blocking socket (the floor); CPU of the server per confirm of each kind;
Flint's own record of each call (``hook_calls``: outcome, latency_ms).

Where the time goes: ``flint serve`` is started with a ``sitecustomize`` on its PYTHONPATH (bench code only,
in that process only; see ``_install_probe``) that does nothing until signalled. After the measurement,
SIGUSR1 makes it wrap a few functions with timers (the confirm's steps, the hook's steps, httpx's ``send``,
SQLite's BEGIN/COMMIT), ``probe_confirms`` confirms of each kind are run, SIGUSR2 writes the timings; the
report has them per confirm. ``profile``: the same again under cProfile (slower), the functions whose own time
grows most from a plain to a hooked confirm.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

from . import harness
from .harness import INLINE_ORDER, ROOT, SUCCESS_CARD, SUCCESS_URL, BlockingClient, distribution, percentile

OVERHEAD_GOAL_MS = 5.0
HOOK_ANSWER = b'{"actions": []}'
HOOK_PATH = "/hook-bench"
FLOOR_PATH = "/floor"
CREATE_IN_FLIGHT = 16
PROBE_BLOCK = 10  # confirms of one kind per probe/profile block
PROBE_ENV = "FLINT_BENCH_HOOK_PROBE"


def _confirm_request(host: str, session: dict) -> bytes:
    return harness.http_request("POST", f"/v1/checkout/sessions/{session['id']}/confirm", host,
                                token=session["client_token"], json_body={"card": SUCCESS_CARD})


def _check_confirm(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:300]!r}"
    try:
        paid = json.loads(body).get("status")
    except ValueError:
        return f"not JSON: {body[:200]!r}"
    return None if paid == "succeeded" else f"payment status {paid!r}: {body[:300]!r}"


# ----------------------------------------------------------------------------------------------
# Set-up: the merchants, the app and its install, the sessions
# ----------------------------------------------------------------------------------------------

async def _setup(server, hook_url: str) -> dict:
    """The merchants (one with the app installed through the OAuth flow), over the server's database."""
    import httpx

    from flint.apps import service as apps
    from flint.merchants import service as merchants
    from flint.runtime import Runtime
    from support.oauth import PASSWORD, install

    tag = secrets.token_hex(4)
    rt = await Runtime.start(server.runtime_config())
    try:
        shop, shop_key = await merchants.create_merchant(rt, name="Hooked Shop", email=f"hooked{tag}@shop.example",
                                                         password=PASSWORD)
        plain, plain_key = await merchants.create_merchant(rt, name="Plain Shop", email=f"plain{tag}@shop.example",
                                                           password=PASSWORD)
        dev, _ = await merchants.create_merchant(rt, name="Hook Dev", email=f"dev{tag}@dev.example", password=PASSWORD)
        app, client_secret, webhook_secret = await apps.create_app(
            rt, dev.id, name="Bench Hook", redirect_uris=["http://127.0.0.1:9/callback"],
            scopes=["orders:read", "payments:read"], hook_url=hook_url, hooks=["checkout.before_payment"])
    finally:
        await rt.stop()
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        token, _ = await install(server, browser, app, client_secret, shop.email)
    install_s = time.monotonic() - started

    return {"hooked_merchant_id": shop.id, "plain_merchant_id": plain.id, "app_id": app.id,
            "installation_id": token["installation_id"], "webhook_secret": webhook_secret,
            "keys": {"hooked": shop_key, "plain": plain_key}, "install_s": round(install_s, 2)}


def _sessions(server, keys: dict[str, str], per_merchant: int) -> tuple[dict[str, list[dict]], list[str]]:
    """One fresh embedded session per confirm to come, for each merchant, through the API (the bench's load
    generator, CREATE_IN_FLIGHT at a time, un-timed)."""
    body = {"order": INLINE_ORDER, "mode": "embedded", "success_url": SUCCESS_URL}
    generator = harness.LoadGenerator([server.port], connections=CREATE_IN_FLIGHT)
    made: dict[str, list[dict]] = {}
    errors: list[str] = []
    try:
        for kind, key in keys.items():
            request = harness.http_request("POST", "/v1/checkout/sessions", f"127.0.0.1:{server.port}", token=key,
                                           json_body=body)
            raw = generator.run([request] * per_merchant, cyclic=False, warmup=0.0, duration=120.0, timeout=30.0,
                                keep_bodies=True)
            made[kind] = [{"id": s["id"], "client_token": s["client_token"]} for s in harness.json_bodies(raw)
                          if s.get("client_token")]
            errors += [f"{kind}: {error}: {sample[:200]}" for r in raw["results"] for _, error, sample in r["errors"]]
    finally:
        generator.close()
    return made, errors


# ----------------------------------------------------------------------------------------------
# The probe (runs INSIDE flint serve, installed by a sitecustomize; idle until signalled)
# ----------------------------------------------------------------------------------------------

def _install_probe() -> None:
    """SIGUSR1: read ``control.json`` ({"mode": "probe"|"profile", "out": path}) and start; SIGUSR2: stop and
    write ``out`` (probe: JSON timings; profile: pstats). Each answers by writing ``ack`` in the probe dir.
    Nothing is wrapped, and nothing runs, until SIGUSR1."""
    import cProfile
    import functools
    import inspect

    folder = Path(os.environ[PROBE_ENV])
    state: dict[str, Any] = {"mode": None, "undo": [], "times": {}, "profiler": None, "out": None}

    def record(key: str, seconds: float) -> None:
        state["times"].setdefault(key, []).append(seconds)

    def wrap(owner: Any, name: str, key: str | None = None, by_arg: int | None = None) -> None:
        original = inspect.getattr_static(owner, name)
        func = original.__func__ if isinstance(original, staticmethod) else original
        label = key or name
        perf = time.perf_counter

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def timed(*args, **kwargs):
                started = perf()
                try:
                    return await func(*args, **kwargs)
                finally:
                    record(f"{label} {args[by_arg]}" if by_arg is not None else label, perf() - started)
        else:
            @functools.wraps(func)
            def timed(*args, **kwargs):
                started = perf()
                try:
                    return func(*args, **kwargs)
                finally:
                    record(label, perf() - started)
        setattr(owner, name, staticmethod(timed) if isinstance(original, staticmethod) else timed)
        state["undo"].append((owner, name, original))

    def patch() -> None:
        import httpx

        from flint.db import sqlite as db_sqlite
        from flint.hooks import service as hooks
        from flint.hooks import store as hook_store
        from flint.collect import service as collect
        from flint.security import SecretBox
        from flint.webhooks import egress, signing

        wrap(collect, "confirm_payment", "confirm_payment (service)")
        wrap(collect, "begin_attempt", "confirm: begin_attempt")
        wrap(collect, "_call_processor", "confirm: processor charge")
        wrap(collect, "settle", "confirm: settle")
        wrap(hooks, "before_payment", "hook: before_payment")
        wrap(hooks, "_hooked", "hook: select installations")
        wrap(hooks, "_ask", "hook: _ask")
        wrap(egress, "resolve", "hook: egress.resolve")
        wrap(signing, "headers", "hook: signing.headers")
        wrap(SecretBox, "open", "hook: secret open")
        wrap(httpx.AsyncClient, "send", "hook: httpx send (to headers)")
        wrap(hook_store, "insert_calls", "hook: insert_calls")
        wrap(db_sqlite.SqliteDatabase, "_on_thread", "sqlite", by_arg=1)

    def unpatch() -> None:
        for owner, name, original in reversed(state["undo"]):
            setattr(owner, name, original)
        state["undo"].clear()

    def ack(text: str) -> None:
        tmp = folder / "ack.tmp"
        tmp.write_text(text)
        tmp.replace(folder / "ack")

    def start(signum, frame) -> None:
        try:
            control = json.loads((folder / "control.json").read_text())
            state["mode"], state["out"], state["times"] = control["mode"], control["out"], {}
            if state["mode"] == "probe":
                patch()
            else:
                state["profiler"] = cProfile.Profile()
                state["profiler"].enable()
            ack(f"started {state['mode']}")
        except Exception as error:  # reported to the bench, never raised into the server
            ack(f"error {type(error).__name__}: {error}")

    def stop(signum, frame) -> None:
        try:
            if state["mode"] == "probe":
                unpatch()
                Path(state["out"]).write_text(json.dumps(state["times"]))
            elif state["profiler"] is not None:
                state["profiler"].disable()
                state["profiler"].dump_stats(state["out"])
                state["profiler"] = None
            ack(f"stopped {state['mode']}")
        except Exception as error:
            ack(f"error {type(error).__name__}: {error}")

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


SITECUSTOMIZE = f'''# Written by bench/hook.py for one flint serve: an idle probe (bench.hook._install_probe).
import os
if os.environ.get("{PROBE_ENV}"):
    from bench.hook import _install_probe
    _install_probe()
'''


class _ProbeControl:
    def __init__(self, folder: Path, pid: int) -> None:
        self.folder, self.pid = folder, pid

    def _signal(self, sig: int, expect: str) -> None:
        ack = self.folder / "ack"
        ack.unlink(missing_ok=True)
        os.kill(self.pid, sig)
        deadline = time.monotonic() + 10
        while not ack.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server's probe did not answer ({expect})")
            time.sleep(0.01)
        text = ack.read_text()
        if not text.startswith(expect):
            raise RuntimeError(f"the server's probe answered {text!r}")

    def start(self, mode: str, out: Path) -> None:
        (self.folder / "control.json").write_text(json.dumps({"mode": mode, "out": str(out)}))
        self._signal(signal.SIGUSR1, "started")

    def stop(self) -> None:
        self._signal(signal.SIGUSR2, "stopped")


# ----------------------------------------------------------------------------------------------
# Context: a bare call to the app from another process (httpx as the hook calls it; a raw socket)
# ----------------------------------------------------------------------------------------------

def _floor_main(pipe, url: str, body: bytes, headers: dict[str, str], n: int, warmup: int) -> None:
    import httpx

    all_headers = {**headers, "content-type": "application/json", "user-agent": "Flint-Hooks/1"}

    async def with_httpx() -> list[float]:
        client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=httpx.Timeout(2.0))
        out = []
        for i in range(warmup + n):
            started = time.perf_counter()
            response = await client.send(client.build_request("POST", url, content=body, headers=all_headers),
                                         stream=True)
            raw = b""
            async for chunk in response.aiter_bytes():
                raw += chunk
            await response.aclose()
            json.loads(raw)
            if i >= warmup:
                out.append(time.perf_counter() - started)
        await client.aclose()
        return out

    def with_socket() -> list[float]:
        parts = httpx.URL(url)
        request = harness.http_request("POST", parts.raw_path.decode(), f"{parts.host}:{parts.port}", body=body,
                                       headers=all_headers)
        client = BlockingClient(parts.host, parts.port)
        out = []
        for i in range(warmup + n):
            status, _, seconds = client.request(request)
            if i >= warmup:
                out.append(seconds)
        client.close()
        return out

    pipe.recv()
    result = {"httpx": asyncio.run(with_httpx()), "socket": with_socket()}
    pipe.send(result)


def _floor(receiver, body: bytes, headers: dict[str, str], n: int, warmup: int) -> dict:
    with harness.ChildProcess(_floor_main, receiver.url(FLOOR_PATH), body, headers, n, warmup) as child:
        result = child.result(timeout=60)
    return {"httpx_as_the_hook": distribution(result["httpx"]), "raw_socket": distribution(result["socket"]),
            "receiver_answer": distribution(receiver.served(FLOOR_PATH)[-2 * n:])}


# ----------------------------------------------------------------------------------------------
# The measurement
# ----------------------------------------------------------------------------------------------

def _measure(client: BlockingClient, pid: int, host: str, hooked: list[dict], plain: list[dict], *, warmup: int,
             n: int) -> dict:
    times: dict[str, list[float]] = {"hooked": [], "plain": []}
    server_cpu: dict[str, list[int]] = {"hooked": [0, 0], "plain": [0, 0]}  # ns: main thread, other threads
    pairs: list[float] = []
    errors: list[str] = []
    queues = {"hooked": iter(hooked), "plain": iter(plain)}
    window: harness.CpuWindow | None = None
    for i in range(warmup + n):
        if i == warmup:
            window = harness.CpuWindow({"server": [pid], "bench": harness.self_cpu})
        order = ("hooked", "plain") if i % 2 == 0 else ("plain", "hooked")
        got: dict[str, float] = {}
        for kind in order:
            request = _confirm_request(host, next(queues[kind]))
            cpu0 = harness.thread_cpu_ns(pid)
            try:
                status, body, seconds = client.request(request)
            except OSError as error:
                client.close()
                errors.append(f"{kind}: {type(error).__name__}: {error}")
                continue
            cpu1 = harness.thread_cpu_ns(pid)
            problem = _check_confirm(status, body)
            if problem is not None:
                errors.append(f"{kind}: {problem}")
                continue
            if i >= warmup:
                times[kind].append(seconds)
                server_cpu[kind][0] += cpu1[0] - cpu0[0]
                server_cpu[kind][1] += cpu1[1] - cpu0[1]
                got[kind] = seconds
        if len(got) == 2:
            pairs.append(got["hooked"] - got["plain"])
    cpu = window.split()  # type: ignore[union-attr]  (set at i == warmup)
    return {"times": times, "pairs": pairs, "errors": errors, "span_s": round(cpu["span_s"], 2), "cpu": {
        "server_cores": round(cpu["cores"]["server"], 2), "bench_process_cores": round(cpu["cores"]["bench"], 2),
        "machine_busy_pct": round(cpu["machine_busy_pct"], 1), "other_cores": round(cpu["other_cores"], 2),
        # From the first byte sent to the last byte read, so work the server does after answering is not in it.
        "server_cpu_ms_per_confirm": {k: round(sum(v) / 1e6 / max(1, len(times[k])), 3) for k, v in server_cpu.items()},
        "server_main_thread_cpu_ms_per_confirm": {k: round(v[0] / 1e6 / max(1, len(times[k])), 3)
                                                  for k, v in server_cpu.items()},
        "server_other_threads_cpu_ms_per_confirm": {k: round(v[1] / 1e6 / max(1, len(times[k])), 3)
                                                    for k, v in server_cpu.items()},
    }}


def _run_batch(client: BlockingClient, host: str, sessions: list[dict]) -> list[str]:
    errors = []
    for session in sessions:
        status, body, _ = client.request(_confirm_request(host, session))
        problem = _check_confirm(status, body)
        if problem:
            errors.append(problem)
    return errors


def _blocks(client: BlockingClient, host: str, control: _ProbeControl, pools: dict, mode: str, n: int, folder: Path,
            notes: list[str]) -> dict[str, list[Path]]:
    """``n`` confirms of each kind under the probe (or cProfile), in alternating blocks; each block's output file."""
    outputs: dict[str, list[Path]] = {"hooked": [], "plain": []}
    blocks = max(1, n // PROBE_BLOCK)
    for b in range(blocks):
        size = n // blocks + (1 if b < n % blocks else 0)
        for kind in (("hooked", "plain") if b % 2 == 0 else ("plain", "hooked")):
            path = folder / f"{mode}-{kind}-{b}.{'json' if mode == 'probe' else 'pstats'}"
            batch = [next(pools[kind]) for _ in range(size)]
            control.start(mode, path)
            errors = _run_batch(client, host, batch)
            control.stop()
            outputs[kind].append(path)
            if errors:
                notes.append(f"hook {mode} ({kind}): {len(errors)} confirms failed: {errors[0][:200]}")
    return outputs


def _merge_probe(paths: list[Path]) -> dict[str, list[float]]:
    merged: dict[str, list[float]] = {}
    for path in paths:
        for key, values in json.loads(path.read_text()).items():
            merged.setdefault(key, []).extend(values)
    return merged


def _probe_summary(raw: dict[str, list[float]], confirms: int) -> dict:
    out = {}
    for key in sorted(raw):
        values = sorted(raw[key])
        out[key] = {"calls_per_confirm": round(len(values) / confirms, 2),
                    "ms_per_confirm": round(1000 * sum(values) / confirms, 3),
                    "p50_ms": round(1000 * percentile(values, 50), 3)}
    return out


def _profile_diff(hooked_paths: list[Path], plain_paths: list[Path], confirms: int, top: int = 18) -> dict:
    import pstats

    def own(paths: list[Path]) -> dict:
        stats = pstats.Stats(*(str(p) for p in paths)).stats  # type: ignore[attr-defined]
        return {f"{Path(f).name}:{line}({name})": (tt, ct, nc)
                for (f, line, name), (cc, nc, tt, ct, _) in stats.items()}

    hooked, plain = own(hooked_paths), own(plain_paths)
    # cProfile's clock is the wall clock: the loop waiting in epoll is idle time, not work; left out of the total.
    idle = "~:0(<method 'poll' of 'select.epoll' objects>)"
    total = {k: sum(v[0] for name, v in d.items() if name != idle) for k, d in (("hooked", hooked), ("plain", plain))}
    rows = []
    for name in set(hooked) | set(plain):
        h, p = hooked.get(name, (0.0, 0.0, 0)), plain.get(name, (0.0, 0.0, 0))
        rows.append((h[0] - p[0], name, h, p))
    rows.sort(reverse=True)
    lines = [f"{'+own ms/confirm':>15} {'calls h/p per confirm':>22}  function"]
    for delta, name, h, p in rows[:top]:
        lines.append(f"{1000 * delta / confirms:>15.3f} {h[2] / confirms:>10.1f}/{p[2] / confirms:<11.1f}  {name}")
    return {"own_time_ms_per_confirm_without_epoll_wait": {k: round(1000 * v / confirms, 3) for k, v in total.items()},
            "top_own_time_growth": lines}  # (cumulative times of coroutines count every resume: not used)


def run(tmp: Path, *, confirms: int = 200, warmup: int = 20, probe_confirms: int = 60, profile: bool = False,
        log: Callable[[str], None] = print) -> dict:
    started = time.monotonic()
    tmp.mkdir(parents=True, exist_ok=True)
    probe_dir = tmp / "probe"
    probe_dir.mkdir(exist_ok=True)
    (probe_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    pythonpath = os.pathsep.join(p for p in (str(probe_dir), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": pythonpath, PROBE_ENV: str(probe_dir)}

    receiver = harness.BenchReceiver(timed=True).start()
    receiver.script(HOOK_PATH, [200], body=HOOK_ANSWER)
    receiver.script(FLOOR_PATH, [200], body=HOOK_ANSWER)
    server = None
    out: dict[str, Any] = {"config": {"confirms": confirms, "warmup": warmup, "probe_confirms": probe_confirms,
                                      "profile": profile, "hook_answer": HOOK_ANSWER.decode(),
                                      "client": "one blocking keep-alive socket, one request at a time"}}
    notes: list[str] = []
    try:
        (tmp / "server").mkdir(exist_ok=True)
        [server] = harness.start_servers(tmp / "server", f"sqlite:///{tmp / 'server' / 'flint.sqlite3'}", extra_env=env)
        pid = server.process.pid
        log(f"hook: flint serve is up at {server.url} (pid {pid}); installing an app with the hook")
        per_merchant = warmup + confirms + probe_confirms * (2 if profile else 1)
        setup = asyncio.run(_setup(server, receiver.url(HOOK_PATH)))
        setup.pop("webhook_secret")
        started_sessions = time.monotonic()
        sessions, errors = _sessions(server, setup.pop("keys"), per_merchant)
        out["setup"] = setup = {**setup, "sessions_s": round(time.monotonic() - started_sessions, 2),
                                "session_errors": errors[:5], "session_error_count": len(errors)}
        log(f"hook: app installed in {setup['install_s']} s; {len(sessions['hooked'])} + {len(sessions['plain'])} "
            f"sessions made in {setup['sessions_s']} s")
        if min(len(sessions["hooked"]), len(sessions["plain"])) < per_merchant:
            raise RuntimeError(f"could not make the sessions: {setup['session_errors']}")
        host = server.url.removeprefix("http://")
        client = BlockingClient("127.0.0.1", server.port)
        hooked, plain = sessions["hooked"], sessions["plain"]
        measured_n = warmup + confirms

        # 1. The measurement (the probe is idle: the server runs exactly its own code).
        log(f"hook: {warmup} + {confirms} confirms of each kind, one at a time, alternating")
        served_before = len(receiver.served(HOOK_PATH))
        m = _measure(client, pid, host, hooked[:measured_n], plain[:measured_n], warmup=warmup, n=confirms)
        app_times = receiver.served(HOOK_PATH)[served_before:]
        hooked_stats, plain_stats = distribution(m["times"]["hooked"]), distribution(m["times"]["plain"])
        app_stats = distribution(app_times[warmup:])
        pairs = sorted(m["pairs"])
        overhead = (round(hooked_stats["p50_ms"] - plain_stats["p50_ms"], 3)
                    if hooked_stats["n"] and plain_stats["n"] else None)
        on_top = round(overhead - app_stats["p50_ms"], 3) if overhead is not None and app_stats["n"] else None
        out["confirm"] = {
            "hooked": hooked_stats, "plain": plain_stats,
            "overhead_p50_ms": overhead,
            "overhead_p90_ms": (round(hooked_stats["p90_ms"] - plain_stats["p90_ms"], 3)
                                if overhead is not None else None),
            "paired_difference": distribution(pairs),
            "app_answer": app_stats,
            "app_calls": len(app_times), "expected_app_calls": warmup + confirms,
            "overhead_on_top_of_app_p50_ms": on_top,
            "errors": m["errors"][:10], "error_count": len(m["errors"]),
            "span_s": m["span_s"], "cpu": m["cpu"], "client_connects": client.connects,
            "app_connections_opened": receiver.connections_by_path.get(HOOK_PATH, 0),
        }
        log(f"hook: hooked p50 {hooked_stats['p50_ms']} ms, plain p50 {plain_stats['p50_ms']} ms, overhead "
            f"{overhead} ms (app's own answer p50 {app_stats.get('p50_ms')} ms)")

        # 2. Context: a bare call to the same app from another process.
        last = receiver.at(HOOK_PATH)[-1]
        signed = {k: v for k, v in last.headers.items() if k.startswith("webhook-")}
        out["floor"] = _floor(receiver, last.body, signed, n=confirms, warmup=warmup)
        out["floor"]["body_bytes"] = len(last.body)

        # 3. Where the time goes: the probe, then (asked for) cProfile. Blocks of PROBE_BLOCK confirms of one
        #    kind (the probe cannot tell the kinds apart inside the server), alternating, so drift hits both.
        control = _ProbeControl(probe_dir, pid)
        pools = {"hooked": iter(hooked[measured_n:]), "plain": iter(plain[measured_n:])}
        outputs = _blocks(client, host, control, pools, "probe", probe_confirms, probe_dir, notes)
        out["probe"] = {kind: _probe_summary(_merge_probe(paths), probe_confirms) for kind, paths in outputs.items()}
        if profile:
            outputs = _blocks(client, host, control, pools, "profile", probe_confirms, probe_dir, notes)
            out["profile"] = _profile_diff(outputs["hooked"], outputs["plain"], probe_confirms)
            notes.append("hook: the server also ran under cProfile (--hook-profile), after the measurement; the "
                         "measured figures are not affected")
        client.close()
    except Exception as error:  # reported with the rest
        out["error"] = f"{type(error).__name__}: {str(error)[:500]}"
        notes.append(f"the hook section failed: {out['error']}")
    finally:
        log_text = ""
        if server is not None:
            harness.stop_servers([server])
            log_text = server.logs()
        receiver.stop()
    if server is not None:
        out["server_log_errors"] = [line[:400] for line in harness.log_errors(log_text)][:10]
        out["hook_calls"] = _hook_calls(server.db_url, out.get("setup", {}).get("hooked_merchant_id"))
    cpu = out.get("confirm", {}).get("cpu", {})
    if note := harness.noise_note("hook (during the confirms)", cpu):
        notes.append(note)
    out["goals"] = goals_for(out)
    out["notes"] = notes
    out["runtime_s"] = round(time.monotonic() - started, 1)
    return out


def _hook_calls(db_url: str, merchant_id: str | None) -> dict:
    """Flint's own record of the calls (every confirm of the hooked merchant, all phases)."""
    if not merchant_id:
        return {}
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT outcome, latency_ms FROM hook_calls WHERE merchant_id = ?",
                            (merchant_id,)).fetchall()
    outcomes: dict[str, int] = {}
    for outcome, _ in rows:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    latency = sorted(r[1] for r in rows if r[1] is not None)
    return {"calls": len(rows), "outcomes": outcomes, "latency_ms_p50": percentile(latency, 50),
            "latency_ms_p90": percentile(latency, 90), "latency_ms_max": latency[-1] if latency else None,
            "note": "latency_ms is Flint's own whole-call time (_ask), truncated to whole ms"}


def goals_for(out: dict) -> dict:
    c = out.get("confirm", {})
    on_top = c.get("overhead_on_top_of_app_p50_ms")
    calls = out.get("hook_calls", {})
    every_call_answered = (c.get("app_calls") == c.get("expected_app_calls")
                           and calls.get("outcomes", {}).get("answered", -1) == calls.get("calls"))
    return {f"hook_overhead_p50_le_{int(OVERHEAD_GOAL_MS)}ms": {
        "target_ms": OVERHEAD_GOAL_MS, "actual": on_top, "overhead_p50_ms": c.get("overhead_p50_ms"),
        "app_answer_p50_ms": c.get("app_answer", {}).get("p50_ms"),
        "hooked_p50_ms": c.get("hooked", {}).get("p50_ms"), "plain_p50_ms": c.get("plain", {}).get("p50_ms"),
        "errors": c.get("error_count"), "every_call_answered": every_call_answered,
        "pass": on_top is not None and on_top <= OVERHEAD_GOAL_MS and c.get("error_count") == 0 and every_call_answered,
    }}


def report(out: dict) -> str:
    if "confirm" not in out:
        return f"hook: not measured ({out.get('error', '?')[:300]})"
    c, f = out["confirm"], out.get("floor", {})
    lines = [f"{'checkout.before_payment hook, one confirm at a time':<52} {'p50 ms':>8} {'p90 ms':>8} "
             f"{'mean ms':>8} {'srv CPU ms':>10}"]
    cpu = c["cpu"]["server_cpu_ms_per_confirm"]
    for label, key in (("confirm, app installed (hook answers at once)", "hooked"), ("confirm, no app", "plain")):
        s = c[key]
        lines.append(f"  {label:<50} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['mean_ms']:>8.2f} {cpu[key]:>10.2f}")
    lines.append(f"  {'overhead (p50 difference)':<50} {c['overhead_p50_ms']:>8.2f} {c['overhead_p90_ms']:>8.2f}"
                 f"   paired diff median {c['paired_difference'].get('p50_ms')} ms")
    label = "the app's own answer (receiver: read -> written)"
    lines.append(f"  {label:<50} {c['app_answer']['p50_ms']:>8.3f} "
                 f"{c['app_answer']['p90_ms']:>8.3f}")
    lines.append(f"  {'=> overhead on top of the app':<50} {c['overhead_on_top_of_app_p50_ms']:>8.2f}   "
                 f"(goal <= {OVERHEAD_GOAL_MS:g} ms)")
    for label, key in (("context: httpx -> the app, as the hook calls it", "httpx_as_the_hook"),
                       ("context: raw socket -> the app", "raw_socket")):
        if key in f:
            lines.append(f"  {label:<50} {f[key]['p50_ms']:>8.3f} {f[key]['p90_ms']:>8.3f} {f[key]['mean_ms']:>8.3f}")
    calls = out.get("hook_calls", {})
    lines.append(f"  {c['app_calls']}/{c['expected_app_calls']} hook calls reached the app over "
                 f"{c['app_connections_opened']} connection(s); hook_calls: {calls.get('outcomes')}, latency_ms p50 "
                 f"{calls.get('latency_ms_p50')}; errors {c['error_count']}")
    main, other = c["cpu"]["server_main_thread_cpu_ms_per_confirm"], c["cpu"]["server_other_threads_cpu_ms_per_confirm"]
    lines.append(f"  server CPU per confirm (schedstat, send -> last byte): event loop thread {main['hooked']} / "
                 f"{main['plain']} ms, SQLite threads {other['hooked']} / {other['plain']} ms (hooked / plain); server "
                 f"{c['cpu']['server_cores']} cores, other processes {c['cpu']['other_cores']} cores")
    probe = out.get("probe")
    if probe:
        each = out["config"]["probe_confirms"]
        lines += ["", f"  where a confirm's time goes (probe, ms per confirm; {each} of each):",
                  f"    {'step':<36} {'hooked':>8} {'plain':>8} {'+':>7}"]
        keys = sorted(set(probe.get("hooked", {})) | set(probe.get("plain", {})))
        for key in keys:
            h = probe.get("hooked", {}).get(key, {}).get("ms_per_confirm", 0.0)
            p = probe.get("plain", {}).get(key, {}).get("ms_per_confirm", 0.0)
            n = probe.get("hooked", {}).get(key, {}).get("calls_per_confirm", 0)
            lines.append(f"    {key:<36} {h:>8.3f} {p:>8.3f} {h - p:>+7.3f}   ({n}/confirm hooked)")
    prof = out.get("profile")
    if prof:
        lines += ["", f"  cProfile (server main thread): time in functions per confirm, epoll wait left out: "
                      f"{prof['own_time_ms_per_confirm_without_epoll_wait']}; most own-time growth, hooked - plain:"]
        lines += ["    " + line for line in prof["top_own_time_growth"]]

    return "\n".join(lines)

"""Email's part of the benchmark (issue 17): how many mails per second ONE mail worker sends to a local SMTP
server, against ``aiosmtplib`` sending the same mails straight to it with the same concurrency, in the same run.
Called by ``bench.run``; needs no ``flint serve``.

Set-up (un-timed): a fresh SQLite file (WAL, synchronous=FULL, as Flint runs it), a merchant
(support/factories.make_merchant), and an SMTP server in a process of its own (aiosmtpd on a free loopback
port; its handler only notes when each message arrived and its Message-ID, so it costs both sides the same).

Each round (``rounds``, default 3):

1. ``mails`` mails are put in the outbox through ``flint.mail.service.enqueue`` (100 per transaction; receipts,
   recovery emails and payment links in turn, each with an order summary as the triggers write it), and composed
   beforehand as ``flint.mail.compose.compose`` composes them for the worker (same Message-IDs, same bytes).
2. **Baseline** (the goal's): ``aiosmtplib`` in this process sends the same mails straight to the server, as an
   application without an outbox would: each composed with ``flint.mail.compose`` from its row as it is sent,
   over ``mail_concurrency`` (the worker's default, 4) connections opened at the start, each sending its share
   one after another. Time: start to the last answer. What is left between it and the worker is the outbox:
   the claims, the outcomes and their events in the database, and the worker's scheduling.
   **Context**: the same with every message composed beforehand (un-timed): the ceiling of aiosmtplib against
   this server, which composing (Jinja2 templates, babel, the standard library's email package) halves.
3. **Worker**: ``flint.background.mail_worker.MailWorker(rt).run()``, the loop ``flint worker`` runs, started in
   this process on a Runtime over the same database, with its defaults (concurrency 4, connections kept open,
   outcomes written in group commits with their ``email.sent`` events), drains the same mails. Time: start to
   every mail recorded ``sent`` in the database (polled every 20 ms, un-timed work of its own), so the worker's
   claims, composing, sending and recording all count.

Rates are mails / time; the ratio is the median over the rounds of each round's worker / baseline. Every side is checked
at the SMTP server: every mail arrived exactly once per side (by Message-ID). The time from the first to the
last arrival is reported too (the server's view, without start-up).

Goal: worker >= 0.8 x baseline.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import harness

GOAL_RATIO = 0.8
SEED_BATCH = 100
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


# ----------------------------------------------------------------------------------------------
# The SMTP server, in a process of its own
# ----------------------------------------------------------------------------------------------

def _smtp_server(pipe, port_out) -> None:
    """aiosmtpd on a free loopback port; answers the pipe's "arrivals" with what arrived since the last
    "reset": [(time.monotonic(), Message-ID)], in arrival order."""
    from aiosmtpd.smtp import SMTP

    lock = threading.Lock()
    arrivals: list[tuple[float, bytes]] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            found = _MESSAGE_ID.search(envelope.original_content or envelope.content)
            with lock:
                arrivals.append((time.monotonic(), found.group(1) if found else b""))
            return "250 2.0.0 OK"

    def control() -> None:
        while True:
            command = pipe.recv()
            with lock:
                if command == "reset":
                    arrivals.clear()
                    pipe.send(True)
                elif command == "arrivals":
                    pipe.send(list(arrivals))
                else:
                    pipe.send(None)
                    return

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="bench-smtp", enable_SMTPUTF8=True),
                                          "127.0.0.1", 0)
        port_out.value = server.sockets[0].getsockname()[1]
        await loop.run_in_executor(None, control)
        server.close()

    asyncio.run(main())


class SmtpProcess:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self._port = ctx.Value("i", 0)
        self.process = ctx.Process(target=_smtp_server, args=(child, self._port), daemon=True)
        self.process.start()
        child.close()
        deadline = time.monotonic() + 30
        while not self._port.value:
            if not self.process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the bench's SMTP server did not start")
            time.sleep(0.02)
        self.port = self._port.value

    def ask(self, command: str) -> Any:
        self.pipe.send(command)
        if not self.pipe.poll(30):
            raise RuntimeError(f"the bench's SMTP server did not answer {command!r}")
        return self.pipe.recv()

    def close(self) -> None:
        try:
            self.ask("stop")
        except (OSError, RuntimeError, EOFError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


# ----------------------------------------------------------------------------------------------
# The mails
# ----------------------------------------------------------------------------------------------

def _context(n: int, kind: str) -> dict:
    lines = [{"name": "Espresso beans 1 kg", "quantity": 1 + n % 3, "amount": 2400 * (1 + n % 3)},
             {"name": "Shipping", "quantity": 1, "amount": 490}]
    total = sum(line["amount"] for line in lines)
    return {
        "merchant": {"name": "Bench Coffee Roasters", "brand_color": "#7a3e12"},
        "order": {"id": f"ord_bench{n}", "reference": f"R-{100000 + n}", "currency": "usd", "amount_total": total,
                  "amount_paid": total if kind == "receipt" else 0, "lines": lines},
        "link_url": None if kind == "receipt" else f"https://pay.example/pay/plink_bench{n}",
        "payment": {"brand": "visa", "last4": "4242", "amount": total, "paid_at": "2026-11-26T18:21:07Z"}
        if kind == "receipt" else None,
        "expires_at": None if kind == "receipt" else "2026-12-03T18:30:00Z",
    }


async def _enqueue(rt, merchant_id: str, mails: int, round_no: int) -> list:
    """``mails`` new mails in the outbox (receipts, recovery emails, payment links in turn); returns the rows."""
    from flint.mail import service

    kinds = ("receipt", "recovery", "payment_link")
    made = []
    for start in range(0, mails, SEED_BATCH):
        async with rt.db.transaction() as conn:
            for n in range(start, min(mails, start + SEED_BATCH)):
                kind = kinds[n % 3]
                made.append(await service.enqueue(
                    conn, rt.config, merchant_id=merchant_id, kind=kind, to=f"buyer{round_no}-{n}@buyer.example",
                    locale=("en", "de", "fr")[n % 3], cause=f"bench:{round_no}:{n}", context=_context(n, kind)))
    assert all(made), "enqueue wrote every mail"
    return made


def _composer(rt) -> Callable[[Any], tuple[Any, str]]:
    """A row's (message, recipient) exactly as the worker composes it (flint.mail.compose, its unsubscribe link)."""
    from flint.mail import service
    from flint.mail.compose import compose

    return lambda row: (compose(row, rt.config, unsubscribe_url=service.unsubscribe_link(rt, row)), row.to_address)


# ----------------------------------------------------------------------------------------------
# The two sides
# ----------------------------------------------------------------------------------------------

async def _baseline(port: int, mails: list, concurrency: int, sender: str,
                    make: Callable[[Any], tuple[Any, str]] | None = None) -> dict:
    """aiosmtplib straight to the server: ``concurrency`` connections, each sending its share in turn; each
    of ``mails`` is (message, recipient), or a row that ``make`` composes into one as it is sent."""
    import aiosmtplib

    shares = [mails[i::concurrency] for i in range(concurrency)]

    async def one_connection(share: list) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench.example", start_tls=False)
        await smtp.connect()
        try:
            for mail in share:
                message, to = make(mail) if make is not None else mail
                await smtp.send_message(message, sender=sender, recipients=[to])
        finally:
            await smtp.quit()

    window, t0 = harness.CpuWindow({"bench": harness.self_cpu}), time.monotonic()
    await asyncio.gather(*(one_connection(share) for share in shares if share))
    elapsed = time.monotonic() - t0
    return {"seconds": elapsed, "started_at": t0, "cpu": window.split()}


async def _worker(rt, rows: list, poll: float = 0.02) -> dict:
    """MailWorker(rt).run() until every one of ``rows`` is recorded sent."""
    from flint.background.mail_worker import MailWorker

    ids = [row.id for row in rows]
    binds = {f"e{i}": value for i, value in enumerate(ids)}
    count_sql = (f"SELECT COUNT(*) AS n FROM emails WHERE status = 'sent' AND id IN "
                 f"({', '.join(':' + key for key in binds)})")
    window, t0 = harness.CpuWindow({"bench": harness.self_cpu}), time.monotonic()
    task = asyncio.create_task(MailWorker(rt).run())
    try:
        while True:
            await asyncio.sleep(poll)
            if task.done():
                task.result()
                raise RuntimeError("the mail worker stopped")
            async with rt.db.read() as conn:
                sent = (await conn.fetch_one(count_sql, binds))["n"]
            if sent == len(ids):
                break
        elapsed = time.monotonic() - t0
        cpu = window.split()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {"seconds": elapsed, "started_at": t0, "cpu": cpu}


def _arrivals(smtp: SmtpProcess, rows: list, started_at: float) -> dict:
    """What the SMTP server saw of one side: each mail once, and when."""
    arrived = smtp.ask("arrivals")
    ids = [message_id for _, message_id in arrived]
    expected = {row.message_id.encode() for row in rows}
    times = [at for at, _ in arrived]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {"arrived": len(arrived), "distinct": len(set(ids)), "duplicates": len(ids) - len(set(ids)),
            "missing": len(expected - set(ids)), "unexpected": len(set(ids) - expected),
            "first_arrival_after_start_ms": harness.ms(times[0] - started_at, 1) if times else None,
            "arrival_span_s": round(span, 3),
            "per_s_between_arrivals": round((len(times) - 1) / span, 1) if span > 0 else None}


def _side(result: dict, mails: int, arrivals: dict) -> dict:
    cpu = result["cpu"]
    return {"mails": mails, "seconds": round(result["seconds"], 3), "per_s": round(mails / result["seconds"], 1),
            "bench_process_cores": round(cpu["cores"]["bench"], 2),
            "cpu_ms_per_mail": round(1000 * cpu["seconds"]["bench"] / mails, 3),
            "other_cores": round(cpu["other_cores"], 2), "machine_busy_pct": round(cpu["machine_busy_pct"], 1),
            "server": arrivals, "ok": arrivals["missing"] == 0 and arrivals["duplicates"] == 0
            and arrivals["unexpected"] == 0}


async def _main(db_url: str, smtp: SmtpProcess, mails: int, rounds: int, log: Callable[[str], None]) -> dict:
    from dataclasses import replace

    from flint.config import parse_mail_from
    from flint.db.migrate import migrate
    from flint.runtime import Runtime
    from support.factories import make_merchant

    config = replace(harness.bench_config(db_url), smtp_url=f"smtp://127.0.0.1:{smtp.port}",
                     mail_from="Bench <mail@flint.test>")
    rt = await Runtime.start(config)
    out: dict[str, Any] = {"rounds": []}
    try:
        await migrate(rt.db)
        merchant, _ = await make_merchant(rt)
        sender = parse_mail_from(config.mail_from or "")[1]
        concurrency = config.mail_concurrency
        out["concurrency"] = concurrency
        compose = _composer(rt)
        for round_no in range(1, rounds + 1):
            t0 = time.perf_counter()
            rows = await _enqueue(rt, merchant.id, mails, round_no)
            composed = [compose(row) for row in rows]
            seeded_s = round(time.perf_counter() - t0, 2)
            sides = {}
            for name in ("precomposed", "baseline", "worker"):
                smtp.ask("reset")
                if name == "worker":
                    result = await _worker(rt, rows)
                elif name == "baseline":
                    result = await _baseline(smtp.port, rows, concurrency, sender, compose)
                else:
                    result = await _baseline(smtp.port, composed, concurrency, sender)
                sides[name] = _side(result, mails, _arrivals(smtp, rows, result["started_at"]))
            work, base = sides["worker"], sides["baseline"]
            out["rounds"].append({"round": round_no, "seed_and_compose_s": seeded_s, **sides,
                                  "ratio": round(work["per_s"] / base["per_s"], 3),
                                  "ratio_to_precomposed": round(work["per_s"] / sides["precomposed"]["per_s"], 3)})
            log(f"  round {round_no}: worker {work['per_s']}/s ({work['seconds']} s), aiosmtplib composing and sending "
                f"{base['per_s']}/s: x{out['rounds'][-1]['ratio']}; aiosmtplib sending precomposed "
                f"{sides['precomposed']['per_s']}/s; each mail once: {all(v['ok'] for v in sides.values())}")
    finally:
        await rt.stop()
    return out


def run(tmp: Path, *, mails: int = 500, rounds: int = 3, log: Callable[[str], None] = print) -> dict:
    """Mails per second, one worker against aiosmtplib; returns {..., "goals", "notes"}."""
    started = time.monotonic()
    tmp.mkdir(parents=True, exist_ok=True)
    db_path = tmp / "mail.sqlite3"
    smtp = SmtpProcess()
    try:
        out: dict[str, Any] = {"config": {
            "mails_per_round": mails, "rounds": rounds, "database": "sqlite (fresh temp file, WAL, synchronous=FULL)",
            "smtp_server": "aiosmtpd in its own process on 127.0.0.1, accepting every message",
            "worker": "flint.background.mail_worker.MailWorker(rt).run() in this process, its defaults",
            "baseline": "aiosmtplib in this process, the same mails composed by flint.mail.compose as they are "
                        "sent, as many connections as the worker's mail_concurrency, opened in the timed window",
            "context": "the same with the messages composed beforehand (un-timed)"}}
        out.update(asyncio.run(_main(f"sqlite:///{db_path}", smtp, mails, rounds, log)))
    finally:
        smtp.close()
    done = out["rounds"]
    worker = statistics.median(r["worker"]["per_s"] for r in done)
    baseline = statistics.median(r["baseline"]["per_s"] for r in done)
    out["worker_per_s"], out["baseline_per_s"] = worker, baseline
    precomposed = statistics.median(r["precomposed"]["per_s"] for r in done)
    out["precomposed_per_s"] = precomposed
    # Each round's worker against its own baselines, run just before it: a machine whose load drifts between
    # rounds moves both sides of a round alike.
    out["ratio"] = statistics.median(r["ratio"] for r in done)
    out["ratio_to_precomposed"] = statistics.median(r["ratio_to_precomposed"] for r in done)
    out["each_mail_once"] = all(r[side]["ok"] for r in done for side in ("worker", "baseline", "precomposed"))
    notes = []
    if not out["each_mail_once"]:
        notes.append("mail: a mail arrived twice, or not at all, at the SMTP server (see the rounds)")
    for r in done:
        for side in ("worker", "baseline", "precomposed"):
            if note := harness.noise_note(f"mail round {r['round']} {side}", r[side]):
                notes.append(note)
    out["goals"] = goals_for(out)
    out["notes"] = notes
    out["runtime_s"] = round(time.monotonic() - started, 1)
    return out


def goals_for(out: dict) -> dict:
    ratio = out.get("ratio")
    return {
        f"mail_worker_ge_{GOAL_RATIO}x_aiosmtplib": {
            "target_ratio": GOAL_RATIO, "actual_ratio": ratio, "worker_per_s": out.get("worker_per_s"),
            "aiosmtplib_per_s": out.get("baseline_per_s"),
            "context_aiosmtplib_precomposed_per_s": out.get("precomposed_per_s"),
            "context_ratio_to_precomposed": out.get("ratio_to_precomposed"),
            "pass": ratio is not None and ratio >= GOAL_RATIO and bool(out.get("each_mail_once"))},
    }


def report(out: dict) -> str:
    if "error" in out:
        return f"mail: not measured ({out['error'][:300]})"
    lines = [f"{'mails to a local SMTP server (aiosmtpd)':<52} {'per s':>9} {'x aiosmtplib':>13} {'CPU ms/mail':>12}"]
    for r in out.get("rounds", []):
        w, b, p = r["worker"], r["baseline"], r["precomposed"]
        base = b["per_s"]
        for label, side in ((f"one mail worker, {w['mails']} mails", w),
                            (f"aiosmtplib, composing, {out['concurrency']} connections", b),
                            ("context: aiosmtplib, composed beforehand", p)):
            lines.append(f"  round {r['round']}: {label:<40} {side['per_s']:>9.1f} {side['per_s'] / base:>13.3f} "
                         f"{side['cpu_ms_per_mail']:>12.3f}")
    if out.get("ratio") is not None:
        lines.append(f"  medians: worker {out['worker_per_s']}/s, aiosmtplib composing and sending "
                     f"{out['baseline_per_s']}/s, ratio {out['ratio']} (goal >= {GOAL_RATIO}); aiosmtplib sending "
                     f"precomposed {out['precomposed_per_s']}/s (worker x{out['ratio_to_precomposed']}); "
                     f"every mail once: {out['each_mail_once']}")
    return "\n".join(lines)


if __name__ == "__main__":  # a quick look: python -m bench.mail [mails]
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="flint-mail-") as tmp_dir:
        result = run(Path(tmp_dir), mails=next((int(a) for a in sys.argv[1:] if a.isdigit()), 500))
    print(report(result))
    for key, goal in result["goals"].items():
        print(f"  {'PASS' if goal['pass'] else 'FAIL'}  {key}  (actual: {goal['actual_ratio']})")
    for note in result["notes"]:
        print(f"  note: {note}")

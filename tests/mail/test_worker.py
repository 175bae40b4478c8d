"""The mail worker against a real SMTP server in the test process (aiosmtpd, support/smtp.py), on SQLite and
PostgreSQL: every mail arrives once, with its Message-ID; a server that refuses for a while (4xx), times out,
or drops the connection after the data, then recovers: every mail arrives, none twice; a permanent refusal
(5xx) and a spent schedule fail the mail with an ``email.failed`` event, written with the outcome; two
workers on one database share 200 mails, each arriving once; a real `flint worker` killed with SIGKILL
between sending and recording: the copies are bounded by the mails in flight, with one Message-ID each."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace

import pytest

from flint import clock
from flint.background.mail_worker import MailWorker, send_due
from flint.config import Config
from flint.db.migrate import migrate
from flint.events import service as events
from flint.mail import store
from flint.orders import service as orders
from flint.runtime import Runtime
from support import ROOT, TEST_SECRET, free_port
from support.factories import make_merchant, make_order
from support.server import start_server, stop_server
from support.smtp import DROP, STALL, SmtpServer

from .conftest import MAIL_FROM, enqueue, mail_config


async def _rows(rt: Runtime, merchant_id: str) -> list:
    async with rt.db.read() as conn:
        emails, _ = await store.select_emails_page(conn, merchant_id, None, 500, None)
    return emails


async def _events(rt: Runtime, merchant_id: str, kind: str) -> list:
    found, _ = await events.list_events(rt, merchant_id, kind, 100, None)
    return found


async def test_each_mail_arrives_once_with_its_envelope_and_message_id(mail_rt, smtp):
    merchant, _ = await make_merchant(mail_rt)
    order = await make_order(mail_rt, merchant.id)
    made = await enqueue(mail_rt, merchant.id, n=5, order_id=order.id)

    await MailWorker(mail_rt).run_until_idle()

    arrived = smtp.by_message_id()
    assert set(arrived) == {email.message_id for email in made}
    assert all(len(copies) == 1 for copies in arrived.values())
    for email in made:
        received = arrived[email.message_id][0]
        assert received.mail_from == "mail@flint.test" and received.rcpt_tos == [email.to_address]
        assert received.message["To"] == email.to_address
        assert received.message["From"].addresses[0].addr_spec == "mail@flint.test"
    rows = {row.id: row for row in await _rows(mail_rt, merchant.id)}
    assert {row.status for row in rows.values()} == {"sent"}
    assert all(row.attempts == 1 and row.sent_at and row.lease_until is None for row in rows.values())
    # Each an event of the order, in its sequence, its data the Email object (never the body).
    sent = await _events(mail_rt, merchant.id, "email.sent")
    assert sorted(event.to_dict()["data"]["object"]["id"] for event in sent) == sorted(rows)
    assert all(event.order_id == order.id for event in sent)
    order_events, _ = await orders.list_order_events(mail_rt, merchant.id, order.id, 0, 100)
    assert [event.sequence for event in order_events] == list(range(1, 7))  # order.created, then five mails
    shown = sent[0].to_dict()["data"]["object"]
    assert shown == rows[shown["id"]].to_dict() and shown["status"] == "sent" and "context" not in shown


async def test_a_temporary_refusal_is_retried_and_the_mail_arrives_once(mail_rt, smtp):
    merchant, _ = await make_merchant(mail_rt)
    smtp.fail_next("451 4.7.1 Greylisted, try again", times=2)
    (email,) = await enqueue(mail_rt, merchant.id)

    worker = MailWorker(mail_rt)
    await worker.run_until_idle()
    (row,) = await _rows(mail_rt, merchant.id)
    assert row.status == "pending" and row.attempts == 1 and row.last_error.startswith("smtp 451")
    assert not smtp.received()

    await _drain(mail_rt, merchant.id)
    (row,) = await _rows(mail_rt, merchant.id)
    assert row.status == "sent" and row.attempts == 3 and row.last_error is None
    assert [r.message_id for r in smtp.received()] == [email.message_id]
    assert smtp.transactions == 3
    assert not await _events(mail_rt, merchant.id, "email.failed")
    assert len(await _events(mail_rt, merchant.id, "email.sent")) == 1


async def _drain(rt: Runtime, merchant_id: str, timeout: float = 20) -> list:
    """Run a worker until no mail of the merchant waits (pending or sending) any more."""
    worker = MailWorker(rt)
    task = asyncio.create_task(worker.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            rows = await _rows(rt, merchant_id)
            if all(row.status not in ("pending", "sending") for row in rows):
                return rows
            assert asyncio.get_running_loop().time() < deadline, Counter(row.status for row in rows)
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_permanent_refusal_fails_the_mail_at_once_with_an_email_failed_event(mail_rt, smtp):
    merchant, _ = await make_merchant(mail_rt)
    order = await make_order(mail_rt, merchant.id)
    smtp.refuse("gone@example.com", "550 5.1.1 <gone@example.com>: Recipient address rejected")
    (bad,) = await enqueue(mail_rt, merchant.id, to="gone@example.com", order_id=order.id)
    (good,) = await enqueue(mail_rt, merchant.id)

    await MailWorker(mail_rt).run_until_idle()

    rows = {row.id: row for row in await _rows(mail_rt, merchant.id)}
    assert rows[bad.id].status == "failed" and rows[bad.id].attempts == 1
    assert rows[bad.id].last_error == "smtp 550: 5.1.1 <gone@example.com>: Recipient address rejected"
    assert rows[good.id].status == "sent"
    (failed,) = await _events(mail_rt, merchant.id, "email.failed")
    assert failed.order_id == order.id
    assert failed.to_dict()["data"]["object"] == rows[bad.id].to_dict()
    assert [r.message_id for r in smtp.received()] == [good.message_id]


async def test_a_refusal_of_the_whole_message_5xx_after_data_fails_it(mail_rt, smtp):
    merchant, _ = await make_merchant(mail_rt)
    smtp.fail_next("554 5.7.1 Message rejected as spam")
    await enqueue(mail_rt, merchant.id)
    await MailWorker(mail_rt).run_until_idle()
    (row,) = await _rows(mail_rt, merchant.id)
    assert row.status == "failed" and row.last_error.startswith("smtp 554")
    assert len(await _events(mail_rt, merchant.id, "email.failed")) == 1


async def test_a_server_that_is_down_delays_mail_until_the_schedule_is_spent(mail_rt, smtp):
    """Nothing listens: each attempt fails to connect, is retried on the schedule (4 waits here), and
    the mail is failed after the fifth attempt, with its event."""
    merchant, _ = await make_merchant(mail_rt)
    smtp.stop()
    await enqueue(mail_rt, merchant.id)
    rows = await _drain(mail_rt, merchant.id)
    assert [(row.status, row.attempts) for row in rows] == [("failed", 5)]
    assert rows[0].last_error.startswith("connection_error")
    (failed,) = await _events(mail_rt, merchant.id, "email.failed")
    assert failed.to_dict()["data"]["object"]["attempts"] == 5


@pytest.mark.parametrize("failure", [STALL, DROP])
async def test_a_server_that_times_out_or_drops_the_connection_then_recovers(mail_rt, smtp, failure):
    """Ten mails over four connections: the first three DATA transactions stall past the 1 s timeout (or
    lose their connection after the data, before the answer); those mails are retried on fresh
    connections; every mail arrives, none twice."""
    merchant, _ = await make_merchant(mail_rt)
    smtp.stall_seconds = 3
    smtp.fail_next(failure, times=3)
    made = await enqueue(mail_rt, merchant.id, n=10)
    rows = await _drain(mail_rt, merchant.id)
    assert {row.status for row in rows} == {"sent"}
    arrived = smtp.by_message_id()
    assert set(arrived) == {email.message_id for email in made}
    assert all(len(copies) == 1 for copies in arrived.values()), Counter(len(c) for c in arrived.values())
    retried = [row for row in rows if row.attempts > 1]
    assert len(retried) == 3
    assert smtp.transactions == 13
    assert len(await _events(mail_rt, merchant.id, "email.sent")) == 10


async def test_two_workers_on_one_database_share_200_mails_each_sent_once(mail_rt, second_rt, smtp):
    """Two Runtimes (two processes' pools) each running a worker over one database: claims are disjoint
    (SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite), every mail arrives exactly once, every mail
    has exactly one email.sent event, and the orders' event sequences stay gapless."""
    second_rt.config = mail_rt.config
    smtp.delay = 0.005
    merchant, _ = await make_merchant(mail_rt)
    order_ids = [(await make_order(mail_rt, merchant.id)).id for _ in range(20)]
    made = []
    for i in range(200):
        made += await enqueue(mail_rt, merchant.id, order_id=order_ids[i % 20])

    workers = [MailWorker(mail_rt), MailWorker(second_rt)]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        await smtp.until(200, timeout=60)
        rows = await _drain(mail_rt, merchant.id)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.2)
    arrived = smtp.by_message_id()
    assert len(smtp.received()) == 200 and set(arrived) == {email.message_id for email in made}
    assert {(row.status, row.attempts) for row in rows} == {("sent", 1)}
    sent = []
    starting_after = None
    while True:
        page, more = await events.list_events(mail_rt, merchant.id, "email.sent", 100, starting_after)
        sent += page
        if not more:
            break
        starting_after = page[-1].id
    assert sorted(e.to_dict()["data"]["object"]["id"] for e in sent) == sorted(email.id for email in made)
    for order_id in order_ids[:3]:
        order_events, _ = await orders.list_order_events(mail_rt, merchant.id, order_id, 0, 100)
        assert [event.sequence for event in order_events] == list(range(1, 12))


async def test_outcomes_are_recorded_moments_after_the_server_accepts(mail_rt, smtp, capsys):
    """The duplicate window (docs/deploy.md, SMTP): from the server's answer to the outcome committed in
    the database (seen by another connection polling every 2 ms), for 100 mails on four connections. A
    worker killed inside it sends the mail again."""
    merchant, _ = await make_merchant(mail_rt)
    made = await enqueue(mail_rt, merchant.id, n=100)
    seen: dict[str, float] = {}
    task = asyncio.create_task(MailWorker(mail_rt).run())
    try:
        deadline = time.monotonic() + 30
        while len(seen) < 100 and time.monotonic() < deadline:
            async with mail_rt.db.read() as conn:
                rows = await conn.fetch_all("SELECT message_id FROM emails WHERE status = 'sent'")
            now = time.time()
            for row in rows:
                seen.setdefault(row["message_id"], now)
            await asyncio.sleep(0.002)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    accepted = {received.message_id: received.at for received in smtp.received()}
    assert set(seen) == set(accepted) == {email.message_id for email in made}
    windows = sorted((seen[message_id] - accepted[message_id]) * 1000 for message_id in seen)
    with capsys.disabled():
        print(f"\n[{mail_rt.db.dialect}] server's 250 -> outcome committed: median {statistics.median(windows):.1f} ms, "
              f"p95 {windows[94]:.1f} ms, max {windows[-1]:.1f} ms")
    assert windows[94] < 1000


async def test_a_late_outcome_under_a_lapsed_lease_changes_nothing(mail_rt, smtp):
    """A worker that stalled past its lease: another claimed the mail again; the first one's outcome is
    not written (no status change, no event), the second's is."""
    from flint.mail import service
    from flint.mail.models import SENT, Outcome

    merchant, _ = await make_merchant(mail_rt)
    await enqueue(mail_rt, merchant.id)
    (first,) = await service.claim(mail_rt, limit=5, lease_seconds=0.05)
    await asyncio.sleep(0.1)
    (second,) = await service.claim(mail_rt, limit=5, lease_seconds=30)
    assert second.id == first.id and second.attempts == 2 and second.lease_until != first.lease_until
    assert await service.record_outcomes(mail_rt, [Outcome(first, SENT)]) == 0
    (row,) = await _rows(mail_rt, merchant.id)
    assert row.status == "sending" and not await _events(mail_rt, merchant.id, "email.sent")
    assert await service.record_outcomes(mail_rt, [Outcome(second, SENT)]) == 1
    (row,) = await _rows(mail_rt, merchant.id)
    assert row.status == "sent" and len(await _events(mail_rt, merchant.id, "email.sent")) == 1


async def test_a_stopping_worker_finishes_what_it_sends_and_gives_back_what_waits(mail_rt, smtp):
    """A stop (SIGTERM: the task is cancelled) lets the mail on the wire finish and records it; a mail the
    worker had claimed but not begun is given back, due at once, its claim not counted as an attempt."""
    mail_rt.config = replace(mail_rt.config, mail_concurrency=1, mail_timeout_seconds=3)
    smtp.delay = 0.5
    merchant, _ = await make_merchant(mail_rt)
    await enqueue(mail_rt, merchant.id, n=2)
    task = asyncio.create_task(MailWorker(mail_rt).run())
    while smtp.transactions < 1:  # the first mail's data is at the server, its answer half a second away
        await asyncio.sleep(0.01)
    assert Counter(row.status for row in await _rows(mail_rt, merchant.id)) == {"sending": 2}
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    rows = sorted(await _rows(mail_rt, merchant.id), key=lambda row: row.status)
    assert [(row.status, row.attempts) for row in rows] == [("pending", 0), ("sent", 1)]
    assert rows[0].lease_until is None and rows[0].next_attempt_at <= clock.now_iso()
    assert len(smtp.received()) == 1


async def test_without_mail_configured_the_worker_does_not_run(rt):
    from flint.background import mail_worker

    assert not rt.config.mail_configured
    await asyncio.wait_for(mail_worker.run(rt), 1)  # returns at once
    assert await send_due(rt) is True


async def test_send_due_sends_what_is_due_for_the_test_clock(mail_rt, smtp):
    merchant, _ = await make_merchant(mail_rt)
    made = await enqueue(mail_rt, merchant.id, n=3)
    assert await send_due(mail_rt) is True
    assert {r.message_id for r in smtp.received()} == {e.message_id for e in made}


async def test_smtps_and_a_password_go_over_tls_only(rt, smtp):
    """smtp:// with a password to a host other than loopback insists on STARTTLS: this server offers
    none, so the mail is not sent (and the password never crosses in clear); to loopback it logs in."""
    merchant, _ = await make_merchant(rt)
    rt.config = mail_config(rt.config, f"smtp://user:Pw-7f3a9@localhost.localdomain:{smtp.port}")
    assert rt.config.smtp.require_starttls
    rt.config = mail_config(rt.config, f"smtp://user:Pw-7f3a9@127.0.0.1:{smtp.port}")
    assert not rt.config.smtp.require_starttls
    rt.config = mail_config(rt.config, f"smtps://user:Pw-7f3a9@127.0.0.1:{smtp.port}")
    await enqueue(rt, merchant.id)
    await MailWorker(rt).run_until_idle()
    (row,) = await _rows(rt, merchant.id)
    # The plain-text server cannot speak TLS: a connection error, retried later, never a plain send.
    assert row.status == "pending" and row.last_error.startswith(("connection_error", "timeout"))
    assert "Pw-7f3a9" not in repr(rt.config) and "Pw-7f3a9" not in row.last_error
    assert not smtp.received()


# -- a real `flint worker` killed between sending and recording -----------------------------------------------

CRASH_MAILS = 60
KILL_AT = 25  # the server kills the worker as this message's data arrives, before answering it
CRASH_ENV = {
    "FLINT_MAIL_RETRY_SCHEDULE": "0.2,0.2,0.2",
    "FLINT_MAIL_POLL_INTERVAL": "0.05",
    # A killed worker's claims stay leased for twice the attempt timeout plus mail_worker.LEASE_MARGIN_SECONDS
    # (10 s) before another worker sends them again: 2 s keeps the test at about 17 s a backend.
    "FLINT_MAIL_TIMEOUT_SECONDS": "2",
}


def _start_worker(tmp_path, db_url: str, smtp_url: str) -> subprocess.Popen:
    env = dict(os.environ, FLINT_DATABASE_URL=db_url, FLINT_SECRET_KEY=TEST_SECRET, FLINT_PUBLIC_URL="http://127.0.0.1:9",
               FLINT_ENV="development", FLINT_SWEEP_INTERVAL="0.5", FLINT_LOG_LEVEL="INFO", FLINT_SMTP_URL=smtp_url,
               FLINT_MAIL_FROM=MAIL_FROM, **CRASH_ENV)
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "flint.cli", "worker"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    finally:
        log.close()


def _outbox(config: Config) -> dict[str, int]:
    async def read() -> dict[str, int]:
        runtime = await Runtime.start(config)
        try:
            async with runtime.db.read() as conn:
                return await store.count_by_status(conn)
        finally:
            await runtime.stop()

    return asyncio.run(read())


def test_a_worker_killed_between_sending_and_recording_resends_at_most_what_was_in_flight(db_url, tmp_path):
    """A real `flint worker` process sends 60 mails (four at a time) to the test's SMTP server, which
    SIGKILLs it as the 25th message's data arrives, before answering: that mail and the others in flight
    were received (or are being received) but none of their outcomes can be recorded. A second worker
    sends them again once their leases lapse. Every mail arrives; the copies are bounded by the mails the
    database held as ``sending`` at the kill, at most two of one mail, and the copies of one mail carry
    the same Message-ID, recipient and body."""
    smtp = SmtpServer(delay=0.03)
    config = mail_config(Config(database_url=db_url, secret_keys=(TEST_SECRET,), env="development",
                                public_url="http://127.0.0.1:9"), smtp.url)
    workers: list[subprocess.Popen] = []

    async def seed() -> list:
        runtime = await Runtime.start(config)
        try:
            await migrate(runtime.db)
            merchant, _ = await make_merchant(runtime)
            order_ids = [(await make_order(runtime, merchant.id)).id for _ in range(6)]
            made = []
            for i in range(CRASH_MAILS):
                made += await enqueue(runtime, merchant.id, order_id=order_ids[i % 6], kind="receipt",
                                      cause=f"receipt:crash-{i}")
            return made
        finally:
            await runtime.stop()

    made = asyncio.run(seed())
    killed = threading.Event()

    def kill_on_the_25th(received) -> None:
        if len(smtp.messages) == KILL_AT and not killed.is_set():
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            killed.set()

    smtp.on_message = kill_on_the_25th
    smtp.start()
    try:
        started = time.monotonic()
        workers.append(_start_worker(tmp_path, db_url, smtp.url))
        assert killed.wait(30), "the worker never sent 25 mails"
        at_kill = _outbox(config)
        received_at_kill = len(smtp.received())
        workers.append(_start_worker(tmp_path, db_url, smtp.url))
        deadline = time.monotonic() + 60
        while _outbox(config).get("sent", 0) < CRASH_MAILS:
            assert time.monotonic() < deadline, _outbox(config)
            assert workers[1].poll() is None, "the second worker died"
            time.sleep(0.1)
        time.sleep(0.3)  # nothing more arrives once every mail is recorded as sent
        assert _outbox(config) == {"sent": CRASH_MAILS}
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        smtp.stop()

    arrived = smtp.by_message_id()
    assert set(arrived) == {email.message_id for email in made}
    in_flight = at_kill.get("sending", 0)
    copies = Counter(len(same) for same in arrived.values())
    duplicates = len(smtp.received()) - CRASH_MAILS
    # The 25th message reached the server and was never answered: it is sent again, whatever else.
    assert duplicates >= 1 and len(arrived[smtp.messages[KILL_AT - 1].message_id]) == 2
    assert duplicates <= in_flight <= 4 + 4, (at_kill, copies)  # at most a claim in flight, and one recording
    assert max(copies) == 2
    for same in arrived.values():
        first = same[0].message
        for other in same[1:]:
            message = other.message
            assert message["Message-ID"] == first["Message-ID"] and message["To"] == first["To"]
            assert message.get_body(("plain",)).get_content() == first.get_body(("plain",)).get_content()
    resent = [same[1].at - same[0].at for same in arrived.values() if len(same) == 2]
    print(f"\n[{config.database_url.split(':')[0]}] killed at {received_at_kill} mails received; outbox at the kill "
          f"{at_kill}; {duplicates} duplicate(s) of {in_flight} in flight, resent {min(resent):.1f}-{max(resent):.1f} s "
          f"after the first copy; {time.monotonic() - started:.1f} s")


# -- `flint serve`: mail waits, nothing else does ------------------------------------------------------------

def test_flint_serve_sends_mail_in_the_background_and_a_silent_server_delays_only_mail(tmp_path):
    """A live `flint serve` whose SMTP server accepts connections and never answers (a black hole: the
    worst case, each attempt waits out its timeout): the API answers as fast as ever and the mails wait,
    retried; once a real server listens on that port, every mail arrives once, and GET /v1/events shows
    an ``email.sent`` per mail, the Email object as its data."""
    port = free_port()
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", port))
    hole.listen(64)  # connections complete in the kernel; nobody ever says 220
    server = start_server(tmp_path, extra_env={
        "FLINT_SMTP_URL": f"smtp://127.0.0.1:{port}", "FLINT_MAIL_FROM": MAIL_FROM,
        "FLINT_MAIL_RETRY_SCHEDULE": "0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5", "FLINT_MAIL_TIMEOUT_SECONDS": "1",
        "FLINT_MAIL_POLL_INTERVAL": "0.05"})
    smtp = SmtpServer(port=port)
    try:
        config = mail_config(server.runtime_config(), f"smtp://127.0.0.1:{port}")

        async def seed() -> tuple:
            runtime = await Runtime.start(config)
            try:
                merchant, key = await make_merchant(runtime)
                return merchant, key, await enqueue(runtime, merchant.id, n=8)
            finally:
                await runtime.stop()

        _, key, made = asyncio.run(seed())
        with server.client(key) as api:
            time.sleep(1.5)  # the worker's four connections now wait on the black hole
            for _ in range(10):
                started = time.monotonic()
                created = api.post("/v1/orders", json={"currency": "usd",
                                                       "line_items": [{"name": "Tea", "quantity": 1, "unit_amount": 900}]})
                assert created.status_code == 200 and time.monotonic() - started < 0.5, created.text
            status = _outbox(config)
            assert status.get("sent", 0) == 0 and set(status) <= {"pending", "sending"}, status

            hole.close()
            smtp.start()  # the server comes back
            smtp.wait_for(8, timeout=30)
            deadline = time.monotonic() + 20
            while True:
                listed = api.get("/v1/events", params={"type": "email.sent", "limit": 100}).json()["data"]
                if len(listed) == 8 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        assert sorted(event["data"]["object"]["id"] for event in listed) == sorted(email.id for email in made)
        assert all(event["data"]["object"]["object"] == "email" and event["data"]["object"]["status"] == "sent"
                   and event["data"]["object"]["attempts"] >= 2 for event in listed)
        arrived = smtp.by_message_id()
        assert set(arrived) == {email.message_id for email in made} and all(len(c) == 1 for c in arrived.values())
    finally:
        hole.close()
        stop_server(server)
        smtp.stop()
    assert "Traceback" not in server.logs()

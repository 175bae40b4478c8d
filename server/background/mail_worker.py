"""The mail worker: sends the outbox's due mails over SMTP (FLINT_SMTP_URL), each once per cause.

One loop claims due mails (status ``sending`` under a lease, the attempt counted, in one short write
transaction); one task per mail composes it and sends it with no transaction open, on an SMTP connection
kept open between mails (at most ``mail_concurrency`` mails are sent at once, each on a connection of its
own); a recorder writes the outcomes with their events (``email.sent``, ``email.failed``) as soon as they
come, those that arrive while a write is under way together in the next one. The worker holds up to twice
``mail_concurrency`` claimed mails, so that claims come in batches while the connections are busy: a write
transaction per few mails, not two per mail. Outcomes:

* the server accepted the mail (250 after DATA): ``sent``;
* a temporary refusal (4xx), a timeout, a dropped connection, a server that cannot be reached or will
  not let Flint in (greeting, EHLO, STARTTLS or AUTH refused: the operator's to fix, not the mail's
  fault): ``pending`` again after the retry schedule's next wait, ``failed`` once the schedule is spent;
* a permanent refusal (5xx) of this mail's sender, recipient or content, or an address the server
  cannot carry (non-ASCII without SMTPUTF8): ``failed`` at once.

Exactly once: two workers never hold one row (the claim's lease, and ``FOR NO KEY UPDATE SKIP LOCKED``
on PostgreSQL); an outcome is written only under the lease it was claimed with. The one window for a
second copy: a worker that dies (SIGKILL, power) or stalls past its lease after the server accepted a
mail and before its outcome is written, or a connection lost after the message's final dot and before
the server's answer (RFC 1047). The row is then sent again once the lease lapses, with the same
Message-ID, which mailbox providers use to drop the copy. At most one copy per mail in flight at that
moment (docs/deploy.md, SMTP). A stop (SIGTERM) lets the mails in flight finish first.

Nothing waits on mail: a server that is down only delays the mails, each retried on its schedule.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
import weakref
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import aiosmtplib

from flint import clock
from flint.config import parse_mail_from
from flint.mail import service
from flint.mail.compose import compose
from flint.mail.models import FAILED, PENDING, SENT, Email, Outcome
from flint.runtime import Runtime

log = logging.getLogger("flint.mail")

LEASE_MARGIN_SECONDS = 10  # a claimed mail is this worker's for the attempt timeout plus this
JITTER = 0.2  # each retry waits its scheduled delay ±20%, so a recovering server is not met by a stampede
STOP_GRACE_SECONDS = 5  # on a stop, mails in flight get this long to finish (and be recorded) first
IDLE_CHECK_SECONDS = 2  # a connection idle longer is checked (NOOP) before it carries another mail
IDLE_CLOSE_SECONDS = 30  # ... and closed when idle this long (servers drop idle clients after a while)
MAILS_PER_CONNECTION = 100  # then a fresh connection: some servers refuse more mails on one (4xx)
MAX_ERROR = 300  # characters of an SMTP answer kept as the mail's last_error


class _Permanent(Exception):
    """This mail will never be accepted as it is (its error text is the reason)."""


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    used_at: float = field(default_factory=time.monotonic)
    mails: int = 0


def _ehlo_name(public_url: str) -> str:
    """What this client calls itself in EHLO (RFC 5321 4.1.4: its domain, or an address literal): the
    public URL's host. Given, so that aiosmtplib does not look up this machine's name on each connect."""
    host = urlsplit(public_url).hostname or "localhost"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


def _answer(error: aiosmtplib.SMTPResponseException) -> str:
    return f"smtp {error.code}: {' '.join(error.message.split())}"[:MAX_ERROR]


# The background workers running in this process: the test clock lets their sends finish and records
# their outcomes before it moves the clock (``settle``).
RUNNING: weakref.WeakSet[MailWorker] = weakref.WeakSet()

class MailWorker:
    def __init__(self, rt: Runtime) -> None:
        config = rt.config
        assert config.mail_configured, "the mail worker runs only with FLINT_SMTP_URL and FLINT_MAIL_FROM"
        self.rt = rt
        self.smtp = config.smtp
        self.sender = parse_mail_from(config.mail_from or "")[1]  # the envelope's MAIL FROM (bounces go there)
        self.ehlo_name = _ehlo_name(config.public_url)
        self.concurrency = config.mail_concurrency
        # Claimed mails held at once: those being sent, and as many waiting for a connection to free.
        self.capacity = 2 * self.concurrency
        self.connections = asyncio.Semaphore(self.concurrency)
        self.timeout = config.mail_timeout_seconds
        self.poll_interval = config.mail_poll_interval
        self.schedule = config.mail_retry_schedule
        # A claimed mail may wait for a connection (one attempt's time at most), then be sent (another).
        self.lease_seconds = 2 * self.timeout + LEASE_MARGIN_SECONDS
        self.tasks: set[asyncio.Task] = set()
        self.idle: list[_Connection] = []  # open connections no send is using, most recently used last
        self.outcomes: list[Outcome] = []
        self.slot_freed = asyncio.Event()
        self.record_now = asyncio.Event()
        self.recording = asyncio.Lock()
        self.stopping = False

    # -- the loops ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        recorder = asyncio.create_task(self._record_loop())
        RUNNING.add(self)
        try:
            while True:
                free = self.capacity - len(self.tasks)
                # A batch at a time: claim once a connection's worth of room is free.
                claimed = await self._claim_and_start(free) if free >= self.concurrency else 0
                if claimed and claimed == free:
                    continue  # more may be due: claim again as soon as there is room
                self.slot_freed.clear()
                await self._close_idle(IDLE_CLOSE_SECONDS)
                # asyncio.timeout, not wait_for (Python 3.11's wait_for can swallow a cancel: see the webhook worker)
                try:
                    async with asyncio.timeout(self.poll_interval):
                        await self.slot_freed.wait()
                except TimeoutError:
                    pass
        finally:
            # A stop: what is on the wire finishes and is recorded, so a restart does not send it again;
            # what waits for a connection is given back.
            RUNNING.discard(self)
            self.stopping = True
            if self.tasks:
                await asyncio.wait(list(self.tasks), timeout=STOP_GRACE_SECONDS)
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
            try:
                await self._record()
            except Exception:  # the leases lapse and the mails are sent again (same Message-ID)
                log.exception("mail outcomes not recorded at stop")
            await self._close_idle(0)

    async def run_until_idle(self, timeout: float = 30) -> None:
        """Send everything due now, record it, and return (tests, the test clock)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                started = await self._claim_and_start(self.capacity - len(self.tasks))
                if self.tasks:
                    await asyncio.gather(*list(self.tasks), return_exceptions=True)
                await self._record()
                if not started and not self.tasks:
                    return
            raise TimeoutError("mails still due")
        finally:
            await self._close_idle(0)

    async def _claim_and_start(self, free: int) -> int:
        if free <= 0:
            return 0
        try:
            emails = await service.claim(self.rt, limit=free, lease_seconds=self.lease_seconds)
        except Exception:
            log.exception("mail claim failed")
            return 0
        for email in emails:
            task = asyncio.create_task(self._send(email))
            self.tasks.add(task)
            task.add_done_callback(self._done)
        return len(emails)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        self.slot_freed.set()

    async def _record_loop(self) -> None:
        while True:
            await self.record_now.wait()
            self.record_now.clear()
            try:
                await self._record()
            except Exception:  # the outcomes stay queued and are written on the next round
                log.exception("mail outcomes not recorded; retrying")
                await asyncio.sleep(0.5)
                self.record_now.set()

    async def settle(self, timeout: float) -> None:
        """Let the sends in flight finish (up to ``timeout`` s) and record every outcome now: the test
        clock, so that a mail just refused has its retry scheduled before the clock moves past it."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        await self._record()

    async def _record(self) -> None:
        """Every outcome queued, in one transaction (group commit: those that arrive meanwhile go in
        the next one)."""
        async with self.recording:
            if not self.outcomes:
                return
            batch, self.outcomes = self.outcomes, []
            try:
                await service.record_outcomes(self.rt, batch)
            except BaseException:
                self.outcomes[:0] = batch
                raise

    # -- one attempt --------------------------------------------------------------------------------------------

    async def _send(self, email: Email) -> None:
        try:
            await self.connections.acquire()
        except asyncio.CancelledError:
            self._give_back(email)
            raise
        try:
            if self.stopping:
                self._give_back(email)
                return
            await self._attempt(email)
        finally:
            self.connections.release()

    def _give_back(self, email: Email) -> None:
        """Stopped before its turn: never attempted, so due again at once (for another worker), its claim
        not counted as an attempt."""
        self.outcomes.append(Outcome(email, PENDING, email.last_error, clock.now_iso(), unclaimed=True))

    async def _attempt(self, email: Email) -> None:
        try:
            message = compose(email, self.rt.config, unsubscribe_url=service.unsubscribe_link(self.rt, email))
        except Exception:
            # A template or context that cannot be rendered: retried on the schedule (a fix deployed
            # meanwhile sends it), failed once the schedule is spent.
            log.exception("mail not composed", extra={"email_id": email.id, "kind": email.kind})
            self._finish(email, error="compose_error: the mail could not be rendered")
            return
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self.timeout):  # connect, TLS, login and the whole transaction
                connection = await self._connection()
                await self._transmit(connection, message, email)
        except _Permanent as refused:
            self._finish(email, error=str(refused), permanent=True)
        except TimeoutError:
            self._finish(email, error=f"timeout: no answer within {self.timeout:g} s")
        except aiosmtplib.SMTPResponseException as error:  # a temporary refusal (4xx), or one of the session
            self._finish(email, error=_answer(error))
        except aiosmtplib.SMTPRecipientsRefused as error:
            self._finish(email, error=_answer(error.recipients[0]))
        except (aiosmtplib.SMTPException, OSError) as error:
            self._finish(email, error=f"connection_error: {type(error).__name__}")
        else:
            self._finish(email)  # first: a stop cancelling the QUIT below must not lose what was sent
            connection.mails += 1
            connection.used_at = time.monotonic()
            if connection.mails < MAILS_PER_CONNECTION:
                self.idle.append(connection)
                connection = None
            else:
                retired, connection = connection, None
                await self._quit(retired)
        finally:
            if connection is not None:  # after any failure the session's state is unknown: never reused
                connection.smtp.close()

    async def _transmit(self, connection: _Connection, message: EmailMessage, email: Email) -> None:
        """One SMTP transaction (MAIL, RCPT, DATA). A 5xx to any of them refuses this mail for good."""
        try:
            await connection.smtp.send_message(message, sender=self.sender, recipients=[email.to_address])
        except aiosmtplib.SMTPRecipientsRefused as error:
            if 500 <= error.recipients[0].code < 600:
                raise _Permanent(_answer(error.recipients[0])) from None
            raise
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as error:
            if 500 <= error.code < 600:
                raise _Permanent(_answer(error)) from None
            raise
        except aiosmtplib.SMTPNotSupported as error:  # an internationalised address, no SMTPUTF8 here
            raise _Permanent(f"not_supported: {error}"[:MAX_ERROR]) from None
        except ValueError as error:  # an address aiosmtplib will not put on the wire
            raise _Permanent(f"address_refused: {error}"[:MAX_ERROR]) from None

    def _finish(self, email: Email, *, error: str | None = None, permanent: bool = False) -> None:
        if error is None:
            outcome = Outcome(email, SENT)
        else:
            delay = None if permanent else self._delay(email.attempts)
            if delay is None:
                outcome = Outcome(email, FAILED, error)
            else:
                outcome = Outcome(email, PENDING, error, clock.iso(clock.now() + timedelta(seconds=delay)))
            # The kind of failure only ("smtp 550", "timeout"): a server's answer may name the buyer's address.
            log.info("mail attempt failed", extra={"email_id": email.id, "attempts": email.attempts,
                                                   "status": outcome.status, "error": error.split(":", 1)[0]})
        self.outcomes.append(outcome)
        self.record_now.set()

    def _delay(self, attempts_made: int) -> float | None:
        """Seconds until the next attempt after ``attempts_made`` attempts, None when the schedule is spent."""
        if attempts_made > len(self.schedule):
            return None
        return self.schedule[attempts_made - 1] * random.uniform(1 - JITTER, 1 + JITTER)

    # -- connections --------------------------------------------------------------------------------------------

    async def _connection(self) -> _Connection:
        """An open, greeted (and, as configured, TLS-protected and logged-in) SMTP connection: an idle one
        if it still answers, else a new one."""
        while self.idle:
            connection = self.idle.pop()
            if not connection.smtp.is_connected:
                connection.smtp.close()
                continue
            if time.monotonic() - connection.used_at > IDLE_CHECK_SECONDS:
                try:
                    await connection.smtp.noop()
                except (aiosmtplib.SMTPException, OSError):
                    connection.smtp.close()
                    continue
            return connection
        settings = self.smtp
        assert settings is not None
        smtp = aiosmtplib.SMTP(
            hostname=settings.host, port=settings.port, username=settings.username, password=settings.password,
            use_tls=settings.implicit_tls,
            # smtp://: STARTTLS when the server offers it, and required before a password leaves this machine.
            start_tls=False if settings.implicit_tls else (True if settings.require_starttls else None),
            local_hostname=self.ehlo_name, timeout=self.timeout)
        try:
            await smtp.connect()
        except BaseException:
            smtp.close()
            raise
        return _Connection(smtp)

    async def _quit(self, connection: _Connection) -> None:
        try:
            async with asyncio.timeout(min(self.timeout, 2)):
                await connection.smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            connection.smtp.close()

    async def _close_idle(self, older_than: float) -> None:
        now = time.monotonic()
        keep = []
        for connection in self.idle:
            if now - connection.used_at >= older_than:
                await self._quit(connection)
            else:
                keep.append(connection)
        self.idle = keep


async def run(rt: Runtime) -> None:
    """The mail worker of `flint serve` (background on) and `flint worker`; without FLINT_SMTP_URL and
    FLINT_MAIL_FROM there is nothing to send (enqueue writes nothing) and it returns at once."""
    if not rt.config.mail_configured:
        log.info("mail is not configured (FLINT_SMTP_URL, FLINT_MAIL_FROM): no mail worker")
        return
    await MailWorker(rt).run()


async def send_due(rt: Runtime, budget: float = 5) -> bool:
    """Send what is due now and return within ``budget`` seconds (for the test clock, as
    webhook_worker.deliver_due): True when nothing due is left. A send cut short records nothing and
    its lease lapses, so the background worker sends it again (never two at once)."""
    if not rt.config.mail_configured:
        return True
    worker = MailWorker(rt)
    try:
        async with asyncio.timeout(budget):
            await worker.run_until_idle(budget + 1)
        return True
    except TimeoutError:
        log.info("test clock: mails still in flight are left to the worker")
        return False

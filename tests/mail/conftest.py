"""The mail tests' real SMTP server (support/smtp.py) and a Runtime configured to send to it, with a
retry schedule of a fraction of a second and a short attempt timeout, so that every failure mode
plays out in a test's time."""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from flint.config import Config
from flint.mail import service
from flint.runtime import Runtime
from support.smtp import SmtpServer

MAIL_FROM = "Flint Test Mail <mail@flint.test>"
SHORT_SCHEDULE = (0.1, 0.1, 0.1, 0.1)


def context(name: str = "Kaffee & Co", **changes) -> dict:
    base = {
        "merchant": {"name": name, "brand_color": "#0a7c66"},
        "order": {"id": "ord_x", "reference": "R-1001", "currency": "eur", "amount_total": 2500, "amount_paid": 0,
                  "lines": [{"name": "Beans", "quantity": 1, "amount": 2500}]},
        "link_url": "https://flint.test/pay/pl_x",
        "payment": None,
        "expires_at": None,
    }
    base.update(changes)
    return base


def mail_config(config: Config, smtp_url: str, **changes) -> Config:
    return replace(config, smtp_url=smtp_url, mail_from=MAIL_FROM, mail_retry_schedule=SHORT_SCHEDULE,
                   mail_timeout_seconds=1.0, mail_poll_interval=0.02, **changes)


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_rt(rt: Runtime, smtp: SmtpServer) -> Runtime:
    """``rt`` (a fresh database on each backend) configured to send to ``smtp``."""
    rt.config = mail_config(rt.config, smtp.url)
    return rt


async def enqueue(rt: Runtime, merchant_id: str, *, n: int = 1, kind: str = "payment_link", order_id=None,
                  to: str | None = None, locale: str = "en", ctx: dict | None = None, cause: str | None = None):
    """``n`` mails in one transaction (each its own cause unless ``cause`` is given); returns them."""
    made = []
    async with rt.db.transaction() as conn:
        for i in range(n):
            made.append(await service.enqueue(
                conn, rt.config, merchant_id=merchant_id, kind=kind, to=to or f"buyer{i}-{uuid.uuid4().hex[:6]}@example.com",
                locale=locale, cause=cause or f"send:{uuid.uuid4()}", context=ctx or context(), order_id=order_id))
    return made

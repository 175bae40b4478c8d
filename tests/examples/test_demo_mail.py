"""``flint demo``'s mail (docs/api.md 16): a real ``flint demo`` run sends Flint's email to its own SMTP catcher
(flint.demo_mail, aiosmtpd on a loopback port of its own) and lists it on the catcher's page, whose URL the
banner prints. A drop-off's recovery email arrives there with its link (which opens the order's payment page),
and so does the receipt of a purchase in the demo shop (the demo merchant has receipts on); the shop's checkouts
ask for recovery by email and take the address given on the product page. The page and each message are
served under a strict CSP, the mail's HTML in a sandboxed frame of its own."""
from __future__ import annotations

import asyncio
import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flint.demo import DEMO_ABANDON_AFTER, DEMO_NAME, _mail_port
from flint.demo_mail import MAIL_FRAME_SANDBOX, MailCatcher
from support import ROOT, TEST_SECRET, free_port

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
ADDRESS = {"country": "FR", "line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001"}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _until(what: str, probe, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.2)


def _listed(page: str) -> list[tuple[str, str, str]]:
    """(message path, subject, to) of each row of the catcher's list, newest first."""
    return [(path, html.unescape(subject).strip(), html.unescape(to)) for path, subject, to in re.findall(
        r'<tr><td><a href="(/messages/\d+)">([^<]*)</a></td>\s*<td>([^<]*)</td>', page)]


@pytest.fixture
def demo(tmp_path: Path):
    """A real ``flint demo`` (sweeps every 0.5 s), up with its banner printed: (banner, flint, shop, mail URLs)."""
    port, shop_port, app_port = free_port(), free_port(), free_port()
    flint_url, shop_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{shop_port}"
    env = {k: v for k, v in os.environ.items() if k not in ("FLINT_PUBLIC_URL", "FLINT_SMTP_URL", "FLINT_MAIL_FROM")}
    env.update(FLINT_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", FLINT_SECRET_KEY=TEST_SECRET,
               FLINT_ENV="development", FLINT_SWEEP_INTERVAL="0.5")
    out_path, err_path = tmp_path / "demo.out", tmp_path / "demo.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "flint.cli", "demo", "--port", str(port),
                                    "--shop-port", str(shop_port), "--app-port", str(app_port)],
                                   cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while "Press Ctrl+C" not in out_path.read_text():
            assert process.poll() is None, err_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "flint demo did not come up in 60 s:\n" + err_path.read_text()[-3000:]
            time.sleep(0.1)
        printed = out_path.read_text()
        found = re.search(r"Mail:\s+(http://127\.0\.0\.1:(\d+))/\n", printed)
        assert found, printed
        assert _answers(f"{found.group(1)}/healthz") and _answers(f"{shop_url}/healthz")
        yield printed, flint_url, shop_url, found.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("flint demo did not stop within 15 s of SIGTERM") from None
    assert code == 0, err_path.read_text()[-3000:]
    assert "Traceback" not in err_path.read_text()


async def test_a_drop_offs_recovery_email_and_a_purchases_receipt_reach_the_demos_mail_page(demo):
    printed, flint_url, shop_url, mail_url = demo
    # The banner names the page and the catcher's own SMTP server (loopback, a port of its own).
    smtp = re.search(r"caught by a local SMTP\n\s+server \(smtp://127\.0\.0\.1:(\d+)\): nothing leaves this machine",
                     printed)
    assert smtp, printed
    secret = re.search(r"Secret key:\s+(sk_test_[0-9A-Za-z]+)", printed).group(1)
    async with httpx.AsyncClient(base_url=flint_url, timeout=30, headers={"Authorization": f"Bearer {secret}"}) as api, \
            httpx.AsyncClient(timeout=30) as browser:
        first = await browser.get(f"{mail_url}/")
        assert first.status_code == 200 and "No mail yet." in first.text
        assert f"smtp://127.0.0.1:{smtp.group(1)}" in first.text
        csp = first.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
        assert re.search(r"style-src 'nonce-[\w-]+'", csp)
        assert (await api.get("/v1/merchant")).json()["receipts"] is True

        # The shop's checkouts ask for recovery by email, and take the address the product page asks for.
        bought = await browser.post(f"{shop_url}/checkout", data={"quantity": "1", "email": "grace@buyer.example"})
        assert bought.status_code == 303, bought.text
        shop_session = (await api.get(f"/v1/checkout/sessions/{bought.headers['location'].rsplit('/', 1)[1]}")).json()
        assert shop_session["recovery"]["enabled"] and shop_session["recovery"]["email"]
        assert shop_session["recovery"]["abandon_after"] == DEMO_ABANDON_AFTER
        assert (await api.get(f"/v1/orders/{shop_session['order_id']}")).json()["customer_email"] == "grace@buyer.example"

        # A drop-off (a checkout asking for recovery by email, idle past its 5 s): its recovery email arrives.
        dropped = (await api.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "customer_email": "ada@buyer.example",
                      "line_items": [{"name": "Espresso beans 1 kg", "quantity": 2, "unit_amount": 2400}]},
            "mode": "embedded", "success_url": f"{shop_url}/success?session_id={{CHECKOUT_SESSION_ID}}",
            "recovery": {"enabled": True, "email": True, "abandon_after": 5}})).json()

        async def recovery_listed():
            rows = _listed((await browser.get(f"{mail_url}/")).text)
            return [row for row in rows if row[2] == "ada@buyer.example"]

        [(path, subject, _)] = await _until("the recovery email on the mail page", recovery_listed)
        assert subject == f"You left your checkout at {DEMO_NAME}"
        link_id = (await api.get(f"/v1/checkout/sessions/{dropped['id']}")).json()["recovery"]["payment_link_id"]
        link_url = f"{flint_url}/pay/{link_id}"

        shown = await browser.get(f"{mail_url}{path}")
        assert shown.status_code == 200
        page = html.unescape(shown.text)
        assert f"<h1>{subject}</h1>" in page and "<dt>To</dt><dd>ada@buyer.example</dd>" in page
        assert f"<dt>List-Unsubscribe</dt><dd><{flint_url}/unsubscribe/" in page
        assert f'<a href="{link_url}" rel="noopener noreferrer">{link_url}</a>' in page  # the mail's link, to follow
        assert re.search(r"<pre>.*\$48\.00.*</pre>", page, re.DOTALL)  # the text part
        frame = re.search(r'<iframe src="(/messages/\d+/html)" sandbox="([^"]*)" title="The mail\'s HTML part"', page)
        assert frame and frame.group(2) == MAIL_FRAME_SANDBOX and "allow-scripts" not in frame.group(2)
        assert "allow-same-origin" not in frame.group(2)
        # The HTML part: a sandboxed document of its own, its inline styles and nothing else.
        part = await browser.get(f"{mail_url}{frame.group(1)}")
        assert part.status_code == 200 and part.headers["content-type"] == "text/html; charset=utf-8"
        part_csp = part.headers["content-security-policy"]
        assert part_csp.startswith("sandbox ") and "allow-scripts" not in part_csp and "default-src 'none'" in part_csp
        assert "style-src 'unsafe-inline'" in part_csp and "script-src" not in part_csp
        assert link_url in html.unescape(part.text)
        raw = await browser.get(f"{mail_url}{path}/raw")
        assert raw.headers["content-type"] == "text/plain; charset=utf-8" and "List-Unsubscribe-Post:" in raw.text
        assert (await browser.get(f"{mail_url}/messages/999999")).status_code == 404
        # The link in the mail opens the order's payment page.
        opened = await browser.get(link_url)
        assert opened.status_code == 200 and "$48.00" in opened.text

        # A purchase in the shop: its receipt arrives too.
        pay = (await browser.get(f"{shop_url}{bought.headers['location']}")).text
        options = re.search(r'<script type="application/json" id="flint-widget">(.*?)</script>', pay, re.DOTALL)
        token = json.loads(options.group(1))["clientToken"]
        paid = await api.post(f"/v1/checkout/sessions/{shop_session['id']}/confirm", headers={
            "Authorization": f"Bearer {token}"}, json={"card": CARD, "customer": {
                "email": "grace@buyer.example", "shipping_address": ADDRESS}})
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text

        async def receipt_listed():
            rows = _listed((await browser.get(f"{mail_url}/")).text)
            return [row for row in rows if row[2] == "grace@buyer.example"]

        [(_, subject, _)] = await _until("the receipt on the mail page", receipt_listed)
        assert subject == f"Your receipt from {DEMO_NAME} for order {shop_session['order_id']}"
        # Newest first, each once.
        rows = _listed((await browser.get(f"{mail_url}/")).text)
        assert [to for _, _, to in rows] == ["grace@buyer.example", "ada@buyer.example"]


async def test_the_catcher_keeps_the_newest_messages_and_the_mail_page_port_falls_back():
    catcher = await MailCatcher(limit=2).start()
    try:
        import aiosmtplib

        for n in range(3):
            await aiosmtplib.send(f"Subject: {n}\r\n\r\nbody {n}\r\n".encode(), sender="a@flint.test",
                                  recipients=[f"b{n}@buyer.example"], hostname="127.0.0.1", port=catcher.port)
        assert [caught.header("Subject") for caught in catcher.newest_first()] == ["2", "1"]
        assert catcher.get(1) is None and catcher.get(3).rcpt_tos == ("b2@buyer.example",)
    finally:
        await catcher.stop()
    # The page's port: the one asked for when free; another when it is taken.
    free = free_port()
    assert _mail_port("127.0.0.1", set(), free) == free
    other = _mail_port("127.0.0.1", {free}, free)
    assert other != free and other > 0


async def test_the_shop_refuses_an_email_that_is_no_address_before_calling_flint():
    from examples.shop import create_shop

    shop = create_shop("http://127.0.0.1:9", "sk_test_unused")  # nothing listens there: Flint is never called
    page = await shop.test_client().post("/checkout", form={"quantity": "1", "email": "not an address"})
    assert page.status_code == 400 and "That does not look like an email address." in await page.get_data(as_text=True)

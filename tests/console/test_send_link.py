"""Send payment link and the order's Emails (docs/api.md 15 and 16) over real HTTP, against a live ``flint serve``
whose mail worker sends to a real SMTP server in this test process (aiosmtpd, support/smtp.py).

On an open order's page, Send payment link mails the order's newest payable link (or a new one) to the address
typed (the buyer's, prefilled), through flint.links.emails.send_link (the service of the API's
POST /v1/payment_links/{id}/send) as the staff member: the mail arrives once with a link that opens the order's
payment page, the page says it was sent, and the Emails panel lists it. The Payment links page has a Send form
per payable link. Each form is refused without its token (403, nothing made, nothing sent) and for another
merchant's order or link (404); sent twice, at once or later, it sends one mail. Without mail settings the forms
are a sentence saying so, and a POST is refused with it (409 mail_not_configured), making no link."""
from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time

import httpx
import pytest

from flint.accounts import service as accounts
from flint.forms import service as forms
from flint.merchants import service as merchants
from flint.runtime import Runtime
from flint.staff import service as staff
from flint.staff.models import PERMISSIONS
from support.server import start_server, stop_server
from support.smtp import SmtpServer

PASSWORD = "a long and correct password"
MAIL_FROM = "Flint Console Test <mail@flint.test>"
NOT_CONFIGURED = "This Flint sends no email (FLINT_SMTP_URL and FLINT_MAIL_FROM are not set)"
_counter = itertools.count(1)


# -- a live server that sends mail ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_server(smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory):
    """``flint serve`` with FLINT_SMTP_URL at ``smtp``: its background mail worker sends there."""
    live = start_server(tmp_path_factory.mktemp("console-mail"), extra_env={
        "FLINT_SMTP_URL": smtp.url, "FLINT_MAIL_FROM": MAIL_FROM, "FLINT_MAIL_RETRY_SCHEDULE": "0.2,0.2",
        "FLINT_MAIL_POLL_INTERVAL": "0.05"})
    yield live
    stop_server(live)


@pytest.fixture
async def mail_rt(mail_server):
    runtime = await Runtime.start(mail_server.runtime_config())
    yield runtime
    await runtime.stop()


async def _team(rt, role: str):
    """A merchant, its secret key, and a member with ``role`` who accepted their invitation."""
    n = next(_counter)
    merchant, key = await merchants.create_merchant(rt, name=f"Mail Shop {n}", email=f"mail{n}-{id(rt)}@shop.example",
                                                    password=PASSWORD)
    async with rt.db.transaction() as conn:
        owner = await staff.ensure_owner(conn, merchant)
    if role == "owner":
        return merchant, key, owner
    _, token = await staff.invite(rt, owner, f"{role}{n}-{id(rt)}@shop.example", role)
    return merchant, key, await staff.accept_invitation(rt, token, PASSWORD)


async def _browser(live, email: str) -> httpx.AsyncClient:
    browser = httpx.AsyncClient(base_url=live.url, follow_redirects=False, timeout=30)
    login = await browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    done = await browser.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert done.status_code == 303
    return browser


@pytest.fixture
async def as_role(mail_server, mail_rt):
    """``await as_role(role, live=...)`` -> (merchant, key, member, signed-in browser) on ``live``."""
    opened: list[httpx.AsyncClient] = []

    async def sign_in(role: str, live=None, rt=None):
        merchant, key, member = await _team(rt or mail_rt, role)
        browser = await _browser(live or mail_server, member.email)
        opened.append(browser)
        return merchant, key, member, browser

    yield sign_in
    for browser in opened:
        await browser.aclose()


async def _new_order(live, key: str, customer_email: str | None = "ada@buyer.example") -> dict:
    body = {"currency": "eur", "reference": f"R-{next(_counter)}",
            "line_items": [{"name": "Espresso beans 1 kg", "quantity": 2, "unit_amount": 1600}]}
    if customer_email:
        body["customer_email"] = customer_email
    async with httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {key}"}) as api:
        made = await api.post("/v1/orders", json=body)
    assert made.status_code == 200, made.text
    return made.json()


async def _api(live, key: str, path: str, **params) -> dict:
    async with httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {key}"}) as api:
        answer = await api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def form_token(page: str, action: str) -> str:
    found = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*<input type="hidden" '
                      rf'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no form posting to {action}"
    return found.group(1)


def email_field(page: str, field_id: str) -> str | None:
    found = re.search(rf'<input id="{re.escape(field_id)}" name="email" type="email"[^>]*>', page)
    return html.unescape(found.group(0)) if found else None


def mails_to(smtp: SmtpServer, address: str) -> list:
    return [m for m in smtp.received() if address in m.rcpt_tos]


async def arrive(smtp: SmtpServer, address: str, count: int = 1, timeout: float = 15) -> list:
    deadline = time.monotonic() + timeout
    while len(mails_to(smtp, address)) < count:
        assert time.monotonic() < deadline, f"{len(mails_to(smtp, address))} of {count} mails to {address} arrived"
        await asyncio.sleep(0.05)
    return mails_to(smtp, address)


def text_part(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


async def _rows(rt, sql: str, **params) -> list[dict]:
    async with rt.db.read() as conn:
        return [dict(row) for row in await conn.fetch_all(sql, params)]


async def _settle() -> None:
    """Long enough for a mail the worker would send (poll 0.05 s) to have arrived: proves none came."""
    await asyncio.sleep(1.0)


# -- the order page -----------------------------------------------------------------------------------------

async def test_support_sends_a_payment_link_from_the_order_page_and_it_arrives_once_with_a_link_that_pays(
        mail_server, mail_rt, smtp, as_role):
    merchant, key, member, browser = await as_role("support")
    buyer = f"ada{next(_counter)}@buyer.example"
    order = await _new_order(mail_server, key, buyer)
    page = (await browser.get(f"/dashboard/orders/{order['id']}")).text
    # The form: Email, prefilled with the buyer's address the order knows; no link exists yet.
    field = email_field(page, "send-email")
    assert field is not None and f'value="{buyer}"' in field and "required" in field
    assert '<label for="send-email">Email</label>' in page
    assert re.search(r'<h2 id="emails">Emails</h2>\s*<p class="muted">No email was sent about this order\.', page)
    action = f"/dashboard/orders/{order['id']}/send_link"
    sent = await browser.post(action, data={"csrf_token": form_token(page, action), "email": buyer})
    assert sent.status_code == 303, sent.text[:500]
    assert re.fullmatch(rf"/dashboard/orders/{order['id']}\?sent=em_\w+", sent.headers["location"])
    email_id = sent.headers["location"].rsplit("=", 1)[1]

    # The mail arrives once, to the buyer, with the order's new link, which opens its payment page.
    [received] = await arrive(smtp, buyer)
    message = received.message
    [link] = (await _api(mail_server, key, "/v1/payment_links", order=order["id"]))["data"]
    assert link["active"] and link["source"] == "manual"
    assert link["url"] in text_part(message)
    assert message["Subject"] == f"{merchant.name} sent you a link to pay order {order['reference']}"
    async with httpx.AsyncClient(timeout=30) as person:
        pay_page = await person.get(link["url"])
    assert pay_page.status_code == 200 and "€32.00" in pay_page.text

    # The page says so, and its Emails panel lists the mail (sent, by the worker, one attempt).
    shown = html.unescape((await browser.get(sent.headers["location"])).text)
    assert f"Payment link sent to {buyer}." in shown
    deadline = time.monotonic() + 10
    while True:
        shown = html.unescape((await browser.get(f"/dashboard/orders/{order['id']}")).text)
        row = re.search(rf'<tr id="{email_id}">(.*?)</tr>', shown, re.DOTALL)
        assert row, shown[-3000:]
        cells = [re.sub(r"<[^>]+>", " ", cell).split() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.DOTALL)]
        if cells[2] == ["Sent"]:
            break
        assert time.monotonic() < deadline, cells
        await asyncio.sleep(0.2)
    assert cells[0] == ["Payment", "link"] and cells[1] == [buyer] and cells[3] == ["1"]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", " ".join(cells[4]))
    # Its event (email.sent, one of the order's) is a line of the timeline, in words.
    line = re.search(r'<li class="success event">\s*<p class="what">Payment link sent <span[^>]*>Succeeded</span></p>'
                     r'(.*?)</li>\s*</ul>', shown, re.DOTALL)
    assert line and f"<li>To {buyer}</li>" in line.group(1) and f"<li>Email {email_id}</li>" in line.group(1), shown
    # The API agrees, and the staff member is who asked: the link's event and the audit trail name them.
    [api_email] = (await _api(mail_server, key, "/v1/emails", order=order["id"]))["data"]
    assert (api_email["id"], api_email["kind"], api_email["to"], api_email["status"], api_email["payment_link"]) == (
        email_id, "payment_link", buyer, "sent", link["id"])
    created = await _rows(mail_rt, "SELECT actor_type, actor_id FROM events WHERE order_id = :o AND type = :t",
                          o=order["id"], t="payment_link.created")
    assert created == [{"actor_type": "staff", "actor_id": member.id}]
    audit = await _rows(mail_rt, "SELECT actor_type, actor_id, object_id, changes FROM audit_log WHERE merchant_id = :m "
                        "AND action = 'payment_link.sent'", m=merchant.id)
    assert [(a["actor_type"], a["actor_id"], a["object_id"], json.loads(a["changes"])) for a in audit] == [
        ("staff", member.id, link["id"], {"email_id": email_id})]


async def test_sending_again_mails_the_same_link_and_the_email_field_takes_any_address(mail_server, smtp, as_role):
    _, key, _, browser = await as_role("support")
    order = await _new_order(mail_server, key, customer_email=None)
    action = f"/dashboard/orders/{order['id']}/send_link"
    page = (await browser.get(f"/dashboard/orders/{order['id']}")).text
    assert 'value=""' in email_field(page, "send-email")  # no buyer address known: empty
    first, second = f"first{next(_counter)}@buyer.example", f"second{next(_counter)}@buyer.example"
    assert (await browser.post(action, data={"csrf_token": form_token(page, action), "email": first})).status_code == 303
    page = (await browser.get(f"/dashboard/orders/{order['id']}")).text
    assert (await browser.post(action, data={"csrf_token": form_token(page, action), "email": second})).status_code == 303
    [one], [two] = await arrive(smtp, first), await arrive(smtp, second)
    # One link, the newest payable one, in both mails (a new link only when the order has none).
    [link] = (await _api(mail_server, key, "/v1/payment_links", order=order["id"]))["data"]
    assert link["url"] in text_part(one.message) and link["url"] in text_part(two.message)
    # A deactivated link is not sent again: the next send makes a fresh one.
    async with httpx.AsyncClient(base_url=mail_server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        assert (await api.post(f"/v1/payment_links/{link['id']}/deactivate")).status_code == 200
    third = f"third{next(_counter)}@buyer.example"
    page = (await browser.get(f"/dashboard/orders/{order['id']}")).text
    assert (await browser.post(action, data={"csrf_token": form_token(page, action), "email": third})).status_code == 303
    [three] = await arrive(smtp, third)
    links = (await _api(mail_server, key, "/v1/payment_links", order=order["id"]))["data"]
    assert len(links) == 2 and links[0]["active"] and links[0]["url"] in text_part(three.message)
    shown = html.unescape((await browser.get(f"/dashboard/orders/{order['id']}")).text)
    assert [to for to in (first, second, third) if to in shown] == [first, second, third]


async def test_the_same_form_sent_twice_at_once_or_later_sends_one_mail(mail_server, mail_rt, smtp, as_role):
    _, key, _, browser = await as_role("developer")
    buyer = f"twice{next(_counter)}@buyer.example"
    order = await _new_order(mail_server, key, buyer)
    action = f"/dashboard/orders/{order['id']}/send_link"
    form = {"csrf_token": form_token((await browser.get(f"/dashboard/orders/{order['id']}")).text, action),
            "email": buyer}
    first, second = await asyncio.gather(browser.post(action, data=form), browser.post(action, data=form))
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    again = await browser.post(action, data=form)  # the back button, and the same form again
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    await arrive(smtp, buyer)
    await _settle()
    assert len(mails_to(smtp, buyer)) == 1
    assert len(await _rows(mail_rt, "SELECT id FROM emails WHERE order_id = :o", o=order["id"])) == 1
    assert len((await _api(mail_server, key, "/v1/payment_links", order=order["id"]))["data"]) == 1


async def test_without_its_token_the_form_is_403_and_nothing_is_made_or_sent(mail_server, mail_rt, smtp, as_role):
    _, key, _, browser = await as_role("support")
    _, _, _, other = await as_role("support")
    buyer = f"notoken{next(_counter)}@buyer.example"
    order = await _new_order(mail_server, key, buyer)
    action = f"/dashboard/orders/{order['id']}/send_link"
    # A real token, but of another person's page (their own order's form).
    other_order = await _new_order(mail_server, (await _api_key_of(mail_rt, other)), None)
    foreign = form_token((await other.get(f"/dashboard/orders/{other_order['id']}")).text,
                         f"/dashboard/orders/{other_order['id']}/send_link")
    for token in (None, "", "forged.token.value", foreign):
        data = {"email": buyer, **({} if token is None else {"csrf_token": token})}
        refused = await browser.post(action, data=data)
        assert refused.status_code == 403, (token, refused.status_code)
        assert "Nothing was done" in refused.text
    links_page = "/dashboard/payment_links/plink_nowhere/send"
    assert (await browser.post(links_page, data={"email": buyer})).status_code == 403
    await _settle()
    assert mails_to(smtp, buyer) == []
    assert await _rows(mail_rt, "SELECT id FROM emails WHERE order_id = :o", o=order["id"]) == []
    assert (await _api(mail_server, key, "/v1/payment_links", order=order["id"]))["data"] == []


async def _api_key_of(rt, browser: httpx.AsyncClient) -> str:
    """A fresh secret key of the merchant whose console ``browser`` is signed in to."""
    found = await accounts.current(rt, browser.cookies.get("flint_session"))
    _, secret = await merchants.create_key(rt, found[1].id)
    return secret


async def test_another_merchants_order_or_link_is_404_and_nothing_is_sent(mail_server, mail_rt, smtp, as_role):
    _, _, _, browser = await as_role("owner")
    _, their_key, _, _ = await as_role("owner")
    buyer = f"theirs{next(_counter)}@buyer.example"
    theirs = await _new_order(mail_server, their_key, buyer)
    async with httpx.AsyncClient(base_url=mail_server.url, headers={"Authorization": f"Bearer {their_key}"}) as api:
        their_link = (await api.post("/v1/payment_links", json={"order": theirs["id"]})).json()
    # A real token of this person's own page, sent at the other merchant's order and link.
    my_key = await _api_key_of(mail_rt, browser)
    mine = await _new_order(mail_server, my_key)
    page = (await browser.get(f"/dashboard/orders/{mine['id']}")).text
    token = form_token(page, f"/dashboard/orders/{mine['id']}/send_link")
    refused = await browser.post(f"/dashboard/orders/{theirs['id']}/send_link", data={"csrf_token": token, "email": buyer})
    assert refused.status_code == 404 and buyer not in refused.text
    assert "€32.00" not in refused.text
    async with httpx.AsyncClient(base_url=mail_server.url, headers={"Authorization": f"Bearer {my_key}"}) as api:
        my_link = (await api.post("/v1/payment_links", json={"order": mine["id"]})).json()
    links = (await browser.get("/dashboard/payment_links")).text
    token = form_token(links, f"/dashboard/payment_links/{my_link['id']}/send")
    refused = await browser.post(f"/dashboard/payment_links/{their_link['id']}/send",
                                 data={"csrf_token": token, "email": buyer})
    assert refused.status_code == 404 and "There is no payment link with this id in this account." in refused.text
    await _settle()
    assert mails_to(smtp, buyer) == []
    assert await _rows(mail_rt, "SELECT id FROM emails WHERE order_id = :o", o=theirs["id"]) == []
    assert len((await _api(mail_server, their_key, "/v1/payment_links", order=theirs["id"]))["data"]) == 1


async def test_a_bad_address_or_a_paid_order_is_refused_with_the_reason_and_nothing_is_made(
        mail_server, mail_rt, smtp, as_role):
    _, key, _, browser = await as_role("support")
    order = await _new_order(mail_server, key, None)
    action = f"/dashboard/orders/{order['id']}/send_link"
    page = (await browser.get(f"/dashboard/orders/{order['id']}")).text
    refused = await browser.post(action, data={"csrf_token": form_token(page, action), "email": "not an address"})
    assert refused.status_code == 400
    shown = html.unescape(refused.text)
    assert "Not done:" in shown and "The email address is not valid." in shown
    field = email_field(refused.text, "send-email")
    assert 'value="not an address"' in field and 'aria-invalid="true"' in field  # what was typed is kept
    assert (await _api(mail_server, key, "/v1/payment_links", order=order["id"]))["data"] == []  # no link made
    assert await _rows(mail_rt, "SELECT id FROM emails WHERE order_id = :o", o=order["id"]) == []


# -- the Payment links page -----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["owner", "developer", "support"])
async def test_every_role_with_links_write_sends_a_link_from_the_payment_links_page(
        mail_server, mail_rt, smtp, as_role, role):
    assert "links:write" in PERMISSIONS[role]
    merchant, key, member, browser = await as_role(role)
    buyer = f"{role}{next(_counter)}@buyer.example"
    order = await _new_order(mail_server, key, buyer)
    async with httpx.AsyncClient(base_url=mail_server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        link = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
        stopped = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
        assert (await api.post(f"/v1/payment_links/{stopped['id']}/deactivate")).status_code == 200
    page = (await browser.get("/dashboard/payment_links")).text
    action = f"/dashboard/payment_links/{link['id']}/send"
    field = email_field(page, f"send-{link['id']}")
    assert field is not None and f'value="{buyer}"' in field  # the order's buyer, prefilled
    # A deactivated link has no Send form.
    assert f"/dashboard/payment_links/{stopped['id']}/send" not in page
    sent = await browser.post(action, data={"csrf_token": form_token(page, action), "email": buyer})
    assert sent.status_code == 303 and re.fullmatch(r"/dashboard/payment_links\?sent=em_\w+", sent.headers["location"])
    shown = html.unescape((await browser.get(sent.headers["location"])).text)
    assert f"Payment link {link['id']} sent to {buyer}." in shown
    [received] = await arrive(smtp, buyer)
    assert link["url"] in text_part(received.message)
    audit = await _rows(mail_rt, "SELECT actor_type, actor_id FROM audit_log WHERE merchant_id = :m AND "
                        "action = 'payment_link.sent'", m=merchant.id)
    assert audit == [{"actor_type": "staff", "actor_id": member.id}]


async def test_the_links_page_says_why_a_send_was_refused_and_keeps_the_address(mail_server, mail_rt, smtp, as_role):
    _, key, _, browser = await as_role("support")
    order = await _new_order(mail_server, key, None)
    async with httpx.AsyncClient(base_url=mail_server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        link = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
    page = (await browser.get("/dashboard/payment_links")).text
    action = f"/dashboard/payment_links/{link['id']}/send"
    refused = await browser.post(action, data={"csrf_token": form_token(page, action), "email": "nobody@"})
    assert refused.status_code == 400
    assert "Not sent: The email address is not valid." in html.unescape(refused.text)
    field = email_field(refused.text, f"send-{link['id']}")
    assert 'value="nobody@"' in field and 'aria-invalid="true"' in field
    # The order was paid meanwhile (in this console's other tab, say): its link is no longer sent.
    page = (await browser.get("/dashboard/payment_links")).text
    token = form_token(page, action)
    async with httpx.AsyncClient(base_url=mail_server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        assert (await api.post(f"/v1/orders/{order['id']}/cancel")).status_code == 200
    buyer = f"late{next(_counter)}@buyer.example"
    refused = await browser.post(action, data={"csrf_token": token, "email": buyer})
    assert refused.status_code == 409 and "Not sent: This order was canceled." in html.unescape(refused.text)
    await _settle()
    assert mails_to(smtp, buyer) == []
    assert await _rows(mail_rt, "SELECT id FROM emails WHERE order_id = :o", o=order["id"]) == []


# -- without mail settings ------------------------------------------------------------------------------------

async def test_without_mail_settings_the_forms_are_a_sentence_and_a_send_is_refused_making_nothing(
        server, server_rt, as_role):
    merchant, key, _, browser = await as_role("owner", live=server, rt=server_rt)
    order = await _new_order(server, key)
    page = html.unescape((await browser.get(f"/dashboard/orders/{order['id']}")).text)
    assert NOT_CONFIGURED in page and email_field(page, "send-email") is None
    assert "/send_link" not in page
    assert "Create payment link" in page  # the link can still be made, and sent by hand
    assert "No email was sent about this order." in page
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        link = (await api.post("/v1/payment_links", json={"order": order["id"]})).json()
    links = html.unescape((await browser.get("/dashboard/payment_links")).text)
    assert NOT_CONFIGURED in links and f"/dashboard/payment_links/{link['id']}/send" not in links

    # A form sent anyway (an old page, a tab opened before the settings went): refused, in words.
    session_id = (await accounts.current(server_rt, browser.cookies.get("flint_session")))[0]
    refused = await browser.post(f"/dashboard/orders/{order['id']}/send_link",
                                 data={"csrf_token": forms.issue(server_rt, session_id), "email": "ada@buyer.example"})
    assert refused.status_code == 409 and NOT_CONFIGURED in html.unescape(refused.text)
    refused = await browser.post(f"/dashboard/payment_links/{link['id']}/send",
                                 data={"csrf_token": forms.issue(server_rt, session_id), "email": "ada@buyer.example"})
    assert refused.status_code == 409 and NOT_CONFIGURED in html.unescape(refused.text)
    assert len((await _api(server, key, "/v1/payment_links", order=order["id"]))["data"]) == 1  # none made
    assert await _rows(server_rt, "SELECT id FROM emails WHERE merchant_id = :m", m=merchant.id) == []

"""The demo merchant's week (issue 16): what ``flint demo`` seeds on its first run so that the console
has something to show. About forty orders of Demo Coffee Roasters, made by the same service calls the
API, the buyer's pages and the sweeper make: most paid, some declined and then paid, a few declined and
left open, refunds (one partial), drop-offs recovered through their recovery link, one left unpaid, a
phone order paid through a payment link, one canceled; each paying buyer's email, name and shipping
address are kept on the order (the console finds orders by email). Beside them a second webhook
endpoint at a wrong URL, so the console shows failing deliveries and their retries, and the demo
partner app installed on the demo merchant.

Time: every service reads the time from flint.clock, none takes one, and the clock only moves forward
(moving it for the seeding would move the demo server's clock too, since it runs in this process). So
the week's activity is made now, in the order of its story: its timestamps are the seeding's minutes,
not spread over seven days, and no timestamp is written behind the services' backs.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from flint import clock
from flint.actors import Actor
from flint.apps.models import App
from flint.cards import Card, parse_card
from flint.checkout import service as checkout
from flint.checkout.models import CheckoutSession
from flint.closing import service as closing
from flint.collect import details
from flint.collect import service as collect
from flint.collect.models import Attempt
from flint.links import service as links
from flint.links.models import PaymentLink
from flint.oauth import service as oauth
from flint.orders import service as orders
from flint.orders import store as order_store
from flint.orders.models import LineItem, NewOrder
from flint.payments.models import FAILED, REQUIRES_ACTION, SUCCEEDED, Payment
from flint.processors import DECLINES, THREE_D_SECURE
from flint.refunds import service as refunds
from flint.runtime import Runtime
from flint.webhooks import service as webhooks

log = logging.getLogger("flint.demo")

# The week's orders carry the shop's order numbers as references, DCR-1001 onwards: the first one is
# how a re-run knows the week is there already (one indexed lookup), so it is never seeded twice.
REFERENCE_PREFIX = "DCR-"
FIRST_NUMBER = 1001
METADATA = {"seeded_by": "flint demo"}

# The second endpoint: a warehouse system the merchant registered at a wrong URL. The demo shop answers
# 404 there, so every delivery fails and is retried on Flint's schedule (the console's Webhooks page).
FAILING_WEBHOOK_DESCRIPTION = "Warehouse sync (flint demo: a wrong URL, every delivery fails)"
FAILING_WEBHOOK_PATH = "/warehouse/webhooks"
FAILING_WEBHOOK_EVENTS = ["order.paid", "order.refunded", "order.canceled"]

# What the demo shop sells and asks its buyers for (examples/shop: PRODUCT, COLLECT).
BEANS = LineItem("Espresso beans 1 kg", 1, 2400)
COLLECT = {"email": "required", "shipping_address": {"allowed_countries": ["DE", "FR", "US"]}}


@dataclass(frozen=True)
class Buyer:
    name: str
    email: str
    address: dict[str, str]

    def submitted(self) -> dict[str, Any]:
        """What the buyer's checkout form sends (docs/api.md 14)."""
        return {"customer": {"email": self.email, "name": self.name, "shipping_address": dict(self.address)},
                "custom_fields": {}, "app_fields": {}, "terms_accepted": None}


def _us(line1: str, city: str, state: str, postal_code: str) -> dict[str, str]:
    return {"country": "US", "line1": line1, "city": city, "state": state, "postal_code": postal_code}


def _eu(country: str, line1: str, city: str, postal_code: str) -> dict[str, str]:
    return {"country": country, "line1": line1, "city": city, "postal_code": postal_code}


BUYERS = {b.email.split("@")[0].split(".")[0]: b for b in (
    Buyer("Grace Hopper", "grace.hopper@example.com", _us("350 Fifth Avenue", "New York", "NY", "10118")),
    Buyer("Katherine Johnson", "katherine.johnson@example.org", _us("233 S Wacker Dr", "Chicago", "IL", "60606")),
    Buyer("Margaret Hamilton", "margaret.hamilton@example.net",
          _us("77 Massachusetts Ave", "Cambridge", "MA", "02139")),
    Buyer("Dorothy Vaughan", "dorothy.vaughan@example.com", _us("1100 Congress Ave", "Austin", "TX", "78701")),
    Buyer("Alan Kay", "alan.kay@example.org", _us("1600 Amphitheatre Parkway", "Mountain View", "CA", "94043")),
    Buyer("Barbara Liskov", "barbara.liskov@example.com", _us("400 Broad St", "Seattle", "WA", "98109")),
    Buyer("Frances Allen", "frances.allen@example.net", _us("1221 SW 4th Ave", "Portland", "OR", "97204")),
    Buyer("Konrad Zuse", "konrad.zuse@example.com", _eu("DE", "Unter den Linden 1", "Berlin", "10117")),
    Buyer("Emmy Noether", "emmy.noether@example.org", _eu("DE", "Marienplatz 8", "München", "80331")),
    Buyer("Lise Meitner", "lise.meitner@example.net", _eu("DE", "Jungfernstieg 7", "Hamburg", "20354")),
    Buyer("Johanna Weber", "johanna.weber@example.com", _eu("DE", "Hohe Straße 52", "Köln", "50667")),
    Buyer("Lukas Schmidt", "lukas.schmidt@example.org", _eu("DE", "Königstraße 20", "Stuttgart", "70173")),
    Buyer("Marie Curie", "marie.curie@example.com", _eu("FR", "1 rue de Rivoli", "Paris", "75001")),
    Buyer("Sophie Germain", "sophie.germain@example.org", _eu("FR", "10 quai Saint-Antoine", "Lyon", "69002")),
    Buyer("Camille Martin", "camille.martin@example.net", _eu("FR", "5 La Canebière", "Marseille", "13001")),
    Buyer("Louis Pasteur", "louis.pasteur@example.com", _eu("FR", "3 place du Capitole", "Toulouse", "31000")),
    Buyer("Chloé Dubois", "chloe.dubois@example.org", _eu("FR", "12 cours de l'Intendance", "Bordeaux", "33000")),
)}

# Good cards of several brands (the simulated processor pays any valid number that is not a test
# card with another outcome: docs/api.md 6), and the declining test cards by their decline code.
GOOD_CARDS = [("4242424242424242", "123"), ("5555555555554444", "123"), ("378282246310005", "1234"),
              ("4000056655665556", "123"), ("2223003122003222", "123")]
DECLINING = {code: number for number, code in DECLINES.items()}

# The week, in order: (what happens, buyer, bags of beans, a decline code where one comes into it).
#   paid, hosted: paid in the shop's embedded checkout, or on Flint's hosted page
#   declined_then_paid: a declined card, then another one that pays
#   declined: a declined card, and the buyer never came back (the order stays open)
#   three_d_secure: the 3-D Secure test card, the challenge approved
#   refund_partial / refund / refund_duplicate: paid, then refunded by the merchant
#   recovered: the buyer dropped off (after a decline, where one is named); the session expired and
#     its recovery link paid the order
#   dropped_off: the same, but the recovery link is still waiting for the buyer
#   phone: an order taken on the phone, paid through a payment link the merchant sent
#   canceled: the buyer asked to cancel before paying
WEEK: list[tuple[str, str, int, str | None]] = [
    ("paid", "grace", 2, None),
    ("paid", "konrad", 1, None),
    ("declined_then_paid", "marie", 1, "insufficient_funds"),
    ("hosted", "emmy", 3, None),
    ("paid", "katherine", 1, None),
    ("refund_partial", "sophie", 2, None),
    ("paid", "margaret", 1, None),
    ("declined", "camille", 1, "card_declined"),
    ("recovered", "lise", 2, None),
    ("paid", "dorothy", 4, None),
    ("paid", "alan", 1, None),
    ("three_d_secure", "johanna", 2, None),
    ("paid", "grace", 1, None),
    ("canceled", "barbara", 5, None),
    ("paid", "louis", 2, None),
    ("declined_then_paid", "frances", 1, "incorrect_cvc"),
    ("refund", "lukas", 1, None),
    ("hosted", "chloe", 2, None),
    ("paid", "konrad", 2, None),
    ("recovered", "katherine", 1, "expired_card"),
    ("paid", "marie", 3, None),
    ("phone", "barbara", 1, None),
    ("paid", "emmy", 1, None),
    ("declined", "alan", 2, "expired_card"),
    ("paid", "sophie", 1, None),
    ("paid", "dorothy", 1, None),
    ("refund_duplicate", "dorothy", 1, None),
    ("paid", "margaret", 2, None),
    ("declined_then_paid", "lise", 1, "card_declined"),
    ("hosted", "johanna", 1, None),
    ("dropped_off", "camille", 2, None),
    ("paid", "louis", 1, None),
    ("paid", "frances", 3, None),
    ("recovered", "chloe", 1, "insufficient_funds"),
    ("paid", "grace", 2, None),
    ("declined_then_paid", "lukas", 2, "insufficient_funds"),
    ("declined", "konrad", 1, "incorrect_cvc"),
    ("paid", "katherine", 2, None),
    ("paid", "emmy", 1, None),
    ("hosted", "marie", 1, None),
]
PHONE_ORDER = [LineItem("Burr grinder", 1, 12900), LineItem("Espresso beans 1 kg", 1, 2400)]


async def week_seeded(rt: Runtime, merchant_id: str) -> bool:
    async with rt.db.read() as conn:
        found, _ = await order_store.search_orders_page(conn, merchant_id, limit=1,
                                                        query=f"{REFERENCE_PREFIX}{FIRST_NUMBER}")
    return bool(found)


async def failing_endpoint(rt: Runtime, merchant_id: str, shop_url: str) -> str:
    """The warehouse endpoint at a wrong URL (made before the week, so it hears the week's orders)."""
    endpoint, _ = await webhooks.create_endpoint(rt, merchant_id, url=f"{shop_url}{FAILING_WEBHOOK_PATH}",
                                                 events=FAILING_WEBHOOK_EVENTS,
                                                 description=FAILING_WEBHOOK_DESCRIPTION)
    return endpoint.id


class _Week:
    def __init__(self, rt: Runtime, merchant_id: str, shop_url: str) -> None:
        self.rt, self.merchant_id, self.shop_url = rt, merchant_id, shop_url
        self.merchant = Actor("merchant", merchant_id)
        self.number = FIRST_NUMBER
        self.cards = 0
        self.exp_year = clock.now().year + 3

    def _card(self, decline: str | None = None, number: str | None = None) -> Card:
        if decline is not None:
            number, cvc = DECLINING[decline], "123"
        elif number is not None:
            cvc = "123"
        else:
            number, cvc = GOOD_CARDS[self.cards % len(GOOD_CARDS)]
            self.cards += 1
        return parse_card(number, 12, self.exp_year, cvc)

    def _new_order(self, bags: int, items: list[LineItem] | None = None, email: str | None = None) -> NewOrder:
        reference = f"{REFERENCE_PREFIX}{self.number}"
        self.number += 1
        return NewOrder(currency="usd", line_items=items or [LineItem(BEANS.name, bags, BEANS.unit_amount)],
                        customer_email=email, reference=reference, metadata=dict(METADATA))

    async def _session(self, bags: int, *, mode: str = "embedded", recovery: bool = False) -> CheckoutSession:
        """A checkout as the shop opens one (its success and cancel pages, its COLLECT)."""
        return await checkout.create_session(self.rt, self.merchant_id, checkout.NewSession(
            mode=mode, success_url=f"{self.shop_url}/success?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{self.shop_url}/", inline_order=self._new_order(bags), collect=COLLECT,
            recovery_enabled=recovery), self.merchant)

    async def _pay(self, channel: CheckoutSession | PaymentLink, buyer: Buyer, card: Card) -> Payment:
        """The buyer's confirm, as the API and the hosted pages make it: details checked, then paid."""
        collected = details.check(await details.load_form(self.rt, channel), buyer.submitted())
        if isinstance(channel, PaymentLink):
            attempt = Attempt.for_link(channel)
        else:
            attempt = Attempt.for_session(channel, channel=channel.mode)
        return await collect.confirm_payment(self.rt, attempt, card, Actor("buyer", channel.id), collected)

    async def _paid(self, channel: CheckoutSession | PaymentLink, buyer: Buyer) -> Payment:
        payment = await self._pay(channel, buyer, self._card())
        if payment.status != SUCCEEDED:
            raise RuntimeError(f"the demo's payment {payment.id} is {payment.status}")
        return payment

    async def _declined(self, channel: CheckoutSession | PaymentLink, buyer: Buyer, code: str) -> None:
        payment = await self._pay(channel, buyer, self._card(code))
        if payment.status != FAILED:
            raise RuntimeError(f"the demo's declined payment {payment.id} is {payment.status}")

    async def _refund(self, order_id: str, amount: int | None, reason: str) -> None:
        await refunds.issue_refund(self.rt, self.merchant_id, refunds.NewRefund(
            order_id=order_id, amount=amount, reason=reason), self.merchant)

    async def happen(self, kind: str, buyer: Buyer, bags: int, decline: str | None) -> None:
        if kind == "phone":
            order = await orders.create_order(self.rt, self.merchant_id, self._new_order(
                bags, PHONE_ORDER, email=buyer.email), self.merchant)
            link = await links.create_link(self.rt, self.merchant_id, order.id, expires_in=None,
                                           actor=self.merchant, collect=COLLECT)
            await self._paid(link, buyer)
            return
        recovery = kind in ("recovered", "dropped_off")
        session = await self._session(bags, mode="hosted" if kind == "hosted" else "embedded", recovery=recovery)
        if decline is not None:
            await self._declined(session, buyer, decline)
        if kind == "declined":
            return  # the session expires in its hour, unpaid; no recovery was asked for
        if kind == "canceled":
            await closing.cancel_order(self.rt, self.merchant_id, session.order_id, self.merchant)
            return
        if recovery:
            # The buyer went away. The sweeper would give the session its recovery link once it idled
            # past abandon_after or expired, which takes time this seeding cannot let pass (see the
            # module's docstring); the shop expiring the abandoned checkout does the same at once: the
            # session is recorded as dropped off ("expired") and gets its one recovery link.
            expired = await closing.expire_session(self.rt, self.merchant_id, session.id, self.merchant)
            assert expired.recovery_payment_link_id is not None
            if kind == "recovered":
                link = await links.get_link(self.rt, self.merchant_id, expired.recovery_payment_link_id)
                await self._paid(link, buyer)
            return
        if kind == "three_d_secure":
            challenged = await self._pay(session, buyer, self._card(number=THREE_D_SECURE))
            assert challenged.status == REQUIRES_ACTION, challenged.status
            paid = await collect.resolve_challenge(self.rt, self.merchant_id, challenged.id, True,
                                                   Actor("buyer", session.id), checkout_session_id=session.id)
            assert paid.status == SUCCEEDED, paid.status
            return
        await self._paid(session, buyer)
        if kind == "refund_partial":
            await self._refund(session.order_id, BEANS.unit_amount, "requested_by_customer")  # one bag of two
        elif kind == "refund":
            await self._refund(session.order_id, None, "requested_by_customer")
        elif kind == "refund_duplicate":
            await self._refund(session.order_id, None, "duplicate")


async def seed_week(rt: Runtime, merchant_id: str, shop_url: str) -> int:
    """The week's orders (see WEEK), in order, through Flint's services; returns how many."""
    week = _Week(rt, merchant_id, shop_url)
    for kind, who, bags, decline in WEEK:
        await week.happen(kind, BUYERS[who], bags, decline)
    log.info("demo: seeded %d orders", week.number - FIRST_NUMBER)
    return week.number - FIRST_NUMBER


async def install_app(rt: Runtime, app: App, merchant_id: str) -> str:
    """The demo merchant installs the app: the two service calls the consent page and the token endpoint
    make (the merchant approves what the page shows; the app exchanges the code with its PKCE verifier).
    Nobody holds the tokens this issues, so their grant is revoked at once; the installation stays, and
    the app gets tokens of its own when someone clicks Install on it. Returns the installation's id."""
    redirect_uri = app.redirect_uri_list[0]
    verifier = secrets.token_urlsafe(48)
    request = await oauth.check_authorization_request(rt, {
        "client_id": app.client_id, "redirect_uri": redirect_uri, "response_type": "code",
        "code_challenge": oauth.s256(verifier), "code_challenge_method": "S256", "scope": " ".join(app.scope_list)})
    code = await oauth.issue_code(rt, request, merchant_id)
    token = await oauth.exchange_code(rt, app, code, redirect_uri, verifier)
    await oauth.revoke(rt, app, token["refresh_token"])
    return token["installation_id"]

"""The demo merchant's week (issue 16): what ``flint demo`` seeds on its first run so that the console
has something to show. About forty orders of Demo Coffee Roasters over the seven days before today and
the first hours of today, a few each day, more on busy days; made by the same service calls the API,
the buyer's pages and the sweeper make: most paid, some declined and then paid, a few declined and
left open, refunds a day or two later (one partial), drop-offs recovered hours later through their
recovery link, one left unpaid, a phone order paid through a payment link, one canceled; each paying
buyer's email, name and shipping address are kept on the order (the console finds orders by email).
Beside them a second webhook endpoint at a wrong URL, so the console shows failing deliveries and
their retries, and the demo partner app installed on the demo merchant.

Time: every service reads the time from flint.clock and none takes one, so the week is made as it
would have happened: this process's clock is moved back to the week's start (WeekClock) and forward
through it, each order's story step by step in time order, the sweeper run where a story waits for it
(sessions expire, drop-offs get their recovery links), and then put back exactly as it was. Nothing is
stamped behind the services' backs. Moving the clock back is safe only while nothing else in the
process reads it and no other Flint serves the database (its sweeper, on real time, would take the
week's checkouts for long expired and close them mid-story): ``flint demo`` seeds before it serves, in
the same process, so flint.demo.seed puts the clock back whatever happens, before its server starts.
Seeded without a WeekClock, as beside a running Flint, the same week happens now, story after story.

What stays at real time: the week's webhook deliveries are made with their events (created when the
order was paid, refunded, canceled), but sent by the demo server's delivery worker when it starts,
since nothing listens for them while the week is seeded (the shop starts after it): their attempts,
the warehouse endpoint's failures among them, are stamped when they really happen. The demo app is
installed after the week, today, and its hook calls only begin once the merchant approves its update
(flint.demo._partner_app): the week has none.
"""
from __future__ import annotations

import heapq
import logging
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flint import clock
from flint.actors import Actor
from flint.apps.models import App
from flint.background.sweeper import sweep_once
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

# When the week happens. Its orders fall on the seven days before today, each day at least one (so a
# chart of the week has a bar a day), and on today until a few minutes ago; the shop's buyers order
# between 07:00 and 22:00 UTC (mornings in Europe to evenings in America), more of them on Fridays and
# weekends, give or take a day's luck. A fixed seed: the same date gives the same week.
DAYS = 7
OPENS, CLOSES = 7, 22  # UTC hours
JOINED = 6  # the demo merchant joins Flint at this hour of the week's first day, before its first order
WEEKDAY_WEIGHTS = (1.0, 0.8, 0.9, 1.0, 1.4, 1.8, 1.3)  # Monday .. Sunday
RANDOM_SEED = 16
LATEST = timedelta(minutes=2)  # nothing of the week later than this before the seeding began


class WeekClock:
    """This process's clock while the week is seeded: ``begin`` moves it back to the week's start,
    ``move_to`` forward through the week, ``end`` puts it back exactly as it was (real time, in ``flint
    demo``). Everywhere else Flint's clock only moves forward (flint.clock); here it moves back once, while
    nothing else in the process runs: the demo server starts after ``end`` (flint.demo.seed calls it
    whatever happens)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or clock.now()  # when the seeding began: the week ends before it
        today = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        self.first_day = today - timedelta(days=DAYS)
        self.start = self.first_day + timedelta(hours=JOINED)
        self.latest = self.now - LATEST
        self._saved: timedelta | None = None  # the offset to put back; None while the clock is not moved

    @property
    def moved(self) -> bool:
        return self._saved is not None

    def begin(self) -> None:
        """Moves this process's clock back to the week's start (a second call leaves it where it is)."""
        if self._saved is None:
            self._saved = clock.offset()
            clock._offset += self.start - clock.now()  # the one move back: see the class

    def move_to(self, moment: datetime) -> None:
        """Forward to ``moment``; never back (a step that took longer than planned is not undone)."""
        assert self._saved is not None, "begin() first"
        clock.advance(max(0.0, (moment - clock.now()).total_seconds()))

    def end(self) -> None:
        """Puts the clock back exactly as it was before ``begin`` (safe to call more than once)."""
        if self._saved is not None:
            clock._offset = self._saved  # (see begin)
            self._saved = None

    def moments(self, count: int) -> list[datetime]:
        """When the week's ``count`` orders begin, in order: at least one on each of the seven days, the
        rest by the day's weight (its weekday, its luck, and for today how much of it has passed)."""
        if count < DAYS:
            raise ValueError(f"a week needs at least {DAYS} orders")
        rng = random.Random(RANDOM_SEED)
        windows: list[tuple[datetime, datetime]] = []
        weights: list[float] = []
        for n in range(DAYS + 1):  # the seven days, then today
            day = self.first_day + timedelta(days=n)
            opens, closes = day + timedelta(hours=OPENS), day + timedelta(hours=CLOSES)
            if n == DAYS:
                closes = min(closes, self.latest)
            # (today: how much of its opening hours has passed, none if less than half an hour)
            share = (closes - opens) / timedelta(hours=CLOSES - OPENS) if closes - opens >= timedelta(minutes=30) else 0
            windows.append((opens, closes))
            weights.append(WEEKDAY_WEIGHTS[day.weekday()] * rng.uniform(0.6, 1.4) * share)
        # One for each of the seven days, the others shared by weight (largest remainder).
        extra = count - DAYS
        shares = [extra * w / sum(weights) for w in weights]
        counts = [int(x) for x in shares]
        by_remainder = sorted(range(len(shares)), key=lambda i: shares[i] - counts[i], reverse=True)
        for i in by_remainder[:extra - sum(counts)]:
            counts[i] += 1
        moments: list[datetime] = []
        for n, ((opens, closes), many) in enumerate(zip(windows, counts)):
            many += 1 if n < DAYS else 0
            span = (closes - opens).total_seconds()
            moments += sorted(opens + timedelta(seconds=rng.uniform(0, span)) for _ in range(many))
        return moments


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
        self.rng = random.Random(RANDOM_SEED)  # how long each step of a story takes
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

    async def _sweep(self) -> None:
        """The sweeper's round at this moment, as a live Flint runs it every few seconds: sessions past
        their time expire, drop-offs idle past abandon_after get their recovery link."""
        await sweep_once(self.rt)

    async def story(self, kind: str, buyer: Buyer, bags: int, decline: str | None) -> AsyncIterator[float]:
        """One order's story (see WEEK) as it happens: each ``yield`` is how many seconds pass before
        its next step, while the other orders' steps go on (seed_week runs them all in time order)."""
        rng = self.rng
        if kind == "phone":
            order = await orders.create_order(self.rt, self.merchant_id, self._new_order(
                bags, PHONE_ORDER, email=buyer.email), self.merchant)
            yield rng.uniform(60, 300)  # the merchant, still on the phone, sends a payment link
            link = await links.create_link(self.rt, self.merchant_id, order.id, expires_in=None,
                                           actor=self.merchant, collect=COLLECT)
            yield rng.uniform(600, 5400)  # the buyer pays it later
            await self._paid(link, buyer)
            return
        recovery = kind in ("recovered", "dropped_off")
        session = await self._session(bags, mode="hosted" if kind == "hosted" else "embedded", recovery=recovery)
        yield rng.uniform(60, 240)  # the buyer fills in the form
        if decline is not None:
            await self._declined(session, buyer, decline)
            yield rng.uniform(20, 120)  # and tries another card, or gives up
        if kind == "declined":
            # The buyer never came back and no recovery was asked for: the session expires, unpaid.
            yield (clock.parse(session.expires_at) - clock.now()).total_seconds() + 30
            await self._sweep()
            return
        if kind == "canceled":
            yield rng.uniform(600, 2400)  # the buyer writes to the shop to cancel before paying
            await closing.cancel_order(self.rt, self.merchant_id, session.order_id, self.merchant)
            return
        if recovery:
            # The buyer went away: once the checkout has idled past its abandon_after, the sweeper gives
            # it its one recovery link.
            yield session.abandon_after + 30
            await self._sweep()
            link_id = (await checkout.get_session(self.rt, self.merchant_id, session.id)).recovery_payment_link_id
            if link_id is None:
                # No time for that: the week made now (no WeekClock), or today's last minutes (the week
                # stops short of now). The shop expires the abandoned checkout, which makes the same link.
                expired = await closing.expire_session(self.rt, self.merchant_id, session.id, self.merchant)
                link_id = expired.recovery_payment_link_id
            assert link_id is not None
            if kind == "recovered":
                yield rng.uniform(2 * 3600, 20 * 3600)  # the buyer comes back through the link, hours later
                await self._paid(await links.get_link(self.rt, self.merchant_id, link_id), buyer)
            return
        if kind == "three_d_secure":
            challenged = await self._pay(session, buyer, self._card(number=THREE_D_SECURE))
            assert challenged.status == REQUIRES_ACTION, challenged.status
            yield rng.uniform(15, 60)  # the buyer approves it in the bank's app
            paid = await collect.resolve_challenge(self.rt, self.merchant_id, challenged.id, True,
                                                   Actor("buyer", session.id), checkout_session_id=session.id)
            assert paid.status == SUCCEEDED, paid.status
            return
        await self._paid(session, buyer)
        if kind == "refund_partial":
            yield rng.uniform(20 * 3600, 60 * 3600)  # one bag of two arrived damaged
            await self._refund(session.order_id, BEANS.unit_amount, "requested_by_customer")
        elif kind == "refund":
            yield rng.uniform(20 * 3600, 60 * 3600)  # sent back
            await self._refund(session.order_id, None, "requested_by_customer")
        elif kind == "refund_duplicate":
            yield rng.uniform(1800, 7200)  # the merchant spots that the buyer ordered the same twice
            await self._refund(session.order_id, None, "duplicate")


async def seed_week(rt: Runtime, merchant_id: str, shop_url: str, week: WeekClock | None = None) -> int:
    """The week's orders (see WEEK), through Flint's services; returns how many. With ``week``, at their
    moments of the past week, on its clock (begun here if it is not yet, and then put back here too);
    without, all now, each story to its end in turn, its waits skipped (for a database a running Flint
    serves meanwhile: its sweeper, on real time, would take the week's checkouts for long expired and
    close them mid-story)."""
    began = week is not None and not week.moved
    if week is not None:
        week.begin()
    try:
        maker = _Week(rt, merchant_id, shop_url)
        moments = week.moments(len(WEEK)) if week is not None else [clock.now()] * len(WEEK)
        # (when its next step is, its story's place in WEEK: never equal for two, so stories never compare)
        steps = [(at, n, maker.story(kind, BUYERS[who], bags, decline))
                 for n, (at, (kind, who, bags, decline)) in enumerate(zip(moments, WEEK))]
        heapq.heapify(steps)
        while steps:
            at, n, story = heapq.heappop(steps)
            if week is not None:
                week.move_to(at)
            try:
                wait = await anext(story)
            except StopAsyncIteration:
                continue
            if week is not None:
                at = min(clock.now() + timedelta(seconds=wait), week.latest)
            heapq.heappush(steps, (at, n, story))
    finally:
        if began and week is not None:
            week.end()
    log.info("demo: seeded %d orders", maker.number - FIRST_NUMBER)
    return maker.number - FIRST_NUMBER


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

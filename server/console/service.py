"""What the console's pages show and do (docs/api.md 15), composed from the domains' own services and
stores: who is signed in, a page of orders, an order's whole story as one timeline, the order's actions
(the API's own services, as the staff member, once per form) and the payment links. No Quart here; the
routes (routes.py) read the request and render."""
from __future__ import annotations

import asyncio
import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import phonenumbers

from flint import clock, money
from flint.accounts import service as accounts
from flint.actors import Actor
from flint.apps import store as app_store
from flint.apps.models import App
from flint.buyers.address import countries, country_format, country_options
from flint.closing import service as closing
from flint.collect import capture as capturing
from flint.errors import FlintError, invalid
from flint.events.models import Event
from flint.forms import service as forms
from flint.hooks import store as hook_store
from flint.hooks.models import HookCall
from flint.idempotency import service as idempotency
from flint.links import emails as link_emails
from flint.links import service as links
from flint.links.models import PaymentLink
from flint.mail import service as mail
from flint.mail.models import FAILED as MAIL_FAILED
from flint.mail.models import PAYMENT_LINK, RECEIPT, RECOVERY, SENT, SUPPRESSED, Email
from flint.merchants.models import Merchant
from flint.orders import service as orders
from flint.orders import store as order_store
from flint.orders.models import AUTHORIZED, CANCELED, OPEN, PAID, PARTIALLY_REFUNDED, REFUNDED, Order
from flint.payments import service as payments
from flint.payments.models import AUTHORIZED as PAYMENT_AUTHORIZED
from flint.payments.models import Payment
from flint.refunds import models as refund_models
from flint.refunds import service as refunds
from flint.refunds.models import Refund
from flint.runtime import Runtime
from flint.staff import service as staff
from flint.staff.models import PAGES, Staff
from flint.webhooks import store as webhook_store
from flint.webhooks.models import DELETED, FAILED, OWNER_MERCHANT, SUCCEEDED, Delivery

STATUSES = (OPEN, AUTHORIZED, PAID, PARTIALLY_REFUNDED, REFUNDED, CANCELED)
STATUS_LABELS = {OPEN: "Open", AUTHORIZED: "Authorized", PAID: "Paid", PARTIALLY_REFUNDED: "Partially refunded",
                 REFUNDED: "Refunded", CANCELED: "Canceled"}
PAGE_SIZE = 25
MAX_QUERY = 255  # longer than any id, reference or email address: cut, never an error
TIMELINE_PAGE = 500  # lines (events and hook calls) per timeline page; an order rarely has more than a few dozen
# Deliveries read for one timeline page: an event goes to each of the merchant's endpoints (at most 16) and
# its apps' that take it, so a page of 500 events rarely has more.
TIMELINE_DELIVERIES = 2000
MAX_SEQUENCE = 2**31 - 1  # events.sequence is an INTEGER: a larger ?after= reads past the end, never errs


@dataclass(frozen=True)
class Viewer:
    """The person signed in: their web session, the merchant whose console it is, and the staff member
    with their role (flint.staff). ``member`` None: a session that names no member (one from before staff
    existed) is the merchant's own, its owner."""
    session_id: str
    merchant: Merchant
    member: Staff | None = None

    def may(self, permission: str) -> bool:
        return self.member is None or self.member.can(permission)


async def viewer(rt: Runtime, token: str | None) -> Viewer | None:
    found = await accounts.current(rt, token)
    if found is None:
        return None
    # (session id, merchant) first, as accounts.current has always answered; the member after.
    return Viewer(found[0], found[1], getattr(found, "staff", None))


def require(who: Viewer, permission: str) -> None:
    """Refuses (403 role_forbidden) a person whose role lacks ``permission``: in the service, whatever
    the page shows or hides."""
    if who.member is not None:
        staff.require(who.member, permission)


# The console's pages that exist so far, each with the permission it needs (staff.models.PAGES): a role
# without it does not see the link (and gets 403 on the URL). The rest of PAGES comes with the rest of
# issue 16.
BUILT_PAGES = {"Overview": "/dashboard", "Orders": "/dashboard/orders", "Payment links": "/dashboard/payment_links",
               "Webhooks": "/dashboard/webhooks", "Apps": "/dashboard/apps", "API keys": "/dashboard/api_keys",
               "Settings": "/dashboard/settings", "Team": "/dashboard/team"}


def nav_links(who: Viewer) -> list[tuple[str, str]]:
    """(label, href) of each page this person may open, in the console's order."""
    return [(label, BUILT_PAGES[label]) for label, permission in PAGES
            if label in BUILT_PAGES and who.may(permission)]


async def overview(rt: Runtime, who: Viewer) -> OrdersPage | None:
    """The overview; its recent orders only for a role that may read orders."""
    require(who, "overview:read")
    return await orders_page(rt, who, limit=5) if who.may("orders:read") else None


# -- the order list ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrdersPage:
    orders: list[Order]
    status: str | None
    query: str
    newer: str | None  # ending_before cursor for the previous (newer) page, if there is one
    older: str | None  # starting_after cursor for the next (older) page, if there is one


def clean_status(raw: str | None) -> str | None:
    return raw if raw in STATUSES else None


def clean_query(raw: str | None) -> str:
    return (raw or "").strip()[:MAX_QUERY]


async def orders_page(rt: Runtime, who: Viewer, *, status: str | None = None, query: str = "",
                      starting_after: str | None = None, ending_before: str | None = None,
                      limit: int = PAGE_SIZE) -> OrdersPage:
    require(who, "orders:read")
    status, query = clean_status(status), clean_query(query)
    starting_after = clean_query(starting_after) or None
    ending_before = None if starting_after else (clean_query(ending_before) or None)
    async with rt.db.read() as conn:
        cursor = starting_after or ending_before
        if cursor is not None and await order_store.select_order(conn, who.merchant.id, cursor) is None:
            starting_after = ending_before = None  # unknown, or another merchant's: the first page
        found, more = await order_store.search_orders_page(
            conn, who.merchant.id, limit=limit, status=status, query=query or None,
            starting_after=starting_after, ending_before=ending_before)
    if not found:
        return OrdersPage([], status, query, None, None)
    # Beyond a cursor there is at least the row it names: the way back always leads somewhere; the
    # other way leads somewhere when the page found more rows than it shows.
    if ending_before is not None:
        newer, older = (found[0].id if more else None), found[-1].id
    else:
        newer, older = (found[0].id if starting_after else None), (found[-1].id if more else None)
    return OrdersPage(found, status, query, newer, older)


# -- one order's story -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryLine:
    """One webhook delivery of an event, as its timeline line shows it (under the event)."""
    id: str
    endpoint: str  # the merchant's own endpoint's URL, or "app <name>" for an app's (never its URL)
    href: str | None  # the endpoint's console page, where this person may open it
    status: str  # delivered | failed | pending
    attempts: int
    last_status_code: int | None
    last_error: str | None  # only for the merchant's own endpoints (an app's error may name its URL)

    @property
    def kind(self) -> str:
        return {"delivered": "success", "failed": "failure"}.get(self.status, "info")


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: what happened, when, by whom, with its details: an event (with its
    webhook deliveries) or a hook call."""
    sequence: int  # the event's; 0 for a hook call
    at: str  # RFC 3339, for <time datetime>
    shown_at: str  # "2026-12-04 20:09:21 UTC"
    title: str
    details: list[str] = field(default_factory=list)
    actor: str = ""
    kind: str = "info"  # info | success | failure: how the line is marked (with words, not colour alone)
    badge: str = ""  # the word that marks it when not Succeeded / Failed (a hook call's outcome)
    deliveries: list[DeliveryLine] = field(default_factory=list)
    source: str = "event"  # event | hook_call
    id: str = ""  # the event's or the hook call's


@dataclass(frozen=True)
class BuyerDetail:
    label: str
    lines: list[str]


@dataclass(frozen=True)
class Story:
    order: Order
    line_items: list[dict[str, Any]]
    buyer: list[BuyerDetail]
    fields: list[BuyerDetail]  # the merchant's custom fields and apps' fields, with their labels
    timeline: list[Entry]
    more_after: int | None  # the sequence to read the timeline on from, when it has more
    calls_cut: bool = False  # more hook calls between two events than a page holds: not all shown
    deliveries_cut: bool = False  # more deliveries of the page's events than it reads: not all shown


async def order_story(rt: Runtime, who: Viewer, order_id: str, *, after: int = 0, locale: str = "en") -> Story:
    """The order's lines, amounts, buyer and timeline; 404 (order_not_found) for an unknown id and for
    another merchant's order alike.

    The timeline is the order's events in ``sequence`` order, each with its webhook deliveries, and the
    hook calls made for the order, each by its time between them; a page holds at most TIMELINE_PAGE
    lines (events and hook calls) and ``after`` (an event's sequence) reads on from that event."""
    require(who, "orders:read")
    order = await orders.get_order(rt, who.merchant.id, order_id)
    after = min(max(0, after), MAX_SEQUENCE)
    # From the cursor's own event on: its time is where this page's hook calls begin.
    rows, more = await orders.list_order_events(rt, who.merchant.id, order.id, max(0, after - 1), TIMELINE_PAGE + 1)
    since = None
    if after:
        if not rows or rows[0].sequence != after:  # past the end (or not a sequence of this order)
            return _story(order, [], [], None, locale)
        since, rows = rows[0].created_at, rows[1:]
    else:
        rows, more = rows[:TIMELINE_PAGE], more or len(rows) > TIMELINE_PAGE
    async with rt.db.read() as conn:
        calls = []
        if who.may("apps:read"):  # hook calls are an app's: read as the Apps page reads them
            calls = await hook_store.select_order_calls_between(
                conn, who.merchant.id, order.id, since, rows[-1].created_at if more and rows else None,
                TIMELINE_PAGE + 1)
        lines, next_after, calls_cut = timeline_page(rows, calls, more, TIMELINE_PAGE)
        events = [line for line in lines if isinstance(line, Event)]
        found = await webhook_store.select_deliveries_of_events(conn, who.merchant.id, [e.id for e in events],
                                                                TIMELINE_DELIVERIES + 1)
        apps = await app_store.select_apps_by_ids(conn, sorted(
            {c.app_id for c in calls} | {endpoint["app_id"] for _, endpoint in found if endpoint["app_id"]}))
    deliveries: dict[str, list[DeliveryLine]] = {}
    for delivery, endpoint in found[:TIMELINE_DELIVERIES]:
        if (line := delivery_line(who, delivery, endpoint, apps)) is not None:
            deliveries.setdefault(delivery.event_id, []).append(line)
    for lines_of_event in deliveries.values():  # the same endpoints in the same order under every event
        lines_of_event.sort(key=lambda line: (line.endpoint.startswith("app "), line.endpoint, line.id))
    timeline = [
        replace(describe(line.sequence or 0, line.type, line.created_at, line.actor_type, line.actor_id,
                         _object(line.data), locale), deliveries=deliveries.get(line.id, []), id=line.id)
        if isinstance(line, Event) else describe_hook_call(line, apps.get(line.app_id))
        for line in lines]
    return _story(order, events, timeline, next_after, locale, calls_cut=calls_cut,
                  deliveries_cut=len(found) > TIMELINE_DELIVERIES)


def _story(order: Order, events: list[Event], timeline: list[Entry], more_after: int | None, locale: str,
           **cut: bool) -> Story:
    return Story(order=order, line_items=json.loads(order.line_items), buyer=buyer_details(order, locale),
                 fields=field_values(order, _field_labels(events)), timeline=timeline, more_after=more_after, **cut)


def timeline_page(events: list[Event], calls: list[HookCall], more: bool,
                  limit: int) -> tuple[list[Event | HookCall], int | None, bool]:
    """One page of the timeline: (its lines, the sequence the next page reads on from or None, whether
    hook calls were left out). ``events``: at most ``limit`` after the cursor, in sequence order; ``more``:
    events follow them. ``calls``: the order's hook calls after the cursor event's time (up to the last
    event's when ``more``), oldest first, at most ``limit + 1``.

    Events keep their sequence order; a hook call goes before the first event made after it. The page
    ends at an event, so the next one begins at that event's time and every call is on exactly one page;
    it ends early when its events and the calls up to their time would be more than ``limit`` lines.
    Only more calls between two events than a page holds cannot be shown all (``calls_cut``)."""
    times = [call.created_at for call in calls]
    last_page = not more

    def calls_up_to(k: int) -> int:  # the calls a page of the first k events shows
        return len(calls) if k == len(events) and last_page else bisect_right(times, events[k - 1].created_at)

    k = len(events)
    while k > 1 and k + calls_up_to(k) > limit:
        k -= 1
    shown = calls_up_to(k) if k else len(calls)
    cut = k + shown > limit
    shown = calls[:min(shown, limit - k)]
    lines: list[Event | HookCall] = []
    i = 0
    for event in events[:k]:
        while i < len(shown) and shown[i].created_at < event.created_at:
            lines.append(shown[i])
            i += 1
        lines.append(event)
    lines += shown[i:]
    ends_early = k < len(events) or more
    return lines, (events[k - 1].sequence or 0) if ends_early and k else None, cut


def delivery_line(who: Viewer, delivery: Delivery, endpoint: dict[str, Any],
                  apps: dict[str, App]) -> DeliveryLine | None:
    """A delivery as the event's line shows it, or None when this person may not see its endpoint: the
    merchant's own endpoints are the Webhooks page's (webhooks:read); an app's (its webhook_url, or one it
    made, which belongs to its installation: docs/security.md, finding 2) are the Apps page's (apps:read)
    and are named by the app, never by their URL."""
    if endpoint["owner"] == OWNER_MERCHANT:
        if not who.may("webhooks:read"):
            return None
        name = endpoint["url"]
        # The endpoint's own page lists every endpoint the merchant has not deleted (as the API).
        href = f"/dashboard/webhooks/{delivery.endpoint_id}" if endpoint["status"] != DELETED else None
        error = delivery.last_error
    else:
        if not who.may("apps:read"):
            return None
        app = apps.get(endpoint["app_id"] or "")
        name, href, error = f"app {app.name if app else endpoint['app_id'] or 'unknown'}", None, None
    status = {SUCCEEDED: "delivered", FAILED: "failed"}.get(delivery.status, "pending")
    return DeliveryLine(id=delivery.id, endpoint=name, href=href, status=status, attempts=delivery.attempts,
                        last_status_code=delivery.last_status_code, last_error=error)


def _object(data: str) -> dict[str, Any]:
    """The object an event carries (its data is ``{"object": ...}``, as Stripe's events)."""
    found = json.loads(data).get("object")
    return found if isinstance(found, dict) else {}


def _field_labels(events) -> dict[str, str]:
    """Each custom field's label, from the specs the order's sessions and links asked with."""
    labels: dict[str, str] = {}
    for event in events:
        if event.type in ("checkout.session.created", "payment_link.created"):
            for spec in _object(event.data).get("custom_fields") or ():
                if isinstance(spec, dict) and spec.get("key"):
                    labels.setdefault(str(spec["key"]), str(spec.get("label") or spec["key"]))
    return labels


def _address_lines(address: dict[str, Any] | None, locale: str) -> list[str]:
    if not address:
        return []
    country = address.get("country")
    lines = [address[key] for key in ("line1", "line2") if address.get(key)]
    if country:
        known = country in countries()  # else (a code stored long ago?) its parts as they are
        keys = ([key for key in country_format(country)[0] if key not in ("line1", "line2")] if known
                else ["postal_code", "city", "state"])
        locality = " ".join(address[key] for key in keys if address.get(key))
        if locality:
            lines.append(locality)
        lines.append(dict(country_options(locale)).get(country, country))
    return lines


def _phone(number: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return number


def buyer_details(order: Order, locale: str = "en") -> list[BuyerDetail]:
    """What the buyer gave (docs/api.md 14): email, name, phone and addresses, only those given."""
    customer = json.loads(order.customer) if order.customer else {}
    shown: list[BuyerDetail] = []
    email = customer.get("email") or order.customer_email
    if email:
        shown.append(BuyerDetail("Email", [email]))
    if customer.get("name"):
        shown.append(BuyerDetail("Name", [customer["name"]]))
    if customer.get("phone"):
        shown.append(BuyerDetail("Phone", [_phone(customer["phone"])]))
    for key, label in (("billing_address", "Billing address"), ("shipping_address", "Shipping address")):
        if lines := _address_lines(customer.get(key), locale):
            shown.append(BuyerDetail(label, lines))
    return shown


def _value(value: Any) -> str:
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    return "" if value is None else str(value)


def field_values(order: Order, labels: dict[str, str]) -> list[BuyerDetail]:
    shown = [BuyerDetail(labels.get(key, key), [_value(value)])
             for key, value in json.loads(order.custom_fields or "{}").items()]
    for app_id, entry in json.loads(order.extension_data or "{}").items():
        if isinstance(entry, dict) and isinstance(entry.get("fields"), dict):
            shown += [BuyerDetail(f"{key} ({app_id})", [_value(value)]) for key, value in entry["fields"].items()]
    return shown


# -- describing events ------------------------------------------------------------------------------------

def shown_time(at: str) -> str:
    """An RFC 3339 time as people read it, to the second, in UTC (the console says so)."""
    public = clock.public(at) or at
    return public[:19].replace("T", " ") + " UTC"


def _actor(actor_type: str, actor_id: str | None) -> str:
    return {"merchant": "the merchant (API)", "buyer": "the buyer", "system": "Flint",
            "app": f"app {actor_id}", "staff": f"staff {actor_id}"}.get(actor_type, actor_type)


def _card(payment: dict[str, Any]) -> str:
    card = payment.get("card") or {}
    brand = str(card.get("brand") or "card").replace("_", " ").title()
    return f"{brand} •••• {card.get('last4')}" if card.get("last4") else brand


def describe(sequence: int, kind: str, at: str, actor_type: str, actor_id: str | None, data: dict[str, Any],
             locale: str = "en") -> Entry:
    """One event as a timeline line. Every event type gets a line; an unknown one shows its type."""
    def amount(value: Any, currency: Any) -> str:
        try:
            return money.format_amount(int(value), str(currency), locale)
        except (KeyError, TypeError, ValueError):
            return f"{value} {currency}"

    obj_id = data.get("id", "")
    title, details, mark = kind, [], "info"
    if kind == "order.created":
        title = "Order created"
        details = [f"Total {amount(data.get('amount_total'), data.get('currency'))}"]
    elif kind == "order.paid":
        title, mark = "Order paid", "success"
        details = [f"Paid {amount(data.get('amount_paid'), data.get('currency'))}"]
    elif kind == "order.canceled":
        title = "Order canceled"
    elif kind == "order.refunded":
        title = "Order refunded" if data.get("status") == REFUNDED else "Order partially refunded"
        details = [f"Refunded so far {amount(data.get('amount_refunded'), data.get('currency'))}"]
    elif kind == "order.redacted":
        title = "Buyer's details erased"
    elif kind.startswith("checkout.session."):
        mode = data.get("mode")
        title = {
            "checkout.session.created": f"Checkout session created ({mode})",
            "checkout.session.completed": "Checkout session completed",
            "checkout.session.expired": "Checkout session expired",
            "checkout.session.abandoned": "Buyer dropped off",
            "checkout.session.fallback_used": "Widget fell back to the hosted page",
        }.get(kind, kind)
        details = [f"Session {obj_id}"]
        recovery = data.get("recovery") or {}
        if kind == "checkout.session.abandoned" and recovery.get("drop_off_reason"):
            details.append(f"Reason: {recovery['drop_off_reason']}")
        if kind == "checkout.session.fallback_used" and (data.get("fallback") or {}).get("reason"):
            details.append(f"Reason: {data['fallback']['reason']}")
    elif kind.startswith("payment_link."):
        source = data.get("source")
        title = ("Payment link created" + (f" ({source})" if source else "") if kind == "payment_link.created"
                 else "Payment link deactivated")
        details = [f"Link {obj_id}"] + ([data["url"]] if data.get("url") and kind == "payment_link.created" else [])
    elif kind in ("email.sent", "email.failed"):
        # docs/api.md 16: the mail's kind and address, never its body; the Emails panel has every mail.
        what = MAIL_KIND_LABELS.get(str(data.get("kind")), "Email")
        title, mark = (f"{what} sent", "success") if kind == "email.sent" else (f"{what} not delivered", "failure")
        details = [f"To {data.get('to')}", f"Email {obj_id}"]
        if kind == "email.failed" and data.get("last_error"):
            details.append(f"Last error: {data['last_error']}")
    elif kind.startswith("payment."):
        how = f"{amount(data.get('amount'), data.get('currency'))} by {_card(data)}"
        via = f"via {data.get('channel')}" if data.get("channel") else ""
        if kind == "payment.succeeded":
            title, mark = "Payment succeeded", "success"
        elif kind == "payment.authorized":
            # Capture "manual" (docs/api.md 17): the buyer's money is held, not taken yet.
            title = "Payment authorized"
            how = f"{amount(data.get('amount_authorized') or data.get('amount'), data.get('currency'))} on {_card(data)}"
        elif kind == "payment.captured":
            title, mark = "Payment captured", "success"
            authorized = data.get("amount_authorized")
            how = f"{amount(data.get('amount'), data.get('currency'))} by {_card(data)}"
            if authorized and authorized != data.get("amount"):  # a partial capture: the rest was released
                how += f" (of {amount(authorized, data.get('currency'))} authorized; the rest released)"
        elif kind == "payment.voided":
            # By a person (Void), or expired: not captured in time (the sweeper) or lapsed at the processor.
            expired = data.get("failure_code") == "authorization_expired" or actor_type == "system"
            title = "Authorization expired" if expired else "Authorization voided"
            how = f"{amount(data.get('amount_authorized') or data.get('amount'), data.get('currency'))} released on {_card(data)}"
        elif kind == "payment.failed":
            title, mark = "Payment failed", "failure"
        elif kind == "payment.requires_action":
            title = "Payment needs 3-D Secure"
        details = [f"Payment {obj_id}", " ".join(part for part in (how, via) if part)]
        if kind == "payment.failed":
            reason = data.get("failure_message") or "Declined"
            code = data.get("failure_code")
            details.append(f"Decline reason: {reason}" + (f" ({code})" if code else ""))
    elif kind.startswith("refund."):
        how = amount(data.get("amount"), data.get("currency"))
        if kind == "refund.succeeded":
            title, mark = f"Refunded {how}", "success"
        else:
            title, mark = f"Refund of {how} failed", "failure"
        details = [f"Refund {obj_id}"]
        if data.get("reason"):
            details.append(f"Reason: {data['reason']}")
        if data.get("failure_code"):
            details.append(f"Failure: {data['failure_code']}")
    return Entry(sequence=sequence, at=clock.public(at) or at, shown_at=shown_time(at), title=title,
                 details=[d for d in details if d], actor=_actor(actor_type, actor_id), kind=mark)


HOOK_OUTCOMES = {"allowed": "Allowed", "blocked": "Blocked", "field_error": "Field error", "timeout": "Timed out",
                 "error": "Error"}


def hook_outcome(call: HookCall) -> str:
    """What the app's answer came to for this payment attempt: allowed, blocked, field_error (it refused one
    of its own checkout fields), timeout or error (no answer Flint could use: an error status, a broken
    connection or an answer of the wrong shape)."""
    if call.outcome == "timeout":
        return "timeout"
    if call.outcome != "answered":
        return "error"
    kinds = {action.get("type") for action in _json_list(call.actions) if isinstance(action, dict)}
    return "blocked" if "block" in kinds else "field_error" if "field_error" in kinds else "allowed"


def _json_list(text: str | None) -> list[Any]:
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return []
    return found if isinstance(found, list) else []


def describe_hook_call(call: HookCall, app: App | None) -> Entry:
    """A hook call as a timeline line: the app asked, what its answer came to (in words), how long it
    took, and why (the app's own message for a block or a field, Flint's words for a failure)."""
    outcome = hook_outcome(call)
    actions = [a for a in _json_list(call.actions) if isinstance(a, dict)]
    applied = [str(a) for a in _json_list(call.applied)]
    details = [f"Outcome: {outcome}", f"Took {call.latency_ms} ms"]
    if outcome == "blocked":
        details += [f"Reason: {a.get('message')}" for a in actions if a.get("type") == "block"][:1]
    elif outcome == "field_error":
        details += [f"Reason: {a.get('field')}: {a.get('message')}" for a in actions if a.get("type") == "field_error"]
    elif outcome in ("timeout", "error"):
        reason = call.error or (f"HTTP {call.status_code}" if call.status_code else "no answer")
        details.append(f"Reason: {'invalid answer: ' if call.outcome == 'invalid' else ''}{reason}")
    if "block (failure mode)" in applied:
        details.append("The payment was blocked: this app's hooks block payments when they fail")
    elif others := [a for a in applied if a not in ("block", "field_error")]:
        details.append("Applied: " + ", ".join(others))
    details.append(f"Before a payment attempt via {call.channel}")
    if call.checkout_session_id:
        details.append(f"Session {call.checkout_session_id}")
    if call.payment_link_id:
        details.append(f"Link {call.payment_link_id}")
    name = app.name if app else call.app_id
    return Entry(sequence=0, at=clock.public(call.created_at) or call.created_at, shown_at=shown_time(call.created_at),
                 title=f"Hook call to app {name}", details=details, actor="Flint",
                 kind="success" if outcome == "allowed" else "failure", badge=HOOK_OUTCOMES[outcome],
                 source="hook_call", id=call.id)


# -- actions (docs/api.md 15): the same services as the API, as the signed-in staff member ---------------
#
# Every action form carries a single-use token (flint.forms: signed, bound to the person's web session, so
# it is the form's CSRF token too). Its nonce is the action's Idempotency-Key (flint.idempotency, as the
# API stores keys): a double submit, or the back button and the same form sent again, replays the first
# outcome instead of acting twice. A token for another session, forged or stale is 403 before anything.

REFUND_REASON_LABELS = {"requested_by_customer": "Requested by the customer", "duplicate": "Duplicate payment",
                        "fraudulent": "Fraudulent"}
REFUND_REASONS = tuple((reason, REFUND_REASON_LABELS.get(reason, reason)) for reason in refund_models.REASONS)
LINKS_PAGE = 25
SEND_LINKS_LOOKED_AT = 100  # an order's newest links Send payment link looks through for one to reuse
IN_USE_WAITS, IN_USE_WAIT_SECONDS = 50, 0.1  # the same form sent twice at once: wait up to 5 s for the first


def acting_as(who: Viewer) -> Actor:
    """What the action records on its events: the staff member (``{type: "staff", id}``); a session
    from before staff (no member) is the merchant's own."""
    return staff.actor(who.member) if who.member is not None else Actor("merchant", who.merchant.id)


def form_token(rt: Runtime, who: Viewer) -> str:
    """A fresh single-use token for one action form on this person's page."""
    return forms.issue(rt, who.session_id)


@dataclass(frozen=True)
class Outcome:
    """Where an action ended: ``location`` to go to (done), or ``error`` (nothing was done), with the
    HTTP status to answer it with."""
    status: int
    location: str | None = None
    error: str | None = None
    code: str | None = None

    def to_json(self) -> str:
        return json.dumps({"status": self.status, "location": self.location, "error": self.error,
                           "code": self.code})

    @classmethod
    def from_json(cls, body: str) -> Outcome:
        found = json.loads(body)
        return cls(int(found["status"]), found.get("location"), found.get("error"), found.get("code"))


def _refusal(error: FlintError) -> Outcome:
    # The console's own words where the API's are about settings a person at the console cannot see.
    words = MAIL_NOT_CONFIGURED if error.code == "mail_not_configured" else error.detail
    return Outcome(error.status, error=words, code=error.code)


async def _once(rt: Runtime, who: Viewer, token: str | None, permission: str, action: str,
                fields: dict[str, Any], run) -> Outcome:
    """Check the form's token (403 form_token_*) and the role (403 role_forbidden), then ``run()`` (which
    returns the location to go to) once per token. Refusals before the action change nothing."""
    nonce = forms.check(rt, token, who.session_id)
    require(who, permission)
    scope = f"staff:{who.member.id}" if who.member is not None else f"merchant:{who.merchant.id}"
    key = f"console:{nonce}"
    body = json.dumps(fields, sort_keys=True).encode()
    request_hash = idempotency.fingerprint("POST", action, body)
    for _ in range(IN_USE_WAITS):
        try:
            replay = await idempotency.begin(rt, scope, key, request_hash)
            break
        except FlintError as error:
            if error.code == "idempotency_key_reused":
                return Outcome(409, error="This form was already sent with other values. Nothing more was done; "
                                          "fill in the form below to act again.", code=error.code)
            if error.code != "idempotency_key_in_use":
                raise
            # The same form, sent twice at once (a double click): the first is acting. Wait for its
            # outcome and answer with it, as a browser shows only the last answer.
            await asyncio.sleep(IN_USE_WAIT_SECONDS)
    else:
        return Outcome(409, error="This form was already sent and is still being processed. Nothing more was "
                                  "done; reload the page in a moment to see its outcome.",
                       code="idempotency_key_in_use")
    if replay is not None:
        return Outcome.from_json(replay.body)
    try:
        outcome = Outcome(303, location=await run())
    except FlintError as error:
        outcome = _refusal(error)
    except Exception:
        # As the API does: whatever the action committed must not run again under the same key.
        await idempotency.finish(rt, scope, key, 500, "application/json",
                                 Outcome(500, error="Something went wrong.").to_json())
        raise
    await idempotency.finish(rt, scope, key, outcome.status, "application/json", outcome.to_json())
    return outcome


def parse_amount(text: str, currency: str) -> int:
    """An amount typed in the currency's major unit ("12.50", "1,234.5", "1234") in minor units, by ISO
    4217's exponent (flint.money); 400 amount_invalid for anything else."""
    digits = money.exponent(currency)
    cleaned = (text or "").strip().replace(" ", "")
    if not re.fullmatch(r"([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]*)?|\.[0-9]+", cleaned):
        raise invalid("amount_invalid", "Enter the amount as a number, such as 12.50.", "amount")
    value = Decimal(cleaned.replace(",", "").rstrip(".") or "0")
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        raise invalid("amount_invalid", f"{currency.upper()} amounts have at most {digits} decimal places."
                      if digits else f"{currency.upper()} amounts have no decimal places.", "amount")
    if minor <= 0:
        raise invalid("amount_too_small", "Enter an amount above zero.", "amount")
    if minor > money.MAX_AMOUNT:
        raise invalid("amount_too_large", "This amount is too large.", "amount")
    return int(minor)


def major_units(amount: int, currency: str) -> str:
    """Minor units as typed in the major unit, without symbol or grouping: 3200 eur → "32.00"."""
    digits = money.exponent(currency)
    return f"{Decimal(amount).scaleb(-digits):.{digits}f}"


@dataclass(frozen=True)
class OrderActions:
    """What this person may do to this order now, by role and by the order's state."""
    refund: bool
    cancel: bool
    create_link: bool
    # Send payment link (docs/api.md 15 and 16): offered with create_link; without mail settings the page
    # says so instead of showing a form that could only be refused.
    send_link: bool = False
    # Capture and Void (docs/api.md 15 and 17): an authorized order's standing authorization.
    capture: bool = False
    void: bool = False

    @property
    def any(self) -> bool:
        return self.refund or self.cancel or self.create_link or self.send_link or self.capture or self.void


def order_actions(who: Viewer, order: Order) -> OrderActions:
    link = who.may("links:write") and order.status == OPEN
    return OrderActions(
        refund=who.may("refunds:write") and order.status in (PAID, PARTIALLY_REFUNDED) and order.amount_refundable > 0,
        cancel=who.may("orders:cancel") and order.status == OPEN,
        create_link=link, send_link=link,
        capture=who.may("payments:capture") and order.status == AUTHORIZED,
        void=who.may("payments:void") and order.status == AUTHORIZED)


def _order_url(order_id: str, **params: str) -> str:
    return f"/dashboard/orders/{order_id}" + (f"?{urlencode(params)}" if params else "")


async def refund(rt: Runtime, who: Viewer, order_id: str, token: str | None, amount: str, reason: str) -> Outcome:
    """Refund (part of) the order's payment through flint.refunds, as the API's POST /v1/refunds."""
    async def run() -> str:
        order = await orders.get_order(rt, who.merchant.id, order_id)  # 404 for another merchant's
        new = refunds.NewRefund(order_id=order.id, amount=parse_amount(amount, order.currency),
                                reason=reason or None)
        done = await refunds.issue_refund(rt, who.merchant.id, new, acting_as(who))
        return _order_url(order.id, refund=done.id)

    return await _once(rt, who, token, "refunds:write", f"refund {order_id}",
                       {"amount": amount, "reason": reason}, run)


async def cancel(rt: Runtime, who: Viewer, order_id: str, token: str | None) -> Outcome:
    """Cancel an open order through flint.closing, as the API's POST /v1/orders/{id}/cancel."""
    async def run() -> str:
        order = await closing.cancel_order(rt, who.merchant.id, order_id, acting_as(who))
        return _order_url(order.id, canceled="1")

    return await _once(rt, who, token, "orders:cancel", f"cancel {order_id}", {}, run)


AUTHORIZATIONS_LOOKED_AT = 100  # an order's newest payments searched for its one standing authorization


async def authorization(rt: Runtime, who: Viewer, order: Order) -> Payment | None:
    """The order's standing authorization (capture "manual", docs/api.md 17): at most one per order
    (payments/guard.py); None once it was captured, voided or expired."""
    require(who, "orders:read")
    if order.status != AUTHORIZED:
        return None
    found, _ = await payments.list_payments(rt, who.merchant.id, order.id, AUTHORIZATIONS_LOOKED_AT, None)
    return next((payment for payment in found if payment.status == PAYMENT_AUTHORIZED), None)


async def _authorization_to_act_on(rt: Runtime, who: Viewer, order_id: str) -> tuple[Order, Payment]:
    order = await orders.get_order(rt, who.merchant.id, order_id)  # 404 for another merchant's
    found = await authorization(rt, who, order)
    if found is None:  # captured, voided or expired meanwhile (or never authorized)
        raise FlintError(409, "payment_not_authorized", "This order has no authorization to capture or void now.")
    return order, found


async def capture(rt: Runtime, who: Viewer, order_id: str, token: str | None, amount: str) -> Outcome:
    """Capture (part of) the order's authorization through flint.collect.capture, as the API's
    POST /v1/payments/{id}/capture; the rest of it is released. The same form sent twice captures once."""
    async def run() -> str:
        order, held = await _authorization_to_act_on(rt, who, order_id)
        taken = parse_amount(amount, order.currency)
        done = await capturing.capture_payment(rt, who.merchant.id, held.id, acting_as(who), taken)
        return _order_url(order.id, captured=done.id)

    return await _once(rt, who, token, "payments:capture", f"capture {order_id}", {"amount": amount}, run)


async def void(rt: Runtime, who: Viewer, order_id: str, token: str | None) -> Outcome:
    """Void the order's authorization through flint.collect.capture, as the API's POST /v1/payments/{id}/void:
    the buyer's money is released and the order is open again."""
    async def run() -> str:
        order, held = await _authorization_to_act_on(rt, who, order_id)
        done = await capturing.void_payment(rt, who.merchant.id, held.id, acting_as(who))
        return _order_url(order.id, voided=done.id)

    return await _once(rt, who, token, "payments:void", f"void {order_id}", {}, run)


async def payment_for(rt: Runtime, who: Viewer, order: Order, payment_id: str) -> Payment | None:
    """The payment a finished Capture or Void form names, if it is this order's (else nothing is said)."""
    try:
        found = await payments.get_payment(rt, who.merchant.id, payment_id[:100])
    except FlintError:
        return None
    return found if found.order_id == order.id else None


async def create_link(rt: Runtime, who: Viewer, order_id: str, token: str | None) -> Outcome:
    """A payment link for the open order through flint.links, as the API's POST /v1/payment_links."""
    async def run() -> str:
        link = await links.create_link(rt, who.merchant.id, order_id, expires_in=None, actor=acting_as(who))
        return _order_url(link.order_id, link=link.id)

    return await _once(rt, who, token, "links:write", f"create link {order_id}", {}, run)


async def _link_to_send(rt: Runtime, who: Viewer, order: Order) -> PaymentLink:
    """The link Send payment link mails for an order: its newest link that can be paid now (active, not
    expired; whatever made it: this console, the API, an app or a drop-off), so that a buyer sent the link
    twice gets the same link twice; a new one (as Create payment link makes it) when it has none. A closed
    order gets none (create_link refuses: 409 order_already_paid / order_canceled)."""
    if order.status == OPEN:
        now = clock.now_iso()
        found, _ = await links.list_links(rt, who.merchant.id, order.id, SEND_LINKS_LOOKED_AT, None)
        for link in found:  # newest first
            if link.active and not link.expired(now):
                return link
    return await links.create_link(rt, who.merchant.id, order.id, expires_in=None, actor=acting_as(who))


async def send_link(rt: Runtime, who: Viewer, order_id: str, token: str | None, email: str) -> Outcome:
    """Send payment link on the order page: the order's link (``_link_to_send``) emailed to ``email``
    through flint.links.emails.send_link, the service of the API's POST /v1/payment_links/{id}/send, as the
    staff member. Refused before any link is made: another merchant's order (404), no mail settings (409
    mail_not_configured), an address that is not one (400 email_invalid). The same form sent twice sends
    one mail (``_once``)."""
    async def run() -> str:
        order = await orders.get_order(rt, who.merchant.id, order_id)
        mail.require_configured(rt.config)
        address = mail.normalise_address(email)
        link = await _link_to_send(rt, who, order)
        sent = await link_emails.send_link(rt, who.merchant.id, link.id, to=address, actor=acting_as(who))
        return _order_url(order.id, sent=sent.id)

    return await _once(rt, who, token, "links:write", f"send link {order_id}", {"email": email}, run)


async def send_link_by_id(rt: Runtime, who: Viewer, link_id: str, token: str | None, email: str,
                          back: str) -> Outcome:
    """Send on the Payment links page: this link emailed to ``email`` (flint.links.emails.send_link, as
    the API's POST /v1/payment_links/{id}/send), as the staff member."""
    async def run() -> str:
        sent = await link_emails.send_link(rt, who.merchant.id, link_id, to=email, actor=acting_as(who))
        return back + ("&" if "?" in back else "?") + urlencode({"sent": sent.id})

    return await _once(rt, who, token, "links:write", f"send {link_id}", {"email": email}, run)


async def deactivate_link(rt: Runtime, who: Viewer, link_id: str, token: str | None, back: str) -> Outcome:
    """Stop a link through flint.links, as the API's POST /v1/payment_links/{id}/deactivate."""
    async def run() -> str:
        link = await links.deactivate_link(rt, who.merchant.id, link_id, acting_as(who))
        return back + ("&" if "?" in back else "?") + urlencode({"deactivated": link.id})

    return await _once(rt, who, token, "links:write", f"deactivate {link_id}", {}, run)


async def refund_for(rt: Runtime, who: Viewer, order: Order, refund_id: str) -> Refund | None:
    """The refund a finished refund form names, if it is this order's (else nothing is said)."""
    try:
        found = await refunds.get_refund(rt, who.merchant.id, refund_id[:100])
    except FlintError:
        return None
    return found if found.order_id == order.id else None


async def sent_email(rt: Runtime, who: Viewer, email_id: str, *, order_id: str | None = None) -> Email | None:
    """The mail a finished Send form names, if it is this merchant's (and this order's): else nothing
    is said."""
    try:
        found = await mail.get_email(rt, who.merchant.id, email_id[:100])
    except FlintError:
        return None
    return found if order_id is None or found.order_id == order_id else None


async def link_for(rt: Runtime, who: Viewer, order: Order, link_id: str) -> PaymentLink | None:
    try:
        found = await links.get_link(rt, who.merchant.id, link_id[:100])
    except FlintError:
        return None
    return found if found.order_id == order.id else None


# -- the order's mails (docs/api.md 15 and 16) -----------------------------------------------------------

ORDER_EMAILS = 50  # mails shown on an order's page; GET /v1/emails?order= lists them all
MAIL_KIND_LABELS = {RECEIPT: "Receipt", RECOVERY: "Recovery email", PAYMENT_LINK: "Payment link"}
MAIL_STATUS_LABELS = {"pending": "Waiting", "sending": "Sending", SENT: "Sent", MAIL_FAILED: "Failed",
                      SUPPRESSED: "Not sent (unsubscribed)"}
MAIL_NOT_CONFIGURED = ("This Flint sends no email (FLINT_SMTP_URL and FLINT_MAIL_FROM are not set), so payment "
                       "links cannot be sent from here: create one and send it to the buyer yourself.")


@dataclass(frozen=True)
class EmailLine:
    """One mail as the order page's Emails panel shows it: never its body."""
    id: str
    kind: str
    to: str
    status: str
    mark: str  # success | failure | info: how the status is marked (with its word, not colour alone)
    attempts: int
    at: str  # when it was sent, else when it was caused (RFC 3339, for <time datetime>)
    shown_at: str
    last_error: str | None


def email_line(email: Email) -> EmailLine:
    at = email.sent_at or email.created_at
    return EmailLine(id=email.id, kind=MAIL_KIND_LABELS.get(email.kind, email.kind), to=email.to_address,
                     status=MAIL_STATUS_LABELS.get(email.status, email.status),
                     mark={SENT: "success", MAIL_FAILED: "failure"}.get(email.status, "info"),
                     attempts=email.attempts, at=clock.public(at) or at, shown_at=shown_time(at),
                     last_error=email.last_error if email.status != SENT else None)


async def order_emails(rt: Runtime, who: Viewer, order: Order) -> tuple[list[EmailLine], bool]:
    """The order's mails, newest first (flint.mail.list_emails, as GET /v1/emails?order=), and whether it
    has more than the page shows."""
    require(who, "orders:read")
    found, more = await mail.list_emails(rt, who.merchant.id, order_id=order.id, limit=ORDER_EMAILS,
                                         starting_after=None)
    return [email_line(email) for email in found], more


def mail_configured(rt: Runtime) -> bool:
    return rt.config.mail_configured


def buyer_email(order: Order) -> str:
    """What Send payment link's Email field starts with: the buyer's address, when the order knows one."""
    return link_emails.buyer_email(order) or ""


# -- the payment links page --------------------------------------------------------------------------------

@dataclass(frozen=True)
class LinksPage:
    links: list[PaymentLink]
    after: str | None  # the cursor this page started after (None: the first page)
    older: str | None  # starting_after cursor for the next (older) page, if there is one
    now: str
    # Each link's order's buyer address (docs/api.md 14), what its Send form's Email starts with ("": none).
    buyer_emails: dict[str, str] = field(default_factory=dict)


async def links_page(rt: Runtime, who: Viewer, *, starting_after: str | None = None,
                     limit: int = LINKS_PAGE) -> LinksPage:
    """The merchant's payment links, newest first, a keyset page at a time (flint.links.list_links)."""
    require(who, "links:read")
    after = clean_query(starting_after) or None
    if after is not None:
        try:
            await links.get_link(rt, who.merchant.id, after)
        except FlintError:
            after = None  # unknown, or another merchant's: the first page
    found, more = await links.list_links(rt, who.merchant.id, None, limit, after)
    buyers: dict[str, str] = {}
    if who.may("links:write") and rt.config.mail_configured:  # only the Send forms use them
        async with rt.db.read() as conn:
            found_orders = await order_store.select_orders_by_ids(conn, sorted({link.order_id for link in found}))
        buyers = {order_id: buyer_email(order) for order_id, order in found_orders.items()
                  if order.merchant_id == who.merchant.id}
    return LinksPage(found, after, found[-1].id if more and found else None, clock.now_iso(), buyers)


def link_status(link: PaymentLink, now: str) -> str:
    if not link.active:
        return "Deactivated"
    return "Expired" if link.expired(now) else "Active"

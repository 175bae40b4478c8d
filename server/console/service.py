"""What the console's pages show (docs/api.md 16), composed from the domains' own services and stores:
who is signed in, a page of orders, and an order's whole story as one timeline. No Quart here; the
routes (routes.py) read the request and render."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from flint import clock, money
from flint.accounts import service as accounts
from flint.buyers.address import countries, country_format, country_options
from flint.merchants.models import Merchant
from flint.orders import service as orders
from flint.orders import store as order_store
from flint.orders.models import CANCELED, OPEN, PAID, PARTIALLY_REFUNDED, REFUNDED, Order
from flint.runtime import Runtime
from flint.staff import service as staff
from flint.staff.models import PAGES, Staff

STATUSES = (OPEN, PAID, PARTIALLY_REFUNDED, REFUNDED, CANCELED)
STATUS_LABELS = {OPEN: "Open", PAID: "Paid", PARTIALLY_REFUNDED: "Partially refunded", REFUNDED: "Refunded",
                 CANCELED: "Canceled"}
PAGE_SIZE = 25
MAX_QUERY = 255  # longer than any id, reference or email address: cut, never an error
TIMELINE_PAGE = 500  # events per timeline page; an order rarely has more than a few dozen


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
BUILT_PAGES = {"Overview": "/dashboard", "Orders": "/dashboard/orders"}


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
class Entry:
    """One line of the timeline: what happened, when, by whom, with its details."""
    sequence: int
    at: str  # RFC 3339, for <time datetime>
    shown_at: str  # "2026-12-04 20:09:21 UTC"
    title: str
    details: list[str] = field(default_factory=list)
    actor: str = ""
    kind: str = "info"  # info | success | failure: how the line is marked (with words, not colour alone)


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


async def order_story(rt: Runtime, who: Viewer, order_id: str, *, after: int = 0, locale: str = "en") -> Story:
    """The order's lines, amounts, buyer and timeline; 404 (order_not_found) for an unknown id and for
    another merchant's order alike."""
    require(who, "orders:read")
    order = await orders.get_order(rt, who.merchant.id, order_id)
    events, more = await orders.list_order_events(rt, who.merchant.id, order.id, max(0, after), TIMELINE_PAGE)
    labels = _field_labels(events)
    timeline = [describe(event.sequence or 0, event.type, event.created_at, event.actor_type, event.actor_id,
                         _object(event.data), locale) for event in events]
    return Story(order=order, line_items=json.loads(order.line_items), buyer=buyer_details(order, locale),
                 fields=field_values(order, labels), timeline=timeline,
                 more_after=(events[-1].sequence or 0) if more and events else None)


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
    elif kind.startswith("payment."):
        how = f"{amount(data.get('amount'), data.get('currency'))} by {_card(data)}"
        via = f"via {data.get('channel')}" if data.get("channel") else ""
        if kind == "payment.succeeded":
            title, mark = "Payment succeeded", "success"
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

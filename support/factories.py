"""Plain async factories over Flint's own services (never mocks)."""
from __future__ import annotations

import itertools

from flint.actors import Actor
from flint.checkout import service as checkout
from flint.merchants import service as merchants
from flint.orders.models import LineItem, NewOrder
from flint.orders.service import create_order
from flint.collect import service as collect
from flint.cards import parse_card
from flint.runtime import Runtime

_counter = itertools.count(1)

SUCCESS_CARD = "4242424242424242"


async def make_merchant(rt: Runtime, *, origins: list[str] | None = None):
    """Returns (merchant, secret_key)."""
    n = next(_counter)
    return await merchants.create_merchant(
        rt, name=f"Shop {n}", email=f"owner{n}-{id(rt)}@shop.example", password="correct horse battery",
        origins=origins or [])


def new_order(amount: int = 2500, currency: str = "usd") -> NewOrder:
    return NewOrder(currency=currency, line_items=[LineItem("Thing", 1, amount)])


async def make_order(rt: Runtime, merchant_id: str, amount: int = 2500, currency: str = "usd"):
    return await create_order(rt, merchant_id, new_order(amount, currency), Actor("merchant", merchant_id))


async def make_session(rt: Runtime, merchant_id: str, *, amount: int = 2500, currency: str = "usd",
                       order_id: str | None = None, mode: str = "embedded", expires_in: int = 3600,
                       recovery: bool = False, abandon_after: int = 900):
    new = checkout.NewSession(
        mode=mode, success_url="https://shop.example/thanks",
        order_id=order_id, inline_order=None if order_id else new_order(amount, currency), expires_in=expires_in,
        recovery_enabled=recovery, abandon_after=abandon_after)
    return await checkout.create_session(rt, merchant_id, new, Actor("merchant", merchant_id))


def card(number: str = SUCCESS_CARD, cvc: str = "123"):
    return parse_card(number, 12, 2034, cvc)


async def pay_session(rt: Runtime, session, number: str = SUCCESS_CARD):
    attempt = collect.Attempt(merchant_id=session.merchant_id, order_id=session.order_id,
                               channel=session.mode, checkout_session_id=session.id)
    return await collect.confirm_payment(rt, attempt, card(number), Actor("buyer", session.id))

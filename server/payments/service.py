"""Payments as the merchant reads them. Payments are made by the one confirm path (flint.collect),
never by the merchant API; the order guard's shared moves are in guard.py."""
from __future__ import annotations

from flint.errors import not_found
from flint.payments import store
from flint.payments.models import Payment
from flint.runtime import Runtime


async def get_payment(rt: Runtime, merchant_id: str, payment_id: str) -> Payment:
    async with rt.db.read() as conn:
        payment = await store.select_payment(conn, merchant_id, payment_id)
    if payment is None:
        raise not_found("payment", payment_id)
    return payment


async def list_payments(rt: Runtime, merchant_id: str, order_id: str | None, limit: int, starting_after: str | None):
    async with rt.db.read() as conn:
        return await store.select_payments_page(conn, merchant_id, order_id, limit, starting_after)

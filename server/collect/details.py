"""What a checkout asks the buyer for, and checking what the buyer gave (docs/api.md 14), for every
channel: the session's or payment link's `collect` and `custom_fields`, plus the `checkout_fields` of the
apps the merchant installed (as the merchant consented to them, never what the app declares since).

Checked before any attempt, together with the card, so every bad field is reported at once and a refused
form reaches neither a hook nor the processor."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flint.apps import store as app_store
from flint.buyers import service as buyers
from flint.buyers.models import AppFieldSet, Collect, Collected, FieldErrors, FieldProblem, FieldSpec
from flint.checkout.models import CheckoutSession
from flint.db import Conn
from flint.errors import FlintError, not_found
from flint.links.models import PaymentLink
from flint.oauth import store as installation_store
from flint.orders import store as order_store
from flint.orders.models import Order
from flint.runtime import Runtime


@dataclass(frozen=True)
class CheckoutForm:
    """Every field one checkout shows, by who asked for it."""
    collect: Collect
    custom: tuple[FieldSpec, ...]
    apps: tuple[AppFieldSet, ...]
    prefill_email: str | None = None

    def render(self, locale: str, values: dict[str, str], errors: dict[str, str]):
        """The tree a page renders (flint.buyers.service.form_fields)."""
        return buyers.form_fields(self.collect, self.custom, list(self.apps), locale,
                                  {"customer.email": self.prefill_email or "", **values}, errors)


async def app_field_sets(conn: Conn, merchant_id: str) -> tuple[AppFieldSet, ...]:
    """The installed apps' fields, as their merchant consented to them (a field an app added since
    waits for approval, docs/api.md 12), oldest installation first."""
    installations = [i for i in await installation_store.select_active_installations(conn, merchant_id)
                     if i.consent.checkout_fields]
    if not installations:
        return ()
    apps = await app_store.select_apps_by_ids(conn, sorted({i.app_id for i in installations}))
    return tuple(AppFieldSet(app_id=i.app_id, app_name=apps[i.app_id].name,
                             fields=buyers.parse_field_specs(list(i.consent.checkout_fields), limit=3,
                                                             param="checkout_fields"))
                 for i in installations if i.app_id in apps)


async def checkout_form(conn: Conn, order: Order, channel: CheckoutSession | PaymentLink) -> CheckoutForm:
    """``customer_email`` given at order creation prefills Email (docs/api.md 14)."""
    return CheckoutForm(collect=channel.collect_rules, custom=channel.custom_field_specs,
                        apps=await app_field_sets(conn, order.merchant_id), prefill_email=order.customer_email)


async def load_form(rt: Runtime, channel: CheckoutSession | PaymentLink, order: Order | None = None) -> CheckoutForm:
    async with rt.db.read() as conn:
        if order is None:
            order = await order_store.select_order(conn, channel.merchant_id, channel.order_id)
            if order is None:
                raise not_found("order", channel.order_id)
        return await checkout_form(conn, order, channel)


def check(form: CheckoutForm, submitted: dict, card_problems: Sequence[FlintError] = ()) -> Collected:
    """The buyer's details, or one 400 naming every bad field, the card's among them.

    Only card problems: the first card problem's own code (invalid_card_number, ...; what integrations
    branched on before fields existed) with every one in ``errors``. Any field problem: ``invalid_field``."""
    field_problems: list[FieldProblem] = []
    collected = None
    try:
        collected = buyers.validate(form.collect, form.custom, list(form.apps), submitted,
                                    prefill_email=form.prefill_email)
    except FieldErrors as refused:
        field_problems = list(refused.problems)
    card = [FieldProblem(p.param or "card", p.code, p.detail) for p in card_problems]
    if not field_problems:
        if card_problems:
            first = card_problems[0]
            raise FlintError(400, first.code, first.detail, param=first.param,
                             extra={"errors": [_problem(p) for p in card]})
        assert collected is not None
        return collected
    raise FieldErrors(card + field_problems)


def _problem(p: FieldProblem) -> dict:
    return {"param": p.param, "code": p.code, "message": p.message}

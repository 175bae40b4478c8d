"""A table of bad requests against a live ``flint serve``.

Every row is one request that must be refused: the exact 4xx status, an RFC 9457
``application/problem+json`` body with a stable ``code`` (and ``param`` when one field is at
fault), no stack trace or SQL, and a database that is byte-for-byte what it was before
(every table, ``idempotency_keys`` included: no row here sends a storable Idempotency-Key, so
nothing may be written there either).

Rows marked with ``twin`` name another merchant's object; the same request is then repeated
with a fresh unknown id of the same shape, and the two answers must be indistinguishable
apart from the id (docs/api.md 1: "Another merchant's object: 404, never reveal it exists").

Paths, header values and strings inside JSON bodies may hold ``{name}`` placeholders, filled
from the ``world`` fixture (ids and credentials seeded once per module through the API).
"""
from __future__ import annotations

import asyncio
import difflib
import re
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from flint.ids import new_id
from flint.runtime import Runtime
from flint.security import CLIENT_TOKEN_SALT, Signer

from support import TEST_SECRET
from support.server import LiveServer
from support.factories import make_merchant

PROBLEM_JSON = "application/problem+json"
CODE_SHAPE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Things that must never reach a client: tracebacks, source paths, SQL, driver names.
LEAKS = re.compile(
    r"traceback|File \"|\.py\b|sqlite|aiosqlite|asyncpg|psycopg|\bSELECT\b|\bINSERT INTO\b|\bUPDATE\b.*\bSET\b"
    r"|\bDELETE FROM\b|IntegrityError|OperationalError|Exception\b|/work/|site-packages",
    re.IGNORECASE,
)
MIB = 1024 * 1024
NOTHING = object()
SUCCESS_CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str
    param: str | None = None
    json: Any = NOTHING                 # a JSON body (placeholders filled in strings)
    content: bytes | None = None        # or raw bytes, sent as they are
    content_type: str | None = None     # Content-Type for raw bytes
    chunked: bool = False               # send ``content`` with no Content-Length (chunked)
    auth: str | None = "key_a"          # world credential for "Authorization: Bearer ...", None = none
    headers: dict[str, str] = field(default_factory=dict)
    twin: str | None = None             # world name of another merchant's id to compare with an unknown one


def order_body(**item_overrides: Any) -> dict[str, Any]:
    """A valid order body, with line_items[0] fields overridden (NOTHING drops a field)."""
    item: dict[str, Any] = {"name": "Mug", "quantity": 1, "unit_amount": 1200}
    for name, value in item_overrides.items():
        if value is NOTHING:
            item.pop(name)
        else:
            item[name] = value
    return {"currency": "usd", "line_items": [item]}


def with_fields(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out = dict(body)
    for name, value in fields.items():
        if value is NOTHING:
            out.pop(name)
        else:
            out[name] = value
    return out


def session_body(**fields: Any) -> dict[str, Any]:
    base = {"order": "{order_open}", "mode": "embedded", "success_url": "https://shop.example/thanks"}
    return with_fields(base, **fields)


def card_body(**card: Any) -> dict[str, Any]:
    return {"card": with_fields(SUCCESS_CARD, **card)}


O = "/v1/orders"
S = "/v1/checkout/sessions"
CONFIRM = "/v1/checkout/sessions/{session_a}/confirm"
R = "/v1/refunds"

CASES: list[Case] = [
    # ---- the body is not a JSON object ------------------------------------------------
    Case("malformed_json", "POST", O, 400, "invalid_json", content=b'{"currency": "usd", "line_items": [',
         content_type="application/json"),
    Case("trailing_garbage_json", "POST", O, 400, "invalid_json", content=b'{"currency": "usd"} x',
         content_type="application/json"),
    Case("body_is_array", "POST", O, 400, "invalid_request_body", json=[order_body()]),
    Case("body_is_string", "POST", O, 400, "invalid_request_body", json="an order please"),
    Case("body_is_number", "POST", O, 400, "invalid_request_body", json=42),
    Case("body_is_null", "POST", O, 400, "invalid_request_body", content=b"null", content_type="application/json"),
    Case("content_type_text_plain", "POST", O, 415, "unsupported_media_type",
         content=b'{"currency": "usd", "line_items": [{"name": "Mug", "quantity": 1, "unit_amount": 1200}]}',
         content_type="text/plain"),
    Case("content_type_form", "POST", O, 415, "unsupported_media_type",
         content=b"currency=usd&line_items[0][name]=Mug", content_type="application/x-www-form-urlencoded"),
    Case("oversize_body", "POST", O, 413, "request_too_large",
         content=b'{"currency": "usd", "reference": "' + b"x" * (MIB + 10) + b'"}', content_type="application/json"),
    Case("oversize_body_chunked", "POST", O, 413, "request_too_large", chunked=True,
         content=b'{"currency": "usd", "reference": "' + b"x" * (MIB + 10) + b'"}', content_type="application/json"),
    Case("oversize_body_with_idempotency_key", "POST", O, 413, "request_too_large",
         content=b'{"currency": "usd", "reference": "' + b"x" * (MIB + 10) + b'"}', content_type="application/json",
         headers={"Idempotency-Key": "oversize-1"}),
    # ---- wrong types --------------------------------------------------------------------
    Case("currency_int", "POST", O, 400, "parameter_invalid_type", "currency",
         json=with_fields(order_body(), currency=840)),
    Case("currency_null", "POST", O, 400, "parameter_invalid_type", "currency",
         json=with_fields(order_body(), currency=None)),
    Case("line_items_null", "POST", O, 400, "parameter_invalid_type", "line_items",
         json=with_fields(order_body(), line_items=None)),
    Case("line_items_object", "POST", O, 400, "parameter_invalid_type", "line_items",
         json=with_fields(order_body(), line_items={"name": "Mug", "quantity": 1, "unit_amount": 1})),
    Case("quantity_string", "POST", O, 400, "parameter_invalid_type", "line_items[0].quantity",
         json=order_body(quantity="1")),
    Case("quantity_bool", "POST", O, 400, "parameter_invalid_type", "line_items[0].quantity",
         json=order_body(quantity=True)),
    Case("unit_amount_float", "POST", O, 400, "parameter_invalid_type", "line_items[0].unit_amount",
         json=order_body(unit_amount=12.5)),
    Case("unit_amount_integral_float", "POST", O, 400, "parameter_invalid_type", "line_items[0].unit_amount",
         json=order_body(unit_amount=1200.0)),
    Case("unit_amount_null", "POST", O, 400, "parameter_invalid_type", "line_items[0].unit_amount",
         json=order_body(unit_amount=None)),
    Case("name_int", "POST", O, 400, "parameter_invalid_type", "line_items[0].name", json=order_body(name=5)),
    Case("metadata_value_int", "POST", O, 400, "parameter_invalid_type", "metadata.size",
         json=with_fields(order_body(), metadata={"size": 3})),
    # ---- unknown and missing fields -----------------------------------------------------
    Case("unknown_top_level_field", "POST", O, 400, "parameter_unknown", "colour",
         json=with_fields(order_body(), colour="red")),
    Case("unknown_line_item_field", "POST", O, 400, "parameter_unknown", "line_items[0].sku",
         json=order_body(sku="MUG-1")),
    Case("missing_currency", "POST", O, 400, "parameter_missing", "currency",
         json=with_fields(order_body(), currency=NOTHING)),
    Case("missing_line_items", "POST", O, 400, "parameter_missing", "line_items",
         json=with_fields(order_body(), line_items=NOTHING)),
    Case("missing_line_item_name", "POST", O, 400, "parameter_missing", "line_items[0].name",
         json=order_body(name=NOTHING)),
    Case("missing_unit_amount", "POST", O, 400, "parameter_missing", "line_items[0].unit_amount",
         json=order_body(unit_amount=NOTHING)),
    Case("empty_object", "POST", O, 400, "parameter_missing", "currency", json={}),
    Case("empty_body", "POST", O, 400, "parameter_missing", "currency", content=b"",
         content_type="application/json"),
    # ---- amounts and currencies ---------------------------------------------------------
    Case("negative_unit_amount", "POST", O, 400, "parameter_invalid", "line_items[0].unit_amount",
         json=order_body(unit_amount=-1)),
    Case("zero_total", "POST", O, 400, "amount_too_small", "line_items", json=order_body(unit_amount=0)),
    Case("unit_amount_over_limit", "POST", O, 400, "parameter_invalid", "line_items[0].unit_amount",
         json=order_body(unit_amount=100_000_000)),
    Case("unit_amount_over_2_63", "POST", O, 400, "parameter_invalid", "line_items[0].unit_amount",
         json=order_body(unit_amount=2**63 + 7)),
    Case("unit_amount_huge_negative", "POST", O, 400, "parameter_invalid", "line_items[0].unit_amount",
         json=order_body(unit_amount=-(2**64))),
    Case("line_total_over_limit", "POST", O, 400, "amount_too_large", "line_items[0]",
         json=order_body(quantity=10_000, unit_amount=99_999_999)),
    Case("order_total_over_limit", "POST", O, 400, "amount_too_large", "line_items",
         json={"currency": "usd", "line_items": [{"name": "A", "quantity": 1, "unit_amount": 60_000_000},
                                                 {"name": "B", "quantity": 1, "unit_amount": 60_000_000}]}),
    Case("quantity_zero", "POST", O, 400, "parameter_invalid", "line_items[0].quantity",
         json=order_body(quantity=0)),
    Case("quantity_negative", "POST", O, 400, "parameter_invalid", "line_items[0].quantity",
         json=order_body(quantity=-3)),
    Case("currency_unknown", "POST", O, 400, "currency_invalid", "currency",
         json=with_fields(order_body(), currency="abc")),
    Case("currency_uppercase", "POST", O, 400, "parameter_invalid", "currency",
         json=with_fields(order_body(), currency="USD")),
    Case("currency_test_code_xts", "POST", O, 400, "currency_invalid", "currency",
         json=with_fields(order_body(), currency="xts")),
    # ---- empty-ish and over-long fields -------------------------------------------------
    Case("line_items_empty", "POST", O, 400, "parameter_invalid", "line_items",
         json=with_fields(order_body(), line_items=[])),
    Case("line_item_name_empty", "POST", O, 400, "parameter_invalid", "line_items[0].name",
         json=order_body(name="")),
    Case("line_item_name_too_long", "POST", O, 400, "parameter_invalid", "line_items[0].name",
         json=order_body(name="n" * 251)),
    Case("currency_empty", "POST", O, 400, "parameter_invalid", "currency",
         json=with_fields(order_body(), currency="")),
    Case("reference_too_long", "POST", O, 400, "parameter_invalid", "reference",
         json=with_fields(order_body(), reference="r" * 201)),
    Case("customer_email_invalid", "POST", O, 400, "parameter_invalid", "customer_email",
         json=with_fields(order_body(), customer_email="not an email")),
    Case("metadata_key_too_long", "POST", O, 400, "metadata_invalid", "metadata." + "k" * 41,
         json=with_fields(order_body(), metadata={"k" * 41: "v"})),
    Case("too_many_line_items", "POST", O, 400, "parameter_invalid", "line_items",
         json={"currency": "usd", "line_items": [{"name": "x", "quantity": 1, "unit_amount": 1}] * 101}),
    # ---- Idempotency-Key header ---------------------------------------------------------
    Case("idempotency_key_300_chars", "POST", O, 400, "idempotency_key_invalid", "Idempotency-Key",
         json=order_body(), headers={"Idempotency-Key": "k" * 300}),
    Case("idempotency_key_empty_quoted", "POST", O, 400, "idempotency_key_invalid", "Idempotency-Key",
         json=order_body(), headers={"Idempotency-Key": '""'}),
    Case("idempotency_key_quoted_blank", "POST", O, 400, "idempotency_key_invalid", "Idempotency-Key",
         json=order_body(), headers={"Idempotency-Key": '"\t"'}),
    Case("idempotency_key_with_tab", "POST", O, 400, "idempotency_key_invalid", "Idempotency-Key",
         json=order_body(), headers={"Idempotency-Key": "abc\tdef"}),
    # ---- checkout sessions --------------------------------------------------------------
    Case("session_expires_in_59", "POST", S, 400, "parameter_invalid", "expires_in", json=session_body(expires_in=59)),
    Case("session_expires_in_86401", "POST", S, 400, "parameter_invalid", "expires_in",
         json=session_body(expires_in=86401)),
    Case("session_expires_in_string", "POST", S, 400, "parameter_invalid_type", "expires_in",
         json=session_body(expires_in="3600")),
    Case("session_mode_popup", "POST", S, 400, "parameter_invalid", "mode", json=session_body(mode="popup")),
    Case("session_missing_mode", "POST", S, 400, "parameter_missing", "mode", json=session_body(mode=NOTHING)),
    Case("session_success_url_ftp", "POST", S, 400, "parameter_invalid", "success_url",
         json=session_body(success_url="ftp://x")),
    Case("session_cancel_url_javascript", "POST", S, 400, "parameter_invalid", "cancel_url",
         json=session_body(cancel_url="javascript:alert(1)")),
    Case("session_abandon_after_too_small", "POST", S, 400, "parameter_invalid", "recovery.abandon_after",
         json=session_body(recovery={"enabled": True, "abandon_after": 1})),
    Case("session_unknown_field", "POST", S, 400, "parameter_unknown", "colour", json=session_body(colour="red")),
    Case("session_inline_order_unknown_nested_field", "POST", S, 400, "parameter_unknown",
         "order.line_items[0].sku", json=session_body(order=order_body(sku="MUG-1"))),
    Case("session_order_int", "POST", S, 400, "parameter_invalid_type", "order", json=session_body(order=42)),
    Case("session_inline_order_bad_currency", "POST", S, 400, "currency_invalid", "order.currency",
         json=session_body(order=with_fields(order_body(), currency="abc"))),
    Case("session_for_canceled_order", "POST", S, 409, "order_not_open", json=session_body(order="{order_canceled}")),
    Case("session_for_paid_order", "POST", S, 409, "order_not_open", json=session_body(order="{order_paid}")),
    Case("session_for_other_merchants_order", "POST", S, 404, "order_not_found", "order",
         json=session_body(order="{order_b}"), twin="order_b"),
    Case("expire_expired_session", "POST", "/v1/checkout/sessions/{session_canceled}/expire", 409, "session_not_open"),
    # ---- lists --------------------------------------------------------------------------
    Case("list_limit_0", "GET", O + "?limit=0", 400, "parameter_invalid", "limit"),
    Case("list_limit_101", "GET", O + "?limit=101", 400, "parameter_invalid", "limit"),
    Case("list_limit_abc", "GET", O + "?limit=abc", 400, "parameter_invalid_type", "limit"),
    Case("list_limit_twice", "GET", O + "?limit=1&limit=2", 400, "parameter_invalid", "limit"),
    Case("list_unknown_query_parameter", "GET", O + "?colour=red", 400, "parameter_unknown", "colour"),
    Case("list_starting_after_unknown", "GET", O + "?starting_after={unknown_order}", 400,
         "starting_after_invalid", "starting_after"),
    Case("list_starting_after_other_merchants", "GET", O + "?starting_after={order_b}", 400,
         "starting_after_invalid", "starting_after", twin="order_b"),
    Case("payments_limit_negative", "GET", "/v1/payments?limit=-1", 400, "parameter_invalid", "limit"),
    Case("refunds_limit_101", "GET", "/v1/refunds?limit=101", 400, "parameter_invalid", "limit"),
    Case("sessions_limit_abc", "GET", S + "?limit=abc", 400, "parameter_invalid_type", "limit"),
    Case("events_unknown_type", "GET", "/v1/events?type=order.exploded", 400, "parameter_invalid", "type"),
    Case("order_events_after_negative", "GET", "/v1/orders/{order_open}/events?after=-1", 400,
         "parameter_invalid", "after"),
    # ---- authentication -----------------------------------------------------------------
    Case("auth_missing", "GET", O, 401, "authentication_required", auth=None),
    Case("auth_missing_on_post", "POST", O, 401, "authentication_required", auth=None, json=order_body()),
    Case("auth_basic_scheme", "GET", O, 401, "authentication_invalid", auth=None,
         headers={"Authorization": "Basic c2tfdGVzdF94eHg6"}),
    Case("auth_bearer_empty", "GET", O, 401, "authentication_invalid", auth=None, headers={"Authorization": "Bearer"}),
    Case("auth_unknown_key", "GET", O, 401, "api_key_invalid", auth="unknown_key"),
    Case("auth_revoked_key", "GET", O, 401, "api_key_invalid", auth="revoked_key"),
    Case("auth_revoked_key_post", "POST", O, 401, "api_key_invalid", auth="revoked_key", json=order_body(),
         headers={"Idempotency-Key": "revoked-key-attempt"}),
    Case("auth_client_token_on_merchant_endpoint", "GET", O, 401, "api_key_invalid", auth="token_a"),
    Case("auth_client_token_creating_order", "POST", O, 401, "api_key_invalid", auth="token_a", json=order_body()),
    Case("auth_secret_key_on_confirm", "POST", CONFIRM, 401, "client_token_invalid", auth="key_a", json=card_body()),
    Case("auth_expired_client_token", "POST", CONFIRM, 401, "client_token_expired", auth="expired_token_a",
         json=card_body()),
    Case("auth_tampered_client_token", "POST", CONFIRM, 401, "client_token_invalid", auth="tampered_token_a",
         json=card_body()),
    Case("auth_client_token_for_another_session", "POST", CONFIRM, 401, "client_token_invalid", auth="token_a2",
         json=card_body()),
    Case("auth_other_merchants_client_token", "POST", CONFIRM, 401, "client_token_invalid", auth="token_b",
         json=card_body()),
    # ---- the buyer's card ---------------------------------------------------------------
    Case("card_luhn_fail", "POST", CONFIRM, 400, "invalid_card_number", "card.number", auth="token_a",
         json=card_body(number="4242 4242 4242 4241")),
    Case("card_number_letters", "POST", CONFIRM, 400, "invalid_card_number", "card.number", auth="token_a",
         json=card_body(number="4242-4242-abcd-4242")),
    Case("card_number_int", "POST", CONFIRM, 400, "parameter_invalid_type", "card.number", auth="token_a",
         json=card_body(number=4242424242424242)),
    Case("card_expiry_past_year", "POST", CONFIRM, 400, "invalid_expiry_year", "card.exp_year", auth="token_a",
         json=card_body(exp_year=2020)),
    Case("card_expiry_month_13", "POST", CONFIRM, 400, "invalid_expiry_month", "card.exp_month", auth="token_a",
         json=card_body(exp_month=13)),
    Case("card_cvc_too_short", "POST", CONFIRM, 400, "invalid_cvc", "card.cvc", auth="token_a",
         json=card_body(cvc="12")),
    Case("card_cvc_letters", "POST", CONFIRM, 400, "invalid_cvc", "card.cvc", auth="token_a",
         json=card_body(cvc="1a3")),
    Case("card_missing", "POST", CONFIRM, 400, "parameter_missing", "card", auth="token_a", json={}),
    Case("card_unknown_field", "POST", CONFIRM, 400, "parameter_unknown", "card.name", auth="token_a",
         json=card_body(name="A Buyer")),
    Case("confirm_paid_session", "POST", "/v1/checkout/sessions/{session_paid}/confirm", 409, "order_already_paid",
         auth="token_paid", json=card_body()),
    Case("challenge_unknown_payment", "POST", "/v1/checkout/sessions/{session_a}/challenge", 404,
         "payment_not_found", "payment", auth="token_a", json={"payment": "{unknown_payment}", "result": "approve"}),
    Case("challenge_other_merchants_payment", "POST", "/v1/checkout/sessions/{session_a}/challenge", 404,
         "payment_not_found", "payment", auth="token_a", json={"payment": "{payment_b}", "result": "approve"},
         twin="payment_b"),
    Case("challenge_bad_result", "POST", "/v1/checkout/sessions/{session_a}/challenge", 400,
         "parameter_invalid", "result", auth="token_a", json={"payment": "{payment_a}", "result": "maybe"}),
    # ---- another merchant's objects: 404, indistinguishable from unknown ones ------------
    Case("other_merchants_order", "GET", "/v1/orders/{order_b}", 404, "order_not_found", twin="order_b"),
    Case("other_merchants_order_events", "GET", "/v1/orders/{order_b}/events", 404, "order_not_found",
         twin="order_b"),
    Case("other_merchants_order_cancel", "POST", "/v1/orders/{order_b}/cancel", 404, "order_not_found",
         twin="order_b"),
    Case("other_merchants_session", "GET", "/v1/checkout/sessions/{session_b}", 404, "checkout_session_not_found",
         twin="session_b"),
    Case("other_merchants_session_expire", "POST", "/v1/checkout/sessions/{session_b}/expire", 404,
         "checkout_session_not_found", twin="session_b"),
    Case("other_merchants_payment", "GET", "/v1/payments/{payment_b}", 404, "payment_not_found", twin="payment_b"),
    Case("other_merchants_refund", "GET", "/v1/refunds/{refund_b}", 404, "refund_not_found", twin="refund_b"),
    Case("other_merchants_event", "GET", "/v1/events/{event_b}", 404, "event_not_found", twin="event_b"),
    Case("other_merchants_api_key_revoke", "DELETE", "/v1/merchant/keys/{key_b_id}", 404, "api_key_not_found",
         twin="key_b_id"),
    Case("refund_other_merchants_payment", "POST", R, 404, "payment_not_found", "payment",
         json={"payment": "{payment_b}"}, twin="payment_b"),
    Case("refund_other_merchants_order", "POST", R, 404, "order_not_found", "order",
         json={"order": "{order_paid_b}"}, twin="order_paid_b"),
    # ---- routes and methods -------------------------------------------------------------
    Case("unknown_route", "GET", "/v1/nope", 404, "route_not_found"),
    Case("unknown_route_unauthenticated", "GET", "/v1/orders/{order_open}/nope", 404, "route_not_found", auth=None),
    Case("wrong_method_delete_orders", "DELETE", O, 405, "method_not_allowed"),
    Case("wrong_method_put_order", "PUT", "/v1/orders/{order_open}", 405, "method_not_allowed", json=order_body()),
    # ---- state conflicts and refunds ----------------------------------------------------
    Case("cancel_canceled_order", "POST", "/v1/orders/{order_canceled}/cancel", 409, "order_not_open"),
    Case("cancel_paid_order", "POST", "/v1/orders/{order_paid}/cancel", 409, "order_not_open"),
    Case("cancel_with_unknown_body_field", "POST", "/v1/orders/{order_open}/cancel", 400, "parameter_unknown",
         "reason", json={"reason": "changed my mind"}),
    Case("refund_unpaid_order", "POST", R, 409, "order_not_paid", json={"order": "{order_open}"}),
    Case("refund_over_paid_amount", "POST", R, 400, "refund_exceeds_refundable", "amount",
         json={"payment": "{payment_a}", "amount": 5000}),
    Case("refund_zero_amount", "POST", R, 400, "parameter_invalid", "amount",
         json={"payment": "{payment_a}", "amount": 0}),
    Case("refund_amount_string", "POST", R, 400, "parameter_invalid_type", "amount",
         json={"payment": "{payment_a}", "amount": "100"}),
    Case("refund_unknown_reason", "POST", R, 400, "parameter_invalid", "reason",
         json={"payment": "{payment_a}", "reason": "because"}),
    Case("refund_both_targets", "POST", R, 400, "refund_target_invalid", "payment",
         json={"payment": "{payment_a}", "order": "{order_paid}"}),
    Case("refund_no_target", "POST", R, 400, "refund_target_invalid", "payment", json={"amount": 100}),
    # ---- the merchant account -----------------------------------------------------------
    Case("revoke_revoked_key", "DELETE", "/v1/merchant/keys/{revoked_key_id}", 409, "api_key_revoked"),
    Case("revoke_last_live_key", "DELETE", "/v1/merchant/keys/{key_b_id}", 409, "last_api_key", auth="key_b"),
    Case("origin_with_path", "POST", "/v1/merchant", 400, "origin_invalid", "allowed_origins[0]",
         json={"allowed_origins": ["https://shop.example/checkout"]}),
    Case("origins_not_a_list", "POST", "/v1/merchant", 400, "parameter_invalid_type", "allowed_origins",
         json={"allowed_origins": "https://shop.example"}),
]

assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"


# --------------------------------------------------------------------------- seeding


async def _new_merchant(server: LiveServer) -> tuple[str, str]:
    rt = await Runtime.start(server.runtime_config())
    try:
        merchant, key = await make_merchant(rt)
        return merchant.id, key
    finally:
        await rt.stop()


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def _paid_session(client: httpx.Client, amount: int) -> tuple[dict[str, Any], dict[str, Any]]:
    session = _ok(client.post(S, json={
        "order": {"currency": "usd", "line_items": [{"name": "Lamp", "quantity": 1, "unit_amount": amount}]},
        "mode": "embedded", "success_url": "https://shop.example/thanks"}))
    payment = _ok(client.post(f"{S}/{session['id']}/confirm", json={"card": SUCCESS_CARD},
                              headers={"Authorization": f"Bearer {session['client_token']}"}))
    assert payment["status"] == "succeeded"
    return session, payment


def _tamper(token: str) -> str:
    """Change one character in the middle of the signature (all 6 bits of it count there)."""
    i = len(token) - 6
    return token[:i] + ("A" if token[i] != "A" else "Q") + token[i + 1:]


@pytest.fixture(scope="module")
def world(server: LiveServer) -> dict[str, str]:
    mer_a, key_a1 = asyncio.run(_new_merchant(server))
    mer_b, key_b = asyncio.run(_new_merchant(server))
    w: dict[str, str] = {"mer_a": mer_a, "mer_b": mer_b, "key_b": key_b}

    with server.client(key_a1) as a1:
        # Roll A's key through the API: make a second key, then revoke the first with it.
        created = _ok(a1.post("/v1/merchant/keys"))
        w["key_a"] = created["secret_key"]
        first = [k for k in _ok(a1.get("/v1/merchant/keys"))["data"] if k["id"] != created["id"]]
        assert len(first) == 1
        w["revoked_key_id"] = first[0]["id"]
    with server.client(w["key_a"]) as a:
        revoked = _ok(a.delete(f"/v1/merchant/keys/{w['revoked_key_id']}"))
        assert revoked["revoked_at"] is not None
        w["revoked_key"] = key_a1

        open_order = _ok(a.post(O, json=order_body()))
        w["order_open"] = open_order["id"]
        s1 = _ok(a.post(S, json={"order": open_order["id"], "mode": "embedded",
                                 "success_url": "https://shop.example/thanks"}))
        s2 = _ok(a.post(S, json={"order": open_order["id"], "mode": "hosted",
                                 "success_url": "https://shop.example/thanks"}))
        w.update(session_a=s1["id"], token_a=s1["client_token"], session_a2=s2["id"], token_a2=s2["client_token"])

        canceled = _ok(a.post(O, json=order_body()))
        sc = _ok(a.post(S, json={"order": canceled["id"], "mode": "embedded",
                                 "success_url": "https://shop.example/thanks"}))
        assert _ok(a.post(f"{O}/{canceled['id']}/cancel"))["status"] == "canceled"
        assert _ok(a.get(f"{S}/{sc['id']}"))["status"] == "expired"
        w.update(order_canceled=canceled["id"], session_canceled=sc["id"])

        paid_session, payment = _paid_session(a, 2500)
        w.update(order_paid=paid_session["order_id"], session_paid=paid_session["id"],
                 token_paid=paid_session["client_token"], payment_a=payment["id"])
        refund = _ok(a.post(R, json={"payment": payment["id"], "amount": 500}))
        assert refund["status"] == "succeeded"

    with server.client(key_b) as b:
        w["key_b_id"] = _ok(b.get("/v1/merchant/keys"))["data"][0]["id"]
        order_b = _ok(b.post(O, json=order_body()))
        session_b = _ok(b.post(S, json={"order": order_b["id"], "mode": "embedded",
                                        "success_url": "https://shop.example/thanks"}))
        w.update(order_b=order_b["id"], session_b=session_b["id"], token_b=session_b["client_token"])
        paid_b, payment_b = _paid_session(b, 1800)
        w.update(order_paid_b=paid_b["order_id"], payment_b=payment_b["id"])
        w["refund_b"] = _ok(b.post(R, json={"payment": payment_b["id"], "amount": 100}))["id"]
        w["event_b"] = _ok(b.get("/v1/events?limit=1"))["data"][0]["id"]

    signer = Signer((TEST_SECRET,))
    w["expired_token_a"] = signer.dumps(CLIENT_TOKEN_SALT, {"s": w["session_a"], "m": mer_a,
                                                             "e": int(time.time()) - 120})
    w["tampered_token_a"] = _tamper(w["token_a"])
    assert w["tampered_token_a"] != w["token_a"]
    w["unknown_key"] = "sk_test_" + "Z" * 32
    w["unknown_order"] = new_id("ord")
    w["unknown_payment"] = new_id("pay")
    return w


# --------------------------------------------------------------------------- helpers

_PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)\}")


def fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: names[m.group(1)], value)
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {fill(k, names): fill(v, names) for k, v in value.items()}
    return value


def db_path(server: LiveServer) -> Path:
    assert server.db_url.startswith("sqlite:///")
    return Path(server.db_url[len("sqlite:///"):])


def dump_db(server: LiveServer) -> list[str]:
    """Every table, schema and rows, as SQL text (idempotency_keys included)."""
    with closing(sqlite3.connect(db_path(server), timeout=10)) as conn:
        return list(conn.iterdump())


def send(client: httpx.Client, case: Case, names: dict[str, str], request_id: str) -> httpx.Response:
    headers = {"X-Request-Id": request_id}
    if case.auth is not None:
        headers["Authorization"] = f"Bearer {names[case.auth]}"
    headers.update({k: fill(v, names) for k, v in case.headers.items()})
    kwargs: dict[str, Any] = {}
    if case.json is not NOTHING:
        kwargs["json"] = fill(case.json, names)
    elif case.content is not None:
        if case.content_type:
            headers["Content-Type"] = case.content_type
        if case.chunked:
            data = case.content
            kwargs["content"] = (data[i:i + 65536] for i in range(0, len(data), 65536))
        else:
            kwargs["content"] = case.content
    return client.request(case.method, fill(case.path, names), headers=headers, **kwargs)


def assert_problem(response: httpx.Response, case: Case) -> dict[str, Any]:
    where = f"{case.id}: {response.status_code} {response.text[:500]}"
    assert response.status_code == case.status, where
    assert response.headers.get("content-type", "").split(";")[0].strip() == PROBLEM_JSON, where
    assert not LEAKS.search(response.text), f"{case.id}: body leaks internals: {response.text[:500]}"
    body = response.json()
    assert isinstance(body, dict), where
    assert isinstance(body.get("type"), str) and body["type"], where
    # RFC 9457: a URI reference; an absolute URI here (https:, tag:, about:blank, ...).
    assert re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", body["type"]), where
    assert isinstance(body.get("title"), str) and body["title"].strip(), where
    assert body.get("status") == response.status_code, where
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), where
    assert isinstance(body.get("code"), str) and CODE_SHAPE.match(body["code"]), where
    assert body["code"] == case.code, where
    assert body.get("param") == case.param, where
    if case.status == 405:
        assert response.headers.get("allow"), where
    return body


def diff(before: list[str], after: list[str]) -> str:
    return "\n".join(list(difflib.unified_diff(before, after, "before", "after", lineterm="", n=0))[:40])


# --------------------------------------------------------------------------- the test


def test_the_table_is_big_enough():
    assert len(CASES) >= 45
    assert len({(c.method, c.path, repr(c.json), c.content, c.chunked, c.auth, tuple(c.headers.items())) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request(server: LiveServer, world: dict[str, str], case: Case):
    request_id = "badreq-" + case.id.replace("_", "-")[:50]
    with server.client() as client:
        before = dump_db(server)
        response = send(client, case, world, request_id)
        after = dump_db(server)
        assert_problem(response, case)
        assert after == before, f"{case.id} changed the database:\n{diff(before, after)}"

        if case.twin is None:
            return
        other_id = world[case.twin]
        unknown_id = new_id(other_id.split("_")[0])
        assert len(unknown_id) == len(other_id) and unknown_id != other_id
        unknown = send(client, case, dict(world, **{case.twin: unknown_id}), request_id)
        after_unknown = dump_db(server)
        assert_problem(unknown, case)
        assert after_unknown == before, f"{case.id} (unknown id) changed the database:\n{diff(before, after_unknown)}"
        # Indistinguishable apart from the id: same status, same headers, same body bytes.
        assert response.text.replace(other_id, unknown_id) == unknown.text
        assert other_id not in unknown.text
        skip = {"date", "request-id"}
        assert {k: v for k, v in response.headers.items() if k not in skip} == \
               {k: v for k, v in unknown.headers.items() if k not in skip}


def test_luhn_failure_creates_no_payment(server: LiveServer, world: dict[str, str]):
    """Spelled out beyond the dump comparison: the rejected card left no payment row."""
    def payments_of_order() -> int:
        with closing(sqlite3.connect(db_path(server), timeout=10)) as conn:
            return conn.execute("SELECT count(*) FROM payments WHERE order_id = ?", (world["order_open"],)).fetchone()[0]

    assert payments_of_order() == 0
    with server.client(world["token_a"]) as buyer:
        response = buyer.post(f"/v1/checkout/sessions/{world['session_a']}/confirm",
                              json=card_body(number="4000 0000 0000 0001"))
    assert response.status_code == 400 and response.json()["code"] == "invalid_card_number", response.text
    assert payments_of_order() == 0
    # The server logged no unhandled error for any row of the table run so far.
    assert "unhandled error" not in server.logs()

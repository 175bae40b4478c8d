from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Discriminator, Field, Tag

from flint.api.schemas.buyers import CheckoutField, CollectSettings, CustomerInput, FieldValue
from flint.api.schemas.common import CreatedBy
from flint.api.schemas.orders import CreateOrderRequest
from flint.api.schemas.payments import Payment
from flint.checkout import service
from flint.http.errors import Problem
from flint.http.validation import UNION_TAG, Body

# The URL rules (flint.urls, docs/api.md 13) as far as a pattern states them: http(s), a DNS name (letters,
# digits, inner hyphens; internationalised letters too) or a bracketed IPv6 address, an optional port,
# then no whitespace, control or separator character. The service checks the rest (400 url_invalid).
_LETTER = r"A-Za-z0-9\u00c0-\u1fff\u3040-\ud7ff\uf900-\ufdcf\ufdf0-\uffef"
_LABEL = rf"[{_LETTER}](?:[{_LETTER}-]{{0,61}}[{_LETTER}])?"
_NO_SPACE = r"[^\s\x00-\x1f\x7f\u0080-\u009f\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]"
URL_PATTERN = (rf"^https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?"
               rf"(?:[/?#]{_NO_SPACE}*)?$")

class CreateCheckoutSessionRecovery(Body):
    enabled: bool
    abandon_after: int = Field(service.DEFAULT_ABANDON_AFTER, ge=5, le=86400,
                               description="Seconds of buyer inactivity before the session counts as abandoned.")
    email: bool = Field(False, description="Email the buyer the recovery link when the session drops off "
                                           "(docs/api.md 16): needs the buyer's email and mail configured.")


class CreateCheckoutSessionRequest(Body):
    # The JSON type picks the branch (a string is an order id, anything else inline fields), so a
    # bad inline order reports its own field (order.line_items[0].sku), not a failed "str" branch.
    order: Annotated[
        Annotated[str, Tag(UNION_TAG + "id")] | Annotated[CreateOrderRequest, Tag(UNION_TAG + "inline")],
        Discriminator(lambda value: UNION_TAG + ("id" if isinstance(value, str) else "inline")),
    ] = Field(description="An existing order id (ord_...) or the fields of a new order.")
    mode: Literal["embedded", "hosted"]
    success_url: str = Field(min_length=8, max_length=2048, pattern=URL_PATTERN,
                             examples=["https://shop.example/thanks?session={CHECKOUT_SESSION_ID}"],
                             description="Absolute http(s) URL with a host, no user information, no whitespace "
                                         "or control characters (400 url_invalid otherwise).")
    cancel_url: str | None = Field(None, min_length=8, max_length=2048, pattern=URL_PATTERN)
    expires_in: int = Field(service.DEFAULT_EXPIRES_IN, ge=service.MIN_EXPIRES_IN, le=service.MAX_EXPIRES_IN)
    recovery: CreateCheckoutSessionRecovery | None = None
    collect: CollectSettings | None = Field(None, description="Which built-in buyer fields to show (docs/api.md 14).")
    custom_fields: list[CheckoutField] | None = Field(None, max_length=5,
                                                      description="Fields of the merchant's own, at most 5.")
    capture: Literal["automatic", "manual"] = Field(
        "automatic", description="manual: the buyer's payment is only authorized; capture it with "
                                 "POST /v1/payments/{id}/capture or void it (docs/api.md 17).")

    def to_new_session(self) -> service.NewSession:
        recovery = self.recovery or CreateCheckoutSessionRecovery(enabled=False)
        return service.NewSession(
            mode=self.mode, success_url=self.success_url, cancel_url=self.cancel_url,
            order_id=self.order if isinstance(self.order, str) else None,
            inline_order=None if isinstance(self.order, str) else self.order.to_new_order(),
            expires_in=self.expires_in, recovery_enabled=recovery.enabled, abandon_after=recovery.abandon_after,
            recovery_email=recovery.email, capture=self.capture,
            collect=self.collect.model_dump() if self.collect else None,
            custom_fields=[f.model_dump(exclude_none=True) for f in self.custom_fields] if self.custom_fields else None,
        )


class CheckoutSessionRecovery(BaseModel):
    enabled: bool
    abandon_after: int
    email: bool = Field(description="Whether the recovery link is emailed to the buyer (docs/api.md 16).")
    payment_link_id: str | None = Field(description="The recovery link made once the buyer dropped off.")
    dropped_off_at: str | None = Field(description="When the buyer dropped off (null until they do).")
    drop_off_reason: Literal["left", "idle", "expired"] | None = Field(
        description="left: typed in the card form and left the page; idle: no activity for abandon_after "
                    "seconds; expired: the session expired unpaid.")


class CheckoutSessionFallback(BaseModel):
    reason: Literal["timeout", "frame_blocked", "frame_error", "requested"]
    used_at: str


class CheckoutSession(BaseModel):
    """A buyer's checkout of one order: its hosted URL, and for the embedded widget its client_token."""
    id: str
    object: Literal["checkout.session"]
    order_id: str
    mode: Literal["embedded", "hosted"]
    status: Literal["open", "complete", "expired"]
    url: str
    client_token: str | None = Field(description="For the embedded widget; null once the session is closed.")
    expires_at: str
    capture: Literal["automatic", "manual"] = Field(description="How its payment is captured (docs/api.md 17).")
    success_url: str
    cancel_url: str | None
    recovery: CheckoutSessionRecovery
    fallback: CheckoutSessionFallback | None = Field(
        description="Set once the embedded widget fell back to the hosted page.")
    collect: CollectSettings
    custom_fields: list[CheckoutField]
    created_by: CreatedBy | None = Field(description="Who created it: the merchant, an app (docs/api.md 12), "
                                                           "a staff member or Flint itself.")
    created_at: str


class CheckoutSessionList(BaseModel):
    object: Literal["list"]
    data: list[CheckoutSession]
    has_more: bool


class CardDetails(Body):
    # The documented shapes below are checked by payments.cards.parse_card (400 invalid_card_number,
    # invalid_expiry_month, invalid_expiry_year, invalid_cvc), which also checks what JSON Schema
    # cannot say: the Luhn digit, an expiry not in the past, and a CVC of 4 digits for Amex, else 3.
    number: str = Field(min_length=1, max_length=32, examples=["4242 4242 4242 4242"], json_schema_extra={
        "pattern": r"^[0-9](?:[ -]?[0-9]){11,18}$", "description": "12-19 digits; spaces or dashes may group them."})
    exp_month: int = Field(ge=-(2**31), le=2**31, examples=[12], json_schema_extra={"minimum": 1, "maximum": 12})
    exp_year: int = Field(ge=-(2**31), le=2**31, examples=[2034], description=(
        "Four digits, or two meaning 20YY; not in the past and at most 50 years ahead."))
    cvc: str = Field(min_length=1, max_length=8, examples=["123"], json_schema_extra={"pattern": r"^[0-9]{3,4}$"})


class ConfirmCheckoutSessionRequest(Body):
    """Card details exist only in this request: they are never stored, logged or echoed. The buyer's
    details are checked all together with the card (400 invalid_field lists every bad one in `errors`)."""
    card: CardDetails
    customer: CustomerInput | None = None
    custom_fields: dict[str, FieldValue] | None = Field(None, max_length=5,
                                                        description="The session's custom_fields by key.")
    app_fields: dict[str, dict[str, FieldValue]] | None = Field(
        None, max_length=16, description="Installed apps' checkout_fields: {app_id: {key: value}}.")
    terms_accepted: bool = False

    def submitted(self) -> dict:
        """The buyer's details as flint.buyers.service.validate reads them."""
        return {"customer": self.customer.model_dump(exclude_none=True) if self.customer else {},
                "custom_fields": dict(self.custom_fields or {}), "app_fields": {
                    app: dict(values) for app, values in (self.app_fields or {}).items()},
                "terms_accepted": self.terms_accepted}


class NextAction(BaseModel):
    type: Literal["three_d_secure_challenge"]
    payment_id: str


class PaymentConfirmation(Payment):
    """The payment a buyer's confirm made (or a 3-D Secure answer completed), and what comes next."""
    next_action: NextAction | None


class PaymentProblem(Problem):
    """A payment that did not go through (402): `code` is the decline code (card_declined,
    insufficient_funds, ...) and `payment` the failed payment, or blocked_by_extension (no payment)."""
    payment: Payment | None = Field(None, description="The failed payment, with its failure_code.")


class AnswerCheckoutSessionChallengeRequest(Body):
    payment: str = Field(min_length=1, max_length=64)
    result: Literal["approve", "deny"]


class ClientSessionUnavailable(BaseModel):
    code: str
    message: str


class ClientSession(BaseModel):
    """What a buyer's page may learn with the client_token: enough to mount the widget."""
    object: Literal["checkout.client_session"]
    id: str
    order_id: str
    mode: Literal["embedded", "hosted"]
    status: Literal["open", "complete", "expired"]
    payable: bool
    unavailable: ClientSessionUnavailable | None = Field(
        description="Why the session cannot take a payment now (a stable code).")
    amount_total: int = Field(description="What is left to pay, in minor units.")
    currency: str
    url: str = Field(description="The hosted checkout page: the widget's fallback.")
    frame_url: str = Field(description="The card frame the widget embeds.")
    expires_at: str
    messages: dict[str, str] = Field(description="The widget loader's own texts by id (its fallback link, why the "
                                     "session cannot be paid), in the language of the request's Accept-Language.")


class ReportCheckoutSessionFallbackRequest(Body):
    reason: Literal["timeout", "frame_blocked", "frame_error", "requested"]


class SendCheckoutSessionBeaconRequest(Body):
    """Sent by navigator.sendBeacon as text/plain (a beacon cannot carry an Authorization header)."""
    client_token: str | None = Field(None, min_length=1, max_length=1024,
                                     description="The session's client_token, when it is not sent as a Bearer token.")
    type: Literal["left"]


class CheckoutSessionBeacon(BaseModel):
    object: Literal["checkout.beacon"]
    session_id: str
    recorded: bool = Field(description="False when the session was already closed.")

"""Buyer details and checkout fields (docs/api.md 14): what a session, a payment link or an app asks the
buyer for, and what the buyer gave. The shapes are documented here; flint.buyers checks the rest (known
countries, per-country address rules, E.164 phones, option values) and answers 400 with the exact param."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint.http.validation import Body

Requirement = Literal["required", "optional", "off"]
FIELD_KEY = r"^[a-z][a-z0-9_]{0,39}$"


class ShippingAddressRule(Body):
    allowed_countries: list[str] = Field(min_length=1, max_length=250, examples=[["DE", "FR", "US"]],
                                         description="ISO 3166-1 alpha-2 codes the shop ships to.")


class CollectSettings(Body):
    """Which built-in fields the checkout shows. The defaults are what a checkout asked before this
    existed: an optional email and name."""
    email: Requirement = "optional"
    name: Requirement = "optional"
    phone: Requirement = "off"
    billing_address: Literal["off", "country", "full"] = "off"
    shipping_address: ShippingAddressRule | None = None
    terms_url: str | None = Field(None, min_length=8, max_length=2048,
                                  description="Where 'I agree to the terms' links; set, the box must be ticked.")


class FieldOption(Body):
    value: str = Field(min_length=1, max_length=100)
    label: str = Field(min_length=1, max_length=100)


class CheckoutField(Body):
    """A field of the merchant's own (custom_fields) or of an app (checkout_fields)."""
    key: str = Field(pattern=FIELD_KEY, description="Where the value lands: custom_fields[key] on the order, "
                                                    "or extension_data[app_id].fields[key] for an app's field.")
    label: str = Field(min_length=1, max_length=100, description="The field's accessible name, shown as given.")
    type: Literal["text", "number", "checkbox", "dropdown"]
    required: bool = False
    options: list[FieldOption] | None = Field(None, min_length=1, max_length=50,
                                              description="For dropdown fields (and only those).")
    max_length: int | None = Field(None, ge=1, le=500, description="For text fields (default 255).")


class Address(BaseModel):
    country: str | None = Field(description="ISO 3166-1 alpha-2.")
    line1: str | None
    line2: str | None
    city: str | None
    postal_code: str | None
    state: str | None = Field(description="The state, province or region, as the country's format writes it.")


class Customer(BaseModel):
    """What the buyer gave at checkout; null members were not asked or not given."""
    email: str | None
    name: str | None
    phone: str | None = Field(description="E.164, e.g. +4930123456.")
    billing_address: Address | None
    shipping_address: Address | None


class AddressInput(Body):
    country: str | None = Field(None, max_length=2)
    line1: str | None = Field(None, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=20)
    state: str | None = Field(None, max_length=100)


class CustomerInput(Body):
    email: str | None = Field(None, max_length=254)
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40, description="International (+49...) or national to the "
                                                              "address's country.")
    billing_address: AddressInput | None = None
    shipping_address: AddressInput | None = None


FieldValue = str | int | float | bool | None

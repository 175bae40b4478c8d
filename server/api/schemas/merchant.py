from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from flint.http.validation import Body
from flint.merchants.service import ORIGIN_PATTERN

# The grammar service.normalise_origin enforces (400 origin_invalid), published as it is.
Origin = Annotated[str, WithJsonSchema({
    "type": "string", "pattern": ORIGIN_PATTERN,
    "description": "scheme://host[:port], no path, query or fragment.", "examples": ["https://shop.example"],
})]


class UpdateMerchantRequest(Body):
    allowed_origins: list[Origin] | None = Field(None, max_length=20, description="Exact origins (scheme://host[:port]) allowed to embed the widget.")
    brand_color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$", examples=["#4f46e5"],
                                    description="The colour of buttons and accents on hosted pages.")
    receipts: bool | None = Field(None, description="Email the buyer a receipt when an order is paid "
                                                    "(docs/api.md 16; needs the buyer's email and mail configured).")


class Merchant(BaseModel):
    """The merchant account the key belongs to."""
    id: str
    object: Literal["merchant"]
    name: str
    email: str
    allowed_origins: list[str]
    brand_color: str
    receipts: bool = Field(description="Whether buyers are emailed a receipt when an order is paid.")
    created_at: str


class ApiKey(BaseModel):
    """A secret key (its value only in the response that creates it)."""
    id: str
    object: Literal["api_key"]
    last4: str
    created_at: str
    revoked_at: str | None
    livemode: bool
    secret_key: str | None = Field(None, description="Only in the response that creates the key.")


class ApiKeyList(BaseModel):
    object: Literal["list"]
    data: list[ApiKey]
    has_more: bool

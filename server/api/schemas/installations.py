from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint.api.schemas.buyers import CheckoutField


class InstallationConsent(BaseModel):
    scopes: list[str]
    webhook_events: list[str] = Field(description="The event types the consent page named.")
    hooks: list[str]
    checkout_fields: list[CheckoutField]


class InstallationPendingUpdate(InstallationConsent):
    requested_at: str


class Installation(BaseModel):
    """An app installed on this merchant, with what the merchant approved."""
    id: str
    object: Literal["installation"]
    app_id: str
    merchant_id: str
    scopes: list[str] = Field(description="The consented scopes (the same as consented.scopes).")
    status: Literal["active", "uninstalled"]
    consented: InstallationConsent = Field(description="What the merchant approved: all the app receives and may do.")
    pending_update: InstallationPendingUpdate | None = Field(
        description="What the app's developer added since, waiting for the merchant's approval.")
    created_at: str
    uninstalled_at: str | None


class InstallationList(BaseModel):
    object: Literal["list"]
    data: list[Installation]
    has_more: bool

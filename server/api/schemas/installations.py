from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ConsentOut(BaseModel):
    scopes: list[str]
    webhook_events: list[str] = Field(description="The event types the consent page named.")
    hooks: list[str]
    checkout_fields: list[dict[str, Any]]


class PendingUpdateOut(ConsentOut):
    requested_at: str


class InstallationOut(BaseModel):
    id: str
    object: Literal["installation"]
    app_id: str
    merchant_id: str
    scopes: list[str] = Field(description="The consented scopes (the same as consented.scopes).")
    status: Literal["active", "uninstalled"]
    consented: ConsentOut = Field(description="What the merchant approved: all the app receives and may do.")
    pending_update: PendingUpdateOut | None = Field(
        description="What the app's developer added since, waiting for the merchant's approval.")
    created_at: str
    uninstalled_at: str | None


class InstallationList(BaseModel):
    object: Literal["list"]
    data: list[InstallationOut]
    has_more: bool

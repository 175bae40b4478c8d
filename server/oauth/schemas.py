from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class InstallationOut(BaseModel):
    id: str
    object: Literal["installation"]
    app_id: str
    merchant_id: str
    scopes: list[str]
    status: Literal["active", "uninstalled"]
    created_at: str
    uninstalled_at: str | None


class InstallationList(BaseModel):
    object: Literal["list"]
    data: list[InstallationOut]
    has_more: bool

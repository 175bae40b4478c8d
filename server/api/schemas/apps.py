from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from flint.api.schemas.buyers import CheckoutField
from flint.apps.models import HOOKS
from flint.apps.service import MAX_REDIRECT_URI, MAX_REDIRECT_URIS, REDIRECT_URI_PATTERN
from flint.http.validation import Body
from flint.scopes import SCOPES

# Published as the grammar service.check_redirect_uri enforces (400 redirect_uri_invalid /
# redirect_uri_insecure), which also checks the host, the port, user information and the http rule.
RedirectUri = Annotated[str, Field(max_length=MAX_REDIRECT_URI), WithJsonSchema({
    "type": "string", "maxLength": MAX_REDIRECT_URI, "pattern": REDIRECT_URI_PATTERN,
    "description": "Absolute https URI (http only on 127.0.0.1, [::1] or localhost), no fragment, no user "
                   "information; matched exactly, character for character, at authorization.",
    "examples": ["https://app.example/oauth/callback"],
})]
# Enforced by the service (400 scope_unknown / hook_unknown, naming the offending item).
Scope = Annotated[str, WithJsonSchema({"type": "string", "enum": list(SCOPES)})]
Hook = Annotated[str, WithJsonSchema({"type": "string", "enum": list(HOOKS)})]
# No leading or trailing space, no control characters: the name is shown to merchants on the
# consent page.
NAME_PATTERN = r"^[^ \x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^ \x00-\x1f\x7f])?$"
URL_PATTERN = r"^https?://"


class CreateAppRequest(Body):
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN, examples=["Loyalty Points"])
    description: str | None = Field(None, max_length=500)
    redirect_uris: list[RedirectUri] = Field(min_length=1, max_length=MAX_REDIRECT_URIS,
                                             examples=[["https://app.example/oauth/callback"]])
    scopes: list[Scope] = Field(min_length=1, max_length=32, examples=[["orders:read", "events:read"]],
                                description="What the app may do once installed (each merchant approves them).")
    webhook_url: str | None = Field(None, min_length=8, max_length=2048, pattern=URL_PATTERN,
                                    examples=["https://app.example/flint/webhooks"],
                                    description="Where events of installing merchants go: https in "
                                                "production, never a private address.")
    webhook_events: list[str] = Field(default_factory=list, max_length=64, examples=[["order.paid", "refund.*"]],
                                      description='Event types, prefixes like "payment.*", or "*". '
                                                  "app.installed and app.uninstalled are always sent.")
    hook_url: str | None = Field(None, min_length=8, max_length=2048, pattern=URL_PATTERN,
                                 description="Where Flint calls the app's hooks (required with hooks).")
    hooks: list[Hook] = Field(default_factory=list, max_length=8)
    hook_failure_mode: Literal["allow", "block"] = Field(
        "allow", description="A hook that fails or times out: allow the payment attempt, or block it.")
    checkout_fields: list[CheckoutField] = Field(
        default_factory=list, max_length=3,
        description="Fields the app adds to every checkout of the merchants who install it (the consent "
                    "page lists them); the buyer's values land in the order's extension_data[app_id].fields.")


class UpdateAppRequest(Body):
    """What widens scopes, webhook_events or hooks applies to new installs at once, and to earlier ones
    only once each merchant approves it (their installation shows it in pending_update); what narrows
    them applies to every installation at once."""
    name: str | None = Field(None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    scopes: list[Scope] | None = Field(None, min_length=1, max_length=32, description="Replaces the whole list.")
    description: str | None = Field(None, max_length=500, description="null removes it.")
    redirect_uris: list[RedirectUri] | None = Field(None, min_length=1, max_length=MAX_REDIRECT_URIS,
                                                    description="Replaces the whole list.")
    webhook_url: str | None = Field(None, min_length=8, max_length=2048, pattern=URL_PATTERN,
                                    description="null removes it (webhook_events must then be empty).")
    webhook_events: list[str] | None = Field(None, max_length=64)
    hook_url: str | None = Field(None, min_length=8, max_length=2048, pattern=URL_PATTERN,
                                 description="null removes it (hooks must then be empty).")
    hooks: list[Hook] | None = Field(None, max_length=8)
    hook_failure_mode: Literal["allow", "block"] | None = None
    checkout_fields: list[CheckoutField] | None = Field(None, max_length=3, description=(
        "Replaces the whole list; a new or changed field waits for each merchant's approval."))


class App(BaseModel):
    """A partner app this merchant registered (its secrets only when created or rotated)."""
    id: str
    object: Literal["app"]
    name: str
    description: str | None
    developer: str = Field(description="The developer: the merchant that registered the app.")
    client_id: str = Field(description="fca_...: the public OAuth client identifier.")
    redirect_uris: list[str]
    scopes: list[str]
    webhook_url: str | None
    webhook_events: list[str]
    hook_url: str | None
    hooks: list[str]
    hook_failure_mode: Literal["allow", "block"]
    checkout_fields: list[CheckoutField] = Field(description="Fields the app adds to every checkout of the "
                                                             "merchants that install it.")
    created_at: str
    client_secret: str | None = Field(None, description="fcs_...: only when the app is created or the secret "
                                                        "rotated. Flint keeps only a digest: store it now.")
    webhook_secret: str | None = Field(None, description="whsec_...: only when the app is created or the secret "
                                                          "rotated. Verifies Flint's webhooks and hook calls.")


class AppList(BaseModel):
    object: Literal["list"]
    data: list[App]
    has_more: bool

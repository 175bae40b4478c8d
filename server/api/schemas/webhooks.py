from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flint.api.schemas.common import CreatedBy
from flint.http.validation import Body


class CreateWebhookEndpointRequest(Body):
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://", examples=["https://shop.example/webhooks"],
                     description="Where to POST events: https in production, never a private address.")
    events: list[str] = Field(min_length=1, max_length=64, examples=[["payment.succeeded", "order.*"], ["*"]],
                              description='Event types, prefixes like "payment.*", or "*" for all.')
    description: str | None = Field(None, max_length=500)


class UpdateWebhookEndpointRequest(Body):
    url: str | None = Field(None, min_length=8, max_length=2048, pattern=r"^https?://")
    events: list[str] | None = Field(None, min_length=1, max_length=64)
    description: str | None = Field(None, max_length=500)
    status: Literal["enabled", "disabled"] | None = Field(
        None, description="Disable to stop deliveries (pending ones fail); enable to resume.")


class WebhookEndpoint(BaseModel):
    """A URL that receives signed events."""
    id: str
    object: Literal["webhook_endpoint"]
    url: str
    events: list[str]
    description: str | None
    status: Literal["enabled", "disabled", "deleted"]
    disabled_reason: str | None = Field(description="by_merchant | failing | gone | deleted | app_uninstalled")
    installation_id: str | None = Field(description="For an endpoint an app made: its installation, which alone "
                                                    "manages it (null for the merchant's own).")
    created_by: CreatedBy | None
    created_at: str
    secret: str | None = Field(None, description="whsec_...: only when created or rotated. Store it now.")


class WebhookEndpointList(BaseModel):
    object: Literal["list"]
    data: list[WebhookEndpoint]
    has_more: bool


class WebhookDelivery(BaseModel):
    """One event sent (or to be sent) to one endpoint."""
    id: str
    object: Literal["webhook_delivery"]
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: str | None
    next_attempt_at: str | None
    created_at: str


class WebhookDeliveryList(BaseModel):
    object: Literal["list"]
    data: list[WebhookDelivery]
    has_more: bool


class WebhookAttempt(BaseModel):
    """One HTTP request of a delivery."""
    id: str
    object: Literal["webhook_attempt"]
    delivery_id: str
    attempted_at: str
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookAttemptList(BaseModel):
    object: Literal["list"]
    data: list[WebhookAttempt]
    has_more: bool

"""Webhook settings, the delivery log and redelivery on the wire (``api/webhooks.py``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from api.schemas import Timestamp, WireModel, check_callback_url
from contract import DELIVERY_OUTCOMES


class WebhookSettingsOut(WireModel):
    default_url: str | None
    secret: str


class WebhookSettingsRequest(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True)

    default_url: Annotated[str, Field(max_length=2_048), AfterValidator(check_callback_url)] | None


class WebhookSecretOut(WireModel):
    secret: str


class DeliveryOut(WireModel):
    event_id: str
    type: str
    url: str | None
    series: int
    attempt: int
    outcome: Literal[DELIVERY_OUTCOMES]  # type: ignore[valid-type]
    status_code: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: Timestamp | None
    created_at: Timestamp


class DeliveryList(WireModel):
    items: list[DeliveryOut]


class RedeliveryOut(WireModel):
    job_id: str
    event_id: str
    series: int

"""The synchronous ``/process/*`` calls on the wire: localize, recognize and estimate
(``api/process.py``), in the shapes the lingo.dev SDKs send and read."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from api.schemas import Locale, StrictWireModel, WireModel, check_document


class LocalizeParams(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="allow")

    fast: bool = False


METADATA_MAX_BYTES = 8 * 1024


class LocalizeMetadata(WireModel):
    """What the client says about the call. ``filePath`` is recorded; other keys are
    accepted and ignored, up to 8 KiB in all."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=False, extra="allow", strict=True
    )

    file_path: str | None = Field(default=None, max_length=4_096)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if isinstance(value, dict):
            size = len(json.dumps(value, ensure_ascii=False).encode())
            if size > METADATA_MAX_BYTES:
                raise ValueError(f"larger than the limit of {METADATA_MAX_BYTES} bytes of JSON")
        return value


class LocalizeRequest(StrictWireModel):
    """``POST /process/localize``: one locale, answered in the response."""

    source_locale: Locale | None = None  # null: detected from the document's strings
    target_locale: Locale
    data: dict[str, Any]
    engine_id: str | None = Field(default=None, max_length=64)
    hints: dict[str, list[Annotated[str, Field(max_length=1_000)]]] | None = None
    reference: dict[str, Any] | None = None  # accepted; not used by the pseudo provider
    params: LocalizeParams | None = None
    session_id: str | None = Field(default=None, max_length=255)
    # Recorded with the call's usage: "cli" or "ci" from the lingo.dev CLI; any short
    # string is taken as given.
    trigger_type: str | None = Field(default=None, max_length=64)
    metadata: LocalizeMetadata | None = None

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_document(value, info)


class LocalizeOut(WireModel):
    source_locale: str
    target_locale: str
    data: dict[str, Any]
    model: str | None = None
    usage: dict[str, Any] | None = None
    warnings: list[dict[str, str]] = Field(default_factory=list)


class RecognizeRequest(StrictWireModel):
    text: str = Field(min_length=1, max_length=100_000)
    label_locale: Locale = "en"


class RecognizeOut(WireModel):
    locale: str
    language: str
    region: str | None
    script: str | None
    label: str
    direction: Literal["ltr", "rtl"]


class EstimateItem(StrictWireModel):
    target_locale: Locale
    source_chars: int = Field(ge=0, le=1_000_000_000)


class EstimateRequest(StrictWireModel):
    """``POST /process/estimate``: approximate tokens and cost before sending work."""

    items: list[EstimateItem] = Field(min_length=1, max_length=1_000)
    source_locale: Locale = "en"
    engine_id: str | None = Field(default=None, max_length=64)


class EstimateLine(WireModel):
    target_locale: str
    source_chars: int
    model: str | None
    input_tokens: int
    output_tokens: int
    cost: float | None  # USD; null when the model has no configured price


class EstimateTotal(WireModel):
    input_tokens: int
    output_tokens: int
    cost: float | None  # null when any line's cost is unknown


class CostEstimateTotals(WireModel):
    """The lingo.dev SDK's ``CostEstimate.totals``: every figure a number, 0 when unpriced."""

    source_chars: int
    estimated_output_tokens: int
    estimated_llm_cost_usd: float
    estimated_localization_cost_usd: float  # a hosted service's fee: 0 here
    estimated_total_cost_usd: float


class CostEstimateLocale(WireModel):
    """One row of the SDK's ``CostEstimate.byLocale``."""

    target_locale: str
    source_chars: int
    estimated_output_tokens: int
    estimated_cost_usd: float


class EstimateOut(WireModel):
    """The lingo.dev SDK's ``CostEstimate`` (``approximate``, ``totals``, ``byLocale``) and
    our own figures (``items``, ``total``, with input tokens, the model and null for an
    unknown price). One row per distinct target locale in both."""

    approximate: Literal[True] = True
    totals: CostEstimateTotals
    by_locale: list[CostEstimateLocale]
    currency: Literal["USD"] = "USD"
    items: list[EstimateLine]
    total: EstimateTotal

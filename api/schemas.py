"""Request and response models: the wire base (camelCase names, strict requests, timestamps),
the validators several shapes share, and job groups and jobs. Engines, webhooks, the
``/process/*`` calls and the job list's query string have modules of their own
(``api.engine_schemas``, ``api.webhook_schemas``, ``api.process_schemas``,
``api.query_schemas``). The same classes validate requests and generate ``/openapi.json``,
so the published spec cannot drift from the code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)
from pydantic.alias_generators import to_camel

from contract import GROUP_STATUSES, JOB_STATUSES
from localization.language import normalize_locale
from localization.locked import PatternLimits, pattern_problem
from localization.payload import depth, iter_strings
from webhooks.urls import CallbackRefused, check_syntax

Locale = Annotated[
    str, Field(min_length=1, max_length=64, strict=True), AfterValidator(normalize_locale)
]
PRINTABLE = re.compile(r"^[\x20-\x7e]+$")


def _wire_time(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds: 2026-11-22T10:00:00.123Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(_wire_time, return_type=str, when_used="json")]


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


@dataclass(frozen=True)
class RequestLimits:
    """The request limits, passed to validation as context (``{"limits": ...}``); built
    from the settings' ``limits`` section by ``settings.request_limits``, their one default."""

    max_strings: int
    max_string_chars: int
    max_depth: int
    max_targets: int


def request_limits(info: ValidationInfo) -> RequestLimits:
    """The limits a model with document or locale limits is validated against: every such
    validation passes them (a missing context is a defect of the caller, not of the body)."""
    limits: RequestLimits = (info.context or {})["limits"]
    return limits


def check_callback_url(url: str) -> str:
    """The URL's form (https, a host, no credentials). Where its host resolves to is checked
    after validation, by ``api.webhooks.check_callback``."""
    try:
        check_syntax(url)
    except CallbackRefused as err:
        raise ValueError(str(err)) from None
    return url


def check_document(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    """The document limits (depth, strings, string length) from the validation context."""
    limits = request_limits(info)
    if depth(value) > limits.max_depth:
        raise ValueError(f"nesting deeper than the limit of {limits.max_depth} levels")
    count = 0
    for path, text in iter_strings(value):
        count += 1
        if count > limits.max_strings:
            raise ValueError(f"more than the limit of {limits.max_strings} strings")
        if len(text) > limits.max_string_chars:
            raise ValueError(
                f"string at '{'.'.join(path)}' is longer than the limit of "
                f"{limits.max_string_chars} characters"
            )
    return value


class StrictWireModel(WireModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=False, extra="forbid", strict=True
    )


class AiReviewStage(StrictWireModel):
    """A reviewer model scores every translated string 0-100; under ``threshold``, the string
    is translated once more with the reviewer's reason."""

    enabled: bool
    threshold: int | None = Field(default=None, ge=0, le=100)
    model: str | None = Field(default=None, min_length=1, max_length=200)


class HumanReviewStage(StrictWireModel):
    """The job waits for a person to approve or reject, at most ``timeoutSeconds``."""

    enabled: bool
    timeout_seconds: int | None = Field(default=None, ge=1, le=2_592_000)
    on_timeout: Literal["continue", "fail"] | None = None


class BackTranslationStage(StrictWireModel):
    """The output is translated back and compared with the source."""

    enabled: bool


class PipelineConfig(StrictWireModel):
    """Stages after ``translate``: a request's ``pipelineConfig`` and an engine's
    ``pipeline``; unknown stages are refused. A stage omitted or null is not set here (a
    request's then inherits the engine's: ``contract.effective_pipeline``); which stages
    may be switched on is ``api.pipeline``'s one rule."""

    ai_review: AiReviewStage | None = None
    human_review: HumanReviewStage | None = None
    back_translation: BackTranslationStage | None = None


class CreateJobGroupRequest(WireModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=False, extra="forbid", strict=True
    )

    source_locale: Locale
    target_locales: list[Locale] = Field(min_length=1)
    data: dict[str, Any]
    context: str | None = Field(default=None, max_length=10_000)
    hints: dict[str, list[Annotated[str, Field(max_length=1_000)]]] | None = None
    locked_keys: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=PatternLimits.patterns
    )
    callback_url: (
        Annotated[str, Field(max_length=2_048), AfterValidator(check_callback_url)] | None
    ) = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    engine_id: str | None = Field(default=None, max_length=64)
    pipeline_config: PipelineConfig | None = None
    # The group's cost fuse (USD): past it, its unfinished jobs fail with cost_limit_reached.
    max_cost_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("idempotency_key")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not PRINTABLE.match(value):
            raise ValueError("must be 1 to 255 printable ASCII characters")
        return value

    @field_validator("target_locales")
    @classmethod
    def _check_targets(cls, value: list[str], info: ValidationInfo) -> list[str]:
        limits = request_limits(info)
        if len(value) > limits.max_targets:
            raise ValueError(f"at most {limits.max_targets} target locales are allowed")
        seen: set[str] = set()
        for locale in value:
            if locale in seen:
                raise ValueError(f"duplicate target locale '{locale}'")
            if locale == info.data.get("source_locale"):
                raise ValueError(f"the source locale '{locale}' cannot also be a target")
            seen.add(locale)
        return value

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_document(value, info)

    @field_validator("locked_keys")
    @classmethod
    def _check_patterns(cls, value: list[str] | None) -> list[str] | None:
        problem = pattern_problem(value, PatternLimits()) if value else None
        if problem:
            raise ValueError(problem)
        return value


class CancelGroupRequest(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True)

    reason: str | None = Field(default=None, max_length=500)


class GroupTokenRequest(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True)

    ttl_seconds: int = Field(default=15 * 60, ge=1, le=60 * 60)


class GroupTokenOut(WireModel):
    token: str
    expires_at: Timestamp


class JobSummary(WireModel):
    id: str
    target_locale: str
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]


GroupStatus = Literal[GROUP_STATUSES]  # type: ignore[valid-type]


class JobGroupCreated(WireModel):
    group_id: str
    status: GroupStatus
    source_locale: str
    jobs: list[JobSummary]
    created_at: Timestamp
    estimated_cost_usd: float = 0.0
    max_cost_usd: float | None = None


class JobGroupOut(WireModel):
    group_id: str
    status: GroupStatus
    source_locale: str
    engine_id: str
    total_jobs: int
    completed_jobs: int
    completed_with_warnings_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    awaiting_review_jobs: int
    jobs: list[JobSummary]
    created_at: Timestamp
    completed_at: Timestamp | None


class JobWarning(WireModel):
    code: str
    key: str | None = None
    message: str


class Fallback(WireModel):
    model: str  # provider/model that gave up
    error: str


# A step's fields that only some steps have: left out when absent, not shown as null.
STEP_ONLY_SOME = (
    "cost_usd",
    "error",
    "score_min",
    "score_mean",
    "retranslated",
    "drift",
    "reviewer",
    "action",
    "rounds",
    "review_due_at",
    "round",
)
STEP_ONLY_SOME_NAMES = frozenset(STEP_ONLY_SOME) | {to_camel(f) for f in STEP_ONLY_SOME}


class Step(WireModel):
    step_id: str
    status: str
    model: str | None = None  # the model that translated (the first, if several did)
    models: list[str] = Field(default_factory=list)  # every model that translated something
    fallbacks: list[Fallback] = Field(default_factory=list)  # models that gave up, in order
    started_at: str | None = None
    completed_at: str | None = None
    # USD for the step's tokens at the model's price (settings.llm_prices); absent unpriced.
    cost_usd: float | None = None
    error: str | None = None  # a failed stage: why (models, counts and codes, no text)
    # The stage figures (API.md, "Pipeline stages"): aiReview's, backTranslation's.
    score_min: float | None = None
    score_mean: float | None = None
    retranslated: int | None = None
    drift: dict[str, int] | None = None
    # humanReview's: who decided, what (approve, reject, timeout), in how many rounds; and
    # while it waits, when its timeout ends.
    reviewer: str | None = None
    action: str | None = None
    rounds: int | None = None
    review_due_at: str | None = None
    # A record of a review round that was rejected (its translation and aiReview); the
    # records without it are those of the output as it stands.
    round: int | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A step shows the figures of its own stage only: the others are left out, not null."""
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in STEP_ONLY_SOME_NAMES}


class JobListItem(WireModel):
    """A job as listed: everything but its output."""

    id: str
    group_id: str
    source_locale: str
    target_locale: str
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]
    engine_id: str
    error: str | None
    warnings: list[JobWarning]
    steps: list[Step]
    usage: dict[str, Any]
    attempts: int
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None


class JobOut(JobListItem):
    """A job with ``outputData`` (present once it succeeded, else null)."""

    output_data: dict[str, Any] | None = None
    # While the job awaits review: the output under review (left out otherwise).
    draft_data: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _draft_only_when_waiting(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("draftData", "draft_data"):
            if data.get(name, 0) is None:
                del data[name]
        return data


class JobList(WireModel):
    items: list[JobListItem]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    path: str
    message: str


class ErrorOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    tag: str = Field(alias="_tag")
    message: str
    details: list[ErrorDetail] | None = None
    entity_type: str | None = Field(default=None, alias="entityType")
    id: str | None = None


# --- the caller ----------------------------------------------------------------------------


class UserOut(WireModel):
    id: str
    email: str
    organization_id: str


class WhoamiOut(UserOut):
    """``POST /whoami``: ``GET /users/me`` and the key's id (the SDKs' identity call)."""

    key_id: str

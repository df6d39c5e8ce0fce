"""Request and response models. The same classes validate requests and generate
``/openapi.json``, so the published spec cannot drift from the code."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from contract import JOB_STATUSES
from localization.language import normalize_locale
from localization.locked import PatternLimits, pattern_problem
from localization.payload import depth, iter_strings
from webhooks.urls import CallbackRefused, check_syntax

Locale = Annotated[
    str, Field(min_length=1, max_length=64, strict=True), AfterValidator(normalize_locale)
]
PRINTABLE = re.compile(r"^[\x20-\x7e]+$")

T = TypeVar("T")


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null; omit the field to leave it unchanged")
    return value


# A field that may be omitted but never given as null (``PATCH``: omitted is "unchanged",
# and null would be stored as a value the field cannot have). The Python default is None,
# for "not given"; the published schema has no null in it.
NotNull = Annotated[T | SkipJsonSchema[None], BeforeValidator(_refuse_null)]


def _no_null_defaults(schema: dict[str, Any]) -> None:
    """Drop ``"default": null`` from the properties of a schema whose fields are NotNull."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]


def _wire_time(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds: 2026-11-22T10:00:00.123Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(_wire_time, return_type=str, when_used="json")]


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RequestLimits(BaseModel):
    """Configurable request limits, passed to validation as context."""

    max_strings: int = 20_000
    max_string_chars: int = 100_000
    max_depth: int = 32
    max_targets: int = 100


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
    limits: RequestLimits = (info.context or {}).get("limits", RequestLimits())
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
    """Stages after ``translate``, for one request; unknown stages are refused. None is
    built yet: ``api.jobs`` accepts a stage turned off and refuses one turned on."""

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

    @field_validator("idempotency_key")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not PRINTABLE.match(value):
            raise ValueError("must be 1 to 255 printable ASCII characters")
        return value

    @field_validator("target_locales")
    @classmethod
    def _check_targets(cls, value: list[str], info: ValidationInfo) -> list[str]:
        limits: RequestLimits = (info.context or {}).get("limits", RequestLimits())
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


GroupStatus = Literal["pending", "processing", "completed", "partial", "failed", "cancelled"]


class JobGroupCreated(WireModel):
    group_id: str
    status: GroupStatus
    source_locale: str
    jobs: list[JobSummary]
    created_at: Timestamp


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


class Step(WireModel):
    step_id: str
    status: str
    model: str | None = None  # the model that translated (the first, if several did)
    models: list[str] = Field(default_factory=list)  # every model that translated something
    fallbacks: list[Fallback] = Field(default_factory=list)  # models that gave up, in order
    started_at: str | None = None
    completed_at: str | None = None


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


def _utc_time(moment: datetime) -> datetime:
    """A time with an offset, as UTC (a time without one is UTC); refused when its UTC form
    falls outside the years 1 to 9999 (``0001-01-01T00:00:00+23:59``)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


# "...T10:00:00+02:00" written into a URL unencoded arrives with a space for its "+".
_SPACED_OFFSET = re.compile(r"^(\S+T\S+) (\d\d(?::?\d\d)?)$")


def _plus_offset(value: object) -> object:
    """Read a space before a time's offset as the "+" a URL query turned into it."""
    if isinstance(value, str) and (spaced := _SPACED_OFFSET.match(value)):
        return f"{spaced[1]}+{spaced[2]}"
    return value


CURSOR_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def check_cursor(cursor: str) -> str:
    """A cursor as ``GET /jobs/localization`` hands them out: base64url of
    ``<createdAt ISO-8601 with offset>|<job id>``. Anything else is refused here, so that
    the query never sees a time it cannot compare or an id no job can have."""
    problem = ValueError("not a cursor returned by this API")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        moment = datetime.fromisoformat(created)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise problem from None
    if moment.tzinfo is None or not CURSOR_ID.match(job_id):
        raise problem
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise problem from None
    return cursor


# Ids in query filters: at most 64 printable ASCII characters (no id has more, and none has
# a control character a database could choke on).
QueryId = Annotated[str, Field(max_length=64, pattern=r"^[\x21-\x7e]*$")]


class ListJobsQuery(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")

    status: Literal[JOB_STATUSES] | None = None  # type: ignore[valid-type]
    engine_id: QueryId | None = None
    group_id: QueryId | None = None
    target_locale: Annotated[str, Field(max_length=64), AfterValidator(normalize_locale)] | None = (
        None
    )
    created_after: (
        Annotated[datetime, BeforeValidator(_plus_offset), AfterValidator(_utc_time)] | None
    ) = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, Field(max_length=512), AfterValidator(check_cursor)] | None = None


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
    outcome: Literal["delivered", "retrying", "failed", "skipped", "superseded"]
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


# --- engines -------------------------------------------------------------------------------


def _locale_or_wildcard(tag: str) -> str:
    return tag if tag == "*" else normalize_locale(tag)


LocaleOrAny = Annotated[
    str, Field(min_length=1, max_length=64, strict=True), AfterValidator(_locale_or_wildcard)
]
PROVIDER = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class EngineModel(StrictWireModel):
    """One rank of a model chain; ``*`` matches any locale."""

    source_locale: LocaleOrAny = "*"
    target_locale: LocaleOrAny = "*"
    provider: str = Field(pattern=PROVIDER)
    model: str | None = Field(default=None, min_length=1, max_length=200)


class GlossaryEntry(StrictWireModel):
    """A translation for a locale pair, or a term never to translate."""

    source_locale: LocaleOrAny = "*"
    target_locale: LocaleOrAny = "*"
    term: str = Field(min_length=1, max_length=500)
    translation: str | None = Field(default=None, min_length=1, max_length=500)
    do_not_translate: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> GlossaryEntry:
        if self.do_not_translate == (self.translation is not None):
            raise ValueError("give either a translation or doNotTranslate: true")
        return self


class LocaleText(StrictWireModel):
    target_locale: LocaleOrAny = "*"
    text: str = Field(min_length=1, max_length=5_000)


class EngineFields(StrictWireModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2_000)
    is_default: bool = False
    models: list[EngineModel] = Field(default_factory=list, max_length=100)
    glossary: list[GlossaryEntry] = Field(default_factory=list, max_length=5_000)
    brand_voices: list[LocaleText] = Field(default_factory=list, max_length=200)
    instructions: list[LocaleText] = Field(default_factory=list, max_length=200)


class CreateEngineRequest(EngineFields):
    pass


class UpdateEngineRequest(StrictWireModel):
    """Only the fields given change; lists are replaced whole. No field may be null."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=False,
        extra="forbid",
        strict=True,
        json_schema_extra=_no_null_defaults,
    )

    name: NotNull[Annotated[str, Field(min_length=1, max_length=200)]] = None
    description: NotNull[Annotated[str, Field(max_length=2_000)]] = None
    is_default: NotNull[bool] = None
    models: NotNull[Annotated[list[EngineModel], Field(max_length=100)]] = None
    glossary: NotNull[Annotated[list[GlossaryEntry], Field(max_length=5_000)]] = None
    brand_voices: NotNull[Annotated[list[LocaleText], Field(max_length=200)]] = None
    instructions: NotNull[Annotated[list[LocaleText], Field(max_length=200)]] = None


class EngineOut(WireModel):
    id: str
    name: str
    description: str
    is_default: bool
    models: list[EngineModel]
    glossary: list[GlossaryEntry]
    brand_voices: list[LocaleText]
    instructions: list[LocaleText]
    created_at: Timestamp


class EngineList(WireModel):
    items: list[EngineOut]


class UserOut(WireModel):
    id: str
    email: str
    organization_id: str


class WhoamiOut(UserOut):
    """``POST /whoami``: ``GET /users/me`` and the key's id (the SDKs' identity call)."""

    key_id: str


# --- synchronous processing ---------------------------------------------------------------


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

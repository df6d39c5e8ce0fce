"""Engines on the wire: a model chain, a glossary, brand voices, instructions and the
default pipeline of its jobs, and the ``PATCH`` that changes some of them
(``api/engines.py``)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

import contract
from api.schemas import PipelineConfig, StrictWireModel, Timestamp, WireModel
from localization.language import normalize_locale

T = TypeVar("T")


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null; omit the field to leave it unchanged")
    return value


# A field that may be omitted but never given as null (``PATCH``: omitted is "unchanged",
# and null would be stored as a value the field cannot have). The Python default is None,
# for "not given"; the published schema has no null in it (``_no_nulls``). Optional, not a
# union with a hidden None: a union's errors would name its branches in their paths
# (``models.list[EngineModel][0]``) and add one for the None branch.
NotNull = Annotated[T | None, BeforeValidator(_refuse_null)]
NULL = {"type": "null"}


def _no_nulls(schema: dict[str, Any]) -> None:
    """Drop null from the properties of a schema whose fields are NotNull: its
    ``"default": null`` and the null branch of its ``anyOf``."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]
        branches = prop.pop("anyOf", None)
        if branches is not None:
            rest = [branch for branch in branches if branch != NULL]
            if len(rest) == 1:
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest


def _locale_or_wildcard(tag: str) -> str:
    return tag if tag == "*" else normalize_locale(tag)


LocaleOrAny = Annotated[
    str, Field(min_length=1, max_length=64, strict=True), AfterValidator(_locale_or_wildcard)
]
PROVIDER = rf"^[a-z0-9][a-z0-9_-]{{0,{contract.PROVIDER_NAME_MAX - 1}}}$"


class EngineModel(StrictWireModel):
    """One rank of a model chain; ``*`` matches any locale."""

    source_locale: LocaleOrAny = "*"
    target_locale: LocaleOrAny = "*"
    provider: str = Field(pattern=PROVIDER)
    model: str | None = Field(default=None, min_length=1, max_length=contract.MODEL_NAME_MAX)


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
    # The stages its jobs run after translate unless a request's pipelineConfig overrides
    # them stage by stage.
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)


class CreateEngineRequest(EngineFields):
    pass


class UpdateEngineRequest(StrictWireModel):
    """Only the fields given change; lists are replaced whole. No field may be null."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=False,
        extra="forbid",
        strict=True,
        json_schema_extra=_no_nulls,
    )

    name: NotNull[Annotated[str, Field(min_length=1, max_length=200)]] = None
    description: NotNull[Annotated[str, Field(max_length=2_000)]] = None
    is_default: NotNull[bool] = None
    models: NotNull[Annotated[list[EngineModel], Field(max_length=100)]] = None
    glossary: NotNull[Annotated[list[GlossaryEntry], Field(max_length=5_000)]] = None
    brand_voices: NotNull[Annotated[list[LocaleText], Field(max_length=200)]] = None
    instructions: NotNull[Annotated[list[LocaleText], Field(max_length=200)]] = None
    pipeline: NotNull[PipelineConfig] = None  # replaced whole, like the lists


class EngineOut(WireModel):
    id: str
    name: str
    description: str
    is_default: bool
    models: list[EngineModel]
    glossary: list[GlossaryEntry]
    brand_voices: list[LocaleText]
    instructions: list[LocaleText]
    pipeline: PipelineConfig
    created_at: Timestamp


class EngineList(WireModel):
    items: list[EngineOut]

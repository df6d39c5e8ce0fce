"""The pipeline configuration without a stack: which stage settings a group's jobs get from
the engine's ``pipeline`` and the request's ``pipelineConfig`` (``contract``), how the
settings are validated and stored (``api.pipeline``, the schemas), and how they reach the
workflows (``starter.group_input``), also for inputs recorded before pipelines existed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

import contract
import starter
from api.engine_schemas import CreateEngineRequest, UpdateEngineRequest
from api.errors import ValidationError
from api.pipeline import STAGES_BUILT, refuse_unbuilt_stages, stored_stages
from api.requests import validate
from api.schemas import CreateJobGroupRequest, RequestLimits
from settings import Settings
from store.tables import Job, JobGroup
from workflows.messages import GroupInput, LocaleJobInput, PipelineOptions

AI_ON = {"enabled": True, "threshold": 90, "model": "openai/reviewer"}
HUMAN_OFF = {"enabled": False, "timeoutSeconds": 3600, "onTimeout": "fail"}
BACK_ON = {"enabled": True}


# --- the inheritance rule ----------------------------------------------------------------


def test_without_a_request_pipeline_the_engines_stages_apply() -> None:
    engine = {"aiReview": AI_ON, "backTranslation": BACK_ON}
    assert contract.effective_pipeline(engine, None) == engine
    assert contract.effective_pipeline(engine, {}) == engine


def test_without_an_engine_pipeline_the_requests_stages_apply() -> None:
    request = {"humanReview": HUMAN_OFF}
    assert contract.effective_pipeline(None, request) == request
    assert contract.effective_pipeline({}, request) == request
    assert contract.effective_pipeline(None, None) == {}


def test_a_stage_the_request_gives_replaces_the_engines_whole() -> None:
    engine = {"aiReview": AI_ON, "humanReview": HUMAN_OFF}
    effective = contract.effective_pipeline(engine, {"aiReview": {"enabled": False}})
    # Not merged field by field: the engine's threshold and model do not leak through.
    assert effective == {"aiReview": {"enabled": False}, "humanReview": HUMAN_OFF}


def test_a_stage_the_request_omits_or_nulls_inherits_the_engines() -> None:
    engine = {"aiReview": AI_ON, "humanReview": HUMAN_OFF, "backTranslation": BACK_ON}
    request: dict[str, Any] = {"aiReview": None, "backTranslation": {"enabled": False}}
    assert contract.effective_pipeline(engine, request) == {
        "aiReview": AI_ON,
        "humanReview": HUMAN_OFF,
        "backTranslation": {"enabled": False},
    }


def test_the_result_is_in_pipeline_order_and_shares_nothing_with_its_inputs() -> None:
    engine = {"backTranslation": BACK_ON, "aiReview": AI_ON}
    request = {"humanReview": HUMAN_OFF}
    before = copy.deepcopy((engine, request))
    effective = contract.effective_pipeline(engine, request)
    assert list(effective) == list(contract.PIPELINE_STAGES)
    effective["aiReview"]["threshold"] = 1
    assert (engine, request) == before


def test_keys_that_are_not_stages_are_dropped() -> None:
    assert contract.effective_pipeline({"qualityGate": {"enabled": True}}, None) == {}


def test_enabled_stages_are_listed_in_pipeline_order() -> None:
    pipeline = {"backTranslation": BACK_ON, "humanReview": HUMAN_OFF, "aiReview": AI_ON}
    assert contract.enabled_stages(pipeline) == ["aiReview", "backTranslation"]
    assert contract.enabled_stages(None) == contract.enabled_stages({}) == []


# --- validation and the stored form ------------------------------------------------------

LIMITS = {"limits": RequestLimits(max_strings=10, max_string_chars=100, max_depth=8, max_targets=5)}
JOB = {"sourceLocale": "en", "targetLocales": ["de"], "data": {"t": "Hello"}}

INVALID = [
    ({"qualityGate": {"enabled": False}}, "qualityGate"),
    ({"aiReview": {"enabled": False, "threshold": 101}}, "aiReview.threshold"),
    ({"aiReview": {"enabled": False, "threshold": -1}}, "aiReview.threshold"),
    ({"aiReview": {"enabled": False, "threshold": 80.0}}, "aiReview.threshold"),
    ({"aiReview": {"enabled": False, "model": ""}}, "aiReview.model"),
    ({"aiReview": {"threshold": 80}}, "aiReview.enabled"),
    ({"humanReview": {"enabled": False, "timeoutSeconds": 0}}, "humanReview.timeoutSeconds"),
    ({"humanReview": {"enabled": False, "timeoutSeconds": 2592001}}, "humanReview.timeoutSeconds"),
    ({"humanReview": {"enabled": False, "onTimeout": "skip"}}, "humanReview.onTimeout"),
    ({"backTranslation": {"enabled": False, "model": "x"}}, "backTranslation.model"),
    ({"backTranslation": {"enabled": 1}}, "backTranslation.enabled"),
]  # fmt: skip


@pytest.mark.parametrize(("stages", "path"), INVALID, ids=[case[1] for case in INVALID])
def test_the_same_limits_hold_for_engines_and_requests(stages: dict[str, Any], path: str) -> None:
    for model, body, field, context in (
        (CreateJobGroupRequest, {**JOB, "pipelineConfig": stages}, "pipelineConfig", LIMITS),
        (CreateEngineRequest, {"name": "x", "pipeline": stages}, "pipeline", None),
        (UpdateEngineRequest, {"pipeline": stages}, "pipeline", None),
    ):
        with pytest.raises(ValidationError) as caught:
            validate(model, body, context)
        assert caught.value.extra["details"][0]["path"] == f"{field}.{path}", model


def test_the_limits_themselves_are_accepted() -> None:
    stages = {
        "aiReview": {"enabled": False, "threshold": 0, "model": "m" * 200},
        "humanReview": {"enabled": False, "timeoutSeconds": 2_592_000, "onTimeout": "continue"},
    }
    req = validate(CreateEngineRequest, {"name": "x", "pipeline": stages})
    assert stored_stages(req.pipeline) == stages
    low = {"aiReview": {"enabled": False, "threshold": 100}, "humanReview": {"enabled": False,
           "timeoutSeconds": 1, "onTimeout": "fail"}}  # fmt: skip
    assert stored_stages(validate(UpdateEngineRequest, {"pipeline": low}).pipeline) == low


def test_a_patch_may_not_null_the_pipeline() -> None:
    with pytest.raises(ValidationError) as caught:
        validate(UpdateEngineRequest, {"pipeline": None})
    assert caught.value.message.startswith("pipeline: must not be null")


def test_the_stored_form_drops_null_stages_and_fields() -> None:
    body = {"name": "x", "pipeline": {"aiReview": {"enabled": True, "threshold": None},
                                      "humanReview": None}}  # fmt: skip
    req = validate(CreateEngineRequest, body)
    assert stored_stages(req.pipeline) == {"aiReview": {"enabled": True}}
    assert stored_stages(validate(CreateEngineRequest, {"name": "x"}).pipeline) == {}
    assert stored_stages(None) == {}


def test_every_stage_is_built_and_none_switched_on_is_refused() -> None:
    assert STAGES_BUILT == set(contract.PIPELINE_STAGES)
    refuse_unbuilt_stages({stage: {"enabled": True} for stage in contract.PIPELINE_STAGES}, "x")


def test_stages_switched_off_are_not_refused() -> None:
    refuse_unbuilt_stages({"aiReview": {"enabled": False}, "humanReview": HUMAN_OFF}, "x")
    refuse_unbuilt_stages({}, "x")


# --- the workflows' input ----------------------------------------------------------------


def test_only_stages_switched_on_reach_the_workflows() -> None:
    assert starter.pipeline_options(None) is None
    assert starter.pipeline_options({}) is None
    assert starter.pipeline_options({"humanReview": HUMAN_OFF}) is None
    on = {"aiReview": AI_ON, "humanReview": HUMAN_OFF, "backTranslation": BACK_ON}
    assert starter.pipeline_options(on) == PipelineOptions(
        ai_review=True,
        ai_review_threshold=90,
        ai_review_model="openai/reviewer",
        back_translation=True,
    )
    human = {"humanReview": {"enabled": True, "timeoutSeconds": 3, "onTimeout": "fail"}}
    assert starter.pipeline_options(human) == PipelineOptions(
        human_review=True, human_review_timeout_seconds=3, human_review_on_timeout="fail"
    )
    assert starter.pipeline_options({"aiReview": {"enabled": True}}) == PipelineOptions(
        ai_review=True
    )


def _group(pipeline: dict[str, Any] | None) -> tuple[JobGroup, list[Job]]:
    group = JobGroup(
        id="ljg_pipeline000000",
        organization_id="org_pipeline000000",
        engine_id="eng_pipeline000000",
        source_locale="en",
        target_locales=["de"],
        source_ref="0" * 64,
        fingerprint="0" * 64,
        pipeline=pipeline,
    )
    job = Job(
        id="ljb_pipeline000000",
        group_id=group.id,
        organization_id=group.organization_id,
        engine_id=group.engine_id,
        source_locale="en",
        target_locale="de",
    )
    return group, [job]


async def test_the_start_input_carries_the_groups_pipeline_through_temporals_converter() -> None:
    converter = DataConverter.default
    for stored, expected in (
        ({"aiReview": AI_ON}, PipelineOptions(ai_review=True, ai_review_threshold=90,
                                              ai_review_model="openai/reviewer")),
        ({}, None),
        (None, None),  # a row from before pipelines existed
    ):  # fmt: skip
        group_in = starter.group_input(Settings(), *_group(stored))
        assert group_in.pipeline == expected
        (decoded,) = await converter.decode(await converter.encode([group_in]), [GroupInput])
        assert decoded == group_in
        payload = json.loads((await converter.encode([group_in]))[0].data)
        assert payload["pipeline"] == (None if expected is None else vars(expected))


HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize(
    ("name", "kind"), [("group_completed", GroupInput), ("job_completed", LocaleJobInput)]
)
async def test_inputs_recorded_before_pipelines_decode_without_one(
    name: str, kind: type[GroupInput | LocaleJobInput]
) -> None:
    history = WorkflowHistory.from_json(name, json.loads((HISTORIES / f"{name}.json").read_text()))
    started = history.events[0].workflow_execution_started_event_attributes
    assert b"pipeline" not in started.input.payloads[0].data
    (decoded,) = await DataConverter.default.decode(started.input.payloads, [kind])
    assert isinstance(decoded, kind) and decoded.pipeline is None

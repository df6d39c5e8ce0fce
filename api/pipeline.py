"""Pipeline settings at the API's edge: the stored (wire) form of a request's
``pipelineConfig`` and of an engine's ``pipeline``, and the one refusal of stages this server
does not run yet.

Which settings a group's jobs get from the two is ``contract.effective_pipeline``; the
workflows receive them as ``PipelineOptions`` (built by ``starter.py``). The refusal is
applied to what would run: the effective pipeline of a new group, and an engine's pipeline
as it is created or changed. A stage that is switched off is accepted everywhere (there is
nothing to do); one switched on is refused rather than ignored, until it is built and named
in ``STAGES_BUILT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import contract
from api.errors import ValidationError
from api.schemas import PipelineConfig

# The stages this server runs. A stage switched on that is not here is refused with 400.
STAGES_BUILT: frozenset[str] = frozenset(
    {contract.AI_REVIEW, contract.HUMAN_REVIEW, contract.BACK_TRANSLATION}
)


def stored_stages(config: PipelineConfig | None) -> dict[str, dict[str, Any]]:
    """The stages given, in wire form, without null stages or fields: how a pipeline is
    stored, merged and fingerprinted (``{}`` and null are the same as no pipeline)."""
    if config is None:
        return {}
    stages: dict[str, dict[str, Any]] = config.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return stages


def refuse_unbuilt_stages(pipeline: Mapping[str, Any], field: str) -> None:
    """400 naming ``<field>.<stage>.enabled`` for the first stage switched on in ``pipeline``
    (wire form) that this server does not run."""
    for stage in contract.enabled_stages(pipeline):
        if stage not in STAGES_BUILT:
            path = f"{field}.{stage}.enabled"
            problem = f"the {stage} stage is not available on this server yet"
            raise ValidationError(f"{path}: {problem}", [{"path": path, "message": problem}])

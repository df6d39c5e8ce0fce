"""GroupWorkflow: one job group. Starts a LocaleJobWorkflow per target locale, keeps the
group's live state for the ``snapshot`` query, records the terminal state, then lingers so
late signals and idempotent replays still find it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

from workflows import status
from workflows.locale_job import RECORD_TIMEOUT, SIGNAL_JOB_STARTED, LocaleJobWorkflow
from workflows.models import (
    RECORD_GROUP_RESULT,
    GroupInput,
    JobRef,
    LocaleJobInput,
    LocaleJobResult,
    RecordGroupResultInput,
)

SA_ORGANIZATION = SearchAttributeKey.for_keyword("TolkOrganization")
SA_GROUP_STATUS = SearchAttributeKey.for_keyword("TolkGroupStatus")
SA_ENGINE = SearchAttributeKey.for_keyword("TolkEngine")
SA_SOURCE_LOCALE = SearchAttributeKey.for_keyword("TolkSourceLocale")
SA_TARGET_LOCALES = SearchAttributeKey.for_keyword_list("TolkTargetLocales")


def initial_search_attributes(group: GroupInput) -> TypedSearchAttributes:
    """Set by the starter so the group is searchable from its first event."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_ORGANIZATION, group.organization_id),
            SearchAttributePair(SA_GROUP_STATUS, status.GROUP_PENDING),
            SearchAttributePair(SA_ENGINE, group.engine_id),
            SearchAttributePair(SA_SOURCE_LOCALE, group.source_locale),
            SearchAttributePair(SA_TARGET_LOCALES, [job.target_locale for job in group.jobs]),
        ]
    )


@dataclass
class JobState:
    locale: str
    status: str = status.QUEUED
    error: str | None = None


@workflow.defn(name="GroupWorkflow")
class GroupWorkflow:
    @workflow.init
    def __init__(self, group: GroupInput) -> None:
        self._group = group
        self._jobs = {job.job_id: JobState(locale=job.target_locale) for job in group.jobs}
        self._reported_status = status.GROUP_PENDING

    @workflow.run
    async def run(self, group: GroupInput) -> str:
        for job in group.jobs:
            asyncio.create_task(self._run_job(job))  # noqa: RUF006  (tracked via self._jobs)
        await workflow.wait_condition(self._all_terminal)
        final = self._group_status()
        await workflow.execute_activity(
            RECORD_GROUP_RESULT,
            RecordGroupResultInput(group_id=group.group_id, status=final),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary=f"record group {final}",
        )
        # Stay open (idle, no worker needed) so an idempotent replay finds the group.
        await workflow.sleep(timedelta(seconds=group.options.linger_seconds), summary="linger")
        return final

    async def _run_job(self, job: JobRef) -> None:
        group = self._group
        try:
            result: LocaleJobResult = await workflow.execute_child_workflow(
                LocaleJobWorkflow.run,
                LocaleJobInput(
                    job_id=job.job_id,
                    group_id=group.group_id,
                    organization_id=group.organization_id,
                    source_locale=group.source_locale,
                    target_locale=job.target_locale,
                    options=group.options,
                ),
                id=job.job_id,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{group.source_locale} -> {job.target_locale}",
            )
            self._set(job.job_id, result.status, result.error)
        except ChildWorkflowError as err:
            self._set(job.job_id, status.FAILED, str(err.cause or err))

    def _set(self, job_id: str, new_status: str, error: str | None = None) -> None:
        state = self._jobs[job_id]
        state.status, state.error = new_status, error
        self._publish()

    def _publish(self) -> None:
        """Mirror progress where operators and the UI can see it without a worker."""
        group_status = self._group_status()
        done = sum(s.status in status.TERMINAL for s in self._jobs.values())
        locales = ", ".join(s.locale for s in self._jobs.values())
        workflow.set_current_details(
            f"{self._group.source_locale} -> {locales} · {done}/{len(self._jobs)} done"
        )
        if group_status != self._reported_status:
            self._reported_status = group_status
            if self._group.options.search_attributes:
                workflow.upsert_search_attributes([SA_GROUP_STATUS.value_set(group_status)])

    def _all_terminal(self) -> bool:
        return all(state.status in status.TERMINAL for state in self._jobs.values())

    def _group_status(self) -> str:
        return status.group_status(state.status for state in self._jobs.values())

    @workflow.signal(name=SIGNAL_JOB_STARTED)
    def job_started(self, job_id: str) -> None:
        state = self._jobs.get(job_id)
        if state is not None and state.status == status.QUEUED:
            self._set(job_id, status.PROCESSING)

    @workflow.query
    def snapshot(self) -> dict[str, Any]:
        """The WebSocket snapshot shape of the API contract, plus the group status."""
        return {
            "groupId": self._group.group_id,
            "status": self._group_status(),
            **status.counts(state.status for state in self._jobs.values()),
            "jobs": {
                job_id: {"locale": state.locale, "status": state.status}
                | ({"error": state.error} if state.error else {})
                for job_id, state in self._jobs.items()
            },
        }

"""What a group's workflow knows of its jobs, and what it shows of them.

Each job's status and error, the group's event log (``workflows/event_log.py``), and what
is published from them on every change: the compact memo the API reads without a worker,
the details the Temporal UI shows, and the ``TolkGroupStatus`` search attribute. The
workflow class (``workflows/group.py``) decides when jobs start, stop and are recorded;
this module only keeps and shows the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

import contract
from workflows.event_log import MEMO_KEY, LogEntry, encode_memo
from workflows.event_log import snapshot as progress_snapshot
from workflows.messages import GroupInput

# Workflow change marker (``workflow.patched``): the group's event is appended to the log
# once the group's end is recorded in the database, no longer as its last job ends.
GROUP_EVENT_AFTER_RECORD = "group-event-after-record"

SA_ORGANIZATION = SearchAttributeKey.for_keyword("TolkOrganization")
SA_GROUP_STATUS = SearchAttributeKey.for_keyword("TolkGroupStatus")
SA_ENGINE = SearchAttributeKey.for_keyword("TolkEngine")
SA_SOURCE_LOCALE = SearchAttributeKey.for_keyword("TolkSourceLocale")
SA_TARGET_LOCALES = SearchAttributeKey.for_keyword_list("TolkTargetLocales")


@dataclass
class JobState:
    locale: str
    status: str = contract.QUEUED
    error: str | None = None


class GroupState:
    def __init__(self, group: GroupInput) -> None:
        self._source_locale = group.source_locale
        self._search_attributes = group.options.search_attributes
        # A later run of a closed group knows the jobs that ended before it (not run again).
        self.jobs = {
            job.job_id: JobState(
                locale=job.target_locale, status=group.statuses.get(job.job_id, contract.QUEUED)
            )
            for job in group.jobs
        }
        self.log: list[LogEntry] = [list(entry) for entry in group.log]
        self._reported_status = contract.GROUP_PENDING
        # A lean group (workflows/group.py, LEAN_JOBS) writes its memo once per workflow
        # task, however many jobs changed in it; others at every change, as recorded.
        self.lean = False
        self._memo_pending: asyncio.Future[None] | None = None

    def set(self, job_id: str, new_status: str, error: str | None = None) -> None:
        """A job's new status; a terminal one, and each entry into awaiting_review, is
        appended to the event log."""
        state = self.jobs[job_id]
        changed = state.status != new_status
        state.status, state.error = new_status, error
        if changed and new_status in contract.LOGGED:
            self.log.append([job_id, new_status])
            if self.all_terminal() and not (
                self.lean or workflow.patched(GROUP_EVENT_AFTER_RECORD)
            ):
                self.log.append([None, self.group_status()])
            self._upsert_memo()
        self._publish()

    def restore(self, statuses: dict[str, str]) -> None:
        """Put jobs back to the statuses they had (a retry that could requeue nothing)."""
        for job_id, was in statuses.items():
            self.jobs[job_id].status = was
        self._publish()

    def announce(self, group_status: str) -> None:
        """Append the group's event (``[None, status]``) to the log, once it is recorded."""
        self.log.append([None, group_status])
        self._upsert_memo()

    def statuses(self) -> Iterator[str]:
        return (state.status for state in self.jobs.values())

    def all_terminal(self) -> bool:
        return all(status in contract.TERMINAL for status in self.statuses())

    def group_status(self) -> str:
        return contract.group_status(self.statuses())

    def snapshot(self, group_id: str) -> dict[str, Any]:
        """The WebSocket snapshot shape of the API contract, plus the group status."""
        return progress_snapshot(
            group_id, [(job_id, s.locale, s.status, s.error) for job_id, s in self.jobs.items()]
        )

    def _upsert_memo(self) -> None:
        if not self.lean:
            workflow.upsert_memo({MEMO_KEY: encode_memo(list(self.jobs), self.log)})
        elif self._memo_pending is None:
            self._memo_pending = asyncio.ensure_future(self._write_memo())

    async def _write_memo(self) -> None:
        """Once what this workflow task brought has been applied (the coroutines it woke
        run first), the memo as it then stands: one history event for all of it."""
        await asyncio.sleep(0)
        self.flush_memo()

    def flush_memo(self) -> None:
        """Write a memo still pending now (before the workflow returns)."""
        if self._memo_pending is not None:
            self._memo_pending = None
            workflow.upsert_memo({MEMO_KEY: encode_memo(list(self.jobs), self.log)})

    def _publish(self) -> None:
        """Show progress to operators: UI details and the TolkGroupStatus search attribute."""
        group_status = self.group_status()
        done = sum(status in contract.TERMINAL for status in self.statuses())
        locales = ", ".join(s.locale for s in self.jobs.values())
        workflow.set_current_details(
            f"{self._source_locale} -> {locales} · {done}/{len(self.jobs)} done · {group_status}"
        )
        if group_status != self._reported_status:
            self._reported_status = group_status
            if self._search_attributes:
                workflow.upsert_search_attributes([SA_GROUP_STATUS.value_set(group_status)])

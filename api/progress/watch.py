"""One watched group: its poller, its latest snapshot and event log, its subscribers.

A ``GroupWatch`` polls the group workflow's ``progress`` query (snapshot + event log), and
when the query cannot be answered (no worker, or the workflow closed) reads the compact
memo the workflow mirrors on the server. New log entries become ``job.*`` and
``group.completed`` messages, fanned out to every subscriber from its own cursor.

The watch is given what it uses and nothing more: the Temporal client and the database it
reads, its timings, the hub's current poll floor (which depends on how many groups are
watched) and a callback for when its poller ends. The hub wakes it with ``nudge``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from prometheus_client import Counter
from temporalio.client import Client

import contract
from api.progress.messages import Message, is_finished, snapshot_message
from api.progress.subscription import Subscriber
from store import progress_reads
from store.db import Database
from store.tables import Job, JobGroup
from workflows.event_log import MEMO_KEY, LogEntry, decode_memo, latest_statuses, snapshot

log = logging.getLogger("tolk.progress")

# While the database shows an event the workflow's memo does not have yet, the watch looks
# at the memo this often (seconds) for up to a second.
CHASE_SECONDS = 0.05
CHASE_LOOKS = round(1.0 / CHASE_SECONDS)

News = Literal["event", "change", "start"]  # see GroupWatch.behind

POLLS = Counter("tolk_progress_polls_total", "Progress refreshes of watched groups")
QUERIES = Counter("tolk_progress_queries_total", "progress queries sent to group workflows")
QUERY_FAILURES = Counter("tolk_progress_query_failures_total", "progress queries that failed")
MEMO_READS = Counter("tolk_progress_memo_reads_total", "Fallback reads of the progress memo")


class GroupWatch:
    def __init__(
        self,
        group: JobGroup,
        jobs: list[Job],
        *,
        temporal: Client,
        db: Database,
        query_timeout_seconds: float,
        poll_min_seconds: float,
        poll_max_seconds: float,
        floor: Callable[[], float],
        on_end: Callable[[GroupWatch], None],
    ) -> None:
        """``floor``: the shortest poll interval now (the hub's, shared by all watches);
        ``on_end``: called when the poller ends, so that the hub lets go of the watch."""
        self._temporal = temporal
        self._db = db
        self._query_timeout = query_timeout_seconds
        self._poll_min = poll_min_seconds
        self._poll_max = poll_max_seconds
        self._floor = floor
        self._on_end = on_end
        self.group_id = group.id
        self.job_ids = [job.id for job in jobs]
        self.locales = {job.id: job.target_locale for job in jobs}
        self.snapshot: dict[str, Any] = {}
        self.log: list[LogEntry] = []
        # Until the workflow (or its memo) answers: the job rows with no event announced
        # yet. A subscriber never gets an empty snapshot, even while Temporal cannot be
        # reached.
        self.snapshot = self._merged({job.id: (job.status, job.error) for job in jobs}, [])
        self.answered = False  # the workflow or its memo has answered at least once
        self.subscribers: set[Subscriber] = set()
        self.refreshed_at = 0.0
        # After a failed query (no worker, workflow closed) read only the memo for a while.
        self.memo_only_until = 0.0
        self.query_backoff = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # Set by ``nudge`` when the database is ahead of this watch.
        self._wake = asyncio.Event()
        self.started_seen = 0  # the most started jobs the database has woken this watch for
        # What the database showed at the last wake-up: "event" (a job or the group ended),
        # "change" (jobs queued again by a retry), "start" (a job started translating).
        self.news: News | None = None
        # While the workflow has not recorded an event the database shows, each fruitless
        # look makes the next one wait a little longer.
        self.fruitless = 0
        self.quiet_until = 0.0

    @property
    def finished(self) -> bool:
        return is_finished(self.log, self.snapshot)

    @property
    def polling(self) -> bool:
        """Its poller runs."""
        return self._task is not None and not self._task.done()

    def live(self) -> bool:
        """Polled and kept current by its running poller and the change detector."""
        return self.answered and self.polling

    def idle(self) -> bool:
        """Neither a running poller nor subscribers: nothing would ever end it."""
        return not self.polling and not self.subscribers

    def marker(self) -> tuple[int, int, bool, int]:
        """What the database would say if it matched this watch's snapshot (see
        ``progress_reads.progress_markers``): jobs started, jobs terminal, group finished,
        jobs awaiting review."""
        jobs = list(self.snapshot.get("jobs", {}).values())
        started = sum(job["status"] != contract.QUEUED for job in jobs)
        terminal = sum(job["status"] in contract.TERMINAL for job in jobs)
        awaiting = sum(job["status"] == contract.AWAITING_REVIEW for job in jobs)
        return started, terminal, self.finished, awaiting

    def behind(self, stored: tuple[int, int, bool, int]) -> bool:
        """The database knows something this watch does not: a job ended (or was queued
        again by a retry), a job entered awaiting_review (or left it after a reject), the
        group finished, or a job started translating. (The workflow
        says a job is processing as soon as its child starts, before its row does, so only
        more started jobs in the database count as news.)"""
        started, terminal, finished, awaiting = self.marker()
        self.started_seen = min(self.started_seen, stored[0])  # a retry queued jobs again
        self.news = None
        if stored[1] > terminal or stored[3] > awaiting or (stored[2] and not finished):
            self.news = "event"  # looked for every check until the workflow has it
        elif stored[1] != terminal or stored[2] != finished or stored[3] != awaiting:
            self.news = "change"
        elif stored[0] > max(started, self.started_seen):
            # Not an event, only snapshot detail: one refresh per job start is enough. (A
            # busy worker can take seconds to hear of a start; asking every check meanwhile
            # only loaded the Temporal server further.)
            self.started_seen = stored[0]
            self.news = "start"
        return self.news is not None

    def nudge(self, stored: tuple[int, int, bool, int]) -> bool:
        """Wake the poller now if the database (``stored``: its marker for this group) is
        ahead of this watch; return True if woken. Not before the workflow or its memo has
        answered once, nor while the watch waits after a fruitless look."""
        if not self.answered or time.monotonic() < self.quiet_until or not self.behind(stored):
            return False
        self._wake.set()
        return True

    async def refresh(self, max_age: float = 0.0, news: News | None = None) -> bool:
        """Fetch the latest progress (unless fetched within ``max_age`` seconds, e.g. by a
        subscriber that joined at the same moment); return True when anything changed.

        ``news``: what the database shows that this watch has not seen (see ``behind``).
        It is read from the memo, which the workflow upserts in the very workflow task that
        records a job's end and which the server returns without a worker. A query would
        wait for a worker twice, for that workflow task and then for the query itself;
        under load the second wait alone took up to seconds."""
        async with self._lock:
            if time.monotonic() - self.refreshed_at < max_age:
                return False
            POLLS.inc()
            before = (len(self.log), self.snapshot.get("jobs"))
            if news is not None or time.monotonic() < self.memo_only_until:
                await self._refresh_from_memo(rows_only_if_logged=news == "event")
            else:
                try:
                    QUERIES.inc()
                    result = await self._temporal.get_workflow_handle(self.group_id).query(
                        "progress", rpc_timeout=timedelta(seconds=self._query_timeout)
                    )
                    self.snapshot, self.log = result["snapshot"], result["log"]
                    self.answered = True
                    self.query_backoff = 0.0
                except Exception as err:
                    QUERY_FAILURES.inc()
                    self.query_backoff = min(max(self.query_backoff * 2, 1.0), 30.0)
                    self.memo_only_until = time.monotonic() + self.query_backoff
                    log.info(
                        "progress query for %s failed (%s); memo only for %.0fs",
                        self.group_id,
                        err,
                        self.query_backoff,
                    )
                    await self._refresh_from_memo()
            self.refreshed_at = time.monotonic()
            return (len(self.log), self.snapshot.get("jobs")) != before

    async def _refresh_from_memo(self, rows_only_if_logged: bool = False) -> None:
        """The snapshot from the memo's event log and the job rows, read at once; with
        ``rows_only_if_logged`` (an event is due) the rows only once the log has grown.
        A failed read changes nothing (the next wake-up or poll tries again)."""
        MEMO_READS.inc()
        handle = self._temporal.get_workflow_handle(self.group_id)
        rows: dict[str, tuple[str, str | None]] | None = None
        try:
            if rows_only_if_logged:
                description = await handle.describe()
            else:
                description, rows = await asyncio.gather(handle.describe(), self._job_states())
            memo = await description.memo_value(MEMO_KEY, default=None)
            event_log = decode_memo(memo, self.job_ids) if memo else []
            if rows is None:
                if len(event_log) <= len(self.log):
                    return  # not recorded by the workflow yet
                rows = await self._job_states()
        except Exception as err:
            log.warning("progress memo read for %s failed: %s", self.group_id, err)
            return
        if len(event_log) < len(self.log):
            return  # older than what this watch has (the log only grows)
        self.snapshot = self._merged(rows, event_log)
        self.log = event_log
        self.answered = True

    def _merged(
        self, rows: dict[str, tuple[str, str | None]], event_log: list[LogEntry]
    ) -> dict[str, Any]:
        """The snapshot from the job rows and an event log. The rows say whether a job runs
        (or was queued again by a retry); for finished ones the log says which terminal
        status the stream has announced so far (none yet: still processing)."""
        terminal = latest_statuses(event_log)
        known = self.snapshot.get("jobs", {})
        jobs = []
        for job_id in self.job_ids:
            row_status, row_error = rows[job_id]
            if row_status == contract.AWAITING_REVIEW:
                # Awaiting review once the log says so (the stream's job.review_requested).
                logged = terminal.get(job_id) == contract.AWAITING_REVIEW
                job_status = row_status if logged else contract.PROCESSING
            elif row_status not in contract.TERMINAL:
                job_status = row_status  # running, or queued again by a retry
                if job_status == contract.QUEUED and known.get(job_id, {}).get("status") == (
                    contract.PROCESSING
                ):
                    # The workflow said processing when the job's child started; its row
                    # says so once translation begins. Never step back in between.
                    job_status = contract.PROCESSING
            else:  # terminal in the database: as the log has it, or not logged yet
                job_status = terminal.get(job_id, contract.PROCESSING)
            error = row_error if job_status == contract.FAILED else None
            jobs.append((job_id, self.locales[job_id], job_status, error))
        return snapshot(self.group_id, jobs)

    async def _job_states(self) -> dict[str, tuple[str, str | None]]:
        return await self._db.read(
            functools.partial(progress_reads.job_states, group_id=self.group_id)
        )

    def join(self, after: int | None) -> Subscriber:
        """A new subscriber: with ``after=None`` its first message is the current snapshot;
        with ``after=N`` the events after N follow (resume). A resume keeps the client's
        position even where this watch's log is behind it (not answered yet, or the
        client's last stream came from another API process)."""
        sub = Subscriber(cursor=len(self.log) if after is None else after)
        if after is None:
            sub.put(snapshot_message(self.snapshot, len(self.log)))
        self.subscribers.add(sub)
        self.deliver()
        return sub

    def leave(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        self._stop_if_unwatched()

    def deliver(self) -> None:
        built: dict[int, Message] = {}  # one message object per event, shared
        for sub in list(self.subscribers):
            sub.catch_up(self.log, self.snapshot, built)
            if self.finished:
                sub.put(None)
                self.subscribers.discard(sub)
        self._stop_if_unwatched()  # the group ended for everyone

    def _stop_if_unwatched(self) -> None:
        """With no subscriber left, wake the poller so that it ends now, not at its next
        poll (up to ``poll_max_seconds`` away)."""
        if not self.subscribers and self.polling:
            self._wake.set()

    def start(self) -> None:
        """Start the poller, unless it runs already."""
        if not self.polling:
            self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        interval = self._floor()
        chasing = False  # an event the database shows is not in the memo yet
        try:
            while self.subscribers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), CHASE_SECONDS if chasing else interval
                    )
                if not self.subscribers:
                    break  # the last one left (see _stop_if_unwatched)
                nudged = self._wake.is_set()
                self._wake.clear()
                news: News | None = self.news if nudged else ("event" if chasing else None)
                last = self.refreshed_at
                changed = await self.refresh(max_age=0.0 if news else interval / 2, news=news)
                chasing = False
                if changed:
                    self.deliver()
                    self.fruitless, self.quiet_until = 0, 0.0
                elif news in ("event", "change") and self.refreshed_at != last:
                    # Not recorded by the workflow yet. A look is one describe, answered by
                    # the server alone: look every CHASE_SECONDS for a second (a workflow
                    # task takes ~0.1 s, under load up to a second or more), then at the
                    # database checks, less and less often.
                    self.fruitless += 1
                    chasing = news == "event" and self.fruitless < CHASE_LOOKS
                    later = min(self._poll_min * 1.5 ** max(0, self.fruitless - CHASE_LOOKS), 1.0)
                    self.quiet_until = time.monotonic() + (CHASE_SECONDS if chasing else later)
                # News comes as nudges from the database check; this interval is only the
                # safety net, backing off from the fastest poll to the slowest.
                interval = min(interval * 1.5, max(self._poll_max, self._floor()))
        except Exception:
            log.exception("progress watch of %s failed", self.group_id)
            for sub in self.subscribers:
                sub.aborted = True
                sub.put(None)
        finally:
            self._wake.clear()  # a poller started on this watch again begins without news
            self._on_end(self)

"""The progress hub: one poller per watched group, however many subscribers.

A ``GroupWatch`` polls the group workflow's ``progress`` query (snapshot + event log), and
when the query cannot be answered (no worker, or the workflow closed) reads the compact
memo the workflow mirrors on the server. New log entries become ``job.*`` and
``group.completed`` messages, fanned out to every subscriber from its own cursor, so each
subscriber gets exactly one message per event, in log order, whatever the poll timing.
Groups the database already records as finished are streamed from the database alone.

Message ids are event-log positions (see workflows/event_log.py): the snapshot sent on
connect carries the current log length, each event its own position. A client that resumes
after id N gets exactly the events after N.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from prometheus_client import Counter, Gauge
from temporalio.client import Client

import contract
from store import groups, progress_reads
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
NUDGES = Counter("tolk_progress_nudges_total", "Watches woken early because the database was ahead")
WATCHED = Gauge("tolk_progress_watched_groups", "Groups with a running poller")
SUBSCRIBERS = Gauge("tolk_progress_subscribers", "Open WebSocket and SSE subscriptions")


@dataclass
class Message:
    seq: int
    type: str
    body: dict[str, Any]

    @functools.cached_property
    def text(self) -> str:
        """The JSON frame, serialised once however many subscribers receive it."""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False)


def build_message(entry: LogEntry, seq: int, snap: dict[str, Any]) -> Message:
    """The wire message for one event-log entry, carrying the latest snapshot."""
    job_id, entry_status = entry
    if job_id is None:
        body = {"type": "group.completed", "groupId": snap["groupId"], "status": entry_status}
    else:
        job = snap["jobs"].get(job_id, {})
        kind = {contract.FAILED: "job.failed", contract.CANCELLED: "job.cancelled"}.get(
            entry_status, "job.completed"
        )
        body = {"type": kind, "jobId": job_id, "locale": job.get("locale")}
        if kind == "job.failed":
            body["error"] = job.get("error") or "translation failed"
    body["snapshot"] = snap
    return Message(seq=seq, type=body["type"], body=body)


def snapshot_message(snap: dict[str, Any], seq: int) -> Message:
    return Message(seq=seq, type="snapshot", body={"type": "snapshot", "snapshot": snap})


def _is_finished(event_log: list[LogEntry], snap: dict[str, Any]) -> bool:
    """The group is finished now: its log ends with a group event and no retry has made
    jobs run again since (the snapshot says so)."""
    return (
        bool(event_log)
        and event_log[-1][0] is None
        and snap.get("status") in contract.GROUP_TERMINAL
    )


@dataclass(eq=False)  # identity semantics: subscribers live in sets
class Subscriber:
    cursor: int
    # True when the group had already finished and there is nothing after the client's
    # resume point (an SSE reconnect after group.completed: answered with 204).
    nothing_new: bool = False
    # True when the stream ended because the group's watch failed, not because the group
    # finished: the client should reconnect (WebSocket close 1011; SSE reconnects anyway).
    aborted: bool = False
    # Messages not yet taken, and the future a waiting reader sleeps on. (An asyncio.Queue
    # costs four deques, about 3 KB, per subscriber; there may be thousands.)
    _pending: list[Message | None] = field(default_factory=list)
    _waiter: asyncio.Future[None] | None = None

    def put(self, message: Message | None) -> None:
        """Queue a message; None marks the end of the stream."""
        self._pending.append(message)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> Message | None:
        """The next message, or None once the stream is complete."""
        while not self._pending:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pending.pop(0)


class GroupWatch:
    def __init__(self, hub: ProgressHub, group: JobGroup, jobs: list[Job]) -> None:
        self.hub = hub
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
        self.task: asyncio.Task[None] | None = None
        # Set by the hub's change detector when the database is ahead of this watch.
        self.wake = asyncio.Event()
        self.started_seen = 0  # the most started jobs the database has woken this watch for
        # What the database showed at the last wake-up: "event" (a job or the group ended),
        # "change" (jobs queued again by a retry), "start" (a job started translating).
        self.news: News | None = None
        # While the workflow has not recorded an event the database shows, each fruitless
        # look makes the next one wait a little longer.
        self.fruitless = 0
        self.quiet_until = 0.0

    def marker(self) -> tuple[int, int, bool]:
        """What the database would say if it matched this watch's snapshot (see
        ``progress_reads.progress_markers``): jobs started, jobs terminal, group finished."""
        jobs = self.snapshot.get("jobs", {}).values()
        started = sum(job["status"] != contract.QUEUED for job in jobs)
        terminal = sum(job["status"] in contract.TERMINAL for job in jobs)
        return started, terminal, _is_finished(self.log, self.snapshot)

    def behind(self, stored: tuple[int, int, bool]) -> bool:
        """The database knows something this watch does not: a job ended (or was queued
        again by a retry), the group finished, or a job started translating. (The workflow
        says a job is processing as soon as its child starts, before its row does, so only
        more started jobs in the database count as news.)"""
        started, terminal, finished = self.marker()
        self.started_seen = min(self.started_seen, stored[0])  # a retry queued jobs again
        self.news = None
        if stored[1] > terminal or (stored[2] and not finished):
            self.news = "event"  # looked for every check until the workflow has it
        elif stored[1] != terminal or stored[2] != finished:
            self.news = "change"
        elif stored[0] > max(started, self.started_seen):
            # Not an event, only snapshot detail: one refresh per job start is enough. (A
            # busy worker can take seconds to hear of a start; asking every check meanwhile
            # only loaded the Temporal server further.)
            self.started_seen = stored[0]
            self.news = "start"
        return self.news is not None

    def live(self) -> bool:
        """Polled and kept current by its running poller and the change detector."""
        return self.answered and self.task is not None and not self.task.done()

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
                    result = await self.hub.temporal.get_workflow_handle(self.group_id).query(
                        "progress", rpc_timeout=timedelta(seconds=self.hub.query_timeout)
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
        handle = self.hub.temporal.get_workflow_handle(self.group_id)
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
            if row_status not in contract.TERMINAL:
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
        return await self.hub.db.read(
            functools.partial(progress_reads.job_states, group_id=self.group_id)
        )

    def deliver(self) -> None:
        built: dict[int, Message] = {}  # one message object per event, shared
        for sub in list(self.subscribers):
            while sub.cursor < len(self.log):
                sub.cursor += 1
                if sub.cursor not in built:
                    entry = self.log[sub.cursor - 1]
                    built[sub.cursor] = build_message(entry, sub.cursor, self.snapshot)
                sub.put(built[sub.cursor])
            if _is_finished(self.log, self.snapshot):
                sub.put(None)
                self.subscribers.discard(sub)
        self.stop_if_unwatched()  # the group ended for everyone

    def stop_if_unwatched(self) -> None:
        """With no subscriber left, wake the poller so that it ends now, not at its next
        poll (up to ``max_interval`` away)."""
        if not self.subscribers and self.task is not None and not self.task.done():
            self.wake.set()

    async def run(self) -> None:
        hub = self.hub
        interval = hub.floor()
        chasing = False  # an event the database shows is not in the memo yet
        try:
            while self.subscribers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), CHASE_SECONDS if chasing else interval)
                if not self.subscribers:
                    break  # the last one left (see stop_if_unwatched)
                nudged = self.wake.is_set()
                self.wake.clear()
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
                    later = min(hub.min_interval * 1.5 ** max(0, self.fruitless - CHASE_LOOKS), 1.0)
                    self.quiet_until = time.monotonic() + (CHASE_SECONDS if chasing else later)
                # News comes as nudges from the database check; this interval is only the
                # safety net, backing off from the fastest poll to the slowest.
                interval = min(interval * 1.5, max(hub.max_interval, hub.floor()))
        except Exception:
            log.exception("progress watch of %s failed", self.group_id)
            for sub in self.subscribers:
                sub.aborted = True
                sub.put(None)
        finally:
            self.wake.clear()  # a poller started on this watch again begins without news
            if hub.watches.get(self.group_id) is self:
                del hub.watches[self.group_id]
            WATCHED.set(len(hub.watches))


class ProgressHub:
    def __init__(
        self,
        db: Database,
        temporal: Client,
        *,
        min_interval: float = 0.1,
        max_interval: float = 30.0,
        query_timeout: float = 0.5,
        query_budget: float = 50.0,
    ) -> None:
        self.db = db
        self.temporal = temporal
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.query_budget = query_budget
        self.query_timeout = query_timeout
        self.watches: dict[str, GroupWatch] = {}
        self._detector: asyncio.Task[None] | None = None

    async def _detect_changes(self) -> None:
        """Wake the watches the database says are behind, every ``min_interval``.

        A job's end is stored in the database the moment it happens; the group workflow
        learns it a little later. Watches poll their workflow on a schedule bounded by the
        query budget, which with many watched groups is slow; one query over all watched
        groups here tells which of them have news, and only those query their workflow now.
        Events still come from the workflow's log, so ids and order stay the workflow's."""
        while self.watches:
            await asyncio.sleep(self.min_interval)
            try:
                markers = await self.db.read(
                    functools.partial(progress_reads.progress_markers, group_ids=list(self.watches))
                )
            except Exception as err:  # the pollers carry on without the hints
                log.warning("progress change detection failed: %s", err)
                continue
            for group_id, marker in markers.items():
                watch = self.watches.get(group_id)
                if (
                    watch is not None
                    and watch.answered
                    and time.monotonic() >= watch.quiet_until
                    and watch.behind(marker)
                ):
                    NUDGES.inc()
                    watch.wake.set()

    def floor(self) -> float:
        """The shortest poll interval now: fast for a few watched groups, slower for many,
        so all pollers together stay within ``query_budget`` queries per second."""
        return max(self.min_interval, len(self.watches) / self.query_budget)

    async def _finished_or_watch(self, group_id: str, after: int | None) -> Subscriber | GroupWatch:
        """A finished group's whole stream from the database, or the group's watch (created
        from its rows). A function of its own, so that no session or row stays referenced
        from a subscription's frame for the life of the stream."""
        async with self.db.session() as session:
            group = await session.get(JobGroup, group_id)
            if group is None:
                raise LookupError(group_id)
            jobs = await groups.group_jobs(session, group_id)
        if group.status in contract.GROUP_TERMINAL and group.event_log:
            snap = snapshot(group_id, [(j.id, j.target_locale, j.status, j.error) for j in jobs])
            return self._finished(snap, group.event_log, after)
        watch = self.watches.get(group_id)  # another subscriber may have made it meanwhile
        if watch is None:
            watch = self.watches[group_id] = GroupWatch(self, group, jobs)
            WATCHED.set(len(self.watches))
        return watch

    @contextlib.asynccontextmanager
    async def subscribe(self, group_id: str, after: int | None = None) -> AsyncIterator[Subscriber]:
        """Subscribe to a group's messages. With ``after=None`` the first message is the
        current snapshot; with ``after=N`` the events after N follow (resume)."""
        watch = self.watches.get(group_id)
        if watch is None:  # nobody watches it here: read it (a watched group is not finished)
            finished = await self._finished_or_watch(group_id, after)
            if isinstance(finished, Subscriber):
                yield finished
                return
            watch = finished
        if not watch.live():
            # A new watch (or one whose poller ended): ask the workflow now. A live watch
            # is as current as the change detector keeps it; joining costs no query.
            try:
                if await watch.refresh(max_age=self.min_interval):
                    watch.deliver()  # the others get whatever this refresh found first
            except BaseException:  # cancelled (client gone, shutdown): keep no idle watch
                self._forget_idle(group_id, watch)
                raise
            # Meanwhile its poller may have ended (its last subscriber left) and another
            # join made the group a new watch: join that one, the one the hub keeps current.
            current = self.watches.get(group_id)
            if current is not None and current is not watch:
                watch = current
        if _is_finished(watch.log, watch.snapshot):
            self._forget_idle(group_id, watch)  # e.g. made for this join: finished first
            yield self._finished(watch.snapshot, watch.log, after)
            return
        # A resume keeps the client's position even where this watch's log is behind it
        # (not answered yet, or the client's last stream came from another API process).
        sub = Subscriber(cursor=len(watch.log) if after is None else after)
        if after is None:
            sub.put(snapshot_message(watch.snapshot, len(watch.log)))
        watch.subscribers.add(sub)
        watch.deliver()
        if watch.task is None or watch.task.done():
            # Its poller may have ended while this subscriber waited for the refresh.
            self.watches.setdefault(group_id, watch)
            watch.task = asyncio.create_task(watch.run())
        if self._detector is None or self._detector.done():
            self._detector = asyncio.create_task(self._detect_changes())
        SUBSCRIBERS.inc()
        try:
            yield sub
        finally:
            SUBSCRIBERS.dec()
            watch.subscribers.discard(sub)
            watch.stop_if_unwatched()

    def _forget_idle(self, group_id: str, watch: GroupWatch) -> None:
        """Drop the hub's watch of a group if it has neither a running poller nor
        subscribers: nothing would ever remove it otherwise."""
        idle = watch.task is None or watch.task.done()
        if idle and not watch.subscribers and self.watches.get(group_id) is watch:
            del self.watches[group_id]
            WATCHED.set(len(self.watches))

    @staticmethod
    def _finished(snap: dict[str, Any], event_log: list[LogEntry], after: int | None) -> Subscriber:
        """A finished group: snapshot then group.completed, or the events after ``after``."""
        end = len(event_log)
        sub = Subscriber(cursor=end if after is None else min(after, end))
        if after is None:
            sub.put(snapshot_message(snap, end))
            sub.put(build_message(event_log[-1], end, snap))
        sub.nothing_new = sub.cursor == end and after is not None
        while sub.cursor < end:
            sub.cursor += 1
            sub.put(build_message(event_log[sub.cursor - 1], sub.cursor, snap))
        sub.put(None)
        return sub

    async def close(self) -> None:
        if self._detector is not None:
            self._detector.cancel()
        for watch in list(self.watches.values()):
            if watch.task is not None:
                watch.task.cancel()

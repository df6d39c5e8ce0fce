"""The progress hub: one watch per watched group, however many subscribers.

Each watched group has one ``GroupWatch`` (api/progress/watch.py) and one poller, shared by
all its subscribers. One database query every ``poll_min_seconds`` over all watched groups
finds the ones with news and wakes only those; all pollers together stay within the query
budget. Groups the database already records as finished are streamed from the database
alone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from temporalio.client import Client

import contract
from api.progress.subscription import Joined, Subscriber, Subscription, finished_stream
from api.progress.watch import GroupWatch
from store import groups, progress_reads
from store.db import Database
from store.tables import Job, JobGroup
from workflows.event_log import snapshot

log = logging.getLogger("tolk.progress")

NUDGES = Counter("tolk_progress_nudges_total", "Watches woken early because the database was ahead")
WATCHED = Gauge("tolk_progress_watched_groups", "Groups with a running poller")


@dataclass(frozen=True)
class HubOptions:
    """The hub's timings, in seconds. Their values are settings (``settings.hub_options``),
    so they have no defaults here."""

    # The database check's interval, and the fastest safety poll of a watch.
    poll_min_seconds: float
    # The slowest safety poll of a watch without news.
    poll_max_seconds: float
    # How long a progress query may take before the watch reads the memo instead.
    query_timeout_seconds: float
    # Polls per second of all watches together (each polls less often with many groups).
    query_budget_per_second: float


class ProgressHub:
    def __init__(self, db: Database, temporal: Client, options: HubOptions) -> None:
        self.db = db
        self.temporal = temporal
        self.options = options
        self.watches: dict[str, GroupWatch] = {}
        self._detector: asyncio.Task[None] | None = None

    async def _detect_changes(self) -> None:
        """Wake the watches the database says are behind, every ``poll_min_seconds``.

        A job's end is stored in the database the moment it happens; the group workflow
        learns it a little later. Watches poll their workflow on a schedule bounded by the
        query budget, which with many watched groups is slow; one query over all watched
        groups here tells which of them have news, and only those query their workflow now.
        Events still come from the workflow's log, so ids and order stay the workflow's."""
        while self.watches:
            await asyncio.sleep(self.options.poll_min_seconds)
            try:
                markers = await self.db.read(
                    functools.partial(progress_reads.progress_markers, group_ids=list(self.watches))
                )
            except Exception as err:  # the pollers carry on without the hints
                log.warning("progress change detection failed: %s", err)
                continue
            for group_id, marker in markers.items():
                watch = self.watches.get(group_id)
                if watch is not None and watch.nudge(marker):
                    NUDGES.inc()

    def floor(self) -> float:
        """The shortest poll interval now: fast for a few watched groups, slower for many,
        so all pollers together stay within the query budget."""
        options = self.options
        return max(options.poll_min_seconds, len(self.watches) / options.query_budget_per_second)

    def new_watch(self, group: JobGroup, jobs: list[Job]) -> GroupWatch:
        """A watch of the group on this hub's Temporal client, database and budget. The
        hub keeps it once a subscriber joins, until its poller ends."""
        return GroupWatch(
            group,
            jobs,
            temporal=self.temporal,
            db=self.db,
            query_timeout_seconds=self.options.query_timeout_seconds,
            poll_min_seconds=self.options.poll_min_seconds,
            poll_max_seconds=self.options.poll_max_seconds,
            floor=self.floor,
            on_end=self._forget,
        )

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
            return finished_stream(snap, group.event_log, after)
        watch = self.watches.get(group_id)  # another subscriber may have made it meanwhile
        if watch is None:
            watch = self.watches[group_id] = self.new_watch(group, jobs)
            WATCHED.set(len(self.watches))
        return watch

    def subscribe(self, group_id: str, after: int | None = None) -> Subscription:
        """A subscription to a group's messages, joined when opened. With ``after=None``
        the first message is the current snapshot; with ``after=N`` the events after N
        follow (resume)."""
        return Subscription(functools.partial(self._join, group_id, after))

    async def _join(self, group_id: str, after: int | None) -> Joined:
        """The subscriber, and how it leaves the group's watch (None: a finished group's
        stream, served by no watch)."""
        watch = self.watches.get(group_id)
        if watch is None:  # nobody watches it here: read it (a watched group is not finished)
            finished = await self._finished_or_watch(group_id, after)
            if isinstance(finished, Subscriber):
                return finished, None
            watch = finished
        if not watch.live():
            # A new watch (or one whose poller ended): ask the workflow now. A live watch
            # is as current as the change detector keeps it; joining costs no query.
            try:
                if await watch.refresh(max_age=self.options.poll_min_seconds):
                    watch.deliver()  # the others get whatever this refresh found first
            except BaseException:  # cancelled (client gone, shutdown): keep no idle watch
                self._forget_idle(watch)
                raise
            # Meanwhile its poller may have ended (its last subscriber left) and another
            # join made the group a new watch: join that one, the one the hub keeps current.
            current = self.watches.get(group_id)
            if current is not None and current is not watch:
                watch = current
        if watch.finished:
            self._forget_idle(watch)  # e.g. made for this join: finished first
            return finished_stream(watch.snapshot, watch.log, after), None
        sub = watch.join(after)
        if not watch.polling:
            # Its poller may have ended while this subscriber waited for the refresh.
            self.watches.setdefault(group_id, watch)
            watch.start()
        if self._detector is None or self._detector.done():
            self._detector = asyncio.create_task(self._detect_changes())
        return sub, functools.partial(watch.leave, sub)

    def _forget(self, watch: GroupWatch) -> None:
        """Let go of a watch whose poller ended (unless the group has a newer watch)."""
        if self.watches.get(watch.group_id) is watch:
            del self.watches[watch.group_id]
        WATCHED.set(len(self.watches))

    def _forget_idle(self, watch: GroupWatch) -> None:
        """Drop the hub's watch of a group if it has neither a running poller nor
        subscribers: nothing would ever remove it otherwise."""
        if watch.idle():
            self._forget(watch)

    async def close(self) -> None:
        if self._detector is not None:
            self._detector.cancel()
        for watch in list(self.watches.values()):
            watch.stop()

"""One subscriber's side of a progress stream: the queue its route reads from, and the
subscription a route opens and closes.

A subscriber holds its own cursor into the group's event log, so it gets exactly one
message per event, in log order, whatever the poll timing and however many others share
the group's watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge

from api.progress.messages import Message, build_message, snapshot_message
from workflows.event_log import LogEntry

SUBSCRIBERS = Gauge("tolk_progress_subscribers", "Open WebSocket and SSE subscriptions")


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

    def catch_up(
        self, event_log: list[LogEntry], snap: dict[str, Any], built: dict[int, Message]
    ) -> None:
        """Queue the events after the cursor. ``built`` holds the messages made so far
        for this log, so that subscribers served together share one object per event."""
        while self.cursor < len(event_log):
            self.cursor += 1
            if self.cursor not in built:
                built[self.cursor] = build_message(event_log[self.cursor - 1], self.cursor, snap)
            self.put(built[self.cursor])


def finished_stream(
    snap: dict[str, Any], event_log: list[LogEntry], after: int | None
) -> Subscriber:
    """A finished group's whole stream: snapshot then group.completed, or the events after
    ``after``, then the end."""
    end = len(event_log)
    sub = Subscriber(cursor=end if after is None else min(after, end))
    if after is None:
        sub.put(snapshot_message(snap, end))
        sub.put(build_message(event_log[-1], end, snap))
    sub.nothing_new = sub.cursor == end and after is not None
    sub.catch_up(event_log, snap, {})
    sub.put(None)
    return sub


# What joining a group gives: the subscriber, and how it leaves the group's watch (None
# for a finished group's stream, which no watch serves).
Joined = tuple[Subscriber, Callable[[], None] | None]
Join = Callable[[], Awaitable[Joined]]


class Subscription:
    """A route's subscription to one group: ``async with hub.subscribe(group_id) as sub``.

    Opening joins the group (a LookupError for an unknown one); closing leaves its watch,
    however the stream ended. A route whose stream outlives one block calls ``open`` and
    ``close`` by name: the SSE route answers after opening and its response closes it,
    and the WebSocket route turns a failed open into a refusal before the upgrade."""

    def __init__(self, join: Join) -> None:
        self._join = join
        self._leave: Callable[[], None] | None = None

    async def open(self) -> Subscriber:
        sub, self._leave = await self._join()
        if self._leave is not None:
            SUBSCRIBERS.inc()
        return sub

    def close(self) -> None:
        """Leave the group's watch; closing again, or a subscription that never opened,
        does nothing."""
        leave, self._leave = self._leave, None
        if leave is not None:
            SUBSCRIBERS.dec()
            leave()

    async def __aenter__(self) -> Subscriber:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

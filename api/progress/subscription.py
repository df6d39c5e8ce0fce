"""One subscriber's side of a progress stream: the queue its route reads from.

A subscriber holds its own cursor into the group's event log, so it gets exactly one
message per event, in log order, whatever the poll timing and however many others share
the group's watch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from api.progress.messages import Message, build_message, snapshot_message
from workflows.event_log import LogEntry


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

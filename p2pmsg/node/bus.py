"""Fan-out of NodeEvents to any number of independent subscribers.

Each subscriber has its own bounded buffer, so a slow consumer (a TUI busy
painting, a `listen` process whose stdout is a slow pipe) can never grow memory
without bound nor slow the node down: `publish` never awaits. When a buffer is
full, the oldest *progress* event (transfer progress, session status,
discovery churn, security-log echoes) is dropped first; events a user must
never miss (messages, receipts, identity changes, alerts) are kept, and are only
dropped when the buffer holds nothing else, which a bounded buffer must allow.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from p2pmsg.node.api import (
    MonitorChanged,
    NodeEvent,
    PeerDiscovered,
    PeerLost,
    PeerUpdated,
    SecurityEventLogged,
    SessionChanged,
    TransferUpdated,
)

log = logging.getLogger(__name__)

DEFAULT_BUFFER = 10_000

_PROGRESS = (
    TransferUpdated,
    SessionChanged,
    SecurityEventLogged,
    PeerUpdated,
    PeerDiscovered,
    PeerLost,
    MonitorChanged,
)


def is_progress(event: NodeEvent) -> bool:
    return isinstance(event, _PROGRESS)


class Subscription:
    def __init__(self, bus: EventBus, limit: int) -> None:
        self._bus = bus
        self._limit = limit
        self._buffer: deque[NodeEvent] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def _push(self, event: NodeEvent) -> None:
        if len(self._buffer) >= self._limit:
            self._drop_one()
        self._buffer.append(event)
        self._wakeup.set()

    def _drop_one(self) -> None:
        self.dropped += 1
        for index, queued in enumerate(self._buffer):
            if is_progress(queued):
                del self._buffer[index]
                return
        self._buffer.popleft()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        self._bus._subscriptions.discard(self)

    def __aiter__(self) -> AsyncIterator[NodeEvent]:
        return self

    async def __anext__(self) -> NodeEvent:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._buffer.popleft()

    def drain(self) -> list[NodeEvent]:
        """Everything buffered right now, without waiting (handy for tests and batching)."""
        events = list(self._buffer)
        self._buffer.clear()
        return events


class EventBus:
    def __init__(self, buffer: int = DEFAULT_BUFFER) -> None:
        self._buffer = buffer
        self._subscriptions: set[Subscription] = set()
        self._watchers: list[Callable[[NodeEvent], None]] = []

    def watch(self, callback: Callable[[NodeEvent], None]) -> None:
        """Call `callback` with each event inside `publish`, before it returns.

        For a consumer whose output must come before the node acts on the event:
        `listen` prints a message before its delivery receipt is written, so a kill
        cannot fall between a receipt leaving and the line being printed (a buffered
        subscription would print it a loop turn later). The callback runs on the
        event loop and must be quick; an exception from it is logged, not raised.
        """
        self._watchers.append(callback)

    def subscribe(self, buffer: int | None = None) -> Subscription:
        sub = Subscription(self, buffer or self._buffer)
        self._subscriptions.add(sub)
        return sub

    def publish(self, event: NodeEvent) -> None:
        for watcher in self._watchers:
            try:
                watcher(event)
            except Exception:  # a consumer's bug must not stop delivery
                log.exception("an event watcher failed on %s", type(event).__name__)
        for sub in tuple(self._subscriptions):
            sub._push(event)

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscriptions or self._watchers)

    def close(self) -> None:
        for sub in tuple(self._subscriptions):
            sub.close()

"""The node's security event log: every place that notices something writes here.

`record()` is synchronous, constant time and never blocks the event loop: it
makes the one `SecurityEvent` record (p2pmsg.security_events), appends it to a
bounded in-memory queue, hands it as is to the monitor, and echoes it on the
event bus in the API's JSON shape (the TUI's live view, `listen --json`). A
single flusher task writes the queue to the store in batches, one transaction
per batch, on the store's worker thread.

A hostile peer can make us log an event per packet, so the queue is bounded:
when it is full the *newest* events are counted rather than queued for the
store (the oldest already tell the story of the attack; the monitor still
sees every one), and the next batch carries one
synthetic `rate_limited` event with `{"reason": "event_log_overflow",
"dropped": N}` so the gap is visible in the log itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import SecurityEventLogged
from p2pmsg.node.bus import EventBus
from p2pmsg.node.tasks import cancel_and_wait
from p2pmsg.security_events import SecurityEvent
from p2pmsg.store import AsyncStore, Store

log = logging.getLogger(__name__)

DEFAULT_QUEUE_LIMIT = 20_000
BATCH_LIMIT = 2_000


class EventObserver(Protocol):
    """What the security log feeds (the live monitor)."""

    def observe(self, event: SecurityEvent) -> None: ...


class SecurityLog:
    def __init__(
        self,
        store: AsyncStore,
        bus: EventBus,
        clock: Callable[[], float],
        *,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._queue: deque[SecurityEvent] = deque()
        self._queue_limit = queue_limit
        self._dropped = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._observers: list[EventObserver] = []
        self.written = 0

    def add_observer(self, observer: EventObserver) -> None:
        self._observers.append(observer)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_loop(), name="p2pmsg-security-log")

    def record(
        self,
        event: str,
        *,
        peer: str | None = None,
        addr: str | None = None,
        nbytes: int = 0,
        detail: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> None:
        entry = SecurityEvent(
            ts=self._clock() if ts is None else ts,
            event=event,
            peer=peer,
            addr=addr,
            bytes=int(nbytes),
            detail=detail or {},
        )
        if len(self._queue) >= self._queue_limit:
            self._dropped += 1  # the store misses it; the monitor and the live view do not
        else:
            self._queue.append(entry)
        self._wakeup.set()
        if self._bus.has_subscribers:
            self._bus.publish(SecurityEventLogged(entry.to_dict()))
        for observer in self._observers:
            try:
                observer.observe(entry)
            except Exception:  # a monitor bug must not take the node down
                log.exception("security event observer failed")

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def dropped(self) -> int:
        return self._dropped

    async def _flush_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything queued so far (called by the loop, and at shutdown)."""
        while self._queue or self._dropped:
            batch = [self._queue.popleft() for _ in range(min(BATCH_LIMIT, len(self._queue)))]
            if self._dropped:
                batch.append(
                    SecurityEvent(
                        ts=self._clock(),
                        event="rate_limited",
                        detail={"reason": "event_log_overflow", "dropped": self._dropped},
                    )
                )
                self._dropped = 0
            try:
                # Shielded: cancelling the flusher (at stop) must not cancel a write that
                # is still queued on the store thread; the batch is already out of the queue.
                await asyncio.shield(self._store.run(Store.append_events, batch))
                self.written += len(batch)
            except P2PMsgError as exc:
                # The store is gone (disk full, closing): the events are lost, the node is not.
                log.warning("could not write %d security events: %s", len(batch), exc)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()

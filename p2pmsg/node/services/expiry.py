"""Disappearing messages: delete bodies when their deadline passes.

A deadline is set when a message is read (by us, or by the peer's read
receipt). This task sleeps until the earliest deadline in the store, or until
`wake()` says a new one may be earlier, then purges on the store thread and
tells subscribers which bodies are gone.

Group posts too (store/groups.py): their texts are deleted at their deadline and
`on_group_texts_gone` (the group service) turns the posts held into stubs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import MessagesExpired
from p2pmsg.node.bus import EventBus
from p2pmsg.node.tasks import cancel_and_wait
from p2pmsg.store import AsyncStore, Store

log = logging.getLogger(__name__)

#: Re-check at least this often, so a clock change cannot postpone a deletion for long.
MAX_SLEEP = 60.0


class ExpiryTimer:
    def __init__(self, store: AsyncStore, bus: EventBus, clock: Callable[[], float]) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Told which group posts' texts were deleted: {group id: [(author, seq)]}.
        self.on_group_texts_gone: (
            Callable[[dict[bytes, list[tuple[bytes, int]]]], Awaitable[None]] | None
        ) = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="p2pmsg-expiry")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def purge_now(self) -> dict[str, list[bytes]]:
        expired = await self._store.run(Store.purge_expired, self._clock())
        for peer, ids in expired.items():
            self._bus.publish(MessagesExpired(peer, tuple(i.hex() for i in ids)))
        gone = await self._store.run(Store.purge_group_texts, self._clock())
        if gone and self.on_group_texts_gone is not None:
            await self.on_group_texts_gone(gone)
        return expired

    async def _next_deadline(self) -> float | None:
        deadlines = [
            d
            for d in (
                await self._store.run(Store.next_expiry),
                await self._store.run(Store.next_group_expiry),
            )
            if d is not None
        ]
        return min(deadlines, default=None)

    async def _run(self) -> None:
        while True:
            try:
                await self.purge_now()
                deadline = await self._next_deadline()
            except P2PMsgError as exc:
                log.warning("disappearing-message purge failed: %s", exc)
                deadline = None
            delay = (
                MAX_SLEEP
                if deadline is None
                else min(MAX_SLEEP, max(0.0, deadline - self._clock()))
            )
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)

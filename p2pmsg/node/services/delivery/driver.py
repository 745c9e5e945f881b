"""`Delivery`: the asyncio driver of the delivery core (core.py holds the logic).

What is left here is what needs an event loop: the pipeline task that runs
each batch's work on the store thread (`AsyncStore.run_to_completion`, so the
loop never waits on SQLite and a stop cannot drop a batch already queued),
one timer for the core's deadline, the futures of `submit` and `wait_status`
callers, and back-pressure in both directions: a session stops reading while
its peer's chats waiting for the store are past the core's per-peer bound (or
all peers' past theirs and it has some waiting: `DeliveryCore.may_read`), and
the pipeline lets the sessions it wrote to drain before it takes the next batch.

Time: the core's `now` is the loop's monotonic clock (its timers are delays);
the rows the store writes are stamped with the node's injected wall `clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import MessageReceived, MessageStatus, MessageStatusChanged, MessageView
from p2pmsg.node.bus import EventBus
from p2pmsg.node.channel import Channel
from p2pmsg.node.services.delivery.actions import (
    Accepted,
    Action,
    DeadlinesChanged,
    Note,
    Publish,
    PublishReceived,
    Refused,
    Send,
    StatusChanged,
)
from p2pmsg.node.services.delivery.core import DeliveryCore
from p2pmsg.node.services.delivery.pending import MAX_SUBMITS_PER_BATCH, Batch
from p2pmsg.node.services.delivery.transaction import apply
from p2pmsg.node.services.delivery.views import received_view
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.protocol.messages import Chat, Receipt
from p2pmsg.store import AsyncStore, Store

log = logging.getLogger(__name__)

Reply = asyncio.Future[Any]  # a submit's future: one view, or a list for submit_many


def _expire(waiter: asyncio.Future[MessageStatus | None]) -> None:
    if not waiter.done():
        waiter.set_result(None)  # timed out: the caller reads the status from the store


class Delivery:
    """The outbox and inbox of one node (see the package docstring for its promises)."""

    def __init__(
        self, store: AsyncStore, bus: EventBus, security: SecurityLog, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._bus = bus
        self._security = security
        self._clock = clock
        self._core: DeliveryCore[Reply] = DeliveryCore()
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # nothing pending and no batch on the store thread
        self._idle.set()
        self._current: Batch[Reply] | None = None  # the batch on the store thread
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        # Set each time a batch takes received chats: a session waiting to read checks again.
        self._inbound_taken = asyncio.Event()
        self._waiters: dict[bytes, list[asyncio.Future[MessageStatus | None]]] = {}
        self.on_deadlines_changed: Callable[[], None] = lambda: None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="p2pmsg-delivery")

    async def stop(self) -> None:
        """Finish what is queued (so nothing accepted is lost), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.flushed(), timeout=5.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._set_timer(None)
        replies = self._core.unanswered()
        if self._current is not None:
            replies += self._current.replies
        for reply in replies:
            if not reply.done():
                reply.set_exception(P2PMsgError("the node is stopping"))
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()

    async def flushed(self) -> None:
        """Wait until every queued job has been applied, lazy marks included."""
        self._core.flush_marks()
        self._pump()
        while self._core.has_pending or not self._idle.is_set():
            self._core.hurry()
            self._pump()
            await self._idle.wait()
            await asyncio.sleep(0)

    # --- inputs (all synchronous, from the event loop) ---------------------------------

    def submit(self, peer: str, text: str, ttl: float | None) -> asyncio.Future[MessageView]:
        """Commit a message for `peer`; it is sent as soon as a session is ready.

        The future (await it) resolves once the message is stored. A plain function,
        not a coroutine: `send_text` runs once per message, and a coroutine frame per
        call between it and this future was a measurable part of its cost (hence also
        no `_pump`: a submit only ever asks for a batch)."""
        future: asyncio.Future[MessageView] = asyncio.get_running_loop().create_future()
        self._core.submit(peer, text, ttl, future)
        self._wakeup.set()
        return future

    async def submit_many(
        self, peer: str, texts: list[str], ttl: float | None
    ) -> list[MessageView]:
        """Like `submit` for many texts at once, stored in order in as few batches as fit
        (one future per part, not per text)."""
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[list[MessageView]]] = []
        for start in range(0, len(texts), MAX_SUBMITS_PER_BATCH):
            futures.append(loop.create_future())
            part = texts[start : start + MAX_SUBMITS_PER_BATCH]
            self._core.submit_many(peer, part, ttl, futures[-1])
        self._wakeup.set()
        if len(futures) == 1:
            return await futures[0]
        return [view for part in await asyncio.gather(*futures) for view in part]

    def session_ready(self, channel: Channel) -> None:
        """A session to this peer is authenticated and trusted: send its backlog."""
        self._core.session_ready(channel)
        self._pump()

    def session_closed(self, channel: Channel) -> None:
        self._core.session_closed(channel)
        self._pump()

    def chats_received(self, channel: Channel, chats: list[Chat]) -> None:
        self._core.chats_received(channel, chats)
        self._pump()

    def receipt_received(self, peer: str, receipt: Receipt) -> None:
        self._core.receipt_received(peer, receipt, asyncio.get_running_loop().time())
        self._pump()

    def read_locally(self, peer: str, ids: list[bytes]) -> None:
        """The user read these incoming messages (the store marked their receipts owed)."""
        self._core.read_locally(peer, ids)
        self._pump()

    async def inbound_room(self, peer: str) -> None:
        """A session awaits this before reading more from `peer`: chats received and not
        yet stored stay bounded, per peer and in all (`DeliveryCore.may_read`)."""
        while not self._core.may_read(peer):
            await self._inbound_taken.wait()

    # --- queries -----------------------------------------------------------------------

    def recent_status(self, message_id: bytes) -> MessageStatus | None:
        """A final status announced lately (the store write may still be pending)."""
        return self._core.recent_status(message_id)

    async def wait_status(self, message_id: bytes, timeout: float) -> MessageStatus:
        """Wait until the message is delivered or read; on timeout, its status then."""
        recent = self._core.recent_status(message_id)
        if recent is not None:
            return recent
        # An id in flight on a live session is stored and not acknowledged yet: its receipt
        # is announced on this loop, so the waiter below cannot miss it. Anything else
        # asks the store (which also says whether the id exists).
        if not self._core.on_wire(message_id):
            record = await self._store.run(Store.get_message, message_id)
            if record is None:
                raise P2PMsgError(f"no message with id {message_id.hex()}")
            if record.status in ("delivered", "read", "failed"):
                return record.status
            recent = self._core.recent_status(message_id)
            if recent is not None:
                return recent
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[MessageStatus | None] = loop.create_future()
        self._waiters.setdefault(message_id, []).append(waiter)
        # A timer that answers None, not wait_for: that costs two more loop turns per wait.
        expiry = loop.call_later(timeout, _expire, waiter)
        try:
            status = await waiter
            if status is not None:
                return status
            record = await self._store.run(Store.get_message, message_id)
            return record.status if record is not None else "failed"
        finally:
            expiry.cancel()
            waiters = self._waiters.get(message_id)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
                if not waiters:
                    del self._waiters[message_id]

    # --- the pipeline ------------------------------------------------------------------

    async def _run(self) -> None:
        core = self._core
        try:  # before any batch: every incoming row up to here is from an earlier run
            core.started(await self._store.run(Store.last_seq))
        except P2PMsgError as exc:
            log.error("delivery: reading the store failed: %s", exc)
        loop = asyncio.get_running_loop()
        while True:
            batch = core.next_batch()
            if batch is None:
                # Lazy work alone waits for a kick: new work, its timer, or flushed().
                if not core.has_pending:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._idle.clear()
            self._set_timer(core.deadline)  # a lazy deadline is off: its work rides along
            if batch.incoming:  # wake the sessions waiting to read; each checks its own room
                self._inbound_taken.set()
                self._inbound_taken = asyncio.Event()
            self._current = batch  # until answered: a stop fails its submits
            try:
                # To completion: a stop that cancels this task must not drop a batch still
                # queued on the store thread (its futures and receipts depend on it).
                result = await self._store.run_to_completion(apply, batch.work, self._clock())
            except P2PMsgError as exc:  # the store itself failed (closed, disk gone)
                log.error("delivery batch failed: %s", exc)
                self._current = None
                core.store_failed(batch, exc)
                self._pump()
                continue
            self._current = None
            touched = core.stored(batch, result, loop.time())
            self._pump()
            for channel in touched:  # back-pressure: let the socket catch up
                if channel.is_open:
                    await channel.drained()

    def _pump(self) -> None:
        """After any input: do what the core asks, wake the pipeline, follow its deadline."""
        core = self._core
        actions = core.take_actions()
        if actions:
            self._perform(actions)
        if core.wants_batch:
            self._wakeup.set()
        if core.deadline != self._timer_at:
            self._set_timer(core.deadline)

    def _perform(self, actions: list[Action[Reply]]) -> None:
        for action in actions:
            match action:
                case Send(channel, messages):
                    channel.send_messages(messages)
                case StatusChanged(peer, ids, status):
                    self._status_changed(peer, ids, status)
                case PublishReceived(peer, chats):
                    if self._bus.has_subscribers:
                        for chat in chats:
                            self._bus.publish(MessageReceived(received_view(peer, chat)))
                case Accepted(replies, results):
                    for reply, view in zip(replies, results, strict=True):
                        if not reply.done():
                            reply.set_result(view)
                case Refused(replies, error):
                    for reply in replies:
                        if not reply.done():
                            reply.set_exception(error)
                case Note(event, peer, nbytes, detail):
                    self._security.record(event, peer=peer, nbytes=nbytes, detail=detail)
                case Publish(event):
                    self._bus.publish(event)
                case DeadlinesChanged():
                    self.on_deadlines_changed()

    def _status_changed(self, peer: str, ids: list[bytes], status: MessageStatus) -> None:
        self._bus.publish(MessageStatusChanged(peer, tuple(i.hex() for i in ids), status))
        if status not in ("delivered", "read"):
            return
        for message_id in ids:
            for waiter in self._waiters.pop(message_id, ()):
                if not waiter.done():
                    waiter.set_result(status)

    def _set_timer(self, deadline: float | None) -> None:
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline, self._timer_at = self._timer_at, None
        # A loop may run a timer a clock tick early: never tell the core it is earlier
        # than the deadline it asked for (aioquic's asyncio shell does the same).
        now = asyncio.get_running_loop().time()
        self._core.handle_timer(now if deadline is None else max(now, deadline))
        self._pump()

"""Delivery: store first, send in order, acknowledge only what is stored, never show twice.

The delivery promises (README, "Chatting from scripts") and where each is kept:

* *A message is written to the store before it is sent.* `submit` resolves only
  after `enqueue_outgoing_many` committed; bytes go to a session afterwards.
* *The receipt marks it delivered.* Receipts arrive in batches
  (`Receipt(ids=[...])`) and become one `mark_delivered_many` per batch.
* *Queued messages go out in order when the peer appears.* When a session
  becomes ready, the peer's outbox (queued and sent-but-unacknowledged) is read
  back in `seq` order and sent before any newer message to that peer.
* *The receiver de-duplicates by id, and acknowledges only what it stored.* A
  delivery receipt is sent after `insert_incoming_many` committed, for new and
  duplicate ids alike (a duplicate means our earlier receipt was lost). A kill -9
  at any moment therefore causes at most a resend, which the id absorbs.
* *Nothing stored goes unshown.* A kill -9 after a message is stored and before it
  is shown (or its receipt left) makes the sender resend it; a resend of an unread
  message stored before this run started is published again, once per run, as
  `MessageReceived(replayed=True)` with the same id. So a reader such as `listen`
  sees every message at least once; a second time only after a crash, same id.

Everything runs through one pipeline task. Work accumulates while the previous
batch is on the store thread; the next batch takes all of it at once, so under
load the store sees one transaction per step per batch and the event loop never
waits on SQLite. At low load a batch is one message and adds no delay. Jobs in
one batch are applied in a fixed order (backlogs, then incoming, receipts, new
messages) so that a message is never both in a backlog and sent as new.

Two writes are bookkeeping, not promises, and wait to ride along with other
work: the "sent" mark (a display state between "queued" and "delivered", both
of which are resent after a restart) and a delivery receipt for ids in flight
on the live session (announced at once; a crash before the write means a
resend that the peer de-duplicates and acknowledges again). A "sent" mark is
only written for ids still unacknowledged one tick after they went out, and a
receipt waits up to `LAZY_WRITE_DELAY` for the next batch: at low load the
round trip then costs one transaction on each side, not three.

The hot path builds no record per message on the store thread: the store
answers with ids and sequence numbers, and views are made here for the callers
that asked (a `send_text` caller, bus subscribers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import MessageReceived, MessageStatus, MessageStatusChanged, MessageView
from p2pmsg.node.bus import EventBus
from p2pmsg.node.channel import Channel
from p2pmsg.node.security_log import SecurityLog
from p2pmsg.protocol.limits import MAX_RECEIPT_IDS
from p2pmsg.protocol.messages import Chat, Receipt, ReceiptStatus
from p2pmsg.store import (
    AsyncStore,
    EnqueuedBatch,
    IncomingMessage,
    MessageRecord,
    PeerRecord,
    Store,
)

log = logging.getLogger(__name__)

#: Most new messages taken into one batch: big enough to amortise a transaction,
#: small enough that the first messages are on the wire while later ones are stored.
#: (A `submit_many` call is cut into parts of at most this many.)
MAX_SUBMITS_PER_BATCH = 4096
#: Incoming chats buffered (not yet stored) before sessions stop reading their sockets.
INBOUND_HIGH_WATER = 16_384
#: "sent" is only a display state between "queued" and "delivered" (both of which are
#: resent after a reconnect), so it is recorded lazily: only ids still unacknowledged
#: one to two ticks after they went out are written; the others never need the write.
SENT_MARK_DELAY = 0.25
#: Longest a receipt for ids in flight (already announced) waits for a batch to ride on.
LAZY_WRITE_DELAY = 0.05
RECENT_STATUSES = 100_000
#: Messages from before a crash shown again in one run at most (each once): a peer that
#: resends old ids cannot make us show them forever.
MAX_REPLAYS = 65_536


def message_view(record: MessageRecord) -> MessageView:
    return MessageView(
        id=record.id.hex(),
        peer=record.peer,
        direction=record.direction,
        text=record.text,
        created=record.created,
        status=record.status,
        ttl=record.ttl,
        deadline=record.deadline,
    )


def wire_ttl(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, int(-(-ttl // 1)))  # whole seconds, rounded up


def chat_for(record: MessageRecord) -> Chat:
    return Chat(record.id, record.created, record.text or "", wire_ttl(record.ttl))


def receipts_for(ids: Sequence[bytes], status: MessageStatus) -> list[Receipt]:
    kind: ReceiptStatus = "read" if status == "read" else "delivered"
    return [
        Receipt(tuple(ids[i : i + MAX_RECEIPT_IDS]), kind)
        for i in range(0, len(ids), MAX_RECEIPT_IDS)
    ]


@dataclass(slots=True)
class _Submit:
    """One `submit` call: one text, one future."""

    peer: str
    text: str
    ttl: float | None
    future: asyncio.Future[MessageView]


@dataclass(slots=True)
class _BulkSubmit:
    """A part of one `submit_many` call: many texts, one future (not one per text)."""

    peer: str
    texts: list[str]
    ttl: float | None
    future: asyncio.Future[list[MessageView]]


@dataclass
class _Batch:
    """Everything taken from the queues for one trip to the store thread."""

    ready: dict[str, Channel] = field(default_factory=dict)
    incoming: dict[str, list[tuple[Channel, list[Chat]]]] = field(default_factory=dict)
    receipts: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    submits: list[_Submit | _BulkSubmit] = field(default_factory=list)
    sent: dict[str, list[bytes]] = field(default_factory=dict)
    reads_due: set[str] = field(default_factory=set)  # peers owed read receipts, now live
    reads_told: dict[str, list[bytes]] = field(default_factory=dict)  # handed to a session
    replay_up_to: int = 0  # duplicates stored up to this seq (before we started) show again

    def __bool__(self) -> bool:
        return bool(
            self.ready
            or self.incoming
            or self.receipts
            or self.submits
            or self.sent
            or self.reads_due
            or self.reads_told
        )


@dataclass
class _Result:
    backlogs: dict[str, tuple[PeerRecord | None, list[MessageRecord]]] = field(default_factory=dict)
    stored_incoming: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # pos, seq
    receipt_changes: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    enqueued: list[tuple[list[_Submit | _BulkSubmit], EnqueuedBatch | BaseException]] = field(
        default_factory=list
    )
    sent_changes: dict[str, list[bytes]] = field(default_factory=dict)
    reads_due: dict[str, list[bytes]] = field(default_factory=dict)  # read receipts owed
    replays: dict[str, list[MessageRecord]] = field(default_factory=dict)  # shown again
    foreign_receipts: dict[str, int] = field(default_factory=dict)  # peer -> ids never sent it
    errors: list[BaseException] = field(default_factory=list)


def _expire(waiter: asyncio.Future[MessageStatus | None]) -> None:
    if not waiter.done():
        waiter.set_result(None)  # timed out: the caller reads the status from the store


def _foreign_ids(store: Store, peer: str, ids: list[bytes], changed: list[bytes]) -> int:
    """How many receipt ids name no message we sent to `peer`. An id acknowledged twice
    is fine (a resent message is acknowledged again); one we never sent it is not."""
    done = set(changed)
    count = 0
    for message_id in ids:
        if message_id in done:
            continue
        record = store.get_message(message_id)
        if record is None or record.peer != peer or record.direction != "out":
            count += 1
    return count


def _apply(store: Store, batch: _Batch, now: float) -> _Result:
    """Runs on the store thread: one transaction for the batch, one savepoint per step
    and peer (a failed step is undone alone), never one statement per message."""
    with store.transaction():
        return _apply_steps(store, batch, now)


def _apply_steps(store: Store, batch: _Batch, now: float) -> _Result:
    result = _Result()

    def guarded(what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except (P2PMsgError, ValueError) as exc:
            log.warning("delivery: %s failed: %s", what, exc)
            result.errors.append(exc)

    for peer in batch.ready:

        def load(peer: str = peer) -> None:
            record = store.get_peer(peer)
            result.backlogs[peer] = (record, store.outbox(peer))
            if record is not None:
                result.reads_due[peer] = store.read_receipts_due(peer)

        guarded("reading the outbox", load)
    for peer in batch.reads_due - batch.ready.keys():

        def owed(peer: str = peer) -> None:
            result.reads_due[peer] = store.read_receipts_due(peer)

        guarded("reading the read receipts owed", owed)
    for peer, ids in batch.reads_told.items():

        def told(peer: str = peer, ids: list[bytes] = ids) -> None:
            store.read_receipts_told(peer, ids)

        guarded("marking read receipts told", told)
    for peer, items in batch.incoming.items():

        def insert(peer: str = peer, items: list[tuple[Channel, list[Chat]]] = items) -> None:
            messages = [
                IncomingMessage(c.id, c.text, c.ts, None if c.ttl is None else float(c.ttl))
                for _, chats in items
                for c in chats
            ]
            stored = result.stored_incoming[peer] = store.insert_incoming_positions(
                peer, messages, now
            )
            if batch.replay_up_to and len(stored) < len(messages):
                new = {position for position, _ in stored}
                again = [m.id for i, m in enumerate(messages) if i not in new]
                replays = store.unread_incoming_among(peer, again, batch.replay_up_to)
                if replays:
                    result.replays[peer] = replays

        guarded("storing incoming messages", insert)
    for (peer, status), ids in batch.receipts.items():

        def mark(peer: str = peer, status: str = status, ids: list[bytes] = ids) -> None:
            method = store.mark_read_many if status == "read" else store.mark_delivered_many
            changed = result.receipt_changes[(peer, status)] = method(peer, ids, now)
            if len(changed) < len(ids):
                foreign = _foreign_ids(store, peer, ids, changed)
                if foreign:
                    result.foreign_receipts[peer] = result.foreign_receipts.get(peer, 0) + foreign

        guarded("applying receipts", mark)
    for group in _groups(batch.submits):
        try:
            stored = store.enqueue_outgoing_batch(
                group[0].peer, _group_texts(group), now, group[0].ttl
            )
            result.enqueued.append((group, stored))
        except (P2PMsgError, ValueError) as exc:
            result.enqueued.append((group, exc))
    for peer, ids in batch.sent.items():

        def sent(peer: str = peer, ids: list[bytes] = ids) -> None:
            result.sent_changes[peer] = store.mark_sent_many(peer, ids, now)

        guarded("marking messages sent", sent)
    return result


def _group_texts(group: list[_Submit | _BulkSubmit]) -> list[str]:
    texts: list[str] = []
    for submit in group:
        if isinstance(submit, _Submit):
            texts.append(submit.text)
        else:
            texts += submit.texts
    return texts


def _groups(submits: list[_Submit | _BulkSubmit]) -> list[list[_Submit | _BulkSubmit]]:
    """Consecutive submits to the same peer with the same timer: one insert each, in order."""
    groups: list[list[_Submit | _BulkSubmit]] = []
    for item in submits:
        if groups and groups[-1][0].peer == item.peer and groups[-1][0].ttl == item.ttl:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


class Delivery:
    """The outbox and inbox of one node (see the module docstring)."""

    def __init__(
        self, store: AsyncStore, bus: EventBus, security: SecurityLog, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._bus = bus
        self._security = security
        self._clock = clock
        self._pending = _Batch()
        self._current = _Batch()  # the batch on the store thread right now
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready: dict[str, Channel] = {}  # peer -> the channel its backlog went out on
        self._waiters: dict[bytes, list[asyncio.Future[MessageStatus | None]]] = defaultdict(list)
        self._inbound = 0
        self._inbound_room = asyncio.Event()
        self._inbound_room.set()
        # Incoming messages stored before this node started (set when the pipeline
        # starts); a resend of one of those that is still unread is shown again, once.
        self._replay_up_to = 0
        self._replayed: set[bytes] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Sent and not yet marked "sent" nor acknowledged: this tick's ids, last tick's ids.
        self._unmarked: dict[str, dict[bytes, None]] = defaultdict(dict)
        self._unmarked_old: dict[str, dict[bytes, None]] = {}
        # Ids on the wire to a peer and not yet acknowledged: a delivery receipt for one of
        # these is announced at once (the peer has stored it; writing that down is only
        # bookkeeping, and a crash before it means a resend the peer de-duplicates).
        # Receipts for anything else wait for the store, which scopes them to the peer.
        self._inflight: dict[bytes, str] = {}
        self._announced: set[bytes] = set()
        # Final statuses announced lately, so a waiter that read the store just before
        # an announcement does not miss it (bounded: oldest forgotten first).
        self._recent: OrderedDict[bytes, MessageStatus] = OrderedDict()
        self._sent_timer: asyncio.TimerHandle | None = None
        self._urgent = False  # pending work that should not wait for company
        self._lazy_timer: asyncio.TimerHandle | None = None
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
        for timer in (self._sent_timer, self._lazy_timer):
            if timer is not None:
                timer.cancel()
        self._sent_timer = self._lazy_timer = None
        for submit in self._pending.submits + self._current.submits:
            if not submit.future.done():
                submit.future.set_exception(P2PMsgError("the node is stopping"))
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()

    async def flushed(self) -> None:
        """Wait until every queued job has been applied, lazy marks included."""
        if self._sent_timer is not None:
            self._sent_timer.cancel()
            self._sent_timer = None
        self._queue_sent_marks(self._unmarked_old)
        self._queue_sent_marks(self._unmarked)
        self._unmarked_old = {}
        self._unmarked = defaultdict(dict)
        while self._pending or not self._idle.is_set():
            self._kick()
            await self._idle.wait()
            await asyncio.sleep(0)

    # --- inputs (all synchronous, from the event loop) ---------------------------------

    def submit(self, peer: str, text: str, ttl: float | None) -> asyncio.Future[MessageView]:
        """Commit a message for `peer`; it is sent as soon as a session is ready.

        The future (await it) resolves once the message is stored. A plain function,
        not a coroutine: `send_text` runs once per message, and a coroutine frame per
        call between it and this future was a measurable part of its cost."""
        future: asyncio.Future[MessageView] = asyncio.get_running_loop().create_future()
        self._pending.submits.append(_Submit(peer, text, ttl, future))
        self._kick()
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
            self._pending.submits.append(
                _BulkSubmit(peer, texts[start : start + MAX_SUBMITS_PER_BATCH], ttl, futures[-1])
            )
        self._kick()
        if len(futures) == 1:
            return await futures[0]
        return [view for part in await asyncio.gather(*futures) for view in part]

    def session_ready(self, channel: Channel) -> None:
        """A session to this peer is authenticated and trusted: send its backlog."""
        self._ready.pop(channel.peer, None)
        self._pending.ready[channel.peer] = channel
        self._kick()

    def session_closed(self, channel: Channel) -> None:
        if self._ready.get(channel.peer) is channel:
            del self._ready[channel.peer]
            # Unacknowledged ids are sent again with the backlog of the next session.
            peer = channel.peer
            self._inflight = {i: p for i, p in self._inflight.items() if p != peer}
        if self._pending.ready.get(channel.peer) is channel:
            del self._pending.ready[channel.peer]

    def chats_received(self, channel: Channel, chats: list[Chat]) -> None:
        self._pending.incoming.setdefault(channel.peer, []).append((channel, chats))
        self._inbound += len(chats)
        if self._inbound >= INBOUND_HIGH_WATER:
            self._inbound_room.clear()
        self._kick()

    def receipt_received(self, peer: str, receipt: Receipt) -> None:
        self._pending.receipts.setdefault((peer, receipt.status), []).extend(receipt.ids)
        if receipt.status == "delivered":
            inflight = self._inflight
            early = [i for i in receipt.ids if inflight.get(i) == peer]
            if early:
                for message_id in early:
                    del inflight[message_id]
                self._announced.update(early)
                self._forget_unmarked(peer, early)
                self._status_changed(peer, early, "delivered")
                if len(early) == len(receipt.ids):
                    self._kick_later()  # bookkeeping only: ride along with the next batch
                    return
        self._kick()

    def read_locally(self, peer: str, ids: list[bytes]) -> None:
        """The user read these incoming messages (the store marked their receipts owed):
        tell the sender now if it is here; else the next session with it does, also
        after a restart."""
        if not ids:
            return
        if self.ready_channel(peer) is not None:
            self._pending.reads_due.add(peer)
            self._kick()

    async def inbound_room(self) -> None:
        """Sessions await this before reading more: stored-not-yet work stays bounded."""
        await self._inbound_room.wait()

    def ready_channel(self, peer: str) -> Channel | None:
        channel = self._ready.get(peer)
        return channel if channel is not None and channel.is_open else None

    def recent_status(self, message_id: bytes) -> MessageStatus | None:
        """A final status announced lately (the store write may still be pending)."""
        return self._recent.get(message_id)

    async def wait_status(self, message_id: bytes, timeout: float) -> MessageStatus:
        """Wait until the message is delivered or read; on timeout, its status then."""
        recent = self._recent.get(message_id)
        if recent is not None:
            return recent
        # An id in flight on a live session is stored and not acknowledged yet: its receipt
        # is announced on this loop, so the waiter below cannot miss it. Anything else
        # asks the store (which also says whether the id exists).
        if message_id not in self._inflight:
            record = await self._store.run(Store.get_message, message_id)
            if record is None:
                raise P2PMsgError(f"no message with id {message_id.hex()}")
            if record.status in ("delivered", "read", "failed"):
                return record.status
            recent = self._recent.get(message_id)
            if recent is not None:
                return recent
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[MessageStatus | None] = loop.create_future()
        self._waiters[message_id].append(waiter)
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

    def _kick(self) -> None:
        self._urgent = True
        self._wakeup.set()

    def _kick_later(self) -> None:
        """Apply the pending work with the next batch, or after LAZY_WRITE_DELAY."""
        if self._lazy_timer is None:
            self._lazy_timer = asyncio.get_running_loop().call_later(
                LAZY_WRITE_DELAY, self._lazy_due
            )

    def _lazy_due(self) -> None:
        self._lazy_timer = None
        self._kick()

    def _take(self) -> _Batch:
        batch, pending = self._pending, _Batch()
        taken = texts = 0
        for submit in batch.submits:  # whole submits, at least one, up to the limit
            size = 1 if isinstance(submit, _Submit) else len(submit.texts)
            if taken and texts + size > MAX_SUBMITS_PER_BATCH:
                break
            taken += 1
            texts += size
        if taken < len(batch.submits):
            pending.submits = batch.submits[taken:]
            batch.submits = batch.submits[:taken]
            self._urgent = True  # the rest goes in the next batch, without waiting
        self._pending = pending
        batch.replay_up_to = self._replay_up_to
        self._inbound -= sum(len(chats) for items in batch.incoming.values() for _, chats in items)
        if self._inbound < INBOUND_HIGH_WATER:
            self._inbound_room.set()
        return batch

    async def _run(self) -> None:
        try:  # before any batch: every incoming row up to here is from an earlier run
            self._replay_up_to = await self._store.run(Store.last_seq)
        except P2PMsgError as exc:
            log.error("delivery: reading the store failed: %s", exc)
        while True:
            # Wait unless there is work that should not wait for company (lazy work alone
            # waits for a kick: new work, its timer, or flushed()).
            while not (self._urgent and self._pending):
                self._urgent = False
                if not self._pending:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            self._urgent = False
            self._idle.clear()
            if self._lazy_timer is not None:
                self._lazy_timer.cancel()
                self._lazy_timer = None
            batch = self._current = self._take()
            try:
                # To completion: a stop that cancels this task must not drop a batch still
                # queued on the store thread (its futures and receipts depend on it).
                result = await self._store.run_to_completion(_apply, batch, self._clock())
            except P2PMsgError as exc:  # the store itself failed (closed, disk gone)
                log.error("delivery batch failed: %s", exc)
                for submit in batch.submits:
                    if not submit.future.done():
                        submit.future.set_exception(exc)
                continue
            channels = self._deliver(batch, result)
            for channel in channels:  # backpressure: let the socket catch up
                if channel.is_open:
                    await channel.drained()

    def _deliver(self, batch: _Batch, result: _Result) -> set[Channel]:
        """Back on the loop: send what the store has now committed, publish, wake waiters."""
        touched: set[Channel] = set()
        sent: dict[str, list[bytes]] = defaultdict(list)

        for peer, (peer_record, backlog) in result.backlogs.items():
            channel = batch.ready[peer]
            if not channel.is_open:
                continue
            if peer_record is None or not peer_record.sendable:
                continue  # flagged, blocked or retired: held until the user decides
            channel.send_messages(chat_for(m) for m in backlog)
            sent[peer].extend(m.id for m in backlog)
            self._inflight.update(dict.fromkeys((m.id for m in backlog), peer))
            self._ready[peer] = channel
            touched.add(channel)
            if backlog:
                self._security.record(
                    "msg_sent",
                    peer=peer,
                    nbytes=sum(len(m.text or "") for m in backlog),
                    detail={"count": len(backlog), "resent": True},
                )

        told = False
        for peer, reads in result.reads_due.items():
            live = self.ready_channel(peer)
            if reads and live is not None:
                live.send_messages(receipts_for(reads, "read"))
                touched.add(live)
                # Owed until handed to a live session; written down with the next batch
                # (a crash before that sends them again: a repeated receipt changes nothing).
                self._pending.reads_told.setdefault(peer, []).extend(reads)
                told = True
        if told:
            self._kick_later()

        for peer, items in batch.incoming.items():
            stored = result.stored_incoming.get(peer)
            if stored is None:
                continue  # not stored: no receipt, the sender will resend
            # Replays first: stored before this run, they precede anything new.
            for record in result.replays.get(peer, ()):
                if record.id not in self._replayed and len(self._replayed) < MAX_REPLAYS:
                    self._replayed.add(record.id)
                    self._bus.publish(MessageReceived(message_view(record), replayed=True))
            if stored and self._bus.has_subscribers:
                chats = [c for _, part in items for c in part]
                for position, _seq in stored:
                    c = chats[position]
                    self._bus.publish(
                        MessageReceived(
                            MessageView(
                                id=c.id.hex(),
                                peer=peer,
                                direction="in",
                                text=c.text,
                                created=c.ts,
                                status="delivered",
                                ttl=None if c.ttl is None else float(c.ttl),
                            )
                        )
                    )
            by_channel: dict[int, tuple[Channel, list[bytes]]] = {}
            count = nbytes = 0
            for channel, part in items:
                by_channel.setdefault(id(channel), (channel, []))[1].extend(c.id for c in part)
                count += len(part)
                nbytes += sum(len(c.text) for c in part)
            for channel, ids in by_channel.values():
                if channel.is_open:
                    channel.send_messages(receipts_for(ids, "delivered"))
                    touched.add(channel)
            self._security.record(
                "msg_recv", peer=peer, nbytes=nbytes, detail={"count": count, "new": len(stored)}
            )

        for peer, count in result.foreign_receipts.items():
            self._security.record(
                "frame_rejected",
                peer=peer,
                detail={
                    "reason": "receipt for message ids never sent to this peer",
                    "count": count,
                },
            )
        for (peer, status), changed in result.receipt_changes.items():
            self._forget_unmarked(peer, changed)
            if status == "delivered" and self._announced:
                announced = self._announced
                late = [i for i in changed if i not in announced]
                announced.difference_update(batch.receipts.get((peer, status), ()))
                changed = late
            if changed:
                self._status_changed(peer, changed, status)  # type: ignore[arg-type]
                if status == "read":
                    self.on_deadlines_changed()

        for group, outcome in result.enqueued:
            if isinstance(outcome, BaseException):
                for submit in group:
                    if not submit.future.done():
                        submit.future.set_exception(outcome)
                continue
            peer, created, ttl = outcome.peer, outcome.created, outcome.ttl
            new_ids = outcome.ids
            texts = _group_texts(group)
            position = 0
            for submit in group:
                if isinstance(submit, _Submit):
                    if not submit.future.done():
                        submit.future.set_result(
                            MessageView(
                                id=new_ids[position].hex(),
                                peer=peer,
                                direction="out",
                                text=submit.text,
                                created=created,
                                status="queued",
                                ttl=ttl,
                            )
                        )
                    position += 1
                    continue
                end = position + len(submit.texts)
                views = [
                    MessageView(
                        id=message_id.hex(),
                        peer=peer,
                        direction="out",
                        text=text,
                        created=created,
                        status="queued",
                        ttl=ttl,
                    )
                    for message_id, text in zip(new_ids[position:end], submit.texts, strict=True)
                ]
                position = end
                if not submit.future.done():
                    submit.future.set_result(views)
            live = self.ready_channel(peer)
            if live is not None:
                seconds = wire_ttl(ttl)
                live.send_messages(
                    [
                        Chat(message_id, created, text, seconds)
                        for message_id, text in zip(new_ids, texts, strict=True)
                    ]
                )
                sent[peer].extend(new_ids)
                self._inflight.update(dict.fromkeys(new_ids, peer))
                touched.add(live)
                self._security.record(
                    "msg_sent",
                    peer=peer,
                    nbytes=sum(len(t) for t in texts),
                    detail={"count": len(texts)},
                )

        for peer, changed in result.sent_changes.items():
            if changed:
                self._status_changed(peer, changed, "sent")
        for peer, ids in sent.items():
            self._unmarked[peer].update(dict.fromkeys(ids))
        if sent and self._sent_timer is None:
            self._sent_timer = asyncio.get_running_loop().call_later(
                SENT_MARK_DELAY, self._mark_sent_later
            )
        return touched

    def _mark_sent_later(self) -> None:
        """Each tick, mark the ids that went out a tick ago and are still unacknowledged."""
        self._sent_timer = None
        self._queue_sent_marks(self._unmarked_old)
        self._unmarked_old = {peer: ids for peer, ids in self._unmarked.items() if ids}
        self._unmarked = defaultdict(dict)
        if self._unmarked_old:
            self._sent_timer = asyncio.get_running_loop().call_later(
                SENT_MARK_DELAY, self._mark_sent_later
            )

    def _queue_sent_marks(self, unmarked: dict[str, dict[bytes, None]]) -> None:
        queued = False
        for peer, ids in unmarked.items():
            if ids:
                self._pending.sent.setdefault(peer, []).extend(ids)
                queued = True
        if queued:
            self._kick()

    def _forget_unmarked(self, peer: str, ids: Iterable[bytes]) -> None:
        """Acknowledged ids need no "sent" mark any more."""
        current, old = self._unmarked.get(peer), self._unmarked_old.get(peer)
        if current or old:
            for message_id in ids:
                if current:
                    current.pop(message_id, None)
                if old:
                    old.pop(message_id, None)

    def _status_changed(self, peer: str, ids: list[bytes], status: MessageStatus) -> None:
        self._bus.publish(MessageStatusChanged(peer, tuple(i.hex() for i in ids), status))
        if status not in ("delivered", "read"):
            return
        recent = self._recent
        for message_id in ids:
            recent[message_id] = status
        while len(recent) > RECENT_STATUSES:
            recent.popitem(last=False)
        for message_id in ids:
            for waiter in self._waiters.pop(message_id, ()):
                if not waiter.done():
                    waiter.set_result(status)

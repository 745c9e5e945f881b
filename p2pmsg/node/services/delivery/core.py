"""`DeliveryCore`: the delivery state machine of one node, with no I/O (sans-I/O).

In the manner of `protocol/connection.py` (and aioquic): inputs are method
calls, given `now` where time matters (monotonic seconds; the core reads no
clock); outputs are pulled by the driver:

* `next_batch()`: the store work to run now, or None. `Batch.work` is plain data
  that `transaction.apply` runs as one transaction on the store thread; the
  driver hands the result back with `stored()` (or `store_failed()`).
* `take_actions()`: what to do now, in order (send, publish, answer submits).
* `deadline`: when to call `handle_timer` next.

Batching: work accumulates in `Pending` (pending.py) while the previous batch
is on the store thread; the next batch takes all of it at once, so under load
the store sees one transaction per step per batch, and at low load a batch is
one message and adds no delay. Most inputs want a batch at once (`wants_batch`). Lazy
bookkeeping waits for company instead: a delivery receipt for ids in flight
(announced at once, written with the next batch or after `LAZY_WRITE_DELAY`),
read receipts handed to a session, and the "sent" marks (written only for ids
still unacknowledged one to two `SENT_MARK_DELAY` ticks after they went out).
At low load the round trip then costs one transaction on each side, not three.

The promises this keeps are listed in the package docstring (`__init__.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

from p2pmsg.node.api import MessageReceived, MessageStatus, MessageView
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
from p2pmsg.node.services.delivery.pending import Batch, BulkSubmit, Pending, Submit
from p2pmsg.node.services.delivery.table import ON_WIRE, RECENT_STATUSES, MessageTable
from p2pmsg.node.services.delivery.views import (
    chat_for,
    message_view,
    queued_view,
    receipts_for,
    wire_ttl,
)
from p2pmsg.node.services.delivery.work import Enqueue, StoreResult
from p2pmsg.protocol.messages import Chat, Receipt, ReceiptStatus

if TYPE_CHECKING:  # records only as types: the core must not load the store at run time
    from p2pmsg.store.records import EnqueuedBatch

R = TypeVar("R")

#: "sent" is only a display state between "queued" and "delivered" (both of which are
#: resent after a reconnect), so it is recorded lazily: only ids still unacknowledged
#: one to two ticks after they went out are written; the others never need the write.
SENT_MARK_DELAY = 0.25
#: Longest a receipt for ids in flight (already announced) waits for a batch to ride on.
LAZY_WRITE_DELAY = 0.05
#: Messages from before a crash shown again in one run at most (each once): a peer that
#: resends old ids cannot make us show them forever.
MAX_REPLAYS = 65_536
#: Bytes of received chats not yet taken into a batch that one peer may have waiting:
#: past it that peer's session stops reading (its own socket backs up, no one else's).
INBOUND_PER_PEER = 2 << 20
#: ... and all peers together: past it only sessions with nothing waiting may read, so a
#: crowd of flooding sessions cannot hold memory, and a quiet contact is still read.
INBOUND_ALL = 32 << 20
#: What one received chat is charged beyond its text (ids, timestamps, the list slot).
CHAT_OVERHEAD = 64


def _chat_cost(chats: list[Chat]) -> int:
    return sum(len(c.text) for c in chats) + CHAT_OVERHEAD * len(chats)


class DeliveryCore(Generic[R]):
    """Outbox and inbox of one node as a state machine (see the module docstring)."""

    def __init__(
        self, *, max_replays: int = MAX_REPLAYS, recent_statuses: int = RECENT_STATUSES
    ) -> None:
        self._pending: Pending[R] = Pending()
        self._urgent = False  # pending work that should not wait for company
        self._actions: list[Action[R]] = []
        self._ready: dict[str, Channel] = {}  # peer -> the session its backlog went out on
        self._table = MessageTable(recent_statuses)
        # Received chats not yet taken into a batch, charged to their peer (bytes).
        self._inbound = 0
        self._inbound_by_peer: dict[str, int] = {}
        # Incoming rows up to this seq were stored before this run (`started`); a resend
        # of one of those that is still unread is shown again, once.
        self._replay_up_to = 0
        self._replayed: set[bytes] = set()
        self._max_replays = max_replays
        self._sent_deadline: float | None = None  # the next "sent" mark tick
        self._lazy_deadline: float | None = None  # lazy work stops waiting for company

    # --- outputs ---------------------------------------------------------------------

    @property
    def wants_batch(self) -> bool:
        return self._urgent and bool(self._pending)

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    @property
    def deadline(self) -> float | None:
        sent, lazy = self._sent_deadline, self._lazy_deadline
        if sent is None:
            return lazy
        return sent if lazy is None else min(sent, lazy)

    @property
    def inbound(self) -> int:
        """Bytes of chats received and not yet on their way to the store."""
        return self._inbound

    def may_read(self, peer: str) -> bool:
        """Whether `peer`'s session may read more now: its own waiting chats are under
        INBOUND_PER_PEER, and either all peers' are under INBOUND_ALL or it has none
        waiting. A flood costs its own session, not a contact's."""
        mine = self._inbound_by_peer.get(peer, 0)
        return mine < INBOUND_PER_PEER and (self._inbound < INBOUND_ALL or mine == 0)

    def take_actions(self) -> list[Action[R]]:
        actions, self._actions = self._actions, []
        return actions

    def next_batch(self) -> Batch[R] | None:
        """The work to run now, if any is due (everything pending, up to the limit)."""
        if not (self._urgent and self._pending):
            self._urgent = False  # nothing to hurry: lazy work waits for company
            return None
        self._urgent = False
        self._lazy_deadline = None  # lazy work rides along with this batch
        batch, self._pending = self._pending.take(self._replay_up_to)
        if self._pending.submits:
            self._urgent = True  # the rest goes in the next batch, without waiting
        for peer, items in batch.incoming.items():
            cost = sum(_chat_cost(chats) for _, chats in items)
            self._inbound -= cost
            left = self._inbound_by_peer.pop(peer, 0) - cost
            if left > 0:  # cannot happen (a batch takes all of a peer's), but stay exact
                self._inbound_by_peer[peer] = left
        return batch

    def unanswered(self) -> list[R]:
        """The replies of submits not yet taken into a batch (the node is stopping)."""
        return [submit.reply for submit in self._pending.submits]

    # --- queries ---------------------------------------------------------------------

    def ready_channel(self, peer: str) -> Channel | None:
        channel = self._ready.get(peer)
        return channel if channel is not None and channel.is_open else None

    def recent_status(self, message_id: bytes) -> MessageStatus | None:
        """A final status announced lately (the store write may still be pending)."""
        return self._table.recent(message_id)

    @property
    def tracked(self) -> int:
        """Outgoing messages whose bookkeeping is open: what this run holds in memory."""
        return len(self._table)

    def on_wire(self, message_id: bytes) -> bool:
        """Stored, sent on a live session and not acknowledged yet: its receipt will be
        announced without asking the store."""
        return bool(self._table.flags(message_id) & ON_WIRE)

    # --- inputs ----------------------------------------------------------------------

    def started(self, last_seq: int) -> None:
        """Before any batch: incoming rows up to `last_seq` are from an earlier run."""
        self._replay_up_to = last_seq

    def submit(self, peer: str, text: str, ttl: float | None, reply: R) -> None:
        """Store `text` for `peer`, then send it; `reply` is answered once it is stored.
        (Only ever asks for a batch: no actions, no timers.)"""
        self._pending.submits.append(Submit(peer, text, ttl, reply))
        self._urgent = True

    def submit_many(self, peer: str, texts: list[str], ttl: float | None, reply: R) -> None:
        """Like `submit` for up to `MAX_SUBMITS_PER_BATCH` texts, stored in order, one reply."""
        self._pending.submits.append(BulkSubmit(peer, texts, ttl, reply))
        self._urgent = True

    def session_ready(self, channel: Channel) -> None:
        """A session to this peer is authenticated and trusted: send its backlog."""
        self._ready.pop(channel.peer, None)
        self._pending.ready[channel.peer] = channel
        self._urgent = True

    def session_closed(self, channel: Channel) -> None:
        peer = channel.peer
        if self._ready.get(peer) is channel:
            del self._ready[peer]
            self._table.session_closed(peer)
        if self._pending.ready.get(peer) is channel:
            del self._pending.ready[peer]

    def chats_received(self, channel: Channel, chats: list[Chat]) -> None:
        self._pending.incoming.setdefault(channel.peer, []).append((channel, chats))
        cost = _chat_cost(chats)
        self._inbound += cost
        self._inbound_by_peer[channel.peer] = self._inbound_by_peer.get(channel.peer, 0) + cost
        self._urgent = True

    def receipt_received(self, peer: str, receipt: Receipt, now: float) -> None:
        self._pending.receipts.setdefault((peer, receipt.status), []).extend(receipt.ids)
        if receipt.status == "delivered":
            early = self._table.acknowledged_early(peer, receipt.ids)
            if early:
                self._status_changed(peer, early, "delivered")
                if len(early) == len(receipt.ids):
                    self._lazy(now)  # bookkeeping only: ride along with the next batch
                    return
        self._urgent = True

    def read_locally(self, peer: str, ids: list[bytes]) -> None:
        """The user read these incoming messages (the store marked their receipts owed):
        tell the sender now if it is here; else the next session with it does, also
        after a restart."""
        if ids and self.ready_channel(peer) is not None:
            self._pending.reads_due.add(peer)
            self._urgent = True

    def handle_timer(self, now: float) -> None:
        if self._lazy_deadline is not None and now >= self._lazy_deadline:
            self._lazy_deadline = None
            self._urgent = True
        if self._sent_deadline is not None and now >= self._sent_deadline:
            # Each tick, mark the ids that went out a tick ago and are still unacknowledged.
            self._sent_deadline = None
            self._queue_marks(self._table.tick())
            if self._table.marks_coming:
                self._sent_deadline = now + SENT_MARK_DELAY

    def flush_marks(self) -> None:
        """Queue every "sent" mark owed now, without waiting for its tick."""
        self._sent_deadline = None
        self._queue_marks(self._table.all_marks())

    def hurry(self) -> None:
        """Whatever is pending goes in the next batch, lazy work included."""
        self._urgent = True

    def stored(self, batch: Batch[R], result: StoreResult, now: float) -> set[Channel]:
        """The batch committed: send what it allows, publish, answer. Returns the
        sessions written to (the driver lets them drain before the next batch)."""
        touched: set[Channel] = set()
        sent: dict[str, list[bytes]] = {}
        self._send_backlogs(batch, result, sent, touched)
        self._send_read_receipts(result, touched, now)
        for peer, items in batch.incoming.items():
            self._acknowledge_incoming(peer, items, result, touched)
        for peer, count in result.foreign_receipts.items():
            reason = "receipt for message ids never sent to this peer"
            self._actions.append(
                Note("frame_rejected", peer, detail={"reason": reason, "count": count})
            )
        for (peer, status), changed in result.receipt_changes.items():
            self._receipts_written(peer, status, changed, batch.work.receipts[(peer, status)])
        for group, enqueue, outcome in zip(
            batch.groups, batch.work.enqueue, result.enqueued, strict=True
        ):
            self._answer_submits(group, enqueue, outcome, sent, touched)
        for peer, changed in result.sent_changes.items():
            if changed:
                self._status_changed(peer, changed, "sent")
        for peer, ids in sent.items():
            self._table.went_out(peer, ids)
        if sent and self._sent_deadline is None:
            self._sent_deadline = now + SENT_MARK_DELAY
        return touched

    def store_failed(self, batch: Batch[R], error: BaseException) -> None:
        """The store itself failed (closed, disk gone): nothing of the batch happened.
        Its submits hear why; chats stay unacknowledged, so their senders resend."""
        replies = batch.replies
        if replies:
            self._actions.append(Refused(replies, error))

    # --- acting on a committed batch ---------------------------------------------------

    def _send_backlogs(
        self,
        batch: Batch[R],
        result: StoreResult,
        sent: dict[str, list[bytes]],
        touched: set[Channel],
    ) -> None:
        """A session became ready: its backlog goes first, before anything newer."""
        for peer, (record, backlog) in result.backlogs.items():
            channel = batch.ready[peer]
            if not channel.is_open:
                continue
            if record is None or not record.sendable:
                continue  # flagged, blocked or retired: held until the user decides
            self._ready[peer] = channel
            touched.add(channel)
            if not backlog:
                continue
            self._actions.append(Send(channel, [chat_for(m) for m in backlog]))
            sent.setdefault(peer, []).extend(m.id for m in backlog)
            nbytes = sum(len(m.text or "") for m in backlog)
            detail = {"count": len(backlog), "resent": True}
            self._actions.append(Note("msg_sent", peer, nbytes, detail))

    def _send_read_receipts(self, result: StoreResult, touched: set[Channel], now: float) -> None:
        told = False
        for peer, reads in result.reads_due.items():
            live = self.ready_channel(peer)
            if reads and live is not None:
                self._actions.append(Send(live, receipts_for(reads, "read")))
                touched.add(live)
                # Owed until handed to a live session; written down with the next batch
                # (a crash before that sends them again: a repeated receipt changes nothing).
                self._pending.reads_told.setdefault(peer, []).extend(reads)
                told = True
        if told:
            self._lazy(now)

    def _acknowledge_incoming(
        self,
        peer: str,
        items: list[tuple[Channel, list[Chat]]],
        result: StoreResult,
        touched: set[Channel],
    ) -> None:
        """Publish what is new, then acknowledge everything stored, duplicates too."""
        stored = result.stored_incoming.get(peer)
        if stored is None:
            return  # not stored: no receipt, the sender will resend
        # Replays first: stored before this run, they precede anything new.
        for record in result.replays.get(peer, ()):
            if record.id not in self._replayed and len(self._replayed) < self._max_replays:
                self._replayed.add(record.id)
                self._actions.append(Publish(MessageReceived(message_view(record), replayed=True)))
        chats = [c for _, part in items for c in part]
        if stored:
            self._actions.append(PublishReceived(peer, [chats[p] for p, _seq in stored]))
        refused_positions, why = result.refused_incoming.get(peer, ([], ""))
        refused = {chats[p].id for p in refused_positions} if refused_positions else set()
        by_channel: dict[int, tuple[Channel, list[bytes]]] = {}
        count = nbytes = 0
        for channel, part in items:
            by_channel.setdefault(id(channel), (channel, []))[1].extend(
                c.id for c in part if c.id not in refused
            )
            count += len(part)
            nbytes += sum(len(c.text) for c in part)
        if refused:
            detail = {"reason": why, "refused": len(refused)}
            self._actions.append(Note("rate_limited", peer, detail=detail))
        for channel, ids in by_channel.values():
            if ids and channel.is_open:
                self._actions.append(Send(channel, receipts_for(ids, "delivered")))
                touched.add(channel)
        detail = {"count": count, "new": len(stored)}
        self._actions.append(Note("msg_recv", peer, nbytes, detail))

    def _receipts_written(
        self, peer: str, status: ReceiptStatus, changed: list[bytes], ids: list[bytes]
    ) -> None:
        self._table.acknowledged(peer, changed)
        if status == "delivered":
            announced = self._table.written(peer, ids)
            if announced:
                done = set(announced)
                changed = [i for i in changed if i not in done]
        if changed:
            self._status_changed(peer, changed, status)
            if status == "read":
                self._actions.append(DeadlinesChanged())

    def _answer_submits(
        self,
        group: list[Submit[R] | BulkSubmit[R]],
        enqueue: Enqueue,
        outcome: EnqueuedBatch | BaseException,
        sent: dict[str, list[bytes]],
        touched: set[Channel],
    ) -> None:
        """Answer the callers (stored), then send the new messages if the peer is here."""
        replies = [submit.reply for submit in group]
        if isinstance(outcome, BaseException):
            self._actions.append(Refused(replies, outcome))
            return
        peer, created, ttl, new_ids = outcome.peer, outcome.created, outcome.ttl, outcome.ids
        results: list[MessageView | list[MessageView]] = []
        position = 0
        for submit in group:
            if isinstance(submit, Submit):
                results.append(queued_view(peer, new_ids[position], submit.text, created, ttl))
                position += 1
                continue
            end = position + len(submit.texts)
            results.append(
                [
                    queued_view(peer, message_id, text, created, ttl)
                    for message_id, text in zip(new_ids[position:end], submit.texts, strict=True)
                ]
            )
            position = end
        self._actions.append(Accepted(replies, results))
        live = self.ready_channel(peer)
        if live is None:
            return
        seconds = wire_ttl(ttl)
        texts = enqueue.texts
        chats = [Chat(i, created, t, seconds) for i, t in zip(new_ids, texts, strict=True)]
        self._actions.append(Send(live, chats))
        sent.setdefault(peer, []).extend(new_ids)
        touched.add(live)
        detail = {"count": len(texts)}
        self._actions.append(Note("msg_sent", peer, sum(len(t) for t in texts), detail))

    # --- helpers -----------------------------------------------------------------------

    def _status_changed(self, peer: str, ids: list[bytes], status: MessageStatus) -> None:
        self._actions.append(StatusChanged(peer, ids, status))
        if status == "delivered" or status == "read":
            self._table.settle(ids, status)

    def _queue_marks(self, due: dict[str, list[bytes]]) -> None:
        for peer, ids in due.items():
            self._pending.sent.setdefault(peer, []).extend(ids)
            self._urgent = True

    def _lazy(self, now: float) -> None:
        """Pending work that may wait for company, up to LAZY_WRITE_DELAY."""
        if self._lazy_deadline is None:
            self._lazy_deadline = now + LAZY_WRITE_DELAY

"""Two delivery cores joined in memory, each over its own real SQLite store, one fake clock.

The model is tests/protocol/pair.py: nothing sleeps and nothing polls. Each
side runs its core's store work synchronously with the real `transaction.apply`
(a real `Store` in a temporary directory: dedup, outbox order and replays are
the store's own), performs its actions into lists a test can read, and a
`FakeChannel` per direction holds what was sent until the pair carries it.

`settle()` runs the two sides until neither has work nor anything on the wire;
`advance(seconds)` moves the clock from deadline to deadline, firing the
cores' timers on the way, as the driver's loop would.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
from p2pmsg.node.services.delivery.core import MAX_REPLAYS, DeliveryCore
from p2pmsg.node.services.delivery.pending import Batch
from p2pmsg.node.services.delivery.transaction import apply
from p2pmsg.node.services.delivery.views import received_view
from p2pmsg.node.services.delivery.work import StoreWork
from p2pmsg.protocol.events import UserMessage
from p2pmsg.protocol.messages import Chat, Receipt
from p2pmsg.store import Store
from tests.protocol.pair import Clock

Answer = MessageView | list[MessageView] | BaseException


class FakeChannel:
    """One direction of a live session: what the core sends waits in `wire`."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.is_open = True
        self.wire: list[UserMessage] = []

    def send_messages(self, messages: Iterable[UserMessage]) -> None:
        if self.is_open:
            self.wire.extend(messages)

    async def drained(self) -> None:
        return None


@dataclass
class Side:
    """One node's delivery: a core, its store, and a record of everything it did."""

    name: str
    key: bytes  # its identity key: the fingerprint is the key's SHA-256
    store: Store
    clock: Clock
    max_replays: int = MAX_REPLAYS
    core: DeliveryCore[str] = field(init=False)
    channel: FakeChannel | None = None  # its end of the live session, if any
    answers: dict[str, Answer] = field(default_factory=dict)
    shown: list[MessageReceived] = field(default_factory=list)  # bus: messages
    statuses: list[tuple[str, list[bytes], MessageStatus]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)  # security log
    actions: list[Action[str]] = field(default_factory=list)  # all of them, in order
    works: list[StoreWork] = field(default_factory=list)  # every transaction run
    deadlines_changed: int = 0
    _replies: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.restart()

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.key).hexdigest()

    def restart(self) -> None:
        """A new run over the same store: everything in memory is gone (a kill -9)."""
        self.core = DeliveryCore(max_replays=self.max_replays)
        self.channel = None
        self.core.started(self.store.last_seq())

    # --- inputs, as the driver gives them ----------------------------------------------

    def send(self, to: Side, *texts: str, ttl: float | None = None) -> list[str]:
        """`submit` each text; returns the reply names (see `answers`)."""
        names = []
        for text in texts:
            names.append(f"{self.name}{next(self._replies)}")
            self.core.submit(to.fingerprint, text, ttl, names[-1])
        return names

    def send_many(self, to: Side, texts: list[str], ttl: float | None = None) -> str:
        name = f"{self.name}{next(self._replies)}"
        self.core.submit_many(to.fingerprint, texts, ttl, name)
        return name

    def read(self, peer: Side) -> list[bytes]:
        """The user reads the conversation (the node marks it read, then tells delivery)."""
        ids = self.store.mark_conversation_read(peer.fingerprint, self.clock())
        self.core.read_locally(peer.fingerprint, ids)
        self.perform()
        return ids

    def receive(self, messages: Sequence[UserMessage]) -> None:
        """One read of the session, routed as `SessionRouter.received` does."""
        assert self.channel is not None
        chats: list[Chat] = []
        for message in messages:
            if isinstance(message, Chat):
                chats.append(message)
            elif isinstance(message, Receipt):
                self.core.receipt_received(self.channel.peer, message, self.clock())
                self.perform()
        if chats:
            self.core.chats_received(self.channel, chats)
            self.perform()

    # --- the driver's part -------------------------------------------------------------

    def run_batch(self) -> bool:
        """Run the batch the core wants now, if any (one store transaction)."""
        batch = self.core.next_batch()
        if batch is None:
            return False
        self.complete(batch)
        return True

    def complete(self, batch: Batch[str]) -> set[Channel]:
        """Run a batch taken with `core.next_batch()` and hand its result back."""
        self.works.append(batch.work)
        result = apply(self.store, batch.work, self.clock())
        touched = self.core.stored(batch, result, self.clock())
        self.perform()
        return touched

    def perform(self) -> None:
        for action in self.core.take_actions():
            self.actions.append(action)
            match action:
                case Send(channel, messages):
                    channel.send_messages(messages)
                case StatusChanged(peer, ids, status):
                    self.statuses.append((peer, ids, status))
                case PublishReceived(peer, chats):
                    self.shown += [MessageReceived(received_view(peer, c)) for c in chats]
                case Publish(event):
                    assert isinstance(event, MessageReceived)
                    self.shown.append(event)
                case Accepted(replies, results):
                    self.answers.update(zip(replies, results, strict=True))
                case Refused(replies, error):
                    self.answers.update((reply, error) for reply in replies)
                case Note():
                    self.notes.append(action)
                case DeadlinesChanged():
                    self.deadlines_changed += 1

    # --- what a test reads -------------------------------------------------------------

    def view(self, reply: str) -> MessageView:
        answer = self.answers[reply]
        assert isinstance(answer, MessageView), answer
        return answer

    def history(self, peer: Side, direction: str | None = None) -> list[tuple[str | None, str]]:
        """(text, status) of the conversation with `peer`, oldest first ("in", "out": one way)."""
        return [
            (m.text, m.status)
            for m in self.store.conversation(peer.fingerprint, 10_000)
            if direction is None or m.direction == direction
        ]

    def shown_texts(self) -> list[tuple[str | None, bool]]:
        return [(e.message.text, e.replayed) for e in self.shown]

    def status_events(self, message_id: str | bytes) -> list[MessageStatus]:
        raw = bytes.fromhex(message_id) if isinstance(message_id, str) else message_id
        return [status for _, ids, status in self.statuses if raw in ids]


@dataclass
class CorePair:
    a: Side
    b: Side
    clock: Clock
    #: sides that are not reading their session now (what is sent to them waits)
    deaf: set[str] = field(default_factory=set)

    @property
    def connected(self) -> bool:
        return self.a.channel is not None and self.a.channel.is_open

    def connect(self) -> None:
        """A session is up and trusted on both sides."""
        self.a.channel = FakeChannel(self.b.fingerprint)
        self.b.channel = FakeChannel(self.a.fingerprint)
        self.a.core.session_ready(self.a.channel)
        self.b.core.session_ready(self.b.channel)

    def disconnect(self) -> None:
        """The session ends; whatever is still on the wire is lost."""
        for side in (self.a, self.b):
            channel = side.channel
            if channel is not None:
                channel.is_open = False
                channel.wire.clear()
                side.core.session_closed(channel)
                side.perform()

    def carry(self, sender: Side | None = None) -> bool:
        """Deliver what is on the wire (from `sender`, or both ways) as one read each."""
        moved = False
        for source, target in ((self.a, self.b), (self.b, self.a)):
            if sender is not None and source is not sender:
                continue
            channel = source.channel
            if channel is None or not channel.wire or not channel.is_open:
                continue
            if target.name in self.deaf:
                continue
            messages, channel.wire = channel.wire, []
            target.receive(messages)
            moved = True
        return moved

    def settle(self) -> None:
        """Carry and run batches until both sides are quiet (time stands still)."""
        for _ in range(1000):
            moved = self.carry()
            ran_a = self.a.run_batch()
            ran_b = self.b.run_batch()
            if not (moved or ran_a or ran_b):
                return
        raise AssertionError("the two sides never went quiet")

    def advance(self, seconds: float) -> None:
        """Move the clock, firing each core's timer at its deadline and settling after."""
        target = self.clock.t + seconds
        while True:
            deadlines = [
                (deadline, side)
                for side in (self.a, self.b)
                if (deadline := side.core.deadline) is not None and deadline <= target
            ]
            if not deadlines:
                break
            deadline, side = min(deadlines, key=lambda d: d[0])
            self.clock.t = max(self.clock.t, deadline)
            side.core.handle_timer(self.clock.t)
            side.perform()
            self.settle()
        self.clock.t = target


def open_side(root: Path, name: str, clock: Clock, max_replays: int = MAX_REPLAYS) -> Side:
    store = Store.open(root / f"{name}.db", os.urandom(32))
    return Side(name, os.urandom(32), store, clock, max_replays)


def make_pair(
    root: Path, *, connect: bool = True, max_replays: int = MAX_REPLAYS, strangers: bool = False
) -> CorePair:
    """alice (a) and bob (b), each pinned in the other's store (first seen, sendable)
    and named by its user, so a contact; `strangers`: not named, a stranger's quota."""
    clock = Clock()
    a = open_side(root, "a", clock, max_replays)
    b = open_side(root, "b", clock, max_replays)
    a.store.record_handshake(b.key, "bob", clock())
    b.store.record_handshake(a.key, "alice", clock())
    if not strangers:
        a.store.set_local_name(b.fingerprint, "bob")
        b.store.set_local_name(a.fingerprint, "alice")
    pair = CorePair(a, b, clock)
    if connect:
        pair.connect()
        pair.settle()
        for side in (a, b):  # a test starts from here: what it reads is its own doing
            side.works.clear()
            side.actions.clear()
    return pair

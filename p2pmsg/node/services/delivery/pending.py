"""Inputs waiting for the next batch, and how a batch is cut from them.

Work accumulates in `Pending` while the previous batch is on the store thread;
`Pending.take` cuts the next one: everything pending, except new messages
beyond `MAX_SUBMITS_PER_BATCH` (whole submits only, at least one), which wait
for the batch after. Consecutive submits to one peer with one timer become one
insert, so under load the store sees one statement per step, not per message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from p2pmsg.node.channel import Channel
from p2pmsg.node.services.delivery.work import Enqueue, StoreWork
from p2pmsg.protocol.messages import Chat, ReceiptStatus

R = TypeVar("R")

#: Most new messages taken into one batch: big enough to amortise a transaction,
#: small enough that the first messages are on the wire while later ones are stored.
#: (A `submit_many` call is cut into parts of at most this many.)
MAX_SUBMITS_PER_BATCH = 4096


@dataclass(slots=True)
class Submit(Generic[R]):
    """One `submit` call: one text, one reply."""

    peer: str
    text: str
    ttl: float | None
    reply: R


@dataclass(slots=True)
class BulkSubmit(Generic[R]):
    """A part of one `submit_many` call: many texts, one reply (not one per text)."""

    peer: str
    texts: list[str]
    ttl: float | None
    reply: R


@dataclass(slots=True)
class Batch(Generic[R]):
    """One trip to the store: `work` goes to the store thread, the rest waits here."""

    work: StoreWork
    ready: dict[str, Channel]
    incoming: dict[str, list[tuple[Channel, list[Chat]]]]
    groups: list[list[Submit[R] | BulkSubmit[R]]]  # one per `work.enqueue` entry

    @property
    def replies(self) -> list[R]:
        return [submit.reply for group in self.groups for submit in group]


@dataclass
class Pending(Generic[R]):
    """Inputs not yet taken into a batch."""

    ready: dict[str, Channel] = field(default_factory=dict)
    incoming: dict[str, list[tuple[Channel, list[Chat]]]] = field(default_factory=dict)
    receipts: dict[tuple[str, ReceiptStatus], list[bytes]] = field(default_factory=dict)
    submits: list[Submit[R] | BulkSubmit[R]] = field(default_factory=list)
    sent: dict[str, list[bytes]] = field(default_factory=dict)  # "sent" marks due
    reads_due: set[str] = field(default_factory=set)  # peers owed read receipts, now live
    reads_told: dict[str, list[bytes]] = field(default_factory=dict)  # handed to a session

    def __bool__(self) -> bool:
        return bool(
            self.submits
            or self.incoming
            or self.receipts
            or self.ready
            or self.sent
            or self.reads_due
            or self.reads_told
        )

    def take(self, replay_up_to: int) -> tuple[Batch[R], Pending[R]]:
        """The next batch, and what is left pending (submits past the limit)."""
        left: Pending[R] = Pending()
        count = texts = 0
        for submit in self.submits:  # whole submits, at least one, up to the limit
            size = 1 if isinstance(submit, Submit) else len(submit.texts)
            if count and texts + size > MAX_SUBMITS_PER_BATCH:
                break
            count += 1
            texts += size
        if count < len(self.submits):
            left.submits = self.submits[count:]
            self.submits = self.submits[:count]
        groups = _groups(self.submits)
        work = StoreWork(
            backlogs=list(self.ready),
            reads_due=[peer for peer in self.reads_due if peer not in self.ready],
            reads_told=self.reads_told,
            incoming={peer: [chats for _, chats in items] for peer, items in self.incoming.items()},
            receipts=self.receipts,
            enqueue=[Enqueue(g[0].peer, _texts(g), g[0].ttl) for g in groups],
            sent=self.sent,
            replay_up_to=replay_up_to,
        )
        return Batch(work, self.ready, self.incoming, groups), left


def _texts(group: list[Submit[R] | BulkSubmit[R]]) -> list[str]:
    texts: list[str] = []
    for submit in group:
        if isinstance(submit, Submit):
            texts.append(submit.text)
        else:
            texts += submit.texts
    return texts


def _groups(submits: list[Submit[R] | BulkSubmit[R]]) -> list[list[Submit[R] | BulkSubmit[R]]]:
    """Consecutive submits to the same peer with the same timer: one insert each, in order."""
    groups: list[list[Submit[R] | BulkSubmit[R]]] = []
    for item in submits:
        if groups and groups[-1][0].peer == item.peer and groups[-1][0].ttl == item.ttl:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups

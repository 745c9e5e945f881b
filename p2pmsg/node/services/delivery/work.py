"""The plain data that crosses to the store thread and back: one batch's work, its result.

The core describes a transaction (`StoreWork`), `transaction.apply` runs it on
the store thread, and the core reads the `StoreResult` back on the loop. Both
are plain values (protocol messages, ids, store records): no futures, no
sessions, nothing that belongs to the event loop goes to the store thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from p2pmsg.protocol.messages import Chat, ReceiptStatus

if TYPE_CHECKING:  # records only as types: the core must not load the store at run time
    from p2pmsg.store.records import EnqueuedBatch, MessageRecord, PeerRecord


@dataclass(slots=True)
class Enqueue:
    """New messages to one peer with one timer, committed as one insert, in order."""

    peer: str
    texts: list[str]
    ttl: float | None


@dataclass(slots=True)
class StoreWork:
    """One transaction, applied in this order (so that a message is never both in a
    backlog and sent as new): backlogs, owed read receipts, incoming chats, receipts,
    new messages, "sent" marks."""

    backlogs: list[str] = field(default_factory=list)  # peers now live: read their outbox
    reads_due: list[str] = field(default_factory=list)  # peers owed read receipts, now live
    reads_told: dict[str, list[bytes]] = field(default_factory=dict)  # handed to a session
    incoming: dict[str, list[list[Chat]]] = field(default_factory=dict)  # per read, in order
    receipts: dict[tuple[str, ReceiptStatus], list[bytes]] = field(default_factory=dict)
    enqueue: list[Enqueue] = field(default_factory=list)
    sent: dict[str, list[bytes]] = field(default_factory=dict)  # "sent" marks
    #: incoming rows up to this seq are from before this run: a resend of an unread one
    #: is shown again (0: nothing is)
    replay_up_to: int = 0


@dataclass(slots=True)
class StoreResult:
    """What the transaction committed and read. A step that failed is missing."""

    backlogs: dict[str, tuple[PeerRecord | None, list[MessageRecord]]] = field(default_factory=dict)
    reads_due: dict[str, list[bytes]] = field(default_factory=dict)  # read receipts owed
    stored_incoming: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # pos, seq
    replays: dict[str, list[MessageRecord]] = field(default_factory=dict)  # shown again
    receipt_changes: dict[tuple[str, ReceiptStatus], list[bytes]] = field(default_factory=dict)
    foreign_receipts: dict[str, int] = field(default_factory=dict)  # peer -> ids never sent it
    #: peer -> (positions among its incoming chats refused by the stranger quota, why)
    refused_incoming: dict[str, tuple[list[int], str]] = field(default_factory=dict)
    #: one per `StoreWork.enqueue` entry, in order: what was committed, or why not
    enqueued: list[EnqueuedBatch | BaseException] = field(default_factory=list)
    sent_changes: dict[str, list[bytes]] = field(default_factory=dict)

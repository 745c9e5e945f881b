"""Plain, frozen records returned by the store.

They carry decrypted values and nothing that ties them to SQLite, so they can
cross threads (the store runs on its own worker thread) and be turned into the
node's views (`p2pmsg.node.api`) without another query. Security events and
alerts are not here: the store keeps the one `SecurityEvent` and `Alert` that
every layer shares (p2pmsg.security_events). Peers are named by
their fingerprint as lowercase hex (64 chars); message and transfer ids are
16 raw bytes (the node shows them as hex).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

MessageStatus = Literal["queued", "sent", "delivered", "read", "failed"]
Direction = Literal["in", "out"]
TransferState = Literal[
    "offered",
    "accepted",
    "declined",
    "expired",
    "transferring",
    "paused",
    "verifying",
    "completed",
    "failed",
    "cancelled",
]
HandshakeVerdict = Literal["new", "known", "name_clash", "refused"]
KeyTrust = Literal["ok", "flagged", "retired", "blocked"]
PeerState = Literal["discovered", "pinned", "flagged", "retired", "blocked"]

MESSAGE_STATUSES: tuple[str, ...] = get_args(MessageStatus)
DIRECTIONS: tuple[str, ...] = get_args(Direction)
TRANSFER_STATES: tuple[str, ...] = get_args(TransferState)
# A transfer in one of these states may still move bytes: resume it after a restart.
INCOMPLETE_TRANSFER_STATES: tuple[TransferState, ...] = (
    "offered",
    "accepted",
    "transferring",
    "paused",
    "verifying",
)

MESSAGE_ID_LEN = 16
TRANSFER_ID_LEN = 16
FINGERPRINT_HEX_LEN = 64


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int
    manual: bool  # added by the user (host:port), not learnt from discovery or a handshake
    last_seen: float | None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Introduction:
    """A group member we had not met, as a group's signed member list named it:
    `introducer` (fingerprint) put `fingerprint` in the group `group_id`. The names are
    what they were when noted (the user's name for the introducer, else the group's),
    raw: whoever prints them sanitises them. A hint for the user, never trust."""

    fingerprint: str
    introducer: str
    introducer_name: str
    group_id: bytes
    group_name: str
    at: float


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """One identity key and what we know of it.

    `claimed_name` is what the peer calls itself (handshake or advert: a claim,
    never proof); `local_name` is what the user calls it (a petname, "" if
    none). `trust` is the key's state: "ok" (pinned on first use; `verified`
    once the user compared safety numbers or paired by code), "flagged" (it
    claims a name that reads like the contact `clash_with`; kept apart, sending
    held until the user decides), "retired" (replaced by `successor` through the
    user's explicit key change) or "blocked".
    """

    fingerprint: str
    claimed_name: str
    identity_key: bytes | None  # the pinned Ed25519 key; None until a handshake pinned it
    verified: bool
    disappearing_ttl: float | None  # seconds; math.inf: never (explicitly off); None: unset
    first_seen: float
    last_seen: float
    addresses: tuple[Address, ...]
    unread: int
    local_name: str = ""
    trust: KeyTrust = "ok"
    clash_with: str | None = None  # fingerprint of the contact whose name this key claims
    successor: str | None = None  # fingerprint of the contact that took over (retired keys)
    trust_since: float | None = None  # when the key was flagged, retired or blocked
    introductions: tuple[Introduction, ...] = ()  # "introduced by Bob in 'team'", oldest first

    @property
    def name(self) -> str:
        """What to call this peer: the user's name for it first, else its claim."""
        return self.local_name or self.claimed_name

    @property
    def pinned(self) -> bool:
        return self.identity_key is not None

    @property
    def state(self) -> PeerState:
        if self.trust != "ok":
            return self.trust
        return "pinned" if self.identity_key is not None else "discovered"

    @property
    def sendable(self) -> bool:
        """Messages and files may go to this key (pinned, and nothing held against it)."""
        return self.trust == "ok" and self.identity_key is not None

    @property
    def manual(self) -> bool:
        return any(a.manual for a in self.addresses)


@dataclass(frozen=True, slots=True)
class HandshakeOutcome:
    """What `Store.record_handshake` concluded about an authenticated identity.

    `new`: first sight, key pinned now (trust on first use). `known`: the
    pinned key matched. `name_clash`: the key (new, or known and renamed)
    claims a name that reads like `clash_with`'s; it is kept as a separate,
    flagged entry and `clash_with` is untouched. `refused`: the key is blocked
    or retired; the session must end.
    """

    verdict: HandshakeVerdict
    peer: PeerRecord
    clash_with: PeerRecord | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: bytes
    peer: str
    direction: Direction
    text: str | None  # None once a disappearing message's body was deleted
    created: float  # the author's timestamp
    status: MessageStatus
    seq: int  # local order: outbox order for outgoing, arrival order for incoming
    sent_at: float | None
    delivered_at: float | None
    read_at: float | None
    ttl: float | None
    deadline: float | None  # set once read: the body is deleted at this time


@dataclass(frozen=True, slots=True)
class EnqueuedBatch:
    """What `enqueue_outgoing_batch` committed: one object for the whole batch.

    The chat hot path needs only the ids and the order; a `MessageRecord` per
    message (use `records`) cost more than the database write itself.
    """

    peer: str
    ids: tuple[bytes, ...]
    seqs: tuple[int, ...]
    created: float
    ttl: float | None

    def records(self, texts: Sequence[str]) -> list[MessageRecord]:
        return [
            MessageRecord(
                id=mid,
                peer=self.peer,
                direction="out",
                text=text,
                created=self.created,
                status="queued",
                seq=seq,
                sent_at=None,
                delivered_at=None,
                read_at=None,
                ttl=self.ttl,
                deadline=None,
            )
            for mid, seq, text in zip(self.ids, self.seqs, texts, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message as it arrived from a peer, ready for `insert_incoming_many`."""

    id: bytes
    text: str
    created: float
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class TransferRecord:
    id: bytes
    peer: str
    direction: Direction
    name: str  # as offered (receiver: already made safe by the transfer code)
    size: int
    sha256: bytes | None  # the whole file's, once known: sender when all read, receiver verified
    chunk_size: int
    state: TransferState
    bytes_done: int  # sender: bytes acknowledged; receiver: bytes written and hashed
    source_path: str | None  # sender: the file being sent
    partial_path: str | None  # receiver: the private partial file
    final_path: str | None  # receiver: where the verified file landed
    error: str | None
    created: float
    updated: float
    finished: float | None
    bundle_id: bytes | None = None  # the folder offer this file belongs to (schema v9)


@dataclass(frozen=True)
class BundleRecord:
    """A folder or multi-file offer (schema v9). `entries`: (relative path, size, source
    path or None) per file, in offer order; the receiver's paths are already safe."""

    id: bytes
    peer: str
    direction: Direction
    name: str
    count: int
    total_size: int
    entries: tuple[tuple[str, int, str | None], ...]
    folder: str | None
    state: TransferState
    files_done: int
    error: str | None
    created: float
    updated: float
    finished: float | None

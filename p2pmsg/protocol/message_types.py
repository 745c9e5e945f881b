"""The application message types: frozen dataclasses, one per wire type.

Field meanings and limits are in docs/PROTOCOL.md section 7; encoding and
validation live in messages.py (which re-exports everything here, so
`from p2pmsg.protocol.messages import Chat` keeps working).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

ID_SIZE = 16
SHA256_SIZE = 32
X25519_PUBLIC_SIZE = 32
MAX_PING_NONCE = (1 << 32) - 1
#: A SPAKE2 message of the `spake2` package (Ed25519 group): a side byte and a point.
PAKE_MESSAGE_SIZE = 33
#: A pairing key confirmation: HMAC-SHA256.
PAIR_CONFIRM_SIZE = 32

#: Why a pairing attempt was abandoned, as sent in `PairAbort` (docs/PROTOCOL.md 7.1).
PairAbortReason = Literal["wrong_code", "no_code", "busy", "unexpected", "cancelled"]
PAIR_ABORT_CODES: dict[str, int] = {
    "wrong_code": 1,
    "no_code": 2,
    "busy": 3,
    "unexpected": 4,
    "cancelled": 5,
}
PAIR_ABORT_NAMES: dict[int, PairAbortReason] = {
    1: "wrong_code",
    2: "no_code",
    3: "busy",
    4: "unexpected",
    5: "cancelled",
}

ReceiptStatus = Literal["delivered", "read"]
_RECEIPT_CODES: dict[str, int] = {"delivered": 1, "read": 2}
_RECEIPT_NAMES: dict[int, ReceiptStatus] = {1: "delivered", 2: "read"}


class _Message:
    """Shared encoding: `TYPE` then the fields in declaration order."""

    __slots__ = ()
    TYPE: ClassVar[int]

    def wire_fields(self) -> list[object]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Chat(_Message):
    """A chat line. `id` is 16 random bytes (also the store's de-duplication key);
    `ts` the sender's clock when written; `ttl` a disappearing timer in seconds."""

    TYPE: ClassVar[int] = 1
    id: bytes
    ts: float
    text: str
    ttl: int | None = None

    def wire_fields(self) -> list[object]:
        return [1, self.id, self.ts, self.text, self.ttl]


@dataclass(frozen=True, slots=True)
class Receipt(_Message):
    """Delivery or read confirmation for one or more chat ids."""

    TYPE: ClassVar[int] = 2
    ids: tuple[bytes, ...]
    status: ReceiptStatus

    def wire_fields(self) -> list[object]:
        return [2, list(self.ids), _RECEIPT_CODES[self.status]]


@dataclass(frozen=True, slots=True)
class FileOffer(_Message):
    """The sender proposes a file. No hash: the sender would have to read the whole
    file before the first byte moves. The whole-file SHA-256 comes in `FileDone`."""

    TYPE: ClassVar[int] = 3
    transfer_id: bytes
    name: str
    size: int
    chunk_size: int

    def wire_fields(self) -> list[object]:
        return [3, self.transfer_id, self.name, self.size, self.chunk_size]


@dataclass(frozen=True, slots=True)
class FileAccept(_Message):
    """The receiver accepts; chunks start at `offset` (non-zero to resume)."""

    TYPE: ClassVar[int] = 4
    transfer_id: bytes
    offset: int

    def wire_fields(self) -> list[object]:
        return [4, self.transfer_id, self.offset]


@dataclass(frozen=True, slots=True)
class FileDecline(_Message):
    TYPE: ClassVar[int] = 5
    transfer_id: bytes
    reason: str

    def wire_fields(self) -> list[object]:
        return [5, self.transfer_id, self.reason]


@dataclass(frozen=True, slots=True)
class FileChunk(_Message):
    """`data` belongs at byte `offset` of the file (1..MAX_CHUNK_SIZE bytes). A received
    chunk's data is a read-only view of the record it came in (no copy)."""

    TYPE: ClassVar[int] = 6
    transfer_id: bytes
    offset: int
    data: bytes | memoryview

    def wire_fields(self) -> list[object]:
        return [6, self.transfer_id, self.offset, self.data]


@dataclass(frozen=True, slots=True)
class FileAck(_Message):
    """Cumulative: every byte before `offset` has been received and written."""

    TYPE: ClassVar[int] = 7
    transfer_id: bytes
    offset: int

    def wire_fields(self) -> list[object]:
        return [7, self.transfer_id, self.offset]


@dataclass(frozen=True, slots=True)
class FileDone(_Message):
    """From the sender: the last chunk is sent, and `sha256` is of every byte of the
    file as it read them (hashed while reading, re-read from the file for the part
    before a resume offset). The receiver moves the file into place only if its own
    hash of what it wrote is equal. From the receiver: verified and saved; `sha256`
    is the digest it verified."""

    TYPE: ClassVar[int] = 8
    transfer_id: bytes
    sha256: bytes

    def wire_fields(self) -> list[object]:
        return [8, self.transfer_id, self.sha256]


@dataclass(frozen=True, slots=True)
class FileCancel(_Message):
    """Either side abandons the transfer (`reason` is shown to the user)."""

    TYPE: ClassVar[int] = 9
    transfer_id: bytes
    reason: str

    def wire_fields(self) -> list[object]:
        return [9, self.transfer_id, self.reason]


@dataclass(frozen=True, slots=True)
class Rekey(_Message):
    """In-band fresh key agreement (record.py): step 1 offers and step 2 answers
    with a fresh X25519 public key; step 3 confirms and carries none."""

    TYPE: ClassVar[int] = 10
    step: int
    public_key: bytes | None

    def wire_fields(self) -> list[object]:
        return [10, self.step, self.public_key]


@dataclass(frozen=True, slots=True)
class Ping(_Message):
    TYPE: ClassVar[int] = 11
    nonce: int

    def wire_fields(self) -> list[object]:
        return [11, self.nonce]


@dataclass(frozen=True, slots=True)
class Pong(_Message):
    TYPE: ClassVar[int] = 12
    nonce: int

    def wire_fields(self) -> list[object]:
        return [12, self.nonce]


@dataclass(frozen=True, slots=True)
class Bye(_Message):
    """The sender is closing the session on purpose."""

    TYPE: ClassVar[int] = 13
    reason: str

    def wire_fields(self) -> list[object]:
        return [13, self.reason]


# --- pairing by a short code (p2pmsg/protocol/pairing.py; docs/PROTOCOL.md 7.1) ---------
# Every pairing message carries the `attempt` id the typer chose in `PairStart`, so a
# message of an earlier attempt never counts towards a later one.


@dataclass(frozen=True, slots=True)
class PairStart(_Message):
    """The person who typed the code starts (SPAKE2 side A): its SPAKE2 message."""

    TYPE: ClassVar[int] = 14
    attempt: bytes
    pake: bytes

    def wire_fields(self) -> list[object]:
        return [14, self.attempt, self.pake]


@dataclass(frozen=True, slots=True)
class PairReply(_Message):
    """The code's shower (SPAKE2 side B): its SPAKE2 message and its key confirmation."""

    TYPE: ClassVar[int] = 15
    attempt: bytes
    pake: bytes
    confirm: bytes

    def wire_fields(self) -> list[object]:
        return [15, self.attempt, self.pake, self.confirm]


@dataclass(frozen=True, slots=True)
class PairFinish(_Message):
    """Side A's key confirmation, sent only once B's has checked out."""

    TYPE: ClassVar[int] = 16
    attempt: bytes
    confirm: bytes

    def wire_fields(self) -> list[object]:
        return [16, self.attempt, self.confirm]


@dataclass(frozen=True, slots=True)
class PairAbort(_Message):
    """Either side ends the attempt (a reason code, never free text)."""

    TYPE: ClassVar[int] = 17
    attempt: bytes
    reason: PairAbortReason

    def wire_fields(self) -> list[object]:
        return [17, self.attempt, PAIR_ABORT_CODES[self.reason]]


@dataclass(frozen=True, slots=True)
class BundleOffer(_Message):
    """One part of a folder or multi-file offer (docs/PROTOCOL.md section 7.2).

    `entries` are (relative path, size) for files `first .. first + len(entries) - 1`
    of `count`; file i then moves as an ordinary transfer whose id is
    `bundle_entry_id(bundle_id, i)`. The receiver answers the whole offer once it holds
    every part, with file_accept / file_decline naming `bundle_id`."""

    TYPE: ClassVar[int] = 18
    bundle_id: bytes
    name: str
    count: int
    total_size: int
    first: int
    entries: tuple[tuple[str, int], ...]

    def wire_fields(self) -> list[object]:
        return [
            18,
            self.bundle_id,
            self.name,
            self.count,
            self.total_size,
            self.first,
            [[path, size] for path, size in self.entries],
        ]


@dataclass(frozen=True, slots=True)
class GroupOpMessage(_Message):
    """A signed group membership operation, as its author wrote it (docs/PROTOCOL.md,
    "Groups"). Only the envelope is checked here: the body and signature are judged by
    the node's group service (`p2pmsg.protocol.groups.parse_op`), because a relayed
    item may be some third member's fault and must not end the session that carried it."""

    TYPE: ClassVar[int] = 19
    body: bytes
    signature: bytes

    def wire_fields(self) -> list[object]:
        return [19, self.body, self.signature]


@dataclass(frozen=True, slots=True)
class GroupPostMessage(_Message):
    """A signed group message (a post), carried like `GroupOpMessage`, with its text
    beside the body: `(salt, text)`, or None for a stub (a post whose text the sender
    does not hold: it disappeared there). The group service checks the text against
    the hash the body commits to."""

    TYPE: ClassVar[int] = 20
    body: bytes
    signature: bytes
    text: tuple[bytes, str] | None = None

    def wire_fields(self) -> list[object]:
        return [20, self.body, self.signature, None if self.text is None else list(self.text)]


@dataclass(frozen=True, slots=True)
class GroupSummaryMessage(_Message):
    """Anti-entropy: per author, the highest contiguous op and post seq the sender
    handled in one group, and the highest post seq its user has read
    (`p2pmsg.protocol.groups.GroupSummary` on the wire)."""

    TYPE: ClassVar[int] = 21
    group_id: bytes
    ops: tuple[tuple[bytes, int], ...]
    posts: tuple[tuple[bytes, int], ...]
    read: tuple[tuple[bytes, int], ...] = ()

    def wire_fields(self) -> list[object]:
        return [
            21,
            self.group_id,
            [[fp, seq] for fp, seq in self.ops],
            [[fp, seq] for fp, seq in self.posts],
            [[fp, seq] for fp, seq in self.read],
        ]


PairMessage = PairStart | PairReply | PairFinish | PairAbort
GroupMessage = GroupOpMessage | GroupPostMessage | GroupSummaryMessage
GROUP_MESSAGES: tuple[type[_Message], ...] = (
    GroupOpMessage,
    GroupPostMessage,
    GroupSummaryMessage,
)
PAIR_MESSAGES: tuple[type[_Message], ...] = (PairStart, PairReply, PairFinish, PairAbort)

AppMessage = (
    Chat
    | Receipt
    | FileOffer
    | FileAccept
    | FileDecline
    | FileChunk
    | FileAck
    | FileDone
    | FileCancel
    | BundleOffer
    | Rekey
    | Ping
    | Pong
    | Bye
    | PairStart
    | PairReply
    | PairFinish
    | PairAbort
    | GroupOpMessage
    | GroupPostMessage
    | GroupSummaryMessage
)
#: Messages the application sends and receives; the rest are the connection's own.
USER_MESSAGES: tuple[type[_Message], ...] = (
    Chat,
    Receipt,
    FileOffer,
    FileAccept,
    FileDecline,
    FileChunk,
    FileAck,
    FileDone,
    FileCancel,
    BundleOffer,
    *PAIR_MESSAGES,
    *GROUP_MESSAGES,
)

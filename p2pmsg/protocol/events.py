"""What a `PeerConnection` tells its driver: frozen, past-tense events.

These are the connection's own events, not the records the node makes of
them: `UserMessageReceived` becomes a stored message and the node API's
`MessageReceived`; `SecurityEventRaised` becomes a `SecurityEvent` record once
the node adds what only it knows (the time, the peer, the address).
`SecurityEventRaised.event` uses the names of DESIGN.md's event schema
(`handshake_fail`, `decrypt_fail`, `replay_rejected`, `downgrade_rejected`,
`frame_rejected`), so the node can log it as is. Successful steps are their
own events (`HandshakeCompleted`, `KeysRotated`, `CipherChanged`) which the
node maps to `handshake_ok`, `key_rotated` and `cipher_changed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from p2pmsg.protocol.handshake import PeerInfo
from p2pmsg.protocol.messages import (
    BundleOffer,
    Chat,
    FileAccept,
    FileAck,
    FileCancel,
    FileChunk,
    FileDecline,
    FileDone,
    FileOffer,
    GroupOpMessage,
    GroupPostMessage,
    GroupSummaryMessage,
    PairAbort,
    PairFinish,
    PairReply,
    PairStart,
    Receipt,
)

HANDSHAKE_FAIL: Final = "handshake_fail"
DECRYPT_FAIL: Final = "decrypt_fail"
REPLAY_REJECTED: Final = "replay_rejected"
DOWNGRADE_REJECTED: Final = "downgrade_rejected"
FRAME_REJECTED: Final = "frame_rejected"
RATE_LIMITED: Final = "rate_limited"

SecurityEventName = Literal[
    "handshake_fail",
    "decrypt_fail",
    "replay_rejected",
    "downgrade_rejected",
    "frame_rejected",
    "rate_limited",
]

#: The messages an application sends with `send_message` and gets in `UserMessageReceived`.
UserMessage = (
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
    | PairStart
    | PairReply
    | PairFinish
    | PairAbort
    | GroupOpMessage
    | GroupPostMessage
    | GroupSummaryMessage
)


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    peer: PeerInfo
    suites: tuple[str, ...]  # negotiated, initiator's preference order
    suite: str  # the suite both directions start with
    handshake_hash: bytes  # unique per session; the channel binding


@dataclass(frozen=True, slots=True)
class UserMessageReceived:
    """The peer sent an application message (a chat, a receipt, a file or pairing step)."""

    message: UserMessage


@dataclass(frozen=True, slots=True)
class KeysRotated:
    direction: Literal["send", "recv"]
    epoch: int
    suite: str
    #: count | time | requested | switch | rekey (our side) or peer | rekey (the peer's)
    reason: str
    fresh_secret: bool  # a new X25519 secret was mixed into this direction's chain


@dataclass(frozen=True, slots=True)
class CipherChanged:
    direction: Literal["send", "recv"]
    suite: str
    previous: str


@dataclass(frozen=True, slots=True)
class RekeyCompleted:
    """Both directions now derive from a fresh X25519 agreement."""

    at: float


@dataclass(frozen=True, slots=True)
class SecurityEventRaised:
    """The connection refused what the peer sent (or a handshake failed); the connection
    closes next. The node logs it as a `SecurityEvent` record."""

    event: SecurityEventName
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The session is over; the driver should flush `data_to_send()` and close the socket.

    reason: local_close | peer_closed | eof | protocol_error | handshake_failed |
    handshake_timeout | idle_timeout | rekey_timeout | session_exhausted | internal_error
    """

    reason: str
    detail: str = ""


Event = (
    HandshakeCompleted
    | UserMessageReceived
    | KeysRotated
    | CipherChanged
    | RekeyCompleted
    | SecurityEventRaised
    | ConnectionClosed
)

"""What the delivery core asks its driver to do, in the order it must be done.

Order matters: a new message is published before its delivery receipt is sent
(`listen` prints it from inside `publish`, so a kill cannot fall between the
receipt leaving and the line being printed), and a submit's caller hears that
its message is stored before the message is on the wire.

`R` is the driver's handle for a submit's answer (an asyncio future in the
node); the core never looks inside it, it only hands it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from p2pmsg.node.api import MessageStatus, MessageView, NodeEvent
from p2pmsg.node.channel import Channel
from p2pmsg.protocol.events import UserMessage
from p2pmsg.protocol.messages import Chat

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Send:
    """Seal and queue these messages on this live session."""

    channel: Channel
    messages: Sequence[UserMessage]


@dataclass(frozen=True, slots=True)
class Publish:
    event: NodeEvent


@dataclass(frozen=True, slots=True)
class PublishReceived:
    """New chats from `peer`, just stored: one `MessageReceived` each, built only if
    someone listens (the core cannot know; at full speed nobody may)."""

    peer: str
    chats: list[Chat]


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """Publish `MessageStatusChanged`; a final status also answers its waiters."""

    peer: str
    ids: list[bytes]
    status: MessageStatus


@dataclass(frozen=True, slots=True)
class Note:
    """One security event for the log (and the monitor)."""

    event: str
    peer: str
    nbytes: int = 0
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Accepted(Generic[R]):
    """These submits are stored: answer each with its view (a list for a bulk submit)."""

    replies: list[R]
    results: list[MessageView | list[MessageView]]


@dataclass(frozen=True, slots=True)
class Refused(Generic[R]):
    """These submits were not stored: answer each with the error."""

    replies: list[R]
    error: BaseException


@dataclass(frozen=True, slots=True)
class DeadlinesChanged:
    """Read receipts started disappearing timers: the expiry timer should look again."""


Action = (
    Send
    | Publish
    | PublishReceived
    | StatusChanged
    | Note
    | Accepted[R]
    | Refused[R]
    | DeadlinesChanged
)

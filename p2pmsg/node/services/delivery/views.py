"""Views for callers and messages for the wire, made from plain records (pure).

The hot path builds no `MessageRecord` per message: the store answers with ids
and sequence numbers, and these views are made on the loop only for whoever
asked (a `send_text` caller, bus subscribers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from p2pmsg.node.api import MessageStatus, MessageView
from p2pmsg.protocol.limits import MAX_RECEIPT_IDS
from p2pmsg.protocol.messages import Chat, Receipt, ReceiptStatus

if TYPE_CHECKING:  # records only as types: the core must not load the store at run time
    from p2pmsg.store.records import MessageRecord


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


# The two below run once per message on the hot path: their arguments are given by
# position (id, peer, direction, text, created, status, ttl), which makes a frozen
# dataclass a quarter cheaper to build than by keyword.


def received_view(peer: str, chat: Chat) -> MessageView:
    """A chat just stored, as the bus shows it (no record was read back for it)."""
    ttl = None if chat.ttl is None else float(chat.ttl)
    return MessageView(chat.id.hex(), peer, "in", chat.text, chat.ts, "delivered", ttl)


def queued_view(
    peer: str, message_id: bytes, text: str, created: float, ttl: float | None
) -> MessageView:
    """A message just committed for sending, as its `submit` caller sees it."""
    return MessageView(message_id.hex(), peer, "out", text, created, "queued", ttl)


def wire_ttl(ttl: float | None) -> int | None:
    """The protocol carries whole seconds: a timer is rounded up, never down."""
    return None if ttl is None else max(1, int(-(-ttl // 1)))


def chat_for(record: MessageRecord) -> Chat:
    return Chat(record.id, record.created, record.text or "", wire_ttl(record.ttl))


def receipts_for(ids: Sequence[bytes], status: MessageStatus) -> list[Receipt]:
    """As few receipts as the protocol's per-receipt limit allows."""
    kind: ReceiptStatus = "read" if status == "read" else "delivered"
    return [
        Receipt(tuple(ids[i : i + MAX_RECEIPT_IDS]), kind)
        for i in range(0, len(ids), MAX_RECEIPT_IDS)
    ]

"""p2pmsg.store (API summary written below once stable)."""

from __future__ import annotations

from p2pmsg.store.async_store import AsyncStore
from p2pmsg.store.records import (
    Address,
    Alert,
    HandshakeOutcome,
    IncomingMessage,
    MessageRecord,
    PeerRecord,
    SecurityEvent,
    TransferRecord,
)
from p2pmsg.store.settings import Settings
from p2pmsg.store.store import DB_FILENAME, Store

__all__ = [
    "DB_FILENAME", "Address", "Alert", "AsyncStore", "HandshakeOutcome", "IncomingMessage",
    "MessageRecord", "PeerRecord", "SecurityEvent", "Settings", "Store", "TransferRecord",
]

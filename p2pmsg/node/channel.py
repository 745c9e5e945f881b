"""`Channel`: what the node's services need from a live, authenticated session.

Delivery and file transfers send application messages through a session and
wait for its socket to drain; they never see the connection, the keys or the
socket itself. The node's `Session` is the one implementation; unit tests of a
service pass a fake.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from p2pmsg.protocol.events import UserMessage


class Channel(Protocol):
    @property
    def peer(self) -> str:
        """The peer's fingerprint (hex), proven in the handshake."""
        ...

    @property
    def is_open(self) -> bool: ...

    def send_messages(self, messages: Iterable[UserMessage]) -> None:
        """Queue messages on the session (sealed and written in order)."""
        ...

    async def drained(self) -> None:
        """Wait until the socket's write buffer is below its high-water mark."""
        ...

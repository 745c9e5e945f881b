"""A synthetic NodeAPI for the UI benchmark: one peer that talks a lot.

It stands in for the network so the benchmark measures the UI alone: the
app's event pump, batching, the conversation log and the compositor, while
messages arrive at a fixed rate. Only what the main screen calls is
meaningful; everything else answers like an idle node.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

from p2pmsg.node.api import (
    AlertCounts,
    AlertState,
    DirectionStatus,
    MessageReceived,
    MessageView,
    MonitorStatus,
    NodeAPI,
    NodeEvent,
    PeerView,
    SessionStatusView,
)

PEER_FP = hashlib.sha256(b"bench-peer").hexdigest()
_NODE_API = frozenset(name for name in vars(NodeAPI) if not name.startswith("_"))


class FloodNode:
    """Emits `MessageReceived` for one peer at `rate` messages per second on demand."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[NodeEvent]] = []
        self.emitted = 0
        self._peer = PeerView(
            fingerprint=PEER_FP,
            name="flood",
            online=True,
            verified=True,
            short_fingerprint=" ".join(PEER_FP[i : i + 4] for i in range(0, 16, 4)),
            unread=0,
        )

    fingerprint = hashlib.sha256(b"bench-me").hexdigest()
    display_name = "me"
    listen_port = 0

    async def flood(self, rate: float, seconds: float) -> None:
        """Emit `rate` messages/s for `seconds`, in 10 ms ticks on an absolute schedule."""
        tick = 0.01
        per_tick = max(int(rate * tick), 1)
        start = time.perf_counter()
        ticks = int(seconds / tick)
        for n in range(ticks):
            now = time.time()
            for _ in range(per_tick):
                self.emitted += 1
                message = MessageView(
                    id=f"{self.emitted:032x}",
                    peer=PEER_FP,
                    direction="in",
                    text=f"message {self.emitted} of the flood, with a few words to wrap",
                    created=now,
                    status="delivered",
                )
                for queue in self._queues:
                    queue.put_nowait(MessageReceived(message))
            delay = start + (n + 1) * tick - time.perf_counter()
            await asyncio.sleep(max(delay, 0))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def subscribe(self) -> AsyncIterator[NodeEvent]:
        queue: asyncio.Queue[NodeEvent] = asyncio.Queue()
        self._queues.append(queue)

        async def stream() -> AsyncIterator[NodeEvent]:
            while True:
                yield await queue.get()

        return stream()

    async def peers(self) -> list[PeerView]:
        return [self._peer]

    async def session_status(self, peer: str) -> SessionStatusView | None:
        now = time.time()
        direction = DirectionStatus("chacha20-poly1305", 1, 0, 1000, now, now + 3600)
        return SessionStatusView(
            peer, direction, direction, ("chacha20-poly1305",), now, now, "00" * 32, True
        )

    async def monitor_status(self) -> MonitorStatus:
        return MonitorStatus(mode="rules-only: benchmark")

    async def get_settings(self) -> dict[str, Any]:
        return {}

    async def conversation(self, peer: str, limit: int = 200) -> list[MessageView]:
        return []

    async def transfers(self, peer: str | None = None) -> list[Any]:
        return []

    async def alerts(
        self, limit: int = 100, states: Collection[AlertState] | None = None
    ) -> list[Any]:
        return []

    async def alert_counts(self) -> AlertCounts:
        return AlertCounts()

    async def security_events(self, limit: int = 500) -> list[dict[str, Any]]:
        return []

    async def mark_read(self, peer: str) -> None:
        return None

    async def groups(self) -> list[Any]:
        return []

    def __getattr__(self, name: str) -> Any:
        """The rest of NodeAPI does nothing here; any other name is a mistake, and says so
        (an idle coroutine for any name would hide a typo or a method NodeAPI lost)."""
        if name not in _NODE_API:
            raise AttributeError(f"{type(self).__name__} has no {name!r}: not a NodeAPI method")

        async def idle(*_args: Any, **_kwargs: Any) -> None:
            return None

        return idle

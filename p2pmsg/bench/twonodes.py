"""Two real nodes over loopback TCP: the setup the `chat` and `latency` scenarios share.

The receiver is `p2pmsg.bench.peer` in a child process; the sender is a
`Node` in this process, built with the same configuration (product defaults,
loopback only, no mDNS), with its own temporary directory and store. The
sender adds the receiver by 127.0.0.1:port, as `p2pmsg add-peer` would, and
talks to it only through the `NodeAPI` methods the TUI uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pmsg.bench.netutil import LOOPBACK, BenchError, ChildProcess
from p2pmsg.bench.peer import bench_config, wait_monitor_ready
from p2pmsg.crypto.identity import Identity
from p2pmsg.node.api import MessageStatusChanged
from p2pmsg.node.node import Node
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import HandshakeCompleted
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.protocol.messages import Chat

CONNECT_TIMEOUT = 20.0
#: Start-up of a helper node: imports, store, and (with models) the monitor's models.
CHILD_READY_TIMEOUT = 120.0


@dataclass
class Pair:
    sender: Node
    receiver: ChildProcess
    peer: str  # the receiver's fingerprint
    monitor: str  # the sender's monitor mode while measuring

    async def stored(self, timeout: float = 60.0) -> int:
        """Incoming messages from us that the receiver has in its store."""
        self.receiver.send({"cmd": "stored", "peer": self.sender.fingerprint})
        reply = await asyncio.to_thread(self.receiver.wait_for, "stored", timeout)
        return int(reply["n"])

    async def transfers(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        self.receiver.send({"cmd": "transfers"})
        reply = await asyncio.to_thread(self.receiver.wait_for, "transfers", timeout)
        items: list[dict[str, Any]] = reply["items"]
        return items


@contextlib.asynccontextmanager
async def two_nodes(
    *, suite: str | None, models: bool, downloads: bool = False
) -> AsyncIterator[Pair]:
    """A connected sender/receiver pair; `suite` None offers every suite (product order)."""
    suites = ProtocolConfig().suites if suite is None else (suite,)
    argv = [sys.executable, "-m", "p2pmsg.bench.peer", *(f"--suite={s}" for s in suites)]
    if models:
        argv.append("--models")
    if downloads:
        argv.append("--downloads")
    with (
        ChildProcess(argv, ready_timeout=CHILD_READY_TIMEOUT) as child,
        tempfile.TemporaryDirectory(prefix="p2pmsg-bench-sender-") as tmp,
    ):
        node = await Node.open(
            Identity.generate(os.urandom),
            "bench-sender",
            Path(tmp) / "sender.db",
            os.urandom(32),
            bench_config(suites=suites, models=models),
        )
        await node.start()
        try:
            mode = await wait_monitor_ready(node, models)
            peer = str(child.ready["fingerprint"])
            await node.add_peer(LOOPBACK, int(child.ready["port"]))
            await _wait_online(node, peer)
            child.send({"cmd": "contact", "peer": node.fingerprint})
            await asyncio.to_thread(child.wait_for, "contact", CONNECT_TIMEOUT)
            yield Pair(node, child, peer, mode)
        finally:
            await node.stop()


async def _wait_online(node: Node, peer: str) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while time.monotonic() < deadline:
        if any(p.fingerprint == peer and p.online for p in await node.peers()):
            return
        await asyncio.sleep(0.02)
    raise BenchError(f"the sender did not connect to the receiver within {CONNECT_TIMEOUT:g} s")


class DeliveryCounter:
    """Counts delivery receipts for our own messages, from the node's event stream.

    A receipt can arrive before `send_text` has handed us the id (the stored
    message goes out while our call is still returning), so early ids are
    kept until claimed. `done` is set once `expected` messages are delivered.
    """

    def __init__(self, node: Node) -> None:
        self._events = node.subscribe()
        self._waiting: set[str] = set()
        self._early: set[str] = set()
        self.delivered = 0
        self.expected: int | None = None
        self.done = asyncio.Event()
        self._task = asyncio.create_task(self._consume())

    def sent(self, message_id: str) -> None:
        if message_id in self._early:
            self._early.discard(message_id)
            self._count()
        else:
            self._waiting.add(message_id)

    def expect(self, total: int) -> None:
        self.expected = total
        self._check()

    async def _consume(self) -> None:
        async for event in self._events:
            if type(event) is not MessageStatusChanged or event.status not in ("delivered", "read"):
                continue
            for message_id in event.ids:
                if message_id in self._waiting:
                    self._waiting.discard(message_id)
                    self._count()
                else:
                    self._early.add(message_id)

    def _count(self) -> None:
        self.delivered += 1
        self._check()

    def _check(self) -> None:
        if self.expected is not None and self.delivered >= self.expected:
            self.done.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def record_frame_size(suite: str, text: str) -> int:
    """Bytes on the wire for one chat record under `suite` (sans-I/O, in memory)."""
    config = ProtocolConfig(suites=(suite,))
    a = PeerConnection(
        "initiator", Identity.generate(os.urandom), "a", os.urandom, time.time, config=config
    )
    b = PeerConnection(
        "responder", Identity.generate(os.urandom), "b", os.urandom, time.time, config=config
    )
    b.receive_data(a.start())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    if not isinstance(a.next_event(), HandshakeCompleted):
        raise BenchError("in-memory handshake failed while sizing a record")
    return len(a.send_message(Chat(os.urandom(16), time.time(), text)))

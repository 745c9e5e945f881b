"""Session's socket reading: off the StreamReader into one reused buffer, with backpressure.

Two real `Session`s over a real loopback TCP connection, each driving a real
`PeerConnection`; the handler is a small real implementation of
`SessionHandler` that records what arrives and can hold reading back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from p2pmsg.crypto.identity import Identity
from p2pmsg.node.net import session as session_module
from p2pmsg.node.net.session import Session
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import Event, UserMessage
from p2pmsg.protocol.messages import FileChunk

CHUNK = 64 * 1024


class Recorder:
    """A SessionHandler: trusts everyone, keeps file chunks, reads when `open` is set."""

    def __init__(self) -> None:
        self.chunks: list[FileChunk] = []
        self.open = asyncio.Event()
        self.open.set()
        self.arrived = asyncio.Event()

    async def authenticated(self, session: Session) -> bool:
        return True

    def received(self, session: Session, messages: list[UserMessage]) -> None:
        self.chunks.extend(m for m in messages if isinstance(m, FileChunk))
        self.arrived.set()

    def protocol_event(self, session: Session, event: Event) -> None:
        pass

    def closed(self, session: Session, reason: str, detail: str) -> None:
        pass

    async def read_allowed(self, session: Session) -> None:
        await self.open.wait()


async def _connected() -> tuple[Session, Session, Recorder, list[asyncio.Task[None]]]:
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader_a, writer_a = await asyncio.open_connection("127.0.0.1", port)
    reader_b, writer_b = await accepted
    server.close()
    sender, receiver = Recorder(), Recorder()
    a = Session(
        PeerConnection("initiator", Identity.generate(os.urandom), "a", os.urandom, time.time),
        reader_a,
        writer_a,
        sender,
        remote_address="b",
    )
    b = Session(
        PeerConnection("responder", Identity.generate(os.urandom), "b", os.urandom, time.time),
        reader_b,
        writer_b,
        receiver,
        remote_address="a",
    )
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    async with asyncio.timeout(10):
        while not (a.trusted and b.trusted):
            await asyncio.sleep(0.01)
    return a, b, receiver, tasks


async def _close(a: Session, b: Session, tasks: list[asyncio.Task[None]]) -> None:
    a.close()
    b.close()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_bulk_data_arrives_intact_through_the_reused_buffer() -> None:
    a, b, receiver, tasks = await _connected()
    try:
        # The handshake's first read was short: both sides now read without the StreamReader.
        assert a._inbound is not None and b._inbound is not None
        tid = os.urandom(16)
        sent = [os.urandom(CHUNK) for _ in range(96)]  # 6 MiB: the buffer grows and wraps
        for start in range(0, len(sent), 8):
            a.send_messages(
                [
                    FileChunk(tid, (start + i) * CHUNK, data)
                    for i, data in enumerate(sent[start : start + 8])
                ]
            )
            await a.drained()
        async with asyncio.timeout(20):
            while len(receiver.chunks) < len(sent):
                receiver.arrived.clear()
                await receiver.arrived.wait()
        assert [c.data for c in receiver.chunks] == sent
        assert [c.offset for c in receiver.chunks] == [i * CHUNK for i in range(len(sent))]
        assert b._inbound is not None and len(b._inbound._buffer) <= session_module.INBOUND_MAX
    finally:
        await _close(a, b, tasks)


async def test_a_receiver_that_stops_reading_holds_the_sender_back() -> None:
    a, b, receiver, tasks = await _connected()
    try:
        receiver.open.clear()  # the node is out of room: stop reading
        await asyncio.sleep(0.05)  # let the session reach read_allowed
        tid = os.urandom(16)
        held_back = False
        sent = 0
        async with asyncio.timeout(20):
            while sent < 1024:  # up to 64 MiB: far more than buffers and kernel hold
                a.send_messages(
                    [FileChunk(tid, (sent + i) * CHUNK, bytes(CHUNK)) for i in range(8)]
                )
                sent += 8
                try:
                    await asyncio.wait_for(a.drained(), 0.5)
                except TimeoutError:
                    held_back = True  # the writes back up: TCP carried the backpressure
                    break
        assert held_back
        before = len(receiver.chunks)
        receiver.open.set()
        async with asyncio.timeout(20):
            while len(receiver.chunks) < sent:
                receiver.arrived.clear()
                await receiver.arrived.wait()
        assert before < sent and [c.offset for c in receiver.chunks] == [
            i * CHUNK for i in range(sent)
        ]
    finally:
        await _close(a, b, tasks)

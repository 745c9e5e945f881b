"""Sealing a batch of records on two threads (node/net/sealing.py) under Twofish.

The wire bytes must be exactly those of sealing on the event loop, records must
reach the peer in counter order with anything written meanwhile (a chat message)
after them, rotation and a fresh key agreement in the middle of a batch must
work, and a peer that goes away while a batch is being sealed must only close
the session. Real `PeerConnection`s in memory for the byte comparison; real
`Session`s over loopback TCP for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.suites import TWOFISH_SUITE_NAME, available_suite_names
from p2pmsg.node.net.sealing import SealBatch
from p2pmsg.node.net.session import Session
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import Event, KeysRotated, RekeyCompleted, UserMessage
from p2pmsg.protocol.limits import MAX_CHUNK_SIZE, ProtocolConfig
from p2pmsg.protocol.messages import Chat, FileChunk
from tests.protocol.pair import Clock

pytestmark = pytest.mark.skipif(
    TWOFISH_SUITE_NAME not in available_suite_names(), reason="no Twofish library here"
)

CHUNK = MAX_CHUNK_SIZE
#: Rotations every 3 records and a key agreement after 10: both land inside batches.
SMALL_KEYS = ProtocolConfig(
    suites=(TWOFISH_SUITE_NAME,), max_messages_per_key=3, rekey_after_messages=10
)


def _rng(seed: int) -> Callable[[int], bytes]:
    source = random.Random(seed)  # noqa: S311 - replayable test sessions, not keys
    return source.randbytes


def _pair(config: ProtocolConfig, seed: int) -> tuple[PeerConnection, PeerConnection]:
    """Two connections after the handshake, every random byte and time replayable."""
    clock = Clock()
    a_rng, b_rng = _rng(seed), _rng(seed + 1)
    a = PeerConnection("initiator", Identity.generate(a_rng), "a", a_rng, clock, config=config)
    b = PeerConnection("responder", Identity.generate(b_rng), "b", b_rng, clock, config=config)
    b.receive_data(a.start())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    assert a.state == b.state == "established"
    return a, b


def _batches(now: float = 1_763_800_000.0) -> list[list[UserMessage]]:
    data = random.Random(7).randbytes  # noqa: S311 - test data
    tid = bytes(16)
    out: list[list[UserMessage]] = []
    # The worker thread seals the first half of a batch, the loop the second: the first
    # half is the larger (full chunks, the second a few KiB), so each batch is really
    # still being sealed when the loop has done its part and the chat is written.
    # (Halves of equal size made that a race, lost now and then once sealing in place
    # made Twofish faster.)
    sizes = (MAX_CHUNK_SIZE, MAX_CHUNK_SIZE - 17, 4096 - 34, 4096 - 51)
    for n in range(6):
        out.append([FileChunk(tid, (4 * n + i) * CHUNK, data(sizes[i])) for i in range(4)])
        out.append([Chat(bytes([n]) * 16, now, f"between batches {n}")])
    return out


def test_the_wire_bytes_are_those_of_sealing_inline() -> None:
    """Same sessions (replayed randomness), same messages: sealing on two threads gives
    byte for byte the stream that sealing on the loop gives, rotations (every 3
    records) and the rekey offer after 10 records included."""
    inline, _ = _pair(SMALL_KEYS, seed=1)
    threaded, _ = _pair(SMALL_KEYS, seed=1)
    wire_inline: list[bytes] = []
    wire_threaded: list[bytes] = []
    for batch in _batches():
        wire_inline.append(inline.send_messages(batch))
        before, records = threaded.send_messages_deferred(batch)
        wire_threaded.append(before + b"".join(SealBatch(records).parts()))
        wire_inline.append(inline.data_to_send())
        wire_threaded.append(threaded.data_to_send())
    assert b"".join(wire_threaded) == b"".join(wire_inline)
    assert any(wire_threaded[1::2])  # a rekey offer did follow a batch sealed on threads


def test_a_batch_sealed_on_two_threads_opens_in_order() -> None:
    a, b = _pair(SMALL_KEYS, seed=5)
    before, records = a.send_messages_deferred(_batches()[0])
    assert a.seals_in_parallel
    b.receive_data(before + b"".join(SealBatch(records).parts()))
    got = []
    while (event := b.next_event()) is not None:
        got.append(event)
    chunks = [e.message for e in got if hasattr(e, "message")]
    assert [c.offset for c in chunks if isinstance(c, FileChunk)] == [i * CHUNK for i in range(4)]
    assert any(isinstance(e, KeysRotated) for e in got)  # the batch crossed an epoch


# --- through real sessions over loopback ------------------------------------------------------


class Recorder:
    """A SessionHandler that trusts everyone and keeps what arrives, in order."""

    def __init__(self) -> None:
        self.messages: list[UserMessage] = []
        self.events: list[Event] = []
        self.arrived = asyncio.Event()
        self.closed_with: str | None = None

    async def authenticated(self, session: Session) -> bool:
        return True

    def received(self, session: Session, messages: list[UserMessage]) -> None:
        self.messages.extend(messages)
        self.arrived.set()

    def protocol_event(self, session: Session, event: Event) -> None:
        self.events.append(event)
        self.arrived.set()

    def closed(self, session: Session, reason: str, detail: str) -> None:
        self.closed_with = reason
        self.arrived.set()

    async def read_allowed(self, session: Session) -> None:
        return None


async def _connected(
    config: ProtocolConfig,
) -> tuple[Session, Session, Recorder, Recorder, list[asyncio.Task[None]]]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        loop.create_future()
    )

    async def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader_a, writer_a = await asyncio.open_connection("127.0.0.1", port)
    reader_b, writer_b = await accepted
    server.close()
    ra, rb = Recorder(), Recorder()

    def conn(role: str, name: str) -> PeerConnection:
        return PeerConnection(
            role,  # type: ignore[arg-type]
            Identity.generate(os.urandom),
            name,
            os.urandom,
            time.time,
            config=config,
        )

    a = Session(conn("initiator", "a"), reader_a, writer_a, ra, remote_address="b")
    b = Session(conn("responder", "b"), reader_b, writer_b, rb, remote_address="a")
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    async with asyncio.timeout(10):
        while not (a.trusted and b.trusted):
            await asyncio.sleep(0.01)
    return a, b, ra, rb, tasks


async def _close(a: Session, b: Session, tasks: list[asyncio.Task[None]]) -> None:
    a.close()
    b.close()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(recorder: Recorder, done: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):
        while not done():
            recorder.arrived.clear()
            await recorder.arrived.wait()


async def test_a_chat_written_while_a_batch_is_sealed_arrives_after_it() -> None:
    """Rotations and a key agreement inside the batches, a chat message after each
    batch written before the batch is sealed: everything arrives, in order, and the
    agreement completes."""
    a, b, _ra, rb, tasks = await _connected(SMALL_KEYS)
    try:
        sent = _batches(time.time())
        held = 0
        for batch in sent:
            a.send_messages(batch)
            held += bool(a._held)  # a batch (or a chat behind one) still being sealed
        await a.drained()
        expected = [m for batch in sent for m in batch]
        await _until(rb, lambda: len(rb.messages) >= len(expected))
        assert rb.messages == expected
        await _until(rb, lambda: any(isinstance(e, RekeyCompleted) for e in rb.events))
        assert sum(isinstance(e, KeysRotated) for e in rb.events) >= 6
        assert not a._held and a._held_bytes == 0
        assert held > 0  # the batches really were sealed off the loop
    finally:
        await _close(a, b, tasks)


async def test_a_peer_that_goes_away_mid_batch_only_ends_the_session() -> None:
    a, b, ra, _rb, tasks = await _connected(ProtocolConfig(suites=(TWOFISH_SUITE_NAME,)))
    try:
        tid = os.urandom(16)
        data = os.urandom(CHUNK)
        a.send_messages([FileChunk(tid, i * CHUNK, data) for i in range(8)])
        b._transport.abort()  # the peer is gone while the batch is being sealed
        async with asyncio.timeout(10):
            offset = 8
            while a.is_open:  # keep sending until the session notices
                a.send_messages([FileChunk(tid, (offset + i) * CHUNK, data) for i in range(8)])
                offset += 8
                await a.drained()
        await _until(ra, lambda: ra.closed_with is not None)
        async with asyncio.timeout(10):
            await a.drained()  # returns: nothing waits on a batch for a gone peer
            while a._held:
                await asyncio.sleep(0.01)
        assert a._held_bytes == 0
        a.send_messages([FileChunk(tid, 0, data), FileChunk(tid, CHUNK, data)])  # a no-op now
        assert not a._held
    finally:
        await _close(a, b, tasks)


async def test_a_local_close_during_a_batch_writes_the_bye_after_it() -> None:
    a, b, _ra, rb, tasks = await _connected(ProtocolConfig(suites=(TWOFISH_SUITE_NAME,)))
    try:
        tid = os.urandom(16)
        chunks: list[UserMessage] = [FileChunk(tid, i * CHUNK, os.urandom(CHUNK)) for i in range(8)]
        a.send_messages(chunks)
        a.close("done here")  # the bye follows the batch, whose counters came first
        await _until(rb, lambda: rb.closed_with is not None)
        assert rb.messages == chunks
        assert rb.closed_with == "peer_closed"
    finally:
        await _close(a, b, tasks)

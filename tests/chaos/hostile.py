"""A scripted hostile peer: the real handshake and record layer, then one broken rule.

`HostilePeer` speaks p2pmsg with the project's own `PeerConnection`, so
everything up to the chosen misbehaviour is byte-for-byte what an honest
peer sends (its records open, its messages validate). The misbehaviours are
built from real parts too: a genuinely sealed record whose clear header
(epoch, counter, suite id) is rewritten, a correctly encrypted record whose
plaintext breaks a message limit, valid messages in a forbidden order or
number. Only the tests use it; it runs in-process against a loopback node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import msgpack

from p2pmsg.crypto.identity import Identity
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import ConnectionClosed, Event, UserMessage, UserMessageReceived
from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.protocol.record import RecordLayer
from p2pmsg.protocol.wire import RecordFrame, decode_frame, encode_record

ABUSER = "127.0.0.66"  # the hostile peer's source address, so the victim's events name it
READ_SIZE = 1 << 16


class HostilePeer:
    def __init__(
        self,
        conn: PeerConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        fingerprint: str,
    ) -> None:
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.events: list[Event] = []
        self.eof = False
        self.fingerprint = fingerprint  # ours, as the victim will name us

    @classmethod
    async def dial(
        cls,
        port: int,
        *,
        suites: tuple[str, ...] | None = None,
        name: str = "mallory",
        source: str = ABUSER,
        config: ProtocolConfig | None = None,
    ) -> HostilePeer:
        """Dial the victim and send handshake message 1 (a fresh identity)."""
        if config is None:
            config = ProtocolConfig() if suites is None else ProtocolConfig(suites=suites)
        identity = Identity.generate(os.urandom)
        conn = PeerConnection("initiator", identity, name, os.urandom, time.time, config=config)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        writer.write(conn.start())
        return cls(conn, reader, writer, identity.fingerprint.hex())

    @classmethod
    async def connect(cls, port: int, **kwargs: Any) -> HostilePeer:
        """Dial and complete an honest handshake."""
        peer = await cls.dial(port, **kwargs)
        conn = peer.conn
        while conn.state == "handshaking":
            await peer.pump(5.0)
            if peer.eof:
                raise AssertionError(f"the victim refused the handshake: {peer.events}")
        return peer

    # --- bytes in ------------------------------------------------------------------------

    async def pump(self, timeout: float) -> None:
        """Read what arrives within `timeout` (at least one read) and answer as the
        connection would (pongs, handshake replies)."""
        try:
            data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
        except TimeoutError:
            return
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self.eof = True
        self.conn.receive_data(data)
        while (event := self.conn.next_event()) is not None:
            self.events.append(event)
        out = self.conn.data_to_send()
        if out and not self.eof:
            self.writer.write(out)

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        """The first application message (or event) matching `predicate`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.events:
                candidate = event.message if isinstance(event, UserMessageReceived) else event
                if predicate(candidate):
                    return candidate
            if self.eof or loop.time() > deadline:
                raise AssertionError(f"not seen within {timeout} s; events: {self.events}")
            await self.pump(0.2)

    async def closed_by_victim(self, timeout: float = 5.0) -> bool:
        """True once the victim ended the connection (bye, abort or EOF)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.eof and loop.time() < deadline:
            await self.pump(0.2)
            if any(isinstance(e, ConnectionClosed) for e in self.events):
                return True
        return self.eof

    # --- bytes out -----------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, *messages: UserMessage) -> None:
        """Honest application messages, validated and sealed by the real connection."""
        self.writer.write(self.conn.send_messages(messages))

    @property
    def records(self) -> RecordLayer:
        assert self.conn._records is not None, "no session yet"
        return self.conn._records

    def seal(self, plaintext: bytes) -> bytes:
        """A correctly sealed record of any plaintext, valid or not as a message."""
        return self.records.seal(plaintext, time.time())

    def sealed(self, plaintext: bytes) -> RecordFrame:
        """A genuinely sealed record of `plaintext` (our send counter moves on)."""
        frame_bytes = self.records.seal(plaintext, time.time())
        body = next(iter(FrameDecoder().feed(frame_bytes)))
        frame = decode_frame(body)
        assert isinstance(frame, RecordFrame)
        return frame

    def record(
        self,
        plaintext: bytes,
        *,
        epoch: int | None = None,
        counter: int | None = None,
        suite_id: int | None = None,
    ) -> bytes:
        """A sealed record with its clear header rewritten (the AEAD still covers the
        original header, but the receiver must refuse before it ever opens it)."""
        f = self.sealed(plaintext)
        return encode_record(
            f.version,
            f.epoch if epoch is None else epoch,
            f.counter if counter is None else counter,
            f.suite_id if suite_id is None else suite_id,
            f.sealed,
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


def raw_message(*fields: object) -> bytes:
    """A message plaintext that skips our own outgoing checks (for limit violations)."""
    return msgpack.packb(list(fields), use_bin_type=True)  # type: ignore[no-any-return]


def ping_plaintext() -> bytes:
    return raw_message(11, 7)


async def stalling_responder(on_first: asyncio.Event) -> tuple[asyncio.Server, int]:
    """A listener that reads the caller's first handshake message and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep it open: a stall, not a refusal
        if await reader.read(READ_SIZE):
            on_first.set()
        await reader.read()  # until the caller gives up

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])

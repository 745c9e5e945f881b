"""One live connection: a `PeerConnection` pumped over asyncio streams.

The protocol object is sans-I/O; this is its driver. One task per connection
reads the socket, feeds the bytes in and hands out the resulting events; no
task per message. Outgoing bytes are coalesced: everything produced during
one turn of the event loop is written with a single `transport.write`, and
callers that produce a lot (the outbox) await `drained()`, which only waits
when the kernel buffer is really full (backpressure instead of an unbounded
queue). A peer that sends without reading is not read either once our replies
to it pass READ_PAUSE_AT: the memory it costs is bounded. The protocol's timer
(handshake deadline, keepalive, idle timeout, time-driven rotation) is one
`call_later` handle.

Whatever the peer sends, the worst outcome is this connection closing: the
protocol turns bad bytes into a `SecurityEventRaised` and `ConnectionClosed`, and
anything unexpected here closes the session and is logged, never raised.

Reading: the connection arrives as asyncio streams, but once the first bytes
are read (and the StreamReader provably holds nothing more) the transport is
switched to `_Inbound`, a BufferedProtocol that receives straight into one
reused buffer. The StreamReader copied every byte twice into fresh objects and
paused and resumed the socket every 128 KiB; for a 256 MiB file that was a
fifth of the receiver's CPU (measured with a plain loopback stream: 0.10-0.12
s against 0.02-0.04 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from p2pmsg.errors import LocalProtocolError
from p2pmsg.node.api import DirectionStatus, SessionStatusView
from p2pmsg.node.net.admission import Admission
from p2pmsg.node.net.dialer import DialTarget
from p2pmsg.node.net.sealing import SealBatch
from p2pmsg.node.net.trust import Expectation
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import (
    CipherChanged,
    ConnectionClosed,
    Event,
    HandshakeCompleted,
    KeysRotated,
    RekeyCompleted,
    SecurityEventRaised,
    UserMessage,
    UserMessageReceived,
)
from p2pmsg.protocol.record import SessionStatus

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
#: Above this many bytes waiting in the kernel-side transport buffer, senders wait.
WRITE_HIGH_WATER = 1024 * 1024
#: Above this many, the session stops reading the peer until it takes our bytes. Only
#: replies get there (every producer waits at WRITE_HIGH_WATER, replies are small), so
#: only a peer that sends without reading meets it. Well above WRITE_HIGH_WATER, so two
#: honest peers sending bulk to each other at once never both stop reading (which
#: would deadlock them: each waiting for the other to read).
READ_PAUSE_AT = 4 * WRITE_HIGH_WATER
#: The reused receive buffer: small for a chat session, grown while reads fill it (a
#: bulk transfer), up to the most one read takes in.
INBOUND_INITIAL = 64 * 1024
INBOUND_MAX = 1024 * 1024
#: Stop reading the socket when less than this is free (the kernel buffers the rest).
INBOUND_MIN_FREE = 16 * 1024


class _Inbound(asyncio.BufferedProtocol):
    """The transport's protocol once a session reads without its StreamReader.

    Bytes land in `buffer[:end]`; `Session.run` hands them to the connection
    (which copies what it keeps) and calls `consumed`. Reading pauses when the
    buffer is nearly full, so an application that stops reading (`read_allowed`)
    backs up into the kernel and TCP as before. It also takes over write flow
    control from the StreamWriter: `writable` waits for the transport's
    `resume_writing`.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._buffer = bytearray(INBOUND_INITIAL)
        self._view = memoryview(self._buffer)
        self._end = 0
        self._grow = False  # a read filled the buffer: double it once it is empty
        self._eof = False
        self._reading_paused = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: list[asyncio.Future[None]] = []

    # --- called by the transport ------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._end + nbytes == len(self._buffer) and len(self._buffer) < INBOUND_MAX:
            self._grow = True
        self._end += nbytes
        if len(self._buffer) - self._end < INBOUND_MIN_FREE and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return True  # keep the transport for writing; the session closes it (as streams do)

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake_reader()
        for waiter in self._writable:
            if not waiter.done():
                waiter.set_result(None)
        self._writable.clear()

    def pause_writing(self) -> None:
        pass  # `writable` is only awaited while the buffer is over its high-water mark

    def resume_writing(self) -> None:
        for waiter in self._writable:
            if not waiter.done():
                waiter.set_result(None)
        self._writable.clear()

    # --- called by the session --------------------------------------------------------------

    async def read(self) -> memoryview:
        """Everything received since the last `consumed` (empty: the peer closed)."""
        while not self._end and not self._eof:
            self._readable = asyncio.get_running_loop().create_future()
            try:
                await self._readable
            finally:
                self._readable = None
        return self._view[: self._end]

    def consumed(self) -> None:
        """The bytes `read` returned are used up; their room may be read into again."""
        self._end = 0
        if self._grow:
            self._grow = False
            self._view.release()
            self._buffer = bytearray(min(INBOUND_MAX, 2 * len(self._buffer)))
            self._view = memoryview(self._buffer)
        if self._reading_paused and not self._eof:
            self._reading_paused = False
            self._transport.resume_reading()

    async def writable(self) -> None:
        """Wait until the transport has sent enough of its buffer (or is gone)."""
        if self._transport.is_closing():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._writable.append(waiter)
        await waiter

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)


class SessionHandler(Protocol):
    async def authenticated(self, session: Session) -> bool:
        """The handshake proved an identity; decide whether to keep the session."""
        ...

    def received(self, session: Session, messages: list[UserMessage]) -> None: ...
    def protocol_event(self, session: Session, event: Event) -> None: ...
    def closed(self, session: Session, reason: str, detail: str) -> None: ...
    def read_allowed(self, session: Session) -> Awaitable[None]: ...


class Session:
    def __init__(
        self,
        conn: PeerConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: SessionHandler,
        *,
        remote_address: str,
        admission: Admission | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self._reader = reader
        self._writer = writer
        self._transport = writer.transport
        self._handler = handler
        self.admission = admission  # inbound: the slot it holds (None for our own dials)
        self._wall_clock = wall_clock
        self._loop = asyncio.get_running_loop()
        self.remote_address = remote_address
        self.initiator = conn.role == "initiator"
        self.peer = ""  # fingerprint hex, once the handshake completed
        self.peer_name = ""
        self.trusted = False
        self.started = wall_clock()
        self.close_reason: str | None = None
        self._wbuf: list[bytes] = []
        self._flush_scheduled = False
        #: Output behind a batch still being sealed on another thread (sealing.py), in
        #: order: nothing overtakes a record whose counter came first.
        self._held: deque[bytes | SealBatch] = deque()
        self._held_bytes = 0
        self._unheld: list[asyncio.Future[None]] = []  # drained() waiting for `_held`
        self._close_when_unheld = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed_reported = False
        self._inbound: _Inbound | None = None  # set once reading moved off the StreamReader
        # Messages `_pump_events` took out of the connection while `_process_events` was
        # waiting (for the trust decision): that loop delivers them, in order, first.
        self._unread: deque[UserMessageReceived] = deque()
        self.bytes_in = 0
        self.bytes_out = 0
        # Set by the node: why we dialled (None for inbound) and what we expected there.
        self.dial_target: DialTarget | None = None
        self.expectation: Expectation | None = None

    # --- the Channel / LiveSession surface ---------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self.conn.closed and not self._transport.is_closing()

    def send_messages(self, messages: Iterable[UserMessage]) -> None:
        """Seal and queue messages; written at the end of this loop turn.

        Under a suite that is slow to seal (Twofish) a batch of several records is
        sealed on two threads (sealing.py); it is written once sealed, and
        whatever is written meanwhile (a chat message, a reply) goes after it."""
        if not self.is_open:
            return
        batch = list(messages)
        if not batch:
            return
        conn = self.conn
        try:
            if len(batch) > 1 and conn.seals_in_parallel:
                before, records = conn.send_messages_deferred(batch)
                self._write(before)
                self._write_sealing(SealBatch(records))
                self._write(conn.data_to_send())  # made due by these records: a rekey offer
            else:
                self._write(conn.send_messages(batch))
        except LocalProtocolError as exc:
            # Our own bug or an exhausted session: this connection ends, the node goes on.
            log.warning("session to %s: cannot send: %s", self.peer[:16], exc)
        self._pump_events()
        self._reschedule_timer()

    @property
    def unsent_bytes(self) -> int:
        """What this connection holds for the peer in memory: not yet handed to the
        transport (being sealed, or sealed), or handed to it but not yet accepted by
        the kernel."""
        return (
            self._held_bytes + sum(map(len, self._wbuf)) + self._transport.get_write_buffer_size()
        )

    async def _writable(self) -> None:
        """Wait until the transport has sent what it could not (or the session ended)."""
        self._flush_writes()
        if self._inbound is not None:
            await self._inbound.writable()
        else:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def drained(self) -> None:
        """Wait while a batch is being sealed, or the socket has more than
        WRITE_HIGH_WATER bytes it could not send.

        Awaited by whoever produces a lot (the outbox, file senders): so at most one
        batch per producer is being sealed, and a chat message written meanwhile
        waits behind that much sealing, never behind a queue of it."""
        while self._held and self.is_open:
            waiter = self._loop.create_future()
            self._unheld.append(waiter)
            await waiter
        self._flush_writes()
        if self._transport.get_write_buffer_size() > WRITE_HIGH_WATER and self.is_open:
            await self._writable()

    def control(self, action: Callable[[PeerConnection], bytes]) -> None:
        """Run a connection-level action (rotate, switch suite, rekey) and write its bytes."""
        if not self.is_open:
            return
        self._write(action(self.conn))
        self._pump_events()
        self._reschedule_timer()

    def close(self, reason: str = "") -> None:
        """Say bye and close once the bye is written (idempotent)."""
        if not self.conn.closed:
            self._write(self.conn.close(reason))
        self._pump_events()
        self._shutdown_transport()

    def status(self) -> SessionStatus | None:
        return self.conn.status()

    def status_view(self, verified: bool) -> SessionStatusView | None:
        status = self.conn.status()
        if status is None:
            return None
        return status_view(self.peer, status, verified)

    # --- driving -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Pump the connection until it closes. Never raises for anything the peer does."""
        try:
            self._write(self.conn.start())
            self._reschedule_timer()
            while not self.conn.closed:
                await self._handler.read_allowed(self)
                inbound = self._inbound
                if inbound is not None:
                    data: bytes | memoryview = await inbound.read()
                else:
                    try:
                        data = await self._reader.read(READ_SIZE)
                    except (ConnectionError, OSError):
                        data = b""
                self.bytes_in += len(data)
                self.conn.receive_data(data)  # copies what it keeps
                if inbound is not None:
                    inbound.consumed()
                elif 0 < len(data) < READ_SIZE:
                    self._take_over_reading()
                self._write(self.conn.data_to_send())
                await self._process_events()
                self._reschedule_timer()
                if not data:
                    break
                # What we read makes replies (pongs, receipts). A peer that sends and
                # never reads would grow our write buffer without bound: past
                # READ_PAUSE_AT, read no more from it until it has taken what we owe.
                if self._transport.get_write_buffer_size() > READ_PAUSE_AT:
                    await self._writable()
        except asyncio.CancelledError:
            self.close("shutdown")
            raise
        except Exception:
            log.exception("session with %s failed", self.remote_address)
            self.close("internal error")
        finally:
            self._finish("eof", "")

    def _take_over_reading(self) -> None:
        """Read with `_Inbound` from now on. Only right after the StreamReader returned
        less than it was asked for (so it holds nothing more), and not once it saw the
        end of the stream or an error: those it alone knows about."""
        reader, transport = self._reader, self._transport
        if (
            reader.at_eof()
            or reader.exception() is not None
            or transport.is_closing()
            or not isinstance(transport, asyncio.Transport)
        ):
            return
        inbound = _Inbound(transport)
        transport.set_protocol(inbound)
        self._inbound = inbound
        transport.resume_reading()  # the StreamReader may have paused it; a no-op otherwise

    async def _process_events(self) -> None:
        batch: list[UserMessage] = []
        while True:
            event = self._unread.popleft() if self._unread else self.conn.next_event()
            if event is None:
                break
            if type(event) is UserMessageReceived:
                if self.trusted:
                    batch.append(event.message)
                continue
            if batch:
                self._handler.received(self, batch)
                batch = []
            if type(event) is HandshakeCompleted:
                await self._on_handshake(event)
            else:
                self._dispatch(event)
        if batch:
            self._handler.received(self, batch)

    async def _on_handshake(self, event: HandshakeCompleted) -> None:
        if self.admission is not None:
            self.admission.handshake_finished()
        self.peer = event.peer.fingerprint.hex()
        self.peer_name = event.peer.name
        # Events after the handshake stay queued in the connection until trust is decided.
        if await self._handler.authenticated(self):
            self.trusted = True
        elif not self.conn.closed:
            self.close("refused")

    def _pump_events(self) -> None:
        """Handle events produced outside the read loop (timers, sends, close)."""
        while True:
            event = self.conn.next_event()
            if event is None:
                return
            if type(event) is UserMessageReceived:
                # Only receive_data makes these, but one can still be queued behind the
                # handshake while `_process_events` awaits the trust decision, and that
                # decision sends (group summaries, the outbox), which pumps: keep it for
                # that loop. (Dropping it here once lost the first records a peer sends
                # with its last handshake message.)
                self._unread.append(event)
                continue
            self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        if type(event) is ConnectionClosed:
            self.close_reason = event.reason
            self._write(self.conn.data_to_send())
            self._shutdown_transport()
            self._finish(event.reason, event.detail)
        elif type(event) in (SecurityEventRaised, KeysRotated, CipherChanged, RekeyCompleted):
            self._handler.protocol_event(self, event)

    # --- time ----------------------------------------------------------------------------------

    def _reschedule_timer(self) -> None:
        deadline = self.conn.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            delay = max(0.0, deadline - self._wall_clock())
            self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.conn.handle_timer()
            self._write(self.conn.data_to_send())
            self._pump_events()
        except Exception:
            log.exception("session timer failed")
            self.close("internal error")
            return
        self._reschedule_timer()

    # --- bytes out -----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not data or self._transport.is_closing():
            return
        self.bytes_out += len(data)
        if self._held:  # behind a batch still being sealed
            self._held.append(data)
            self._held_bytes += len(data)
            return
        self._wbuf.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_writes)

    def _write_sealing(self, batch: SealBatch) -> None:
        """Queue a batch being sealed: written, in order, as soon as it is sealed."""
        if self._transport.is_closing():
            return
        self.bytes_out += batch.size
        self._held.append(batch)
        self._held_bytes += batch.size
        if len(self._held) == 1 and batch.done:  # sealed already (the usual case)
            self._release_held()
            return
        loop = self._loop

        def sealed() -> None:  # on the worker thread
            with contextlib.suppress(RuntimeError):  # the loop is gone: nothing to write
                loop.call_soon_threadsafe(self._release_held)

        batch.on_done(sealed)

    def _release_held(self) -> None:
        """Move what is sealed at the head of `_held` (and the bytes after it) to the
        write buffer, up to the first batch still being sealed."""
        held = self._held
        closing = self._transport.is_closing()
        released = False
        while held:
            item = held[0]
            if isinstance(item, SealBatch):
                if not item.done:
                    break
                held.popleft()
                self._held_bytes -= item.size
                try:
                    parts = item.parts()
                except Exception:
                    # Its counters are spent: nothing after it can be opened by the peer.
                    log.exception("session to %s: sealing failed", self.peer[:16])
                    self._abandon_held()
                    self._transport.abort()
                    return
                if not closing:
                    self._wbuf.extend(parts)
                    released = True
            else:
                held.popleft()
                self._held_bytes -= len(item)
                if not closing:
                    self._wbuf.append(item)
                    released = True
        if released and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_writes)
        if not held:
            self._wake_unheld()
            if self._close_when_unheld:
                self._close_when_unheld = False
                self._shutdown_transport()

    def _abandon_held(self) -> None:
        self._held.clear()
        self._held_bytes = 0
        self._wake_unheld()

    def _wake_unheld(self) -> None:
        for waiter in self._unheld:
            if not waiter.done():
                waiter.set_result(None)
        self._unheld.clear()

    def _flush_writes(self) -> None:
        self._flush_scheduled = False
        if not self._wbuf:
            return
        data = self._wbuf[0] if len(self._wbuf) == 1 else b"".join(self._wbuf)
        self._wbuf.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def _shutdown_transport(self) -> None:
        if self._held and not self._transport.is_closing():
            # A batch is being sealed and the bye (if any) is behind it: close once
            # everything is written, in order.
            self._close_when_unheld = True
            return
        self._flush_writes()
        if not self._transport.is_closing():
            self._transport.close()  # closes after the buffered bytes (the bye) are sent
        if self._held:  # the transport went first: nothing held will be written
            self._abandon_held()

    def _finish(self, reason: str, detail: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._shutdown_transport()
        if self.admission is not None:
            self.admission.release()
        if not self._closed_reported:
            self._closed_reported = True
            self._handler.closed(self, self.close_reason or reason, detail)


def status_view(peer: str, status: SessionStatus, verified: bool) -> SessionStatusView:
    send, recv = status.send, status.recv
    return SessionStatusView(
        peer=peer,
        send=DirectionStatus(
            send.suite,
            send.epoch,
            send.messages_under_key,
            send.max_messages_per_key,
            send.last_rotation,
            send.next_rotation if send.next_rotation is not None else 0.0,
        ),
        recv=DirectionStatus(
            recv.suite,
            recv.epoch,
            recv.messages_under_key,
            recv.max_messages_per_key,
            recv.last_rotation,
            recv.next_rotation if recv.next_rotation is not None else 0.0,
        ),
        negotiated_suites=status.negotiated_suites,
        session_started=status.session_started,
        last_key_agreement=status.last_key_agreement,
        handshake_hash=status.handshake_hash.hex(),
        verified=verified,
    )

"""`PeerConnection`: one p2pmsg session as a sans-I/O state machine (the h11 shape).

It owns framing, the handshake, the record layer and keepalives, and never
touches a socket, the clock or the RNG itself. The driver (the node) moves
bytes and time in and out:

    conn = PeerConnection("initiator" | "responder", identity, display_name,
                          rng, now, config=ProtocolConfig(), policy=None)

    rng:    Callable[[int], bytes]   e.g. os.urandom (Noise ephemerals, rekey keys, ping nonces)
    now:    Callable[[], float]      wall-clock seconds, e.g. time.time; it stamps and checks
                                     chat timestamps, so it must be real time, not monotonic
    policy: Callable[[PeerInfo, tuple[str, ...]], str | None]  return a reason to refuse a
                                     peer after it proved its identity (blocklists, pinning)

Bytes out. Every method that produces bytes either returns them or queues
them; methods that return bytes (`start`, `send_*`, `switch_suite`,
`rotate_keys`, `request_rekey`, `ping`, `close`) return everything queued
before them too, so writing each returned value in call order, plus
`data_to_send()` after `receive_data` and `handle_timer`, keeps the stream
in order. Never reorder or drop what you are given: record counters are
strict.

    start() -> bytes                        initiator: handshake message 1 (responder: b"")
    receive_data(data: bytes) -> None       feed what the socket read; b"" means EOF (a
                                            memoryview is fine: copied, never kept)
    next_event() -> Event | None            drain after each receive_data / handle_timer / send
    data_to_send() -> bytes                 replies queued by receive_data / handle_timer
    send_message(message) -> bytes          one Chat, Receipt, File* or Pair* message as a record
    send_messages(messages) -> bytes        a batch, all-or-nothing validation, one bytes object
    send_messages_deferred(messages)        the same, sealing left to the caller (threads):
        -> (bytes, [PendingRecord])         write the bytes, then each record's head + seal()
    seals_in_parallel: bool                 whether the send suite is worth that (Twofish)
    switch_suite(name) -> bytes             new epoch under another negotiated suite (+ ping)
    rotate_keys() -> bytes                  new epoch now (+ ping, so the peer follows at once)
    request_rekey() -> bytes                start a fresh X25519 key agreement
    ping() -> bytes                         keepalive / liveness probe
    close(reason="") -> bytes               bye (or abort during the handshake); idempotent
    get_timer() -> float | None             when handle_timer must next run (None: closed)
    handle_timer(now: float | None = None)  handshake deadline, keepalive, idle timeout,
                                            time-driven rotation and rekey
    status() -> SessionStatus | None        snapshot for the key-rotation pane

    state: "handshaking" | "established" | "closed";  closed: bool;  role;
    peer: PeerInfo | None;  handshake_hash: bytes | None;  negotiated_suites: tuple[str, ...]

A driver loop, in outline:

    write(conn.start())
    while not conn.closed:
        data = read(timeout=conn.get_timer() - now())    # b"" at EOF
        if data is TIMEOUT: conn.handle_timer()
        else: conn.receive_data(data)
        write(conn.data_to_send())
        while (event := conn.next_event()) is not None: handle(event)
    # and from the application side, at any time: write(conn.send_message(msg))

Events (events.py): HandshakeCompleted, UserMessageReceived, KeysRotated,
CipherChanged, RekeyCompleted, SecurityEventRaised(event, detail), ConnectionClosed.
Ping, pong, rekey and bye are handled inside; only user messages surface.

Errors. A misbehaving peer never raises out of `receive_data`: it becomes a
`SecurityEventRaised` (decrypt_fail, replay_rejected, downgrade_rejected,
frame_rejected, handshake_fail) followed by `ConnectionClosed`, and the
connection is closed (an authenticated bye or a handshake abort is queued for
the peer). `LocalProtocolError` is raised only for our own misuse: sending
before the handshake completed or after close, an invalid outgoing message,
a suite that was not negotiated. `SessionExhaustedError` (a LocalProtocolError)
means the 2^64 counter or 2^32 epoch space ran out; the connection closes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Literal

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import (
    DecryptError,
    DowngradeError,
    HandshakeError,
    LocalProtocolError,
    P2PMsgError,
    RemoteProtocolError,
    ReplayError,
)
from p2pmsg.protocol.allowance import Allowance
from p2pmsg.protocol.events import (
    DECRYPT_FAIL,
    DOWNGRADE_REJECTED,
    FRAME_REJECTED,
    HANDSHAKE_FAIL,
    RATE_LIMITED,
    REPLAY_REJECTED,
    CipherChanged,
    ConnectionClosed,
    Event,
    HandshakeCompleted,
    KeysRotated,
    RekeyCompleted,
    SecurityEventName,
    SecurityEventRaised,
    UserMessage,
    UserMessageReceived,
)
from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.handshake import Handshake, HandshakePolicy, PeerInfo
from p2pmsg.protocol.limits import MAX_REASON_BYTES, ProtocolConfig
from p2pmsg.protocol.messages import (
    USER_MESSAGES,
    Bye,
    Ping,
    Pong,
    Rekey,
    TimeWindow,
    check_outgoing,
    decode_message,
    encode_message,
)
from p2pmsg.protocol.record import (
    PendingRecord,
    RecordLayer,
    RekeyDone,
    Rotation,
    SessionExhaustedError,
    SessionStatus,
)
from p2pmsg.protocol.wire import (
    AbortFrame,
    HandshakeFrame,
    RecordFrame,
    decode_frame,
    encode_abort,
    encode_handshake,
)

Role = Literal["initiator", "responder"]
State = Literal["handshaking", "established", "closed"]
_USER_TYPES = frozenset(USER_MESSAGES)


class PeerConnection:
    def __init__(
        self,
        role: Role,
        identity: Identity,
        display_name: str,
        rng: Callable[[int], bytes],
        now: Callable[[], float],
        config: ProtocolConfig | None = None,
        policy: HandshakePolicy | None = None,
    ) -> None:
        if role not in ("initiator", "responder"):
            raise LocalProtocolError(f"role must be 'initiator' or 'responder', not {role!r}")
        self.role: Role = role
        self.config = config if config is not None else ProtocolConfig()
        self._rng = rng
        self._clock = now
        self._handshake: Handshake | None = Handshake(
            initiator=role == "initiator",
            identity=identity,
            display_name=display_name,
            suites=self.config.suites,
            rng=rng,
            policy=policy,
        )
        self._records: RecordLayer | None = None
        self._decoder = FrameDecoder()
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self.state: State = "handshaking"
        self.peer: PeerInfo | None = None
        self.handshake_hash: bytes | None = None
        self.negotiated_suites: tuple[str, ...] = ()
        created = now()
        self._deadline = created + self.config.handshake_timeout
        self._last_recv = self._last_sent = created
        self._ping_nonce: int | None = None
        # What the peer may make us spend per session: logged rotations and key agreements.
        cfg = self.config
        self._records_in = 0
        self._rotations = Allowance(cfg.rotation_burst, cfg.rotation_rate, cfg.records_per_rotation)
        self._rekeys = Allowance(cfg.rekey_burst, cfg.rekey_rate, cfg.records_per_rekey)
        # Pings earn nothing by records: a stream of records is no reason to ping more.
        self._pings = Allowance(cfg.ping_burst, cfg.ping_rate, float("inf"))
        self._rekey_started: float | None = None
        self._started = False

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    # -- bytes in -----------------------------------------------------------------------------

    def start(self) -> bytes:
        if self.role != "initiator":
            return b""
        if self._started or self._handshake is None:
            raise LocalProtocolError("start() may be called once, before the handshake")
        self._started = True
        self._out.append(encode_handshake(self._handshake.start()))
        self._last_sent = self._clock()
        return self._flush()

    def receive_data(self, data: bytes | memoryview) -> None:
        if self.state == "closed":
            return
        now = self._clock()
        if not data:
            if self._decoder.buffered:
                self._security(
                    FRAME_REJECTED,
                    f"stream ended inside a frame ({self._decoder.buffered} bytes pending)",
                )
            self._close("eof", "peer closed the stream", notify_peer=False)
            return
        self._last_recv = now
        window = self._window(now)
        try:
            for body in self._decoder.feed(data):
                frame = decode_frame(body)
                if type(frame) is RecordFrame and self._records is not None:
                    self._on_record(frame, now, window)
                else:
                    self._on_other_frame(frame, now)
                if self.closed:
                    return
        except P2PMsgError as exc:
            self._on_error(exc)
        except Exception as exc:  # a bug of ours must still not take the process down
            self._close("internal_error", f"{type(exc).__name__}: {exc}", notify_peer=False)

    def _on_record(self, frame: RecordFrame, now: float, window: TimeWindow) -> None:
        records = self._records
        assert records is not None
        message = decode_message(records.open(frame, now), window)
        self._records_in += 1
        if records.notices:
            rotations = sum(
                1 for n in records.notices if type(n) is Rotation and n.direction == "recv"
            )
            self._drain_notices()
            if rotations and not self._rotations_allowed(rotations, now):
                return
        if type(message) in _USER_TYPES:
            self._events.append(UserMessageReceived(message))  # type: ignore[arg-type]
        elif type(message) is Ping:
            if not self._pings.spend(1, now, self._records_in):
                cfg = self.config
                self._storm(
                    f"ping_storm: the peer sent more than {cfg.ping_burst} pings at once, "
                    f"or faster than {cfg.ping_rate:g}/s",
                    "ping storm",
                )
                return
            self._out.append(records.seal(encode_message(Pong(message.nonce)), now))
            self._last_sent = now
        elif type(message) is Pong:
            if message.nonce == self._ping_nonce:
                self._ping_nonce = None
        elif type(message) is Rekey:
            self._on_rekey(message, now)
        elif type(message) is Bye:
            self._close("peer_closed", message.reason, notify_peer=False)

    def _rotations_allowed(self, count: int, now: float) -> bool:
        """Charge the peer's `count` new epochs to its rotation allowance; False, and
        the session closed with a `rate_limited` event, when they are a storm."""
        if self._rotations.spend(count, now, self._records_in):
            return True
        cfg = self.config
        self._storm(
            f"rotation_storm: the peer rotated its keys more than {cfg.rotation_burst} times "
            f"at once, or faster than {cfg.rotation_rate:g}/s plus one per "
            f"{cfg.records_per_rotation} records",
            "rotation storm",
        )
        return False

    def _storm(self, reason: str, bye: str) -> None:
        self._security(RATE_LIMITED, reason)
        self._close("protocol_error", bye)

    def _on_rekey(self, message: Rekey, now: float) -> None:
        records = self._records
        assert records is not None
        if not self._rekeys.spend(1, now, self._records_in):
            cfg = self.config
            self._storm(
                f"rekey_storm: the peer asked for more than {cfg.rekey_burst} key agreements "
                f"at once, or faster than {cfg.rekey_rate:g}/s plus one per "
                f"{cfg.records_per_rekey} records",
                "rekey storm",
            )
            return
        reply = records.on_rekey(message, self._rng, wins_ties=self.role == "initiator")
        if reply is None:
            return
        self._out.append(records.seal_rekey(reply, now))
        if reply.step == 2 and self._rekey_started is None:
            # We answered the peer's offer: the agreement is in flight for us too. Give it
            # the same deadline as our own offers (rekey_timeout), and keep get_timer() off
            # the periodic-rekey deadline meanwhile: while the agreement is pending that
            # deadline cannot be acted on, and a driver sleeping until it would spin.
            self._rekey_started = now
        if reply.step == 3:
            # A ping under our new epoch draws a pong under the peer's, so both sides
            # finish the agreement now rather than at the next chat message.
            self._out.append(records.seal(encode_message(self._new_ping()), now))
        self._last_sent = now
        self._drain_notices()

    def _on_other_frame(self, frame: HandshakeFrame | RecordFrame | AbortFrame, now: float) -> None:
        if type(frame) is AbortFrame:
            # The responder judges the initiator only after message 3, when the initiator
            # already counts as established: its abort may arrive before any record.
            refused_late = (
                self.role == "initiator"
                and self._records is not None
                and self._records.status().recv.counter == 0
            )
            if self.state == "handshaking" or refused_late:
                # frame.reason is one line without controls (decode_frame refuses any
                # other ABORT as a malformed frame); it is still the unauthenticated
                # peer's text, which every human-readable output sanitises.
                self._security(HANDSHAKE_FAIL, f"peer aborted the handshake: {frame.reason}")
                self._close("handshake_failed", f"peer aborted: {frame.reason}", notify_peer=False)
                return
            raise RemoteProtocolError("unauthenticated abort frame after the handshake")
        if type(frame) is RecordFrame or self._handshake is None:
            raise RemoteProtocolError(
                f"{type(frame).__name__} is not allowed in state {self.state}"
            )
        assert type(frame) is HandshakeFrame
        handshake = self._handshake
        if handshake.initiator and not self._started:
            raise RemoteProtocolError("handshake message before start()")
        reply = handshake.receive(frame.noise)
        if reply is not None:
            self._out.append(encode_handshake(reply))
            self._last_sent = now
        if handshake.result is not None:
            result = handshake.result
            self._handshake = None
            self._records = RecordLayer(result, self.config, now)
            self._rotation_checked = now
            self.state = "established"
            self.peer = result.peer
            self.handshake_hash = result.handshake_hash
            self.negotiated_suites = result.suites
            self._events.append(
                HandshakeCompleted(
                    result.peer, result.suites, result.initial_suite, result.handshake_hash
                )
            )

    # -- errors and closing ----------------------------------------------------------------

    def _on_error(self, exc: P2PMsgError) -> None:
        if isinstance(exc, HandshakeError):
            self._security(HANDSHAKE_FAIL, str(exc))
            self._close("handshake_failed", str(exc))
            return
        if isinstance(exc, SessionExhaustedError):
            self._close("session_exhausted", str(exc), notify_peer=False)
            return
        name: SecurityEventName
        if isinstance(exc, DecryptError):
            name = DECRYPT_FAIL
        elif isinstance(exc, ReplayError):
            name = REPLAY_REJECTED
        elif isinstance(exc, DowngradeError):
            name = DOWNGRADE_REJECTED
        elif self.state == "handshaking":
            name = HANDSHAKE_FAIL if not isinstance(exc, RemoteProtocolError) else FRAME_REJECTED
        else:
            name = FRAME_REJECTED
        self._security(name, str(exc))
        self._close("protocol_error", str(exc))

    def _security(self, name: SecurityEventName, reason: str) -> None:
        detail: dict[str, object] = {"reason": reason, "state": self.state}
        if self._records is not None:
            status = self._records.status()
            detail.update(
                epoch=status.recv.epoch, counter=status.recv.counter, suite=status.recv.suite
            )
        self._events.append(SecurityEventRaised(name, detail))

    def _close(self, reason: str, detail: str = "", notify_peer: bool = True) -> None:
        if self.state == "closed":
            return
        if notify_peer:
            # The peer learns our reason text only for our own choices (a local close, a
            # failed negotiation); after a protocol error it learns just the code.
            told = _printable(detail) if reason in ("local_close", "handshake_failed") else reason
            try:
                if self._records is not None:
                    self._out.append(
                        self._records.seal(encode_message(Bye(told or reason)), self._clock())
                    )
                else:
                    self._out.append(encode_abort(told or reason))
            except P2PMsgError:
                pass  # cannot even say goodbye (e.g. counter exhausted): just close
        self.state = "closed"
        self._handshake = None
        self._events.append(ConnectionClosed(reason, detail))

    def close(self, reason: str = "") -> bytes:
        self._close("local_close", reason)
        return self._flush()

    # -- bytes out -------------------------------------------------------------------------

    def send_message(self, message: UserMessage) -> bytes:
        return self.send_messages((message,))

    def send_messages(self, messages: Iterable[UserMessage]) -> bytes:
        records = self._established()
        plaintexts = self._plaintexts(messages)
        now = self._clock()
        out = self._out
        seal = records.seal_parts  # joined with the rest in _flush: one copy per record
        try:
            for plaintext in plaintexts:
                out.extend(seal(plaintext, now))
        except SessionExhaustedError as exc:
            self._close("session_exhausted", str(exc), notify_peer=False)
            raise
        self._after_send(records, now)
        return self._flush()

    def send_messages_deferred(
        self, messages: Iterable[UserMessage]
    ) -> tuple[bytes, list[PendingRecord]]:
        """`send_messages` without the sealing: the bytes queued before these messages
        (write them first), then their records with counters, keys and headers taken,
        in order, for the caller to seal (`PendingRecord.seal`, on any thread) and
        write as `head + sealed` each, in this order, before anything this connection
        returns afterwards (a rekey offer these records made due comes out of the next
        `data_to_send`). The bytes on the wire are exactly `send_messages`'s."""
        records = self._established()
        plaintexts = self._plaintexts(messages)
        now = self._clock()
        before = self._flush()  # replies queued earlier go out ahead of these records
        reserve = records.reserve
        pending: list[PendingRecord] = []
        try:
            for plaintext in plaintexts:
                pending.append(reserve(plaintext, now))
        except SessionExhaustedError as exc:
            self._close("session_exhausted", str(exc), notify_peer=False)
            raise
        self._after_send(records, now)
        return before, pending

    @property
    def seals_in_parallel(self) -> bool:
        """Whether the send direction's suite is worth sealing on several threads."""
        records = self._records
        return records is not None and records.send_suite.parallel_seal

    def _plaintexts(self, messages: Iterable[UserMessage]) -> list[bytes]:
        plaintexts = []
        for message in messages:
            if type(message) not in _USER_TYPES:
                raise LocalProtocolError(
                    f"{type(message).__name__} is not an application "
                    "message; use ping(), request_rekey() or close()"
                )
            plaintexts.append(check_outgoing(message))
        return plaintexts

    def _after_send(self, records: RecordLayer, now: float) -> None:
        self._last_sent = now
        if records.rekey_due(now):
            self._begin_rekey(records, now)
        if records.notices:
            self._drain_notices()

    def switch_suite(self, suite: str) -> bytes:
        return self._rotate("switch", suite)

    def rotate_keys(self) -> bytes:
        return self._rotate("requested", None)

    def _rotate(self, reason: str, suite: str | None) -> bytes:
        """Rotate now; a ping closes an empty epoch first (the receiver must see every
        epoch) and another opens the new one, so the peer follows at once."""
        records = self._established()
        if suite is not None:
            records.negotiated_suite(suite)  # refuse before sending anything
        if not records.can_rotate:
            self._send_internal(self._new_ping())
        records.rotate_send(self._clock(), reason, suite)
        return self.ping()

    def request_rekey(self) -> bytes:
        records = self._established()
        if not records.rekey_in_progress:
            self._begin_rekey(records, self._clock())
        return self._flush()

    def ping(self) -> bytes:
        self._send_internal(self._new_ping())
        return self._flush()

    def data_to_send(self) -> bytes:
        return self._flush()

    def _begin_rekey(self, records: RecordLayer, now: float) -> None:
        self._rekey_started = now
        self._out.append(records.seal_rekey(records.begin_rekey(self._rng), now))

    def _new_ping(self) -> Ping:
        self._ping_nonce = int.from_bytes(self._rng(4), "big")
        return Ping(self._ping_nonce)

    def _send_internal(self, message: Ping) -> None:
        records = self._established()
        now = self._clock()
        try:
            self._out.append(records.seal(encode_message(message), now))
        except SessionExhaustedError as exc:
            self._close("session_exhausted", str(exc), notify_peer=False)
            raise
        self._last_sent = now
        self._drain_notices()

    def _established(self) -> RecordLayer:
        if self._records is None or self.state != "established":
            raise LocalProtocolError(f"cannot send application data in state {self.state}")
        return self._records

    def _flush(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    # -- events and time -------------------------------------------------------------------

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def _drain_notices(self) -> None:
        records = self._records
        if records is None:
            return
        for notice in records.notices:
            if type(notice) is RekeyDone:
                self._rekey_started = None
                self._events.append(RekeyCompleted(notice.at))
                continue
            assert not isinstance(notice, RekeyDone)
            self._events.append(
                KeysRotated(
                    notice.direction, notice.epoch, notice.suite, notice.reason, notice.fresh_secret
                )
            )
            if notice.suite != notice.previous_suite:
                self._events.append(
                    CipherChanged(notice.direction, notice.suite, notice.previous_suite)
                )
        records.notices.clear()

    def _window(self, now: float) -> TimeWindow:
        return TimeWindow(now, self.config.max_clock_skew, self.config.max_message_age)

    def get_timer(self) -> float | None:
        if self.state == "closed":
            return None
        if self._records is None:
            return self._deadline
        cfg = self.config
        deadlines = [self._last_sent + cfg.keepalive_interval, self._last_recv + cfg.idle_timeout]
        if self._rekey_started is not None:
            deadlines.append(self._rekey_started + cfg.idle_timeout)
        else:
            deadlines.append(self._records.next_deadline())
        return min(deadlines)

    def handle_timer(self, now: float | None = None) -> None:
        if self.state == "closed":
            return
        now = self._clock() if now is None else now
        records = self._records
        try:
            if records is None:
                if now >= self._deadline:
                    self._security(HANDSHAKE_FAIL, "handshake deadline passed")
                    self._close(
                        "handshake_timeout",
                        f"no complete handshake in {self.config.handshake_timeout:g} s",
                    )
                return
            cfg = self.config
            if now - self._last_recv >= cfg.idle_timeout:
                self._close("idle_timeout", f"nothing received for {cfg.idle_timeout:g} s")
                return
            if self._rekey_started is not None and now - self._rekey_started >= cfg.idle_timeout:
                self._close("rekey_timeout", "peer did not complete a key agreement")
                return
            if records.rotation_due(now) == "time":
                records.rotate_send(now, "time")
            if records.rekey_due(now):
                self._begin_rekey(records, now)
                self._last_sent = now
            if now - self._last_sent >= cfg.keepalive_interval:
                self._out.append(records.seal(encode_message(self._new_ping()), now))
                self._last_sent = now
            self._drain_notices()
        except SessionExhaustedError as exc:
            self._close("session_exhausted", str(exc), notify_peer=False)

    def status(self) -> SessionStatus | None:
        return None if self._records is None else self._records.status()


def _printable(text: str) -> str:
    """One short line without control characters, fit for a bye or abort reason (the
    peer refuses a reason of more than MAX_REASON_BYTES bytes as a malformed frame)."""
    line = "".join(ch if ch.isprintable() else " " for ch in text)
    if len(line) > 200:
        line = line[:197] + "..."
    data = line.encode("utf-8")
    if len(data) > MAX_REASON_BYTES:
        line = data[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."
    return line

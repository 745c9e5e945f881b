"""Deterministic in-memory sessions and the op interpreter behind `fuzz_connection`.

A connection fuzz input is a small program: one setup byte, then ops. The
interpreter runs a *victim* `PeerConnection` (the one under attack) and an
honest *partner* (a real peer with deterministic keys, clock and RNG) and
lets the input decide what reaches the victim:

    setup byte % 4:  0 fresh responder, the partner's handshake message 1 pending
                     1 initiator after start(), its message 1 pending to the partner
                     2 established, victim is the initiator (real handshake done)
                     3 established, victim is the responder
    setup byte // 4 % 4, the partner:  0 as configured  1 uses the victim's own identity
                     (a reflected connection; fresh setups only)  2 refused by the victim's
                     policy once authenticated (fresh setups only)  3 offers or allows only
                     ChaCha20 and AES-GCM, in that order

    op byte % 10, then its arguments (u16 are big-endian; a short input reads zeros):
      0 RAW      u16 n, n bytes      victim.receive_data(bytes)
      1 DELIVER  u16 split           partner -> victim pending bytes, cut in two at split
      2 MUTATE   u8 kind, u16 pos, u8 value
                                     the pending partner bytes (or the last delivered
                                     chunk) with a byte flipped / truncated / inserted /
                                     deleted / doubled, delivered to the victim
      3 REPLAY   u8 back             re-deliver an earlier partner -> victim chunk
      4 PARTNER  u8 action, args     the partner acts (chat, receipt, ping, rotation,
                                     suite switch, rekey, file message, close); the
                                     file action reads u8 n, n bytes of data
      5 SEAL     u16 n, n bytes      the partner seals arbitrary plaintext under its real
                                     record keys: an authenticated but hostile peer; during
                                     the handshake, its next Noise message (2 or 3) carries
                                     these bytes as its payload (correct Noise, lying payload)
      6 FLUSH    -                   victim -> partner pending bytes, delivered honestly
      7 TIME     u16 sixteenths      advance the clock (0: to the earliest get_timer());
                                     handle_timer() on both sides
      8 VICTIM   u8 action, args     the victim acts (same actions as PARTNER)
      9 EOF      -                   victim.receive_data(b"")

Because everything is deterministic, bytes captured from a real session
(make_corpus.py) are valid again when the same setup replays them, so the
seed corpus starts the fuzzer deep inside established sessions.

The oracle (`Watcher`) checks the documented contract of `PeerConnection`
after every call: `receive_data` and `handle_timer` never raise; events are
of the documented types and names; a `SecurityEventRaised` is followed by
`ConnectionClosed` in the same batch; exactly one `ConnectionClosed`, with a
documented reason other than `internal_error`; nothing (no event, no byte)
after it; the state agrees with the events. Two more properties hold for
any honest sender: what one side receives is exactly a prefix of what the
other sent (nothing duplicated, reordered or invented; only the tail may be
lost), unless the program injected bytes the partner never sent (RAW, SEAL);
and a program with no hostile op at all (RAW, MUTATE, REPLAY, SEAL, EOF) makes
no `SecurityEventRaised` in `receive_data` on either side: crossing rekeys,
rotations and suite switches between two honest peers must just work. A side
only ever authenticates the other's identity (never its own, never anyone
else). Right after `handle_timer(now)`, `get_timer()` is later than `now`, or
a driver that sleeps until the timer would spin. Any
breach raises `ContractViolation`, which atheris reports as a crash.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field, replace
from typing import Literal

from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.suites import available_suite_names
from p2pmsg.errors import LocalProtocolError, P2PMsgError
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
from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.limits import PROLOGUE, ProtocolConfig
from p2pmsg.protocol.messages import (
    USER_MESSAGES,
    Chat,
    FileAccept,
    FileChunk,
    FileDone,
    FileOffer,
    Receipt,
    new_chat,
)
from p2pmsg.protocol.noise import HandshakeState
from p2pmsg.protocol.record import SessionExhaustedError
from p2pmsg.protocol.wire import HandshakeFrame, decode_frame, encode_handshake

START_TIME = 1_750_000_000.0
MAX_OPS = 256
HISTORY = 32
MAX_PENDING = 1 << 20

(
    OP_RAW,
    OP_DELIVER,
    OP_MUTATE,
    OP_REPLAY,
    OP_PARTNER,
    OP_SEAL,
    OP_FLUSH,
    OP_TIME,
    OP_VICTIM,
    OP_EOF,
) = range(10)
N_OPS = 10

ACT_CHAT, ACT_RECEIPT, ACT_PING, ACT_ROTATE, ACT_SWITCH, ACT_REKEY, ACT_FILE, ACT_CLOSE = range(8)
N_ACTIONS = 8

(
    MODE_FRESH_RESPONDER,
    MODE_STARTED_INITIATOR,
    MODE_ESTABLISHED_INITIATOR,
    MODE_ESTABLISHED_RESPONDER,
) = range(4)

EVENT_TYPES = (
    HandshakeCompleted,
    UserMessageReceived,
    KeysRotated,
    CipherChanged,
    RekeyCompleted,
    SecurityEventRaised,
    ConnectionClosed,
)
#: The connection's security events (protocol/events.py), `rate_limited` included: a
#: ping storm closes the session with it (connection.py), which atheris found.
SECURITY_EVENT_NAMES = frozenset(
    {
        "handshake_fail",
        "decrypt_fail",
        "replay_rejected",
        "downgrade_rejected",
        "frame_rejected",
        "rate_limited",
    }
)
#: ConnectionClosed reasons documented in events.py, minus internal_error: that one
#: means an exception of ours was caught by the last-resort handler, i.e. a bug.
CLOSE_REASONS = frozenset(
    {
        "local_close",
        "peer_closed",
        "eof",
        "protocol_error",
        "handshake_failed",
        "handshake_timeout",
        "idle_timeout",
        "rekey_timeout",
        "session_exhausted",
    }
)

#: Small limits so a short fuzz program crosses count rotations and fresh key agreements.
FUZZ_CONFIG = ProtocolConfig(
    suites=available_suite_names(),
    max_messages_per_key=8,
    key_rotation_interval=200.0,
    rekey_interval=400.0,
    rekey_after_messages=40,
    handshake_timeout=10.0,
    keepalive_interval=30.0,
    idle_timeout=120.0,
)


VARIANT_PLAIN, VARIANT_REFLECTED, VARIANT_REFUSED, VARIANT_NARROW = range(4)
#: variant 3's partner: a subset of the suites, in a different order
NARROW_CONFIG = replace(FUZZ_CONFIG, suites=("chacha20-poly1305", "aes-256-gcm"))


def _refuse_everyone(peer: object, suites: tuple[str, ...]) -> str:
    return "the fuzz policy refuses every peer"


class ContractViolation(AssertionError):
    """The connection broke its documented contract (a finding, not a peer error)."""


class DeterministicRng:
    """SHA-256 in counter mode over a label: the same byte stream every run."""

    def __init__(self, label: bytes) -> None:
        self._label = label
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(self._label + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        return bytes(out[:n])


class Clock:
    def __init__(self, start: float = START_TIME) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def fixed_identity(name: str) -> Identity:
    return Identity.from_bytes(hashlib.sha512(b"p2pmsg-fuzz-identity:" + name.encode()).digest())


VICTIM_IDENTITY = fixed_identity("victim")
PARTNER_IDENTITY = fixed_identity("partner")
#: The partner's Noise ephemeral: the first bytes its RNG gives (checked before use).
PARTNER_EPHEMERAL = DeterministicRng(b"partner")(32)


# The oracle hooks two private methods; if they are renamed the oracle would go blind
# silently, so fail loudly instead.
for _hook in ("_close", "_on_error"):
    if not callable(getattr(PeerConnection, _hook, None)):
        raise ImportError(f"PeerConnection.{_hook} is gone: update tests/fuzz/session.py")


class CheckedConnection(PeerConnection):
    """A `PeerConnection` that remembers what its last-resort handlers swallowed.

    `receive_data` turns any unexpected exception into ConnectionClosed("internal_error")
    so the process survives; for the fuzzer that exception is the finding, so keep it
    (with its traceback). A `LocalProtocolError` routed to `_on_error` means our own
    consistency check fired on peer input: also a finding (our bug blamed on the peer).
    """

    swallowed: BaseException | None = None

    def _close(self, reason: str, detail: str = "", notify_peer: bool = True) -> None:
        if reason == "internal_error" and self.swallowed is None:
            self.swallowed = sys.exc_info()[1]
        super()._close(reason, detail, notify_peer)

    def _on_error(self, exc: P2PMsgError) -> None:
        if (
            isinstance(exc, LocalProtocolError)
            and not isinstance(exc, SessionExhaustedError)
            and self.swallowed is None
        ):
            self.swallowed = exc
        super()._on_error(exc)


@dataclass
class Endpoint:
    label: str
    conn: CheckedConnection
    identity: Identity
    expected_peer: Identity  # the only identity this side can legitimately authenticate
    handshook: bool = False
    closed: bool = False
    events: list[Event] = field(default_factory=list)
    sent: list[UserMessage] = field(default_factory=list)  # what send_message accepted
    received: list[UserMessage] = field(default_factory=list)
    chat_ids: list[bytes] = field(default_factory=list)  # chats received, for receipts
    # what the rotation pane would show, rebuilt from the events alone
    epoch: dict[str, int] = field(default_factory=lambda: {"send": 0, "recv": 0})
    suite: dict[str, str] = field(default_factory=dict)
    negotiated: tuple[str, ...] = ()
    fresh: set[str] = field(default_factory=set)  # directions mixed since the last rekey
    cipher_change_due: bool = False
    completed: HandshakeCompleted | None = None
    id_rng: DeterministicRng = field(default_factory=lambda: DeterministicRng(b"ids"))

    def check(self, what: str) -> list[Event]:
        """Drain and check the events produced by the call just made."""
        conn = self.conn
        if conn.swallowed is not None:
            exc, conn.swallowed = conn.swallowed, None
            raise ContractViolation(
                f"{self.label}: {what}: swallowed {type(exc).__name__}: {exc}"
            ) from exc
        batch: list[Event] = []
        while (event := conn.next_event()) is not None:
            batch.append(event)
        for index, event in enumerate(batch):
            self._check_event(what, event, batch[index + 1 :])
        self.events.extend(batch)
        state = conn.state
        if (state == "closed") != self.closed:
            raise ContractViolation(
                f"{self.label}: {what}: state {state!r} but "
                f"ConnectionClosed {'seen' if self.closed else 'not seen'}"
            )
        if state == "established" and not self.handshook:
            raise ContractViolation(f"{self.label}: {what}: established without HandshakeCompleted")
        if self.closed and conn.get_timer() is not None:
            raise ContractViolation(f"{self.label}: {what}: closed but get_timer() is not None")
        conn.status()  # must not raise in any state
        return batch

    def _check_event(self, what: str, event: Event, rest: list[Event]) -> None:
        where = f"{self.label}: {what}: {type(event).__name__}"
        if self.closed:
            raise ContractViolation(f"{where} after ConnectionClosed")
        if not isinstance(event, EVENT_TYPES):
            raise ContractViolation(f"{where} is not a documented event type")
        if type(event) is SecurityEventRaised:
            if event.event not in SECURITY_EVENT_NAMES:
                raise ContractViolation(f"{where} has undocumented name {event.event!r}")
            if not any(type(e) is ConnectionClosed for e in rest):
                raise ContractViolation(f"{where} {event.event} not followed by ConnectionClosed")
        elif type(event) is ConnectionClosed:
            if event.reason not in CLOSE_REASONS:
                raise ContractViolation(f"{where} with reason {event.reason!r}: {event.detail}")
            self.closed = True
        elif type(event) is HandshakeCompleted:
            if self.handshook:
                raise ContractViolation(f"{where} twice")
            self.handshook = True
            # Only two private keys exist in this world: whatever the input, the only
            # identity a side may ever authenticate is the other one's.
            key = event.peer.public_key
            if key != self.expected_peer.public_key or key == self.identity.public_key:
                raise ContractViolation(f"{where} authenticated {key.hex()}")
            if (
                not event.suites
                or event.suite != event.suites[0]
                or not set(event.suites) <= set(FUZZ_CONFIG.suites)
            ):
                raise ContractViolation(f"{where} negotiated {event.suites} / {event.suite}")
            self.negotiated = event.suites
            self.suite = {"send": event.suite, "recv": event.suite}
            self.completed = event
        elif not self.handshook:
            raise ContractViolation(f"{where} before HandshakeCompleted")
        elif type(event) is UserMessageReceived:
            if type(event.message) not in USER_MESSAGES:
                raise ContractViolation(f"{where} carries {type(event.message).__name__}")
            self.received.append(event.message)
            if type(event.message) is Chat:
                self.chat_ids.append(event.message.id)
                del self.chat_ids[:-8]
        elif type(event) is KeysRotated:
            self._check_rotation(where, event, rest)
        elif type(event) is CipherChanged:
            if not self.cipher_change_due:
                raise ContractViolation(f"{where} without a rotation that changed the suite")
            self.cipher_change_due = False
        elif type(event) is RekeyCompleted:
            if self.fresh != {"send", "recv"}:
                raise ContractViolation(
                    f"{where} but only {sorted(self.fresh)} got a fresh secret since the last one"
                )
            self.fresh.clear()

    def _check_rotation(self, where: str, event: KeysRotated, rest: list[Event]) -> None:
        """Epochs advance one at a time per direction, only to negotiated suites, and a
        suite change is announced by the CipherChanged right after."""
        direction = event.direction
        if direction not in ("send", "recv") or event.epoch != self.epoch[direction] + 1:
            raise ContractViolation(
                f"{where} {direction} to epoch {event.epoch} after {self.epoch.get(direction)}"
            )
        if event.suite not in self.negotiated:
            raise ContractViolation(f"{where} to {event.suite}, not in {self.negotiated}")
        previous, self.suite[direction] = self.suite[direction], event.suite
        self.epoch[direction] = event.epoch
        if event.fresh_secret:
            self.fresh.add(direction)
        if event.suite != previous:
            expected = CipherChanged(direction, event.suite, previous)
            if not rest or rest[0] != expected:
                raise ContractViolation(f"{where} changed suite without {expected!r} next")
            self.cipher_change_due = True


class Reader:
    """Reads op arguments; past the end it yields zeros, so every input is a program."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)

    def u8(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        return (self.u8() << 8) | self.u8()

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


@dataclass
class Trace:
    """What make_corpus.py records: each side's received byte chunks, and the victim's
    view of the program as replayable ops (RAW for what it received, its own actions)."""

    received: dict[str, list[bytes]] = field(default_factory=lambda: {"victim": [], "partner": []})
    victim_ops: list[bytes] = field(default_factory=list)


class Session:
    def __init__(self, mode: int, trace: Trace | None = None) -> None:
        self.mode = mode % 4
        established = self.mode in (MODE_ESTABLISHED_INITIATOR, MODE_ESTABLISHED_RESPONDER)
        variant = (mode // 4) % 4
        if established and variant in (VARIANT_REFLECTED, VARIANT_REFUSED):
            variant = VARIANT_PLAIN  # those never get established
        self.clock = Clock()
        self.trace = trace
        victim_role: Literal["initiator", "responder"] = (
            "initiator"
            if self.mode in (MODE_STARTED_INITIATOR, MODE_ESTABLISHED_INITIATOR)
            else "responder"
        )
        partner_role: Literal["initiator", "responder"] = (
            "responder" if victim_role == "initiator" else "initiator"
        )
        partner_identity = VICTIM_IDENTITY if variant == VARIANT_REFLECTED else PARTNER_IDENTITY
        self.victim = Endpoint(
            "victim",
            CheckedConnection(
                victim_role,
                VICTIM_IDENTITY,
                "victim",
                DeterministicRng(b"victim"),
                self.clock,
                FUZZ_CONFIG,
                policy=_refuse_everyone if variant == VARIANT_REFUSED else None,
            ),
            VICTIM_IDENTITY,
            PARTNER_IDENTITY,
        )
        self.partner = Endpoint(
            "partner",
            CheckedConnection(
                partner_role,
                partner_identity,
                "partner",
                DeterministicRng(b"partner"),
                self.clock,
                NARROW_CONFIG if variant == VARIANT_NARROW else FUZZ_CONFIG,
            ),
            partner_identity,
            VICTIM_IDENTITY,
        )
        self.to_victim = b""
        self.to_partner = b""
        self.history: list[bytes] = []
        #: the Noise messages each side sent, for forging the partner's next one
        self.noise_sent: dict[str, list[bytes]] = {"victim": [], "partner": []}
        #: the victim got bytes its partner never sent (RAW, SEAL): it may receive messages
        #: the partner did not send, so only the partner's side is checked for integrity
        self.injected = False
        #: any hostile op ran (or the setup makes the handshake fail): security events
        #: are expected from now on
        self.hostile = variant in (VARIANT_REFLECTED, VARIANT_REFUSED)
        if victim_role == "initiator":
            self._queue_from(self.victim, self.victim.conn.start())
        else:
            self._queue_from(self.partner, self.partner.conn.start())
        if established:
            for _ in range(4):
                self.deliver_pending()
                self.flush()
            if not (self.victim.handshook and self.partner.handshook):
                raise ContractViolation("the honest handshake did not complete")
            if self.trace is not None:
                self.trace.victim_ops.clear()  # the setup redoes the handshake on replay

    # -- moving bytes ----------------------------------------------------------------------

    def _trace_victim_op(self, op: bytes) -> None:
        if self.trace is not None:
            self.trace.victim_ops.append(op)

    def feed(self, endpoint: Endpoint, data: bytes) -> None:
        """receive_data on one side, with the contract checks; replies go to the other."""
        was_closed = endpoint.closed
        if self.trace is not None and not was_closed:
            self.trace.received[endpoint.label].append(data)
        if endpoint is self.victim:
            self._trace_victim_op(op_raw(data) if data else bytes([OP_EOF]))
        endpoint.conn.receive_data(data)
        batch = endpoint.check("receive_data")
        out = endpoint.conn.data_to_send()
        if was_closed and (batch or out):
            raise ContractViolation(
                f"{endpoint.label}: receive_data after ConnectionClosed "
                f"produced {len(batch)} events and {len(out)} bytes"
            )
        if not self.hostile:
            for event in batch:
                if type(event) is SecurityEventRaised:
                    raise ContractViolation(f"{endpoint.label}: honest peers, yet {event!r}")
        if (
            not self.injected
            and self.victim.completed
            and self.partner.completed
            and (self.victim.completed.handshake_hash, self.victim.completed.suites)
            != (self.partner.completed.handshake_hash, self.partner.completed.suites)
        ):
            raise ContractViolation("one handshake, two views: hashes or suites differ")
        if endpoint is self.partner or not self.injected:
            sender = self.victim if endpoint is self.partner else self.partner
            got = endpoint.received
            if got != sender.sent[: len(got)]:
                raise ContractViolation(
                    f"{endpoint.label} received {len(got)} messages that are not a prefix of "
                    f"the {len(sender.sent)} its peer sent: {got[-3:]!r} vs "
                    f"{sender.sent[: len(got)][-3:]!r}"
                )
        self._queue_from(endpoint, out)

    def _queue_from(self, endpoint: Endpoint, out: bytes) -> None:
        if out:  # our own output must always be whole, decodable frames
            self.noise_sent[endpoint.label].extend(_noise_messages(out))
        if endpoint is self.victim:
            self.to_partner = (self.to_partner + out)[-MAX_PENDING:]
        else:
            self.to_victim = (self.to_victim + out)[-MAX_PENDING:]

    def deliver_pending(self, split: int | None = None) -> None:
        data, self.to_victim = self.to_victim, b""
        self.deliver(data, split)

    def deliver(self, data: bytes, split: int | None = None) -> None:
        """Partner -> victim bytes, optionally cut in two at `split`."""
        if not data:
            return
        self.history.append(data)
        del self.history[:-HISTORY]
        cut = len(data) if split is None else split % (len(data) + 1)
        for part in (data[:cut], data[cut:]):
            if part:
                self.feed(self.victim, part)

    def flush(self) -> None:
        data, self.to_partner = self.to_partner, b""
        if data:
            self.feed(self.partner, data)

    # -- ops -------------------------------------------------------------------------------

    def run(self, reader: Reader) -> None:
        for _ in range(MAX_OPS):
            if reader.done:
                break
            self.step(reader.u8() % N_OPS, reader)
        self.finish()

    def step(self, op: int, reader: Reader) -> None:
        if op in (OP_RAW, OP_MUTATE, OP_REPLAY, OP_SEAL, OP_EOF):
            self.hostile = True
            self.injected = self.injected or op in (OP_RAW, OP_SEAL)
        if op == OP_RAW:
            data = reader.take(reader.u16())
            if data:
                self.feed(self.victim, data)
        elif op == OP_DELIVER:
            self.deliver_pending(reader.u16())
        elif op == OP_MUTATE:
            kind, pos, value = reader.u8(), reader.u16(), reader.u8()
            data = self.to_victim or (self.history[-1] if self.history else b"")
            self.to_victim = b""
            if data:
                self.deliver(mutate(data, kind, pos, value))
        elif op == OP_REPLAY:
            back = reader.u8()
            if self.history:
                self.deliver(self.history[-1 - back % len(self.history)])
        elif op == OP_PARTNER:
            self.act(self.partner, reader)
        elif op == OP_SEAL:
            self.seal_raw(reader.take(reader.u16()))
        elif op == OP_FLUSH:
            self.flush()
        elif op == OP_TIME:
            sixteenths = reader.u16()
            self.advance(sixteenths / 16 if sixteenths else self._until_next_timer())
        elif op == OP_VICTIM:
            start = reader.pos
            self.act(self.victim, reader)
            self._trace_victim_op(bytes([OP_VICTIM]) + reader.data[start : reader.pos])
        elif op == OP_EOF:
            self.feed(self.victim, b"")

    def _until_next_timer(self) -> float:
        timers = [
            t
            for t in (self.victim.conn.get_timer(), self.partner.conn.get_timer())
            if t is not None
        ]
        return max(0.0, min(timers) - self.clock.now) if timers else 0.0

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        if self.trace is not None:
            self._trace_victim_op(op_time(seconds))
        for endpoint in (self.victim, self.partner):
            was_closed = endpoint.closed
            endpoint.conn.handle_timer()
            batch = endpoint.check("handle_timer")
            timer = endpoint.conn.get_timer()
            if timer is not None and timer <= self.clock.now:
                raise ContractViolation(
                    f"{endpoint.label}: right after handle_timer(now), get_timer() is "
                    f"{self.clock.now - timer:g} s in the past: a driver loop would spin"
                )
            out = endpoint.conn.data_to_send()
            if was_closed and (batch or out):
                raise ContractViolation(
                    f"{endpoint.label}: handle_timer after close produced output"
                )
            self._queue_from(endpoint, out)
            self._note_handshake_abort(endpoint)

    def seal_raw(self, plaintext: bytes) -> None:
        """An authenticated peer sending any plaintext: reaches the message validator
        through the real record layer (the partner's private `_records`: test-only)."""
        records = getattr(self.partner.conn, "_records", None)
        if records is None:
            self.forge_handshake(plaintext)
            return
        if self.partner.closed or not plaintext:
            return
        try:
            self.to_victim += records.seal(plaintext, self.clock.now)
        except LocalProtocolError:
            return  # the partner's own session ran out: nothing to send

    def forge_handshake(self, payload: bytes) -> None:
        """Queue for the victim the handshake message the partner would send next, with
        `payload` in place of the real one: Noise done right, the p2pmsg payload a lie
        (identity, signature, suites, version, name). Uses only the Noise contract."""
        sent = self.noise_sent
        static = PARTNER_IDENTITY.noise_static
        try:
            if self.victim.conn.role == "initiator":  # forge message 2
                if not sent["victim"]:
                    return
                noise = HandshakeState(
                    initiator=False, s=static, prologue=PROLOGUE, rng=DeterministicRng(b"forged")
                )
                noise.read_message(sent["victim"][0])
            else:  # forge message 3 on the partner's own message 1
                if not sent["partner"] or not sent["victim"]:
                    return
                first = sent["partner"][0]
                noise = HandshakeState(
                    initiator=True, s=static, prologue=PROLOGUE, e=PARTNER_EPHEMERAL
                )
                if noise.write_message(first[32:]) != first:
                    raise ContractViolation("cannot reproduce the partner's message 1")
                noise.read_message(sent["victim"][0])
            message = noise.write_message(payload)
        except P2PMsgError:
            return  # e.g. a payload too large for one Noise message
        self.to_victim += encode_handshake(message)

    def act(self, endpoint: Endpoint, reader: Reader) -> None:
        action = reader.u8() % N_ACTIONS
        arg = reader.u8()
        conn = endpoint.conn
        was_closed = endpoint.closed
        try:
            out = self._action(endpoint, action, arg, reader)
        except LocalProtocolError:
            out = b""  # documented misuse (closed, not yet established, invalid message)
        batch = endpoint.check(f"action {action}")
        out += conn.data_to_send()
        if was_closed and (batch or out):
            raise ContractViolation(
                f"{endpoint.label}: action {action} after ConnectionClosed "
                f"produced {len(batch)} events and {len(out)} bytes"
            )
        self._queue_from(endpoint, out)
        self._note_handshake_abort(endpoint)

    def _note_handshake_abort(self, endpoint: Endpoint) -> None:
        """A side that gives up during the handshake sends an (unauthenticated) abort,
        which the other side reports as handshake_fail: expected, even between honest
        peers."""
        if endpoint.closed and not endpoint.handshook:
            self.hostile = True

    def _action(self, endpoint: Endpoint, action: int, arg: int, reader: Reader) -> bytes:
        conn, now = endpoint.conn, self.clock.now
        message: UserMessage
        if action == ACT_CHAT:
            text = reader.take(arg).decode("utf-8", "replace") or "hi"
            message = new_chat(endpoint.id_rng, now, text)
        elif action == ACT_RECEIPT:
            ids = tuple(endpoint.chat_ids) or (endpoint.id_rng(16),)
            message = Receipt(ids, "read" if arg & 1 else "delivered")
        elif action == ACT_FILE:
            message = _file_message(arg, reader.take(reader.u8()))
        else:
            return self._control(conn, action, arg)
        out = conn.send_message(message)
        endpoint.sent.append(message)
        return out

    def _control(self, conn: CheckedConnection, action: int, arg: int) -> bytes:
        if action == ACT_PING:
            return conn.ping()
        if action == ACT_ROTATE:
            return conn.rotate_keys()
        if action == ACT_SWITCH:
            suites = conn.negotiated_suites or FUZZ_CONFIG.suites
            return conn.switch_suite(suites[arg % len(suites)])
        if action == ACT_REKEY:
            return conn.request_rekey()
        return conn.close("fuzz close" if arg & 1 else "")

    def finish(self) -> None:
        """Liveness: once the idle timeout (or handshake deadline) passes, both sides
        must have closed; nothing may hang on."""
        self.advance(max(FUZZ_CONFIG.idle_timeout, FUZZ_CONFIG.handshake_timeout) + 1)
        for endpoint in (self.victim, self.partner):
            if not endpoint.closed:
                raise ContractViolation(
                    f"{endpoint.label}: still {endpoint.conn.state} after the idle timeout"
                )


_TRANSFER_ID = bytes(range(16))


def _noise_messages(out: bytes) -> list[bytes]:
    """The Noise messages among the frames a connection wrote; checks on the way that
    everything it writes is whole frames a peer can decode."""
    found = []
    decoder = FrameDecoder()
    try:
        for body in decoder.feed(out):
            frame = decode_frame(body)
            if type(frame) is HandshakeFrame:
                found.append(frame.noise)
    except P2PMsgError as exc:
        raise ContractViolation(f"a connection wrote an undecodable frame: {exc}") from exc
    if decoder.buffered:
        raise ContractViolation(f"a connection wrote {decoder.buffered} bytes of a partial frame")
    return found


def _file_message(kind: int, data: bytes) -> FileOffer | FileAccept | FileChunk | FileDone:
    data = data or b"x"
    if kind % 4 == 0:
        return FileOffer(_TRANSFER_ID, "notes.txt", len(data), 4)
    if kind % 4 == 1:
        return FileAccept(_TRANSFER_ID, kind // 4)
    if kind % 4 == 2:
        return FileChunk(_TRANSFER_ID, kind // 4, data)
    return FileDone(_TRANSFER_ID, hashlib.sha256(data).digest())


def mutate(data: bytes, kind: int, pos: int, value: int) -> bytes:
    """Damage `data` the way a hostile network would."""
    at = pos % len(data)
    kind %= 5
    if kind == 0:
        return data[:at] + bytes([data[at] ^ (value or 1)]) + data[at + 1 :]
    if kind == 1:
        return data[:at]
    if kind == 2:
        return data[:at] + bytes([value]) + data[at:]
    if kind == 3:
        return data[:at] + data[at + 1 :]
    return data + data


# --- program builders (make_corpus.py, regression tests) ----------------------------------


def op_raw(data: bytes) -> bytes:
    """RAW ops for `data` (several if it is longer than one u16 length)."""
    out = bytearray()
    for start in range(0, len(data), 0xFFFF):
        chunk = data[start : start + 0xFFFF]
        out += bytes([OP_RAW]) + len(chunk).to_bytes(2, "big") + chunk
    return bytes(out)


def op_time(seconds: float) -> bytes:
    return bytes([OP_TIME]) + min(int(seconds * 16), 0xFFFF).to_bytes(2, "big")


def op_act(
    who: Literal["partner", "victim"], action: int, arg: int = 0, extra: bytes = b""
) -> bytes:
    return bytes([OP_PARTNER if who == "partner" else OP_VICTIM, action, arg]) + extra


def op_seal(plaintext: bytes) -> bytes:
    return bytes([OP_SEAL]) + len(plaintext).to_bytes(2, "big") + plaintext


DELIVER = bytes([OP_DELIVER, 0xFF, 0xFF])
FLUSH = bytes([OP_FLUSH])


def run_program(data: bytes, trace: Trace | None = None) -> Session:
    """Run one fuzz input; raises ContractViolation (or the escaping exception) on a bug."""
    reader = Reader(data)
    session = Session(reader.u8(), trace)
    session.run(reader)
    return session

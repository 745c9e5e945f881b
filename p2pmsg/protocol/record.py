"""The record layer: sealing and opening records, rotation, cipher switch, rekey.

One `RecordLayer` per session holds a send and a receive direction, each an
independent key chain (keyschedule.py). The rules, all enforced in `open`
before any state changes:

- the version must be 1, else `RemoteProtocolError` (frame_rejected);
- the suite id must be one negotiated in the handshake, else `DowngradeError`;
- the counter must be exactly the next one: lower is a replay, higher means
  records were dropped or reordered; both are `ReplayError`, and a record is
  never decrypted twice;
- the epoch must be the current one (same suite as before) or the next one
  (any negotiated suite: the only place a suite may change; a change anywhere
  else is `DowngradeError`); a past epoch is `ReplayError`, a skipped one
  `RemoteProtocolError`;
- then the AEAD must open it, else `DecryptError`.
Only a record that passes all of these advances the receive state.

The sender rotates to the next epoch when `max_messages_per_key` records went
out under the current key, when `key_rotation_interval` passed, or on
request (optionally switching suite); the receiver follows when a record of
the next epoch arrives. Old chain and epoch keys are dropped at once.

Fresh key agreement (the `Rekey` message, three steps; see `on_rekey`) mixes a
new X25519 secret into both chains, each at a point the other side can see:
the record carrying step 2 is the answerer's last under its old chain, the
record carrying step 3 the offerer's last, and each sender rotates right after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgpack
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from p2pmsg.crypto.suites import CipherSuite, KeyedAead, get_suite
from p2pmsg.errors import (
    DowngradeError,
    LocalProtocolError,
    RemoteProtocolError,
    ReplayError,
)
from p2pmsg.protocol.framing import encode_frame_length
from p2pmsg.protocol.handshake import HandshakeResult
from p2pmsg.protocol.keyschedule import (
    keyed_for_epoch,
    next_chain,
    record_ad,
    record_nonce,
    root_chain,
)
from p2pmsg.protocol.limits import (
    HARD_MAX_MESSAGES_PER_KEY,
    MAX_COUNTER,
    MAX_EPOCH,
    MAX_FRAME_SIZE,
    RECORD_VERSION,
    ProtocolConfig,
)
from p2pmsg.protocol.messages import Rekey, encode_message
from p2pmsg.protocol.noise import KeyPair, Rng
from p2pmsg.protocol.wire import FRAME_RECORD, RecordFrame, msgpack_bin_header

Direction = Literal["send", "recv"]


class SessionExhaustedError(LocalProtocolError):
    """The counter or epoch space is used up: the session must end (and be redone)."""


@dataclass(frozen=True)
class Rotation:
    """A notice: one direction moved to a new epoch (the connection makes events of it)."""

    direction: Direction
    epoch: int
    suite: str
    previous_suite: str
    reason: str  # count | time | requested | switch | rekey | peer
    fresh_secret: bool


@dataclass(frozen=True)
class RekeyDone:
    """A notice: both directions now run on chains mixed with a fresh X25519 secret."""

    at: float


@dataclass(frozen=True)
class DirectionStatus:
    suite: str
    epoch: int
    counter: int  # records so far in this direction (the next counter)
    messages_under_key: int
    max_messages_per_key: int
    last_rotation: float
    #: when the time limit forces the next rotation; None for the receive direction,
    #: whose rotations the peer decides
    next_rotation: float | None


@dataclass(frozen=True)
class SessionStatus:
    """What the key-rotation pane shows; a snapshot, safe to hand to another thread."""

    send: DirectionStatus
    recv: DirectionStatus
    negotiated_suites: tuple[str, ...]
    session_started: float
    last_key_agreement: float
    next_key_agreement: float
    messages_since_key_agreement: int
    rekey_in_progress: bool
    handshake_hash: bytes


class _Chain:
    """One direction's moving state."""

    __slots__ = (
        "chain",
        "counter",
        "epoch",
        "in_epoch",
        "keyed",
        "pending_secret",
        "started",
        "suite",
        "suite_id",
    )

    def __init__(self, chain: bytes, suite: CipherSuite, now: float) -> None:
        self.chain = chain
        self.suite = suite
        self.suite_id = suite.suite_id
        self.keyed: KeyedAead = keyed_for_epoch(chain, suite)
        self.epoch = 0
        self.counter = 0
        self.in_epoch = 0
        self.started = now
        #: a fresh X25519 secret to mix in at this direction's next rotation
        self.pending_secret: bytes | None = None


class PendingRecord:
    """One record with its counter, key and header fixed, its ciphertext still to make.

    `seal` is pure (the keyed AEADs are safe to share between threads) and may run
    on any thread; `head + seal()` is the complete frame. The record holds its
    epoch's key until sealed, which after a rotation outlives the chain's copy by
    the time the batch takes to seal (milliseconds)."""

    __slots__ = ("ad", "head", "keyed", "nonce", "plaintext", "size")

    def __init__(
        self, keyed: KeyedAead, nonce: bytes, plaintext: bytes, ad: bytes, head: bytes, size: int
    ) -> None:
        self.keyed = keyed
        self.nonce = nonce
        self.plaintext = plaintext
        self.ad = ad
        self.head = head
        self.size = size

    @property
    def parallel(self) -> bool:
        """Whether its suite is slow enough to be worth sealing on another thread."""
        return self.keyed.suite.parallel_seal

    def seal(self) -> bytes:
        sealed = self.keyed.seal(self.nonce, self.plaintext, self.ad)
        if len(sealed) != self.size:  # the header already names the size
            raise LocalProtocolError(
                f"{self.keyed.suite.name} sealed {len(sealed)} bytes, {self.size} expected"
            )
        return sealed


class RecordLayer:
    def __init__(self, result: HandshakeResult, config: ProtocolConfig, now: float) -> None:
        self.config = config
        self.handshake_hash = result.handshake_hash
        self.negotiated = result.suites
        self._allowed = {get_suite(n).suite_id: get_suite(n) for n in result.suites}
        suite = get_suite(result.initial_suite)
        self._send = _Chain(root_chain(result.send_key, result.handshake_hash), suite, now)
        self._recv = _Chain(root_chain(result.recv_key, result.handshake_hash), suite, now)
        self._recv_must_rotate = False  # set by rekey steps 2 and 3
        self.session_started = now
        self.last_key_agreement = now  # the handshake is the first key agreement
        self._sent_since_agreement = 0
        self._rekey_private: KeyPair | None = None  # we offered (step 1)
        self._rekey_answered: bytes | None = None  # we answered (step 2): the secret
        self._rekey_send_secret: bytes | None = None  # to mix in once our step 2/3 is out
        self._rekey_unmixed: set[Direction] = set()
        self.notices: list[Rotation | RekeyDone] = []
        # One packer per session (msgpack.packb builds a new one per call; not shared
        # between sessions, so sessions may live on different threads).
        self._pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack

    # -- sending ---------------------------------------------------------------------------

    def rotation_due(self, now: float) -> str | None:
        """Why the send direction must rotate before its next record, if it must.

        Never for an epoch with no record in it yet: the receiver follows one
        epoch at a time, so every epoch must carry at least one record (and a key
        that sealed nothing protects nothing)."""
        s = self._send
        if s.in_epoch == 0:
            return None
        if s.in_epoch >= self.config.max_messages_per_key:
            return "count"
        if now - s.started >= self.config.key_rotation_interval:
            return "time"
        return None

    @property
    def can_rotate(self) -> bool:
        return self._send.in_epoch > 0

    def rotate_send(self, now: float, reason: str, suite: str | None = None) -> None:
        """Move the send direction to its next epoch now (erasing the old keys).

        Only after at least one record went out in the current epoch (`can_rotate`)."""
        s = self._send
        new_suite = s.suite if suite is None else self.negotiated_suite(suite)
        if s.in_epoch == 0:
            raise LocalProtocolError("no record was sent in this epoch yet; send one first")
        if s.epoch >= MAX_EPOCH:
            raise SessionExhaustedError("epoch space exhausted")
        secret, s.pending_secret = s.pending_secret, None
        s.chain = next_chain(s.chain, secret)
        previous, s.suite, s.suite_id = s.suite, new_suite, new_suite.suite_id
        s.keyed = keyed_for_epoch(s.chain, new_suite)
        s.epoch += 1
        s.in_epoch = 0
        s.started = now
        self.notices.append(
            Rotation("send", s.epoch, new_suite.name, previous.name, reason, secret is not None)
        )
        if secret is not None:
            self._mixed("send", now)

    def seal(self, plaintext: bytes, now: float) -> bytes:
        """Seal one plaintext into a complete record frame, rotating first if due."""
        return b"".join(self.seal_parts(plaintext, now))

    def seal_parts(self, plaintext: bytes, now: float) -> tuple[bytes, bytes]:
        """`seal`, as two pieces to be written one after the other: the frame up to
        the ciphertext (length prefix, msgpack array and bin headers), then the
        ciphertext. A caller that joins many records into one write anyway (the
        connection does) copies each ciphertext once instead of three times, which
        for 64 KiB file chunks was a quarter of the sender's CPU time."""
        record = self.reserve(plaintext, now)
        return record.head, record.seal()

    def reserve(self, plaintext: bytes, now: float) -> PendingRecord:
        """Everything of one record but its ciphertext: rotating first if due, its
        counter, epoch key and header taken now, in order. `PendingRecord.seal` then
        makes the ciphertext, on any thread: a batch of records may be sealed in
        parallel, and written in counter order (node/net/sealing.py). The sealed size
        is known in advance (`CipherSuite.sealed_size`), so the frame limit is checked
        here, before the counter moves."""
        s = self._send
        if s.in_epoch and (
            s.in_epoch >= self.config.max_messages_per_key
            or now - s.started >= self.config.key_rotation_interval
        ):
            self.rotate_send(now, self.rotation_due(now) or "count")
        counter = s.counter
        if counter >= MAX_COUNTER:
            raise SessionExhaustedError("record counter exhausted")
        size = s.suite.sealed_size(len(plaintext))
        # The array's encoding is its elements' encodings in a row, so packing it with
        # an empty bin last and dropping that bin's two bytes (c4 00) leaves the header
        # the real bin's header and bytes follow.
        head = self._pack([FRAME_RECORD, RECORD_VERSION, s.epoch, counter, s.suite_id, b""])[:-2]
        head += msgpack_bin_header(size)
        body_size = len(head) + size
        if body_size > MAX_FRAME_SIZE:
            raise LocalProtocolError(f"record of {body_size} bytes exceeds the frame limit")
        record = PendingRecord(
            s.keyed,
            record_nonce(counter),
            plaintext,
            record_ad(RECORD_VERSION, s.epoch, counter, s.suite_id),
            encode_frame_length(body_size) + head,
            size,
        )
        s.counter = counter + 1
        s.in_epoch += 1
        self._sent_since_agreement += 1
        return record

    @property
    def send_suite(self) -> CipherSuite:
        return self._send.suite

    def negotiated_suite(self, name: str) -> CipherSuite:
        suite = get_suite(name)
        if suite.suite_id not in self._allowed:
            raise LocalProtocolError(
                f"{name} was not negotiated for this session; allowed: {', '.join(self.negotiated)}"
            )
        return suite

    # -- receiving -------------------------------------------------------------------------

    def open(self, frame: RecordFrame, now: float) -> bytes:
        """Check and open one record; on any error nothing changes (module docstring)."""
        r = self._recv
        if frame.version != RECORD_VERSION:
            raise RemoteProtocolError(f"record version {frame.version} is not supported")
        suite = self._allowed.get(frame.suite_id)
        if suite is None:
            raise DowngradeError(f"record uses suite id {frame.suite_id}, which was not negotiated")
        if frame.counter != r.counter:
            if frame.counter < r.counter:
                raise ReplayError(
                    f"record counter {frame.counter} was already used (expected {r.counter})"
                )
            raise ReplayError(
                f"record counter {frame.counter} skips ahead of {r.counter}: "
                "records were dropped or reordered"
            )
        ad = record_ad(RECORD_VERSION, frame.epoch, frame.counter, frame.suite_id)
        if frame.epoch == r.epoch:
            if self._recv_must_rotate:
                raise RemoteProtocolError(
                    f"peer stayed in epoch {r.epoch} after a rekey step; it must rotate"
                )
            if frame.suite_id != r.suite_id:
                raise DowngradeError(
                    f"suite changed from {r.suite.name} to {suite.name} inside epoch {r.epoch}"
                )
            if r.in_epoch >= HARD_MAX_MESSAGES_PER_KEY:
                raise RemoteProtocolError("peer exceeded the hard limit of records per key")
            plaintext = r.keyed.open(record_nonce(frame.counter), frame.sealed, ad)
        elif frame.epoch == r.epoch + 1:
            chain = next_chain(r.chain, r.pending_secret)
            keyed = keyed_for_epoch(chain, suite)
            plaintext = keyed.open(record_nonce(frame.counter), frame.sealed, ad)
            # Opened: only now commit the new epoch (and forget the old keys).
            mixed = r.pending_secret is not None
            previous = r.suite
            r.chain, r.keyed, r.suite, r.suite_id = chain, keyed, suite, suite.suite_id
            r.epoch, r.in_epoch, r.started, r.pending_secret = frame.epoch, 0, now, None
            self._recv_must_rotate = False
            self.notices.append(
                Rotation(
                    "recv", r.epoch, suite.name, previous.name, "rekey" if mixed else "peer", mixed
                )
            )
            if mixed:
                self._mixed("recv", now)
        elif frame.epoch < r.epoch:
            raise ReplayError(f"record for past epoch {frame.epoch} (current {r.epoch})")
        else:
            raise RemoteProtocolError(
                f"record for epoch {frame.epoch} skips ahead of {r.epoch}: "
                "epochs advance one at a time"
            )
        r.counter += 1
        r.in_epoch += 1
        return plaintext

    # -- fresh key agreement ---------------------------------------------------------------

    @property
    def rekey_in_progress(self) -> bool:
        return (
            self._rekey_private is not None
            or self._rekey_answered is not None
            or self._rekey_send_secret is not None
            or bool(self._rekey_unmixed)
        )

    def rekey_due(self, now: float) -> bool:
        return not self.rekey_in_progress and (
            self._sent_since_agreement >= self.config.rekey_after_messages
            or now - self.last_key_agreement >= self.config.rekey_interval
        )

    def begin_rekey(self, rng: Rng) -> Rekey:
        """Step 1: offer a fresh X25519 public key."""
        if self.rekey_in_progress:
            raise LocalProtocolError("a key agreement is already in progress")
        self._rekey_private = KeyPair(rng(32))
        return Rekey(1, self._rekey_private.public)

    def on_rekey(self, message: Rekey, rng: Rng, wins_ties: bool) -> Rekey | None:
        """Handle a peer's rekey step; returns our reply (step 2 or 3), if any, which
        the caller must seal with `seal_rekey` before sealing anything else.

        Offers can cross: then the handshake initiator (`wins_ties`) ignores the
        peer's offer, and the responder drops its own and answers.
        """
        if message.step == 1:
            if self._rekey_answered is not None or self._rekey_unmixed:
                raise RemoteProtocolError("rekey offer while a key agreement is in progress")
            if self._rekey_private is not None:
                if wins_ties:
                    return None
                self._rekey_private = None
            assert message.public_key is not None
            ours = KeyPair(rng(32))
            secret = _exchange(ours, message.public_key)
            self._rekey_answered = self._rekey_send_secret = secret
            self._rekey_unmixed.update(("send", "recv"))
            return Rekey(2, ours.public)
        if message.step == 2:
            if self._rekey_private is None:
                raise RemoteProtocolError("rekey answer without an offer")
            assert message.public_key is not None
            secret = _exchange(self._rekey_private, message.public_key)
            self._rekey_private = None
            self._rekey_send_secret = secret
            self._rekey_unmixed.update(("send", "recv"))
            self._expect_mixed_epoch(secret)
            return Rekey(3, None)
        if self._rekey_answered is None:
            raise RemoteProtocolError("rekey confirmation without an answer")
        self._expect_mixed_epoch(self._rekey_answered)
        self._rekey_answered = None
        return None

    def seal_rekey(self, message: Rekey, now: float) -> bytes:
        """Seal a rekey step. After step 2 or 3 the send chain moves on at once, mixed
        with the fresh secret, so that record is the last under the old chain."""
        frame = self.seal(encode_message(message), now)
        if message.step in (2, 3):
            if self._rekey_send_secret is None:
                raise LocalProtocolError("rekey step sealed out of order")
            self._send.pending_secret, self._rekey_send_secret = self._rekey_send_secret, None
            self.rotate_send(now, "rekey")
        return frame

    def _expect_mixed_epoch(self, secret: bytes) -> None:
        self._recv.pending_secret = secret
        self._recv_must_rotate = True
        self._rekey_unmixed.add("recv")

    def _mixed(self, direction: Direction, now: float) -> None:
        self._rekey_unmixed.discard(direction)
        if not self._rekey_unmixed and self._rekey_answered is None:
            self.last_key_agreement = now
            self._sent_since_agreement = 0
            self.notices.append(RekeyDone(now))

    # -- status ----------------------------------------------------------------------------

    def next_deadline(self) -> float:
        """The earliest time a time-driven rotation or key agreement is due."""
        rekey = self.last_key_agreement + self.config.rekey_interval
        if self._send.in_epoch == 0:
            return rekey
        return min(self._send.started + self.config.key_rotation_interval, rekey)

    def status(self) -> SessionStatus:
        s, r, cfg = self._send, self._recv, self.config
        return SessionStatus(
            send=DirectionStatus(
                s.suite.name,
                s.epoch,
                s.counter,
                s.in_epoch,
                cfg.max_messages_per_key,
                s.started,
                s.started + cfg.key_rotation_interval,
            ),
            recv=DirectionStatus(
                r.suite.name,
                r.epoch,
                r.counter,
                r.in_epoch,
                HARD_MAX_MESSAGES_PER_KEY,
                r.started,
                None,
            ),
            negotiated_suites=self.negotiated,
            session_started=self.session_started,
            last_key_agreement=self.last_key_agreement,
            next_key_agreement=self.last_key_agreement + cfg.rekey_interval,
            messages_since_key_agreement=self._sent_since_agreement,
            rekey_in_progress=self.rekey_in_progress,
            handshake_hash=self.handshake_hash,
        )


def _exchange(ours: KeyPair, public_key: bytes) -> bytes:
    try:
        return ours.private.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:
        raise RemoteProtocolError("rekey public key is invalid (low-order point)") from None

"""Pairing by a short code: SPAKE2 inside an authenticated session, sans-I/O.

One person's node shows a one-time code (`new_code`); the other person types
it. The typer is SPAKE2 side A (`PairingTyper`), the shower side B
(`PairingShower`). Three messages, all inside the Noise session's records:

    A -> B  PairStart(attempt, pake_A)
    B -> A  PairReply(attempt, pake_B, confirm_B)     or PairAbort
    A -> B  PairFinish(attempt, confirm_A)            or PairAbort

SPAKE2 (the `spake2` package, as magic-wormhole uses it) gives both sides
the same key only if they used the same code *and* the same identities: idA
and idB are the two identity fingerprints as each side sees them. The key
confirmation MACs also cover both fingerprints, the Noise handshake hash of
the session and the attempt id. A man in the middle has a different session
(and its own identity) on each side, so the keys and MACs differ even when
it relays every message faithfully: to pass it would have to run SPAKE2
itself with a guessed code, one guess per code shown (the shower burns the
code on the first attempt, right or wrong), 1 in 10^6.

The machines take `now` and randomness from the caller and never do I/O;
`receive`, `handle_timer` and `cancel` return the messages to send, and
`result` says how the attempt ended once it has. Anything out of order or
odd ends the attempt: there is exactly one try per code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from spake2 import SPAKE2_A, SPAKE2_B

from p2pmsg.crypto.kdf import hkdf_sha256, hmac_sha256, hmac_sha256_verify, label
from p2pmsg.errors import ConfigError, LocalProtocolError
from p2pmsg.protocol.message_types import (
    ID_SIZE,
    PairAbort,
    PairAbortReason,
    PairFinish,
    PairMessage,
    PairReply,
    PairStart,
)

Rng = Callable[[int], bytes]

CODE_DIGITS = 6
#: How long a shown code stays valid (seconds).
CODE_LIFETIME = 120.0
#: How long one side of an attempt in flight waits for the other's next message.
CONFIRM_TIMEOUT = 30.0

PASSWORD_LABEL = label("pair", "code")
CONFIRM_KEY_LABEL = label("pair", "confirm-key")
CONFIRM_A_LABEL = label("pair", "confirm-a")
CONFIRM_B_LABEL = label("pair", "confirm-b")

#: How an attempt ended. `verified`: both codes and both sessions matched.
#: `wrong_code`: the confirmation failed: a mistyped code, or a man in the middle.
#: `expired`: the shown code ran out before it was used. `no_code`: the other side had
#: no live code (expired, already used, or never shown). `busy`: the other side is in
#: another attempt. `unexpected`: a message out of order or of another attempt.
#: `cancelled`: either side gave up. `timeout`: the other side stopped answering.
PairingReason = Literal[
    "verified", "wrong_code", "expired", "no_code", "busy", "unexpected", "cancelled", "timeout"
]


@dataclass(frozen=True, slots=True)
class PairingResult:
    ok: bool
    reason: PairingReason


@dataclass(frozen=True, slots=True)
class Binding:
    """What the confirmation binds: the fingerprints (raw 32 bytes) as this side sees
    them, and the handshake hash of the session that carries the exchange."""

    local: bytes
    peer: bytes
    handshake_hash: bytes


# --- codes -----------------------------------------------------------------------------------


def new_code(rng: Rng) -> str:
    """Six uniformly random digits (rejection sampling: no modulo bias)."""
    limit = 10**CODE_DIGITS
    bound = (1 << 32) - (1 << 32) % limit
    for _ in range(64):
        raw = rng(4)
        if len(raw) != 4:
            raise LocalProtocolError("rng returned the wrong number of bytes")
        value = int.from_bytes(raw, "big")
        if value < bound:
            return f"{value % limit:0{CODE_DIGITS}d}"
    raise LocalProtocolError("rng keeps returning values out of range")


def format_code(code: str) -> str:
    """`123456` -> `123-456`, the way it is shown."""
    return f"{code[:3]}-{code[3:]}"


def parse_code(text: str) -> str:
    """What a person typed -> the six digits; dashes and spaces anywhere are ignored."""
    digits = "".join(ch for ch in text if ch not in "- \t")
    if len(digits) != CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        raise ConfigError(f"a pairing code is {CODE_DIGITS} digits, like 123-456")
    return digits


def _password(code: str) -> bytes:
    return PASSWORD_LABEL + b":" + parse_code(code).encode("ascii")


def _transcript(
    tag: bytes, attempt: bytes, fp_a: bytes, fp_b: bytes, handshake_hash: bytes
) -> bytes:
    return tag + attempt + fp_a + fp_b + handshake_hash


def _confirm_key(spake_key: bytes, handshake_hash: bytes) -> bytes:
    return hkdf_sha256(spake_key, salt=handshake_hash, info=CONFIRM_KEY_LABEL)


class _Side:
    """What both machines share: the attempt id, the session binding, the result."""

    def __init__(self, now: float) -> None:
        self.result: PairingResult | None = None
        self.attempt: bytes | None = None
        self.binding: Binding | None = None
        self.deadline = now + CONFIRM_TIMEOUT

    @property
    def done(self) -> bool:
        return self.result is not None

    def get_timer(self) -> float | None:
        return None if self.done else self.deadline

    def handle_timer(self, now: float) -> list[PairMessage]:
        if self.done or now < self.deadline:
            return []
        return self._end("timeout", "cancelled")

    def cancel(self) -> list[PairMessage]:
        """The local side gives up (the user stopped, the session went away)."""
        return [] if self.done else self._end("cancelled", "cancelled")

    def _end(self, reason: PairingReason, tell: PairAbortReason | None) -> list[PairMessage]:
        self.result = PairingResult(reason == "verified", reason)
        if tell is None or self.attempt is None:
            return []
        return [PairAbort(self.attempt, tell)]

    def _refuse(self, message: PairMessage) -> list[PairMessage]:
        """Out of order or of another attempt: the attempt ends (an abort is not
        answered with another)."""
        return self._end("unexpected", None if type(message) is PairAbort else "unexpected")

    def _check(self, message: PairMessage, binding: Binding) -> bool:
        """The message belongs to this attempt on this session."""
        return message.attempt == self.attempt and binding == self.binding

    def _abort_received(self, message: PairAbort) -> list[PairMessage]:
        theirs: dict[PairAbortReason, PairingReason] = {
            "wrong_code": "wrong_code",
            "no_code": "no_code",
            "busy": "busy",
            "unexpected": "unexpected",
            "cancelled": "cancelled",
        }
        return self._end(theirs[message.reason], None)


class PairingTyper(_Side):
    """Side A: the person who typed the code. `start()` once, then `receive`."""

    def __init__(self, code: str, binding: Binding, rng: Rng, now: float) -> None:
        super().__init__(now)
        self.attempt = rng(ID_SIZE)
        if len(self.attempt) != ID_SIZE:
            raise LocalProtocolError("rng returned the wrong number of bytes")
        self.binding = binding
        self._spake: Any = SPAKE2_A(
            _password(code), idA=binding.local, idB=binding.peer, entropy_f=rng
        )
        self._started = False

    def start(self) -> PairStart:
        if self._started:
            raise LocalProtocolError("a pairing attempt starts once")
        self._started = True
        assert self.attempt is not None
        return PairStart(self.attempt, self._spake.start())

    def receive(self, message: PairMessage, binding: Binding, now: float) -> list[PairMessage]:
        if self.done:
            return []
        if not self._started or not self._check(message, binding):
            return self._refuse(message)
        if type(message) is PairAbort:
            return self._abort_received(message)
        if type(message) is not PairReply:
            return self._refuse(message)
        assert self.attempt is not None and self.binding is not None
        try:
            key = self._spake.finish(message.pake)
        except Exception:  # a bad point, a reflected message: a broken or hostile peer
            return self._end("unexpected", "unexpected")
        b = self.binding
        confirm_key = _confirm_key(key, b.handshake_hash)
        theirs = _transcript(CONFIRM_B_LABEL, self.attempt, b.local, b.peer, b.handshake_hash)
        if not hmac_sha256_verify(confirm_key, theirs, message.confirm):
            return self._end("wrong_code", "wrong_code")
        ours = _transcript(CONFIRM_A_LABEL, self.attempt, b.local, b.peer, b.handshake_hash)
        self.result = PairingResult(True, "verified")
        return [PairFinish(self.attempt, hmac_sha256(confirm_key, ours))]


class PairingShower(_Side):
    """Side B: the node that showed the code. Waits for one `PairStart` until
    `expires_at`; whatever happens to that attempt, the code is then used up."""

    def __init__(self, code: str, expires_at: float, rng: Rng, now: float) -> None:
        super().__init__(now)
        self.deadline = expires_at
        self.expires_at = expires_at
        self._code = parse_code(code)
        self._rng = rng
        self._confirm_key: bytes | None = None

    @property
    def in_flight(self) -> bool:
        """A `PairStart` was answered: the code is burnt, an attempt is running."""
        return self.attempt is not None and not self.done

    def handle_timer(self, now: float) -> list[PairMessage]:
        if not self.done and self.attempt is None and now >= self.deadline:
            return self._end("expired", None)
        return super().handle_timer(now)

    def receive(self, message: PairMessage, binding: Binding, now: float) -> list[PairMessage]:
        if self.done:
            return []
        if self.attempt is None:
            return self._first(message, binding, now)
        if not self._check(message, binding):
            return self._refuse(message)
        if type(message) is PairAbort:
            return self._abort_received(message)
        if type(message) is not PairFinish:
            return self._refuse(message)
        assert self._confirm_key is not None and self.binding is not None
        b = self.binding
        expected = _transcript(CONFIRM_A_LABEL, self.attempt, b.peer, b.local, b.handshake_hash)
        if not hmac_sha256_verify(self._confirm_key, expected, message.confirm):
            return self._end("wrong_code", "wrong_code")
        return self._end("verified", None)

    def _first(self, message: PairMessage, binding: Binding, now: float) -> list[PairMessage]:
        # From here on the code is burnt, whatever the message: one attempt per code.
        self.attempt = message.attempt
        self.binding = binding
        if type(message) is not PairStart:
            return self._refuse(message)
        if now >= self.expires_at:
            return self._end("expired", "no_code")
        spake: Any = SPAKE2_B(
            _password(self._code), idA=binding.peer, idB=binding.local, entropy_f=self._rng
        )
        pake = spake.start()
        try:
            key = spake.finish(message.pake)
        except Exception:  # a bad point, a reflected message: a broken or hostile peer
            return self._end("unexpected", "unexpected")
        self._confirm_key = _confirm_key(key, binding.handshake_hash)
        ours = _transcript(
            CONFIRM_B_LABEL, message.attempt, binding.peer, binding.local, binding.handshake_hash
        )
        self.deadline = now + CONFIRM_TIMEOUT
        return [PairReply(message.attempt, pake, hmac_sha256(self._confirm_key, ours))]


__all__ = [
    "CODE_DIGITS",
    "CODE_LIFETIME",
    "CONFIRM_TIMEOUT",
    "Binding",
    "PairingReason",
    "PairingResult",
    "PairingShower",
    "PairingTyper",
    "format_code",
    "new_code",
    "parse_code",
]

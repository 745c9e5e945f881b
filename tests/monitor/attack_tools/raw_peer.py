"""A hostile peer on a blocking socket, built from p2pmsg's own protocol code.

The attacks must look on the wire exactly like what a real attacker would
send, so nothing here re-implements the protocol: the honest parts are
p2pmsg's `PeerConnection`, Noise `HandshakeState`, frame and record
encoders, and each attack changes one thing (a signature made by the wrong
key, a record sent twice, one flipped bit, a relabelled suite id, a borrowed
display name). Every socket operation has a timeout, so a victim that stops
answering ends the attack instead of hanging the test.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import msgpack

from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.suites import get_suite
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import ConnectionClosed, HandshakeCompleted
from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.handshake import static_binding
from p2pmsg.protocol.limits import PROLOGUE, PROTOCOL_VERSION, ProtocolConfig
from p2pmsg.protocol.messages import new_chat
from p2pmsg.protocol.noise import HandshakeState
from p2pmsg.protocol.wire import (
    AbortFrame,
    HandshakeFrame,
    RecordFrame,
    decode_frame,
    encode_handshake,
    encode_record,
)

IO_TIMEOUT = 5.0


class AttackError(RuntimeError):
    """The victim did not behave the way the attack needs (e.g. never answered)."""


def connect(host: str, port: int, source: str | None, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A TCP connection from `source` (one of this host's addresses), so the victim can tell
    this attack's events from every other attack's by their address."""
    sock = socket.create_connection(
        (host, port), timeout=timeout, source_address=(source, 0) if source else None
    )
    sock.settimeout(timeout)
    return sock


def read_frame(sock: socket.socket, decoder: FrameDecoder, deadline: float) -> bytes | None:
    """The next whole frame body, or None at EOF / when the deadline passes.

    Only one frame is taken from the decoder's iterator; any further ones stay in its
    buffer and come out of the next call (FrameDecoder's contract).
    """
    body = next(decoder.feed(b""), None)
    while body is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except (TimeoutError, OSError):
            return None
        if not data:
            return None
        body = next(decoder.feed(data), None)
    return body


def wait_closed(sock: socket.socket, timeout: float = IO_TIMEOUT) -> str:
    """Read until the victim closes; returns how it ended ("eof", "reset", "timeout")."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return "eof"
        except TimeoutError:
            return "timeout"
        except OSError:
            return "reset"


# --- a handshake with a forged identity binding ----------------------------------------------


def forged_handshake(
    sock: socket.socket,
    identity: Identity,
    signer: Identity,
    name: str,
    suites: tuple[str, ...] = ("aes-256-gcm",),
) -> str:
    """Run Noise XX honestly, but sign our Noise static key with `signer`, not `identity`.

    The victim can decrypt everything; only the identity binding is wrong, so this is
    exactly "a peer that claims `identity`'s key without holding it". Returns what the
    victim answered to message 3 ("abort: ...", "eof", ...).
    """
    decoder = FrameDecoder()
    deadline = time.monotonic() + IO_TIMEOUT
    noise = HandshakeState(
        initiator=True, s=identity.noise_static, prologue=PROLOGUE, rng=os.urandom
    )
    offer = {"v": PROTOCOL_VERSION, "suites": [get_suite(s).suite_id for s in suites]}
    sock.sendall(encode_handshake(noise.write_message(_pack(offer))))
    body = read_frame(sock, decoder, deadline)
    if body is None:
        raise AttackError("the victim did not answer handshake message 1")
    frame = decode_frame(body)
    if not isinstance(frame, HandshakeFrame):
        raise AttackError(f"expected handshake message 2, got {type(frame).__name__}")
    noise.read_message(frame.noise)  # the victim's identity: we do not care who it is
    final = {
        "v": PROTOCOL_VERSION,
        "name": name,
        "id": identity.public_key,
        "sig": signer.sign(static_binding(identity.noise_static_public)),
    }
    sock.sendall(encode_handshake(noise.write_message(_pack(final))))
    answer = read_frame(sock, decoder, time.monotonic() + IO_TIMEOUT)
    if answer is None:
        return "eof"
    reply = decode_frame(answer)
    return f"abort: {reply.reason}" if isinstance(reply, AbortFrame) else type(reply).__name__


def weak_offer(sock: socket.socket, identity: Identity, suite_ids: list[int]) -> str:
    """Offer only suite ids the victim does not run (a legacy or made-up "weak" suite)."""
    decoder = FrameDecoder()
    noise = HandshakeState(
        initiator=True, s=identity.noise_static, prologue=PROLOGUE, rng=os.urandom
    )
    sock.sendall(
        encode_handshake(noise.write_message(_pack({"v": PROTOCOL_VERSION, "suites": suite_ids})))
    )
    body = read_frame(sock, decoder, time.monotonic() + IO_TIMEOUT)
    if body is None:
        return "eof"
    frame = decode_frame(body)
    return f"abort: {frame.reason}" if isinstance(frame, AbortFrame) else type(frame).__name__


def _pack(fields: dict[str, object]) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]


# --- an authenticated session whose records we then abuse -------------------------------------


@dataclass
class Session:
    """An honest p2pmsg session (our `PeerConnection` as initiator) over a socket."""

    sock: socket.socket
    conn: PeerConnection
    identity: Identity
    decoder: FrameDecoder

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint.hex()

    def chat_record(self, text: str) -> bytes:
        """The exact bytes of one sealed chat record, as our connection would send them."""
        return self.conn.send_message(new_chat(os.urandom, time.time(), text))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def pump(self, seconds: float) -> None:
        """Let the victim talk for a moment (its receipts, pings) without answering."""
        deadline = time.monotonic() + seconds
        while read_frame(self.sock, self.decoder, deadline) is not None:
            pass


def open_session(
    host: str,
    port: int,
    source: str | None,
    *,
    name: str,
    identity: Identity | None = None,
    suites: tuple[str, ...] = ("aes-256-gcm",),
) -> Session:
    """Connect and complete a real handshake; raises AttackError if the victim refuses."""
    identity = identity or Identity.generate(os.urandom)
    sock = connect(host, port, source)
    conn = PeerConnection(
        "initiator", identity, name, os.urandom, time.time, ProtocolConfig(suites=suites)
    )
    sock.sendall(conn.start())
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AttackError("handshake with the victim timed out")
        sock.settimeout(remaining)
        data = sock.recv(65536)
        conn.receive_data(data)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
        while (event := conn.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                return Session(sock, conn, identity, FrameDecoder())
            if isinstance(event, ConnectionClosed):
                raise AttackError(
                    f"the victim refused the handshake: {event.reason} {event.detail}"
                )
        if not data:
            raise AttackError("the victim closed during the handshake")


def flip_last_bit(record: bytes) -> bytes:
    """Flip one bit of the AEAD tag (the last byte of a record frame is the tag's)."""
    return record[:-1] + bytes([record[-1] ^ 0x01])


def relabel_suite(record: bytes, suite: str) -> bytes:
    """The same record with another suite id in its clear header (a MITM's downgrade)."""
    frame = decode_frame(record[4:])
    if not isinstance(frame, RecordFrame):
        raise AttackError("not a record frame")
    return encode_record(
        frame.version, frame.epoch, frame.counter, get_suite(suite).suite_id, frame.sealed
    )


__all__ = [
    "AttackError",
    "Session",
    "connect",
    "flip_last_bit",
    "forged_handshake",
    "open_session",
    "read_frame",
    "relabel_suite",
    "wait_closed",
    "weak_offer",
]

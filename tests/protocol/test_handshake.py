"""The p2pmsg handshake: identity binding, suite negotiation, and every way it must fail."""

from __future__ import annotations

import os

import msgpack
import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import HandshakeError, LocalProtocolError
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import ConnectionClosed, HandshakeCompleted, SecurityEventRaised
from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.handshake import Handshake, PeerInfo, static_binding
from p2pmsg.protocol.limits import MAX_REASON_BYTES, PROTOCOL_VERSION, ProtocolConfig
from p2pmsg.protocol.wire import HandshakeFrame, decode_frame, encode_handshake
from tests.protocol.pair import Clock, identity, make_pair

ALL = ("aes-256-gcm", "chacha20-poly1305", "twofish-cbc-hmac-sha256")


def _run(init: Handshake, resp: Handshake) -> None:
    msg2 = resp.receive(init.start())
    assert msg2 is not None
    msg3 = init.receive(msg2)
    assert msg3 is not None
    assert resp.receive(msg3) is None


def _hs(
    initiator: bool, ident: Identity, suites: tuple[str, ...] = ALL, name: str = "x", **kw: object
) -> Handshake:
    return Handshake(
        initiator=initiator, identity=ident, display_name=name, suites=suites, rng=os.urandom, **kw
    )  # type: ignore[arg-type]


def test_result_on_both_sides() -> None:
    a, b = identity(1), identity(2)
    init = _hs(True, a, ("chacha20-poly1305", "twofish-cbc-hmac-sha256", "aes-256-gcm"), "alice")
    resp = _hs(False, b, ("aes-256-gcm", "chacha20-poly1305"), "bob")
    _run(init, resp)
    ri, rr = init.result, resp.result
    assert ri is not None and rr is not None
    assert ri.peer == PeerInfo(b.public_key, b.fingerprint, "bob", b.noise_static_public)
    assert rr.peer == PeerInfo(a.public_key, a.fingerprint, "alice", a.noise_static_public)
    # The answer keeps the initiator's order; the first is the starting suite.
    assert ri.suites == rr.suites == ("chacha20-poly1305", "aes-256-gcm")
    assert ri.initial_suite == rr.initial_suite == "chacha20-poly1305"
    assert ri.handshake_hash == rr.handshake_hash
    assert ri.send_key == rr.recv_key and ri.recv_key == rr.send_key
    assert ri.send_key != ri.recv_key


def test_empty_intersection_fails_at_the_responder() -> None:
    init = _hs(True, identity(1), ("aes-256-gcm",))
    resp = _hs(False, identity(2), ("twofish-cbc-hmac-sha256",))
    with pytest.raises(HandshakeError, match="no cipher suite in common"):
        resp.receive(init.start())


@pytest.mark.parametrize("side", ["initiator", "responder"])
def test_local_policy_refusal(side: str) -> None:
    def refuse(peer: PeerInfo, suites: tuple[str, ...]) -> str | None:
        return (
            "blocked fingerprint"
            if peer.name == ("bob" if side == "initiator" else "alice")
            else None
        )

    init = _hs(True, identity(1), name="alice", policy=refuse if side == "initiator" else None)
    resp = _hs(False, identity(2), name="bob", policy=refuse if side == "responder" else None)
    with pytest.raises(HandshakeError, match="refused by local policy: blocked fingerprint"):
        _run(init, resp)


def test_policy_can_demand_a_suite() -> None:
    def aead_only(peer: PeerInfo, suites: tuple[str, ...]) -> str | None:
        return None if "twofish-cbc-hmac-sha256" not in suites else "twofish not wanted"

    init = _hs(True, identity(1), policy=aead_only)
    resp = _hs(False, identity(2))
    with pytest.raises(HandshakeError, match="twofish not wanted"):
        _run(init, resp)


class _Forger(Handshake):
    """Presents a victim's identity key with a signature by someone else."""

    victim: Identity
    signer: Identity

    def _identity_fields(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "name": "victim",
            "id": self.victim.public_key,
            "sig": self.signer.sign(static_binding(self._identity.noise_static_public)),
        }


@pytest.mark.parametrize("forger_is_initiator", [True, False])
def test_payload_signed_by_another_identity_is_refused(forger_is_initiator: bool) -> None:
    forger = _Forger(
        initiator=forger_is_initiator,
        identity=identity(3),
        display_name="m",
        suites=ALL,
        rng=os.urandom,
    )
    forger.victim, forger.signer = identity(4), identity(3)
    honest = _hs(not forger_is_initiator, identity(1))
    init, resp = (forger, honest) if forger_is_initiator else (honest, forger)
    with pytest.raises(HandshakeError, match="signature does not match"):
        _run(init, resp)


def test_valid_signature_over_another_static_key_is_refused() -> None:
    """Replaying someone's genuine binding (their sig over THEIR static key) fails too."""
    victim = identity(4)

    class Replayer(Handshake):
        def _identity_fields(self) -> dict[str, object]:
            return {
                "v": PROTOCOL_VERSION,
                "name": "victim",
                "id": victim.public_key,
                "sig": victim.sign(static_binding(victim.noise_static_public)),
            }

    init = _hs(True, identity(1))
    resp = Replayer(
        initiator=False, identity=identity(3), display_name="m", suites=ALL, rng=os.urandom
    )
    with pytest.raises(HandshakeError, match="signature does not match"):
        _run(init, resp)


def test_reflected_identity_is_refused() -> None:
    me = identity(1)
    with pytest.raises(HandshakeError, match="our own identity"):
        _run(_hs(True, me), _hs(False, me))


def test_unknown_version_is_refused() -> None:
    class Future(Handshake):
        def start(self) -> bytes:
            return self._noise.write_message(msgpack.packb({"v": 3, "suites": [1]}))

    init = Future(
        initiator=True, identity=identity(1), display_name="x", suites=ALL, rng=os.urandom
    )
    with pytest.raises(HandshakeError, match=r"unsupported protocol version 3: .* a newer p2pmsg"):
        _hs(False, identity(2)).receive(init.start())


def test_an_older_peer_is_told_both_versions() -> None:
    """Version 1 carried the file hash in the offer: a version-1 peer is refused at
    message 1 with a reason naming both versions (it travels in the ABORT frame)."""

    class Old(Handshake):
        def start(self) -> bytes:
            return self._noise.write_message(msgpack.packb({"v": 1, "suites": [1, 2, 3]}))

    init = Old(initiator=True, identity=identity(1), display_name="x", suites=ALL, rng=os.urandom)
    with pytest.raises(HandshakeError) as caught:
        _hs(False, identity(2)).receive(init.start())
    reason = str(caught.value)
    assert reason.startswith("unsupported protocol version 1: the peer runs an older p2pmsg")
    assert f"this node speaks protocol {PROTOCOL_VERSION}" in reason
    assert len(reason.encode()) <= MAX_REASON_BYTES and reason.isprintable()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (msgpack.packb([1, 2]), "payload must be a map"),
        (msgpack.packb({"v": PROTOCOL_VERSION}), r"missing fields \['suites'\]"),
        (msgpack.packb({"v": PROTOCOL_VERSION, "suites": [1], "x": 0}), r"unknown fields \['x'\]"),
        (msgpack.packb({"v": PROTOCOL_VERSION, "suites": "aes"}), "suites must be an array"),
        (msgpack.packb({"v": PROTOCOL_VERSION, "suites": [1, 1]}), "twice"),
        (msgpack.packb({"v": PROTOCOL_VERSION, "suites": list(range(17))}), "max_array_len"),
        (msgpack.packb({"v": PROTOCOL_VERSION, "suites": [1.0]}), "integers 0..255"),
        (b"\xc1", "undecodable"),
        (msgpack.packb({1: 1}), "undecodable"),  # strict_map_key: int keys refused
    ],
)
def test_malformed_offer(payload: bytes, reason: str) -> None:
    class Bad(Handshake):
        def start(self) -> bytes:
            return self._noise.write_message(payload)

    init = Bad(initiator=True, identity=identity(1), display_name="x", suites=ALL, rng=os.urandom)
    with pytest.raises(HandshakeError, match=reason):
        _hs(False, identity(2)).receive(init.start())


def test_unknown_offered_suites_are_ignored() -> None:
    class Newer(Handshake):
        def start(self) -> bytes:
            return self._noise.write_message(
                msgpack.packb({"v": PROTOCOL_VERSION, "suites": [200, 2]})
            )

    init = Newer(initiator=True, identity=identity(1), display_name="x", suites=ALL, rng=os.urandom)
    resp = _hs(False, identity(2))
    resp.receive(init.start())  # answers with [2] only


BAD_NAMES = [
    "",
    "a" * 129,
    "evil\x1b[31m",
    "rtl\u202eoverride",
    "nul\x00",
    # the mDNS rule, now also the handshake's: padding and separators are refused
    "alice ",
    " alice",
    "Alice\u00a0",
    "alice\u2028",
    "ali\u200bce",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_display_names(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        _hs(True, identity(1), name=name)


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("liar_is_initiator", [True, False])
def test_a_peer_claiming_a_bad_name_fails_the_handshake(name: str, liar_is_initiator: bool) -> None:
    class Liar(Handshake):
        def _identity_fields(self) -> dict[str, object]:
            return {**super()._identity_fields(), "name": name}

    liar = Liar(
        initiator=liar_is_initiator,
        identity=identity(3),
        display_name="ok",
        suites=ALL,
        rng=os.urandom,
    )
    honest = _hs(not liar_is_initiator, identity(4))
    init, resp = (liar, honest) if liar_is_initiator else (honest, liar)
    with pytest.raises(HandshakeError, match="display name"):
        _run(init, resp)
    assert honest.result is None


# --- through PeerConnection: a man in the middle edits the offer -------------------------


def _edit_offer(frame: bytes, new_suites: list[int]) -> bytes:
    body = next(FrameDecoder().feed(frame))
    parsed = decode_frame(body)
    assert isinstance(parsed, HandshakeFrame)
    e, payload = parsed.noise[:32], parsed.noise[32:]
    fields = msgpack.unpackb(payload)
    assert fields["suites"] == [1, 2, 3]
    fields["suites"] = new_suites
    return encode_handshake(e + msgpack.packb(fields))


@pytest.mark.parametrize("edited", [[3], [3, 2, 1], [1, 2]])
def test_mitm_editing_the_offer_fails_the_handshake(edited: list[int]) -> None:
    pair = make_pair(handshake=False)
    first = pair.a.start()
    pair.b.receive_data(_edit_offer(first, edited))
    reply = pair.b.data_to_send()
    assert reply  # b believed the edited offer and answered
    pair.a.receive_data(reply)
    pair.drain()
    assert not pair.of_type("a", HandshakeCompleted)
    [event] = pair.of_type("a", SecurityEventRaised)
    assert isinstance(event, SecurityEventRaised) and event.event == "handshake_fail"
    assert "authentication" in str(event.detail["reason"])
    [closed] = pair.of_type("a", ConnectionClosed)
    assert isinstance(closed, ConnectionClosed) and closed.reason == "handshake_failed"
    assert pair.a.state == "closed"


def test_mitm_flipping_any_byte_of_message_two_fails() -> None:
    for position in range(0, 200, 9):
        pair = make_pair(handshake=False)
        pair.b.receive_data(pair.a.start())
        reply = bytearray(pair.b.data_to_send())
        if position >= len(reply):
            break
        reply[position] ^= 0x40
        pair.a.receive_data(bytes(reply))
        pair.drain()
        assert not pair.of_type("a", HandshakeCompleted), position
        assert pair.a.state == "closed" or pair.a.get_timer() is not None


def test_no_common_suite_through_connections_tells_the_initiator() -> None:
    clock = Clock()
    a = PeerConnection(
        "initiator", identity(1), "a", os.urandom, clock, ProtocolConfig(suites=("aes-256-gcm",))
    )
    b = PeerConnection(
        "responder",
        identity(2),
        "b",
        os.urandom,
        clock,
        ProtocolConfig(suites=("chacha20-poly1305",)),
    )
    b.receive_data(a.start())
    a.receive_data(b.data_to_send())
    events = [a.next_event(), a.next_event()]
    assert isinstance(events[0], SecurityEventRaised) and events[0].event == "handshake_fail"
    assert "no cipher suite in common" in str(events[0].detail["reason"])
    assert isinstance(events[1], ConnectionClosed) and events[1].reason == "handshake_failed"

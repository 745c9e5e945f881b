"""Noise XX against the cacophony vectors and against an independent implementation."""

from __future__ import annotations

import json
import os

import pytest
from noise.connection import Keypair, NoiseConnection

from p2pmsg.errors import HandshakeError, LocalProtocolError
from p2pmsg.protocol.noise import HandshakeState
from tests.conftest import require_vectors


def _load_vectors() -> list[dict[str, object]]:
    path = require_vectors("noise", "cacophony_xx.json")
    vectors: list[dict[str, object]] = json.loads(path.read_text())["vectors"]
    return vectors


@pytest.mark.parametrize("cipher", ["AESGCM", "ChaChaPoly"])
def test_cacophony_xx_vector(cipher: str) -> None:
    vectors = [
        v for v in _load_vectors() if v["protocol_name"] == f"Noise_XX_25519_{cipher}_SHA256"
    ]
    assert len(vectors) == 1, "the vector file should hold exactly one XX vector per cipher"
    v = vectors[0]
    h = bytes.fromhex
    init = HandshakeState(
        initiator=True,
        s=h(v["init_static"]),
        prologue=h(v["init_prologue"]),
        e=h(v["init_ephemeral"]),
        cipher=cipher,
    )
    resp = HandshakeState(
        initiator=False,
        s=h(v["resp_static"]),
        prologue=h(v["resp_prologue"]),
        e=h(v["resp_ephemeral"]),
        cipher=cipher,
    )
    messages = v["messages"]
    assert isinstance(messages, list) and len(messages) > 3
    for i, m in enumerate(messages[:3]):
        writer, reader = (init, resp) if i % 2 == 0 else (resp, init)
        ciphertext = writer.write_message(h(m["payload"]))
        assert ciphertext.hex() == m["ciphertext"], f"handshake message {i}"
        assert reader.read_message(ciphertext) == h(m["payload"])
    assert init.finished and resp.finished
    assert init.handshake_hash.hex() == v["handshake_hash"]
    assert resp.handshake_hash.hex() == v["handshake_hash"]
    assert init.remote_static == resp.s.public and resp.remote_static == init.s.public
    i_send, i_recv = init.split()
    r_recv, r_send = resp.split()
    for i, m in enumerate(messages[3:], start=3):
        # Transport messages keep alternating: even indices from the initiator.
        send, recv = (i_send, r_recv) if i % 2 == 0 else (r_send, i_recv)
        ciphertext = send.encrypt_with_ad(b"", h(m["payload"]))
        assert ciphertext.hex() == m["ciphertext"], f"transport message {i}"
        assert recv.decrypt_with_ad(b"", ciphertext) == h(m["payload"])


def _theirs(initiator: bool, static: bytes, prologue: bytes) -> NoiseConnection:
    conn = NoiseConnection.from_name(b"Noise_XX_25519_ChaChaPoly_SHA256")
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_keypair_from_private_bytes(Keypair.STATIC, static)
    conn.set_prologue(prologue)
    conn.start_handshake()
    return conn


@pytest.mark.parametrize("we_initiate", [True, False], ids=["ours-initiates", "theirs-initiates"])
def test_interop_with_noiseprotocol(we_initiate: bool) -> None:
    prologue = b"p2pmsg/1"
    ours = HandshakeState(
        initiator=we_initiate, s=os.urandom(32), prologue=prologue, rng=os.urandom
    )
    theirs = _theirs(not we_initiate, os.urandom(32), prologue)
    payloads = [b"first", b"second payload", b"third"]
    for i, payload in enumerate(payloads):
        if (i % 2 == 0) == we_initiate:
            assert bytes(theirs.read_message(ours.write_message(payload))) == payload
        else:
            assert ours.read_message(bytes(theirs.write_message(payload))) == payload
    assert ours.finished and theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    c1, c2 = ours.split()
    send, recv = (c1, c2) if we_initiate else (c2, c1)
    for n in range(5):
        msg = b"ours %d" % n
        assert bytes(theirs.decrypt(send.encrypt_with_ad(b"", msg))) == msg
        reply = b"theirs %d" % n
        assert recv.decrypt_with_ad(b"", bytes(theirs.encrypt(reply))) == reply


def _pair() -> tuple[HandshakeState, HandshakeState]:
    return (
        HandshakeState(initiator=True, s=os.urandom(32), prologue=b"x", rng=os.urandom),
        HandshakeState(initiator=False, s=os.urandom(32), prologue=b"x", rng=os.urandom),
    )


def test_tampered_message_fails_and_poisons_the_state() -> None:
    init, resp = _pair()
    resp.read_message(init.write_message(b""))
    msg2 = bytearray(resp.write_message(b"payload"))
    msg2[40] ^= 1
    with pytest.raises(HandshakeError):
        init.read_message(bytes(msg2))
    with pytest.raises(HandshakeError, match="already failed"):
        init.read_message(bytes(msg2))


def test_prologue_mismatch_fails() -> None:
    init = HandshakeState(initiator=True, s=os.urandom(32), prologue=b"a", rng=os.urandom)
    resp = HandshakeState(initiator=False, s=os.urandom(32), prologue=b"b", rng=os.urandom)
    resp.read_message(init.write_message(b""))
    with pytest.raises(HandshakeError):
        init.read_message(resp.write_message(b""))


@pytest.mark.parametrize("size", [0, 31, 32 + 16, 32 + 48 + 15])
def test_short_second_message_is_a_handshake_error(size: int) -> None:
    init, resp = _pair()
    resp.read_message(init.write_message(b""))
    full = resp.write_message(b"")
    with pytest.raises(HandshakeError):
        init.read_message(full[:size])


def test_low_order_ephemeral_is_rejected() -> None:
    _, resp = _pair()
    resp.read_message(bytes(32))  # the all-zero point: accepted as bytes, fails at DH
    with pytest.raises(HandshakeError, match="invalid X25519"):
        resp.write_message(b"")


def test_out_of_turn_use_is_a_local_error() -> None:
    init, resp = _pair()
    with pytest.raises(LocalProtocolError):
        resp.write_message(b"")
    with pytest.raises(LocalProtocolError):
        init.read_message(b"\x00" * 32)
    with pytest.raises(LocalProtocolError):
        init.split()

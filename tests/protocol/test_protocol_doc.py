"""docs/PROTOCOL.md's worked example is recomputed here byte for byte.

Every fenced block in the document whose info string is `hex <name>` must
equal the value computed below under that name (whitespace ignored), and
every value computed below must appear in the document: the spec and the
code cannot drift apart silently.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgpack

from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.suites import get_suite
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import HandshakeCompleted, UserMessageReceived
from p2pmsg.protocol.handshake import Handshake
from p2pmsg.protocol.keyschedule import (
    epoch_key,
    next_chain,
    record_ad,
    record_nonce,
    root_chain,
    suite_key,
)
from p2pmsg.protocol.limits import PROTOCOL_VERSION, ProtocolConfig
from p2pmsg.protocol.messages import Chat, encode_message

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
T0 = 1_763_800_000.0
ALICE = Identity.from_bytes(b"\x01" * 64)  # Ed25519 seed 01..01, X25519 static 01..01
BOB = Identity.from_bytes(b"\x02" * 64)


def _fixed(byte: int):  # type: ignore[no-untyped-def]
    return lambda n: bytes([byte]) * n


def worked_example() -> dict[str, bytes]:
    config = ProtocolConfig()  # offers and allows all three suites
    a = PeerConnection("initiator", ALICE, "alice", _fixed(0x11), lambda: T0, config)
    b = PeerConnection("responder", BOB, "bob", _fixed(0x22), lambda: T0, config)
    out: dict[str, bytes] = {}
    out["frame-1"] = a.start()
    b.receive_data(out["frame-1"])
    out["frame-2"] = b.data_to_send()
    a.receive_data(out["frame-2"])
    out["frame-3"] = a.data_to_send()
    b.receive_data(out["frame-3"])
    completed = a.next_event()
    assert isinstance(completed, HandshakeCompleted) and completed.suite == "aes-256-gcm"
    assert isinstance(b.next_event(), HandshakeCompleted)

    # The same handshake through the Handshake class, to show the payloads and keys.
    hi = Handshake(
        initiator=True, identity=ALICE, display_name="alice", suites=config.suites, rng=_fixed(0x11)
    )
    hr = Handshake(
        initiator=False, identity=BOB, display_name="bob", suites=config.suites, rng=_fixed(0x22)
    )
    msg1 = hi.start()
    msg2 = hr.receive(msg1)
    assert msg2 is not None
    msg3 = hi.receive(msg2)
    assert msg3 is not None
    hr.receive(msg3)
    assert hi.result is not None
    out["alice-identity-key"] = ALICE.public_key
    out["alice-static-key"] = ALICE.noise_static_public
    out["bob-identity-key"] = BOB.public_key
    out["bob-static-key"] = BOB.noise_static_public
    out["alice-ephemeral-key"] = msg1[:32]
    out["payload-1"] = msgpack.packb({"v": PROTOCOL_VERSION, "suites": [1, 2, 3]})
    assert msg1[32:] == out["payload-1"]
    out["handshake-hash"] = hi.result.handshake_hash
    out["split-a-to-b"] = hi.result.send_key
    out["split-b-to-a"] = hi.result.recv_key
    chain0 = root_chain(hi.result.send_key, hi.result.handshake_hash)
    out["chain-0-a-to-b"] = chain0
    out["epoch-key-0-a-to-b"] = epoch_key(chain0)
    aes = get_suite("aes-256-gcm")
    out["aes-key-0-a-to-b"] = suite_key(epoch_key(chain0), aes)
    out["chain-1-a-to-b"] = next_chain(chain0)

    chat = Chat(b"\x11" * 16, T0, "hello, bob", None)
    out["chat-plaintext"] = encode_message(chat)
    out["record-ad"] = record_ad(1, 0, 0, aes.suite_id)
    out["record-nonce"] = record_nonce(0)
    out["record-sealed"] = aes.seal(
        out["aes-key-0-a-to-b"], out["record-nonce"], out["chat-plaintext"], out["record-ad"]
    )
    out["frame-4"] = a.send_message(chat)
    b.receive_data(out["frame-4"])
    received = b.next_event()
    assert isinstance(received, UserMessageReceived) and received.message == chat
    return out


def _doc_blocks() -> dict[str, bytes]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```hex ([a-z0-9-]+)\n(.*?)```", text, flags=re.DOTALL)
    values: dict[str, bytes] = {}
    for name, body in blocks:
        assert name not in values, f"block {name} appears twice in PROTOCOL.md"
        values[name] = bytes.fromhex("".join(body.split()))
    return values


def test_worked_example_matches_the_document() -> None:
    computed = worked_example()
    documented = _doc_blocks()
    assert sorted(documented) == sorted(computed), "PROTOCOL.md blocks and computed values differ"
    for name, value in computed.items():
        assert documented[name] == value, f"PROTOCOL.md block {name!r} is out of date"


def test_documented_labels_are_the_ones_in_use() -> None:
    from p2pmsg.protocol import keyschedule

    text = DOC.read_text(encoding="utf-8")
    for label in (
        keyschedule.CHAIN_LABEL,
        keyschedule.EPOCH_LABEL,
        keyschedule.NEXT_LABEL,
        keyschedule.REKEY_LABEL,
        keyschedule.suite_key_label(get_suite("aes-256-gcm")),
    ):
        assert label.decode() in text, label


def _print() -> None:  # pragma: no cover - used to write the document
    for name, value in worked_example().items():
        h = value.hex()
        print(f"```hex {name}")
        for i in range(0, len(h), 64):
            print(" ".join(h[j : j + 8] for j in range(i, min(i + 64, len(h)), 8)))
        print("```")


if __name__ == "__main__":  # pragma: no cover
    _print()

"""A peer of protocol version 1 (file hash in the offer) and a real version-2 node on loopback.

Version 2 moved the whole-file SHA-256 from file_offer to file_done. The two
versions cannot exchange files, so they must not get as far as trying: the
handshake refuses the other version at message 1 with a reason naming both,
in both directions, instead of a session that later dies on an undecodable
file_offer. The version-1 side is played by the real Noise code with the
payload a version-1 p2pmsg sends (`{"v": 1, "suites": [...]}`, docs/PROTOCOL.md
section 3), over real TCP to a real node.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import msgpack

from p2pmsg.crypto.identity import Identity
from p2pmsg.node.node import Node
from p2pmsg.protocol.framing import FrameDecoder
from p2pmsg.protocol.limits import PROLOGUE, PROTOCOL_VERSION
from p2pmsg.protocol.noise import HandshakeState
from p2pmsg.protocol.wire import (
    AbortFrame,
    HandshakeFrame,
    decode_frame,
    encode_abort,
    encode_handshake,
)
from tests.node.conftest import NodeFactory, eventually

#: What a version-1 responder answered to a message 1 of another version (its code:
#: `_decode` in p2pmsg/protocol/handshake.py at protocol version 1).
V1_REFUSAL = "handshake message 1: unsupported protocol version 2"


async def _read_frame(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    decoder = FrameDecoder()
    while True:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        assert data, "the connection ended before a whole frame arrived"
        for body in decoder.feed(data):
            return body


async def _handshake_fail(node: Node, match: Callable[[str], bool]) -> dict[str, object]:
    async def found() -> list[dict[str, object]]:
        return [
            e
            for e in await node.security_events(limit=1000)
            if e["event"] == "handshake_fail" and match(str(e["detail"].get("reason", "")))
        ]

    events = await eventually(found, timeout=10.0)
    return events[0]  # type: ignore[no-any-return]


async def test_a_version_1_peer_dialing_in_is_told_both_versions(make_node: NodeFactory) -> None:
    node = await make_node("bob")
    old = Identity.generate(os.urandom)
    noise = HandshakeState(initiator=True, s=old.noise_static, prologue=PROLOGUE, rng=os.urandom)
    reader, writer = await asyncio.open_connection("127.0.0.1", node.listen_port)
    try:
        payload = msgpack.packb({"v": 1, "suites": [1, 2, 3]}, use_bin_type=True)
        writer.write(encode_handshake(noise.write_message(payload)))
        await writer.drain()
        answer = decode_frame(await _read_frame(reader))
    finally:
        writer.close()
    # The old peer gets an ABORT, which version 1 shows as "peer aborted: <reason>".
    assert isinstance(answer, AbortFrame), answer
    assert answer.reason.startswith("unsupported protocol version 1: the peer runs an older")
    assert f"this node speaks protocol {PROTOCOL_VERSION}" in answer.reason
    event = await _handshake_fail(node, lambda r: "unsupported protocol version 1" in r)
    assert event["addr"] == "127.0.0.1"
    assert node.directory.session(old.fingerprint.hex()) is None  # no session was made


async def test_dialing_a_version_1_peer_ends_in_its_refusal_not_a_hang(
    make_node: NodeFactory,
) -> None:
    node = await make_node("alice")
    heard: list[dict[str, object]] = []

    async def version_1_responder(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            frame = decode_frame(await _read_frame(reader))
            assert isinstance(frame, HandshakeFrame)
            heard.append(msgpack.unpackb(frame.noise[32:]))  # P1 is clear text after e
            writer.write(encode_abort(V1_REFUSAL))
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(version_1_responder, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await node.add_peer("127.0.0.1", port)
        event = await _handshake_fail(node, lambda r: V1_REFUSAL in r)
    finally:
        server.close()
        await server.wait_closed()
    assert heard and heard[0]["v"] == PROTOCOL_VERSION == 2
    assert event["detail"]["reason"] == f"peer aborted the handshake: {V1_REFUSAL}"


def test_the_advertised_version_is_the_wire_version() -> None:
    """mDNS `v` and the handshake's `v` are one number (p2pmsg/__init__.py cannot import
    the protocol package, so it repeats it)."""
    import p2pmsg

    assert p2pmsg.PROTOCOL_VERSION == PROTOCOL_VERSION

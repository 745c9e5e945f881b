"""Abuse: a connection flood, a connection that never speaks, garbage after the handshake.

The node must keep serving an honest peer throughout, and each abuse must leave
a security event. Every load loop here is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time

from p2pmsg.crypto.identity import Identity
from p2pmsg.node.net.admission import LimitSettings
from p2pmsg.node.node import Node
from p2pmsg.protocol.connection import PeerConnection
from tests.chaos.hostile import HostilePeer
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config

ABUSER = "127.0.0.66"
FLOOD_CONNECTIONS = 150


async def _events(node: Node, name: str) -> list[dict[str, object]]:
    return [e for e in await node.security_events(limit=5000) if e["event"] == name]


async def _chat_round(alice: Node, n: int) -> None:
    views = [await alice.send_text("bob", f"still here {n}.{i}") for i in range(3)]
    statuses = await asyncio.gather(*(alice.wait_delivered(v.id, 5) for v in views))
    assert set(statuses) == {"delivered"}


async def test_a_connection_flood_is_bounded_and_the_honest_peer_keeps_chatting(
    make_node: NodeFactory,
) -> None:
    limits = LimitSettings(
        max_connections=64, max_handshakes_per_address=4, connect_burst=8, connect_rate=2.0
    )
    bob = await make_node("bob", config=loopback_config(limits=limits))
    alice = await make_node("alice")
    await connect(alice, bob)

    writers: list[asyncio.StreamWriter] = []
    peak = 0

    async def flood() -> None:
        nonlocal peak
        for _ in range(FLOOD_CONNECTIONS):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(
                    "127.0.0.1", bob.listen_port, local_addr=(ABUSER, 0)
                )
                writers.append(writer)
            peak = max(peak, bob.router.admission.open_connections)
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(asyncio.gather(flood(), _chat_round(alice, 1)), 20)
        await _chat_round(alice, 2)
    finally:
        for writer in writers:
            writer.transport.abort()
    assert peak <= limits.max_handshakes_per_address + 1  # the abuser's share, plus alice
    admitted_at_most = limits.max_handshakes_per_address + limits.connect_burst

    def accounted(events: list[dict[str, object]]) -> int:
        """Refusals the events stand for: repeats within a second are one event."""
        return sum(1 + int(e["detail"].get("dropped", 0)) for e in events)  # type: ignore[attr-defined]

    async def all_accounted() -> list[dict[str, object]] | None:
        events = await _events(bob, "rate_limited")
        return events if accounted(events) >= FLOOD_CONNECTIONS - admitted_at_most else None

    refused = await eventually(all_accounted, timeout=5.0)
    assert len(refused) < accounted(refused)  # aggregated, not one row per refusal
    assert {e["addr"] for e in refused} == {ABUSER}
    assert {e["detail"]["reason"] for e in refused} <= {  # type: ignore[index]
        "connection_rate",
        "handshakes_in_flight",
        "connection_cap",
    }


async def test_a_connection_that_never_speaks_is_dropped_at_the_handshake_deadline(
    make_node: NodeFactory,
) -> None:
    bob = await make_node("bob")
    alice = await make_node("alice")
    await connect(alice, bob)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", bob.listen_port, local_addr=(ABUSER, 0)
    )
    started = time.monotonic()
    try:
        await _chat_round(alice, 1)
        data = await asyncio.wait_for(reader.read(), 10)  # bob aborts, then closes
        elapsed = time.monotonic() - started
    finally:
        writer.transport.abort()
    assert b"handshake" in data or data == b""
    deadline = bob.router.protocol_config.handshake_timeout
    assert deadline - 0.5 <= elapsed <= deadline + 2.0
    failures = await _events(bob, "handshake_fail")
    assert any(e["addr"] == ABUSER and "deadline" in str(e["detail"]) for e in failures)
    assert bob.router.admission.handshakes_in_flight(ABUSER) == 0


async def _handshake_as_stranger(
    port: int,
) -> tuple[PeerConnection, asyncio.StreamReader, asyncio.StreamWriter]:
    conn = PeerConnection(
        "initiator", Identity.generate(os.urandom), "stranger", os.urandom, time.time
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ABUSER, 0))
    writer.write(conn.start())
    while conn.state == "handshaking":
        data = await asyncio.wait_for(reader.read(65536), 5)
        conn.receive_data(data)
        writer.write(conn.data_to_send())
    assert conn.state == "established"
    return conn, reader, writer


async def test_garbage_after_the_handshake_costs_only_that_connection(
    make_node: NodeFactory,
) -> None:
    bob = await make_node("bob")
    alice = await make_node("alice")
    await connect(alice, bob)
    for garbage in (
        struct.pack(">I", 40) + os.urandom(40),  # a frame that is not msgpack
        struct.pack(">I", 1 << 30),  # a length far over the limit
        b"\x00" * 4,
    ):  # a zero-length frame
        _, reader, writer = await _handshake_as_stranger(bob.listen_port)
        try:
            writer.write(garbage)
            await asyncio.wait_for(reader.read(), 5)  # bob says bye and closes
        finally:
            writer.transport.abort()
        await _chat_round(alice, len(garbage))
    rejected = await _events(bob, "frame_rejected")
    assert len([e for e in rejected if e["addr"] == ABUSER]) == 3
    assert alice.fingerprint in bob.directory.connected()


async def _reconnect(alice: Node, bob: Node) -> None:
    """Drop alice's session; her redial is a new inbound connection for bob."""
    session = alice.directory.session(bob.fingerprint)
    assert session is not None
    session.close("test: reconnect")

    async def reconnected() -> bool:
        fresh = bob.directory.session(alice.fingerprint)
        mine = alice.directory.session(bob.fingerprint)
        return fresh is not None and fresh.trusted and mine is not None and mine.trusted

    async def gone() -> bool:
        return bob.directory.session(alice.fingerprint) is not session

    await eventually(gone, timeout=5)
    await eventually(reconnected, timeout=10)


async def test_strangers_never_lock_a_contact_out(make_node: NodeFactory) -> None:
    """Fresh keys from several addresses, each holding as many sessions as it may, fill
    the strangers' share; a contact still gets in, an honest chat keeps flowing, and one
    address never holds more than its share. Once 128 inbound slots could all be held
    by one address (~4 new keys a second), and an honest peer was refused."""
    limits = LimitSettings(
        max_connections=12,
        contact_reserve=4,
        max_connections_per_address=3,
        max_handshakes_per_address=3,
        connect_burst=16,
        connect_rate=8.0,
    )
    share = limits.max_connections - limits.contact_reserve
    bob = await make_node("bob", config=loopback_config(limits=limits))
    alice = await make_node("alice")
    await connect(alice, bob)
    await bob.set_verified(alice.fingerprint, True)  # alice is now bob's contact
    await _reconnect(alice, bob)  # ... and her session is charged as a contact's

    async def no_strangers() -> bool:  # her old connection's slot is freed as it ends
        return bob.router.admission.stranger_connections == 0

    await eventually(no_strangers, timeout=5)

    squatters: list[HostilePeer] = []
    refused = 0
    try:
        for host in [f"127.0.0.{66 + i}" for i in range(4)]:
            for _ in range(limits.max_connections_per_address + 1):
                try:
                    squatters.append(await HostilePeer.connect(bob.listen_port, source=host))
                except (AssertionError, OSError):
                    refused += 1
        assert len(squatters) == share
        assert refused == 4 * (limits.max_connections_per_address + 1) - share
        for host in {s.writer.get_extra_info("sockname")[0] for s in squatters}:
            assert bob.router.admission.connections_from(host) <= 3

        # Every stranger's slot is taken; alice comes back from where she proved her
        # key, so she may use the contacts' slots, and chats as before.
        await _reconnect(alice, bob)
        await _chat_round(alice, 1)
        try:
            squatters.append(await HostilePeer.connect(bob.listen_port, source="127.0.0.90"))
        except (AssertionError, OSError):
            pass  # refused, as it should be
        else:
            raise AssertionError("a stranger took a contact's slot")
    finally:
        for squatter in squatters:
            squatter.close()
    reasons = {e["detail"]["reason"] for e in await _events(bob, "rate_limited")}  # type: ignore[index]
    assert {"address_cap", "stranger_cap"} <= reasons

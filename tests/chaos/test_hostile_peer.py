"""A hostile peer breaks the protocol one rule at a time; the victim shrugs, the honest peer
never notices, and every misbehaviour leaves a security event naming the hostile address.

The victim is a real node on loopback (TCP, Noise, SQLite, disk) that accepts
files; `alice` is an honest node chatting with it, with receipts, for the
whole test. The hostile peer (tests/chaos/hostile.py) dials from its own
loopback address. What already has a test elsewhere is not repeated here:
garbage frames, oversize frame lengths and silent connections
(tests/node/test_node_abuse.py), a lying or corrupting file sender, hostile
file names and full disks (tests/transfers/test_node_hostile.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.crypto.suites import get_suite
from p2pmsg.node.api import PeerDisconnected
from p2pmsg.node.net.session import INBOUND_MAX, READ_PAUSE_AT
from p2pmsg.node.node import Node
from p2pmsg.node.transfers import manager
from p2pmsg.protocol.events import UserMessageReceived
from p2pmsg.protocol.limits import MAX_CHUNK_SIZE, ProtocolConfig
from p2pmsg.protocol.messages import (
    FileAccept,
    FileChunk,
    FileDecline,
    FileOffer,
    Receipt,
    new_chat,
)
from p2pmsg.store import StrangerQuota
from tests.chaos.hostile import ABUSER, HostilePeer, ping_plaintext, raw_message, stalling_responder
from tests.node.conftest import FAST_PROTOCOL, NodeFactory, connect, eventually, loopback_config
from tests.node.conftest import make_node as make_node  # the fixture, re-exported
from tests.transfers.conftest import file_settings

pytestmark = pytest.mark.timeout(60)

#: Pings a non-reading peer sends (bounded): far more than the kernel's socket buffers
#: on both sides hold, so what is left can only be in the victim's memory.
PING_FLOOD_BYTES = 24 * 1024 * 1024
#: What the victim may hold for it: where it stops reading, plus the replies to one
#: read (a pong is the size of its ping) and to what the socket held at that moment.
MEMORY_BOUND = READ_PAUSE_AT + 2 * INBOUND_MAX


@dataclass
class Scene:
    victim: Node
    alice: Node
    downloads: Path
    disconnects: list[PeerDisconnected]


async def _honest_chat(scene: Scene, stop: asyncio.Event, results: list[str]) -> None:
    """Alice keeps talking to the victim and waits for each receipt."""
    n = 0
    while not stop.is_set():
        n += 1
        view = await scene.alice.send_text(scene.victim.fingerprint, f"honest {n}")
        results.append(await scene.alice.wait_delivered(view.id, 5.0))
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def honest_traffic(scene: Scene) -> AsyncIterator[list[str]]:
    stop, results = asyncio.Event(), list[str]()
    task = asyncio.create_task(_honest_chat(scene, stop, results))
    try:
        yield results
        for _ in range(100):  # the misbehaviour may be over in a blink: talk a little more
            if len(results) >= 3:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len(results) >= 3, "the honest peer hardly got to talk"
    assert set(results) == {"delivered"}, f"honest messages not delivered: {results}"
    assert not [d for d in scene.disconnects if d.fingerprint == scene.alice.fingerprint], (
        "the honest peer's session was disturbed"
    )


@pytest.fixture
async def scene(
    make_node: NodeFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Scene]:
    """`indirect` parametrization may hand the victim a protocol config of its own."""
    downloads = tmp_path / "victim-downloads"
    changes: dict[str, Any] = {"files": file_settings(downloads)}
    if getattr(request, "param", None) is not None:
        changes["protocol"] = request.param
    victim = await make_node("victim", config=loopback_config(**changes))
    alice = await make_node("alice")
    await connect(alice, victim)
    await victim.rename_peer(alice.fingerprint, "alice")  # a contact: no stranger quota
    disconnects: list[PeerDisconnected] = []
    events = victim.subscribe()

    async def watch() -> None:
        async for event in events:
            if isinstance(event, PeerDisconnected):
                disconnects.append(event)

    watcher = asyncio.create_task(watch())
    yield Scene(victim, alice, downloads, disconnects)
    watcher.cancel()


async def expect_event(
    victim: Node, name: str, reason: str, peer: HostilePeer | None = None
) -> dict[str, object]:
    """The victim's security event `name` whose reason mentions `reason`, naming the
    hostile peer by its address (connection-level events) or its fingerprint."""

    async def found() -> list[dict[str, object]]:
        return [
            e
            for e in await victim.security_events(limit=5000)
            if e["event"] == name
            and (e["addr"] == ABUSER or (peer is not None and e["peer"] == peer.fingerprint))
            and reason in str(e["detail"].get("reason", ""))
        ]

    events = await eventually(found, timeout=5.0)
    return events[0]  # type: ignore[no-any-return]


# --- the record layer: counter, epoch, suite -------------------------------------------------


async def test_a_record_counter_that_skips_ahead_is_a_replay_event(scene: Scene) -> None:
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port)
        peer.send_raw(peer.record(ping_plaintext(), counter=peer.records.status().send.counter + 1))
        assert await peer.closed_by_victim()
        await expect_event(scene.victim, "replay_rejected", "skips ahead")


async def test_a_replayed_record_is_a_replay_event(scene: Scene) -> None:
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port)
        record = peer.record(ping_plaintext())
        peer.send_raw(record + record)  # the same bytes twice: a captured record replayed
        assert await peer.closed_by_victim()
        await expect_event(scene.victim, "replay_rejected", "already used")


async def test_a_record_for_a_past_epoch_is_a_replay_event(scene: Scene) -> None:
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port)
        peer.send_raw(peer.conn.rotate_keys())  # honest: epoch 1, which the victim follows
        await peer.pump(0.3)  # the victim answers the ping in epoch 1 with a pong
        assert peer.records.status().send.epoch == 1 and not peer.eof
        peer.send_raw(peer.record(ping_plaintext(), epoch=0))
        assert await peer.closed_by_victim()
        await expect_event(scene.victim, "replay_rejected", "past epoch")


async def test_a_record_in_a_suite_never_negotiated_is_a_downgrade_event(scene: Scene) -> None:
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port, suites=("aes-256-gcm",))
        assert peer.conn.negotiated_suites == ("aes-256-gcm",)
        other = get_suite("twofish-cbc-hmac-sha256").suite_id
        peer.send_raw(peer.record(ping_plaintext(), suite_id=other))
        assert await peer.closed_by_victim()
        await expect_event(scene.victim, "downgrade_rejected", "not negotiated")


async def test_a_suite_change_inside_an_epoch_is_a_downgrade_event(scene: Scene) -> None:
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port)
        current = peer.records.status().send.suite
        other = next(s for s in peer.conn.negotiated_suites if s != current)
        peer.send_raw(peer.record(ping_plaintext(), suite_id=get_suite(other).suite_id))
        assert await peer.closed_by_victim()
        await expect_event(scene.victim, "downgrade_rejected", "inside epoch")


# --- the handshake ---------------------------------------------------------------------------


async def test_a_handshake_stalled_after_the_second_message_hits_the_deadline(scene: Scene) -> None:
    """The caller sends message 1, gets message 2, and never sends message 3."""
    async with honest_traffic(scene):
        peer = await HostilePeer.dial(scene.victim.listen_port, name="staller")
        message_2 = await asyncio.wait_for(peer.reader.read(1 << 16), 5)
        assert message_2, "the victim did not answer message 1"
        peer.conn.receive_data(message_2)  # we could answer now, and do not
        assert peer.conn.data_to_send(), "the real connection would have sent message 3"
        deadline = scene.victim.router.protocol_config.handshake_timeout
        assert await peer.closed_by_victim(timeout=deadline + 3)
        await expect_event(scene.victim, "handshake_fail", "deadline")
        assert scene.victim.router.admission.handshakes_in_flight(ABUSER) == 0
        peer.close()


async def test_a_responder_that_stalls_after_the_first_message_is_given_up(scene: Scene) -> None:
    """The victim dials a listener that takes message 1 and never answers."""
    heard = asyncio.Event()
    server, port = await stalling_responder(heard)
    try:
        async with honest_traffic(scene):
            await scene.victim.add_peer("127.0.0.1", port)
            await asyncio.wait_for(heard.wait(), 5)

            async def failed() -> list[dict[str, object]]:
                return [
                    e
                    for e in await scene.victim.security_events(limit=5000)
                    if e["event"] == "handshake_fail" and e["addr"] == "127.0.0.1"
                ]

            await eventually(
                failed, timeout=scene.victim.router.protocol_config.handshake_timeout + 8
            )
    finally:
        server.close()


# --- application messages --------------------------------------------------------------------


async def test_a_file_chunk_over_the_wire_limit_is_a_frame_event(scene: Scene) -> None:
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port)
        oversize = raw_message(6, os.urandom(16), 0, b"\0" * (MAX_CHUNK_SIZE + 1))
        peer.send_raw(peer.seal(oversize))
        assert await peer.closed_by_victim()
        await expect_event(scene.victim, "frame_rejected", "")


async def _offer(peer: HostilePeer, content: bytes, size: int | None = None) -> bytes:
    tid = os.urandom(16)
    peer.send(
        FileOffer(
            tid,
            "notes.txt",
            len(content) if size is None else size,
            16 * 1024,
        )
    )
    return tid


async def test_a_file_chunk_beyond_the_offered_size_fails_the_transfer_and_is_reported(
    scene: Scene,
) -> None:
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port)
        content = b"ten bytes!"
        tid = await _offer(peer, content)
        accept = await peer.wait_for(lambda m: isinstance(m, FileAccept) and m.transfer_id == tid)
        assert accept.offset == 0
        peer.send(FileChunk(tid, 0, content + b" and then some more"))

        async def failed() -> bool:
            views = [v for v in await scene.victim.transfers() if v.id == tid.hex()]
            return bool(views) and views[0].state == "failed"

        await eventually(failed)
        await expect_event(scene.victim, "frame_rejected", "past the offered size", peer)
        assert list(scene.downloads.iterdir()) == []  # no file, no partial, no .partial/


async def test_receipts_for_ids_never_sent_change_nothing_and_are_reported(scene: Scene) -> None:
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port)
        # Ids the victim never sent to this peer: random ones, and alice's real ones.
        alices = [
            bytes.fromhex(m.id)
            for m in await scene.victim.conversation(scene.alice.fingerprint, limit=50)
        ]
        bogus = tuple(os.urandom(16) for _ in range(20)) + tuple(alices[:5])
        peer.send(Receipt(bogus, "delivered"), Receipt(bogus[:3], "read"))
        await expect_event(scene.victim, "frame_rejected", "never sent", peer)
        assert not await peer.closed_by_victim(timeout=0.5)  # a receipt is not worth a session
    statuses = {
        m.status
        for m in await scene.victim.conversation(scene.alice.fingerprint)
        if m.direction == "in"
    }
    assert "read" not in statuses  # alice's messages were not touched by mallory's receipts


async def test_an_endless_stream_of_offers_is_bounded(scene: Scene) -> None:
    """Many offers, never a byte of data: the victim keeps a bounded number open."""
    offers = 300
    fds_before = len(os.listdir("/proc/self/fd"))
    async with honest_traffic(scene):
        peer = await HostilePeer.connect(scene.victim.listen_port)
        for start in range(0, offers, 50):
            for i in range(start, start + 50):
                await _offer(peer, f"offer {i}".encode())
            await peer.pump(0.05)

        async def all_answered() -> int:
            declines = sum(
                1
                for e in peer.events
                if isinstance(getattr(e, "message", None), (FileAccept, FileDecline))
            )
            await peer.pump(0.1)
            return declines >= offers

        await eventually(all_answered, timeout=20)
        await expect_event(scene.victim, "rate_limited", "transfers", peer)
    live = [
        v
        for v in await scene.victim.transfers()
        if v.state in ("offered", "accepted", "transferring", "paused")
    ]
    cap = manager.MAX_INCOMING_PER_PEER
    assert len(live) <= cap
    assert len(os.listdir("/proc/self/fd")) - fds_before <= cap + 16
    peer.close()


# --- resources -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scene", [replace(FAST_PROTOCOL, ping_burst=10**9, ping_rate=1e9)], indirect=True
)
async def test_a_peer_that_pings_and_never_reads_costs_bounded_memory(scene: Scene) -> None:
    """Every ping draws a pong. A peer that sends pings and never reads once made the
    victim buffer pongs without bound (157 MiB for 150 MiB of pings); now the victim
    stops reading that peer while its replies wait, and the peer's own writes stall.
    (The victim here allows any number of pings, so that it is the write bound that
    holds; by default a ping storm ends the session first: the next test.)"""
    loop = asyncio.get_running_loop()
    async with honest_traffic(scene):
        mallory = await HostilePeer.connect(scene.victim.listen_port)
        try:

            async def sessions() -> list[Any]:
                return [s for s in scene.victim.router._sessions if s.peer == mallory.fingerprint]

            (session,) = await eventually(sessions, timeout=5.0)
            sent, peak, stalls = 0, 0, 0
            deadline = loop.time() + 20.0
            while sent < PING_FLOOD_BYTES and loop.time() < deadline and stalls < 3:
                mallory.send_raw(b"".join(mallory.conn.ping() for _ in range(2000)))
                sent += 2000 * 37
                try:
                    await asyncio.wait_for(mallory.writer.drain(), 1.0)
                except TimeoutError:
                    stalls += 1  # the victim stopped reading us: what should happen
                peak = max(peak, session.unsent_bytes)
            for _ in range(20):  # the victim works through what it did read
                await asyncio.sleep(0.05)
                peak = max(peak, session.unsent_bytes)
        finally:
            mallory.close()
    # Either the victim stopped reading (the peer's writes stalled) or all was sent.
    assert stalls == 3 or sent >= PING_FLOOD_BYTES, f"neither stalled nor sent ({sent} B)"
    assert peak <= MEMORY_BOUND, f"{peak} bytes of replies held for a peer that never reads"


async def test_a_ping_storm_closes_that_session_and_is_reported(scene: Scene) -> None:
    """Pings by the thousand in one read were thousands of sealed pongs on the loop
    (honest round trips of 640 ms in `bench abuse`). Now the session ends."""
    async with honest_traffic(scene):
        mallory = await HostilePeer.connect(scene.victim.listen_port)
        try:
            mallory.send_raw(b"".join(mallory.conn.ping() for _ in range(5000)))
            assert await mallory.closed_by_victim(timeout=10)
        finally:
            mallory.close()
    event = await expect_event(scene.victim, "rate_limited", "ping_storm", mallory)
    assert event["peer"] == mallory.fingerprint


async def test_a_rotation_storm_closes_that_session_and_is_reported(scene: Scene) -> None:
    """A new epoch before every record is legal, one by one; by the thousand it once
    pushed the older evidence out of the event log. Now the session ends."""
    async with honest_traffic(scene):
        mallory = await HostilePeer.connect(
            scene.victim.listen_port, config=ProtocolConfig(max_messages_per_key=1)
        )
        try:
            for start in range(0, 2000, 100):
                mallory.send(
                    *(
                        new_chat(os.urandom, time.time(), f"spin {i}")
                        for i in range(start, start + 100)
                    )
                )
                await asyncio.sleep(0)
            assert await mallory.closed_by_victim(timeout=10)
        finally:
            mallory.close()
    event = await expect_event(scene.victim, "rate_limited", "rotation_storm", mallory)
    assert event["peer"] == mallory.fingerprint
    rotations = [
        e
        for e in await scene.victim.security_events(limit=5000)
        if e["event"] == "key_rotated" and e["peer"] == mallory.fingerprint
    ]
    assert len(rotations) <= ProtocolConfig().rotation_burst + 2000 // 8 + 10


async def test_a_strangers_chat_flood_stops_at_its_quota_and_is_reported(scene: Scene) -> None:
    """A key minted a second ago once wrote 200 MiB of chats into the store. Now a
    stranger stores at most its quota; the rest get no receipt (the sender keeps
    them), one event says so, and the honest contact keeps talking throughout."""
    quota = StrangerQuota()
    text = "f" * 8192
    async with honest_traffic(scene):
        mallory = await HostilePeer.connect(scene.victim.listen_port)
        try:
            chats = [new_chat(os.urandom, time.time(), text) for _ in range(400)]  # 3.2 MiB
            for start in range(0, len(chats), 50):
                mallory.send(*chats[start : start + 50])
                await mallory.writer.drain()
                await mallory.pump(0.05)
            event = await expect_event(scene.victim, "rate_limited", "stranger_quota", mallory)
            assert event["peer"] == mallory.fingerprint
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while loop.time() < deadline:  # collect the receipts the victim sends
                await mallory.pump(0.2)
        finally:
            mallory.close()
    acknowledged = {
        message_id
        for e in mallory.events
        if isinstance(e, UserMessageReceived) and isinstance(e.message, Receipt)
        for message_id in e.message.ids
    }
    history = await scene.victim.conversation(mallory.fingerprint, limit=1000)
    stored = {bytes.fromhex(m.id) for m in history}
    assert stored and len(stored) < len(chats)
    assert sum(len((m.text or "").encode()) for m in history) <= quota.per_peer_bytes
    assert acknowledged == stored  # nothing refused was acknowledged, nothing stored was not

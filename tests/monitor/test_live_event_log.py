"""The node writes every security event DESIGN.md names, in the schema exactly.

One observed node (alice: a real `Profile`, a real `Node` on loopback with
the monitor on) lives through the whole list: unlocks in another "process",
an advert that comes and goes, a session with bob, chat, a key rotation and
a cipher switch, a good file each way and a file with a lying hash, and,
from a hostile peer built on the protocol code (attack_tools/raw_peer.py):
a forged identity signature, a garbage frame, a replayed record, a flipped
bit, a relabelled suite, a fresh key under bob's name, a connection flood.
Every record in alice's event log must then parse with the monitor's strict
reader, carry exactly the schema's keys in order, and all 21 event names
must be there. Chat is logged per delivered batch, not per message, so the
hot path does not pay for the log (checked with 2,000 messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import WrongPasswordError
from p2pmsg.monitor.events import event_from_dict
from p2pmsg.node.net.advert import PeerAdvertised, PeerWithdrawn
from p2pmsg.node.node import Node
from p2pmsg.node.transfers.settings import TransferSettings
from p2pmsg.profile import Profile
from p2pmsg.security_events import EVENT_NAMES
from tests.monitor.attack_tools import raw_peer
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config
from tests.transfers.conftest import LyingSender

PASSWORD = "Event-Log-Passw0rd!"  # noqa: S105 - a test profile's password
SCHEMA_KEYS = ("ts", "event", "peer", "addr", "bytes", "detail")
CHAT_MESSAGES = 2_000

pytestmark = pytest.mark.timeout(60)


@dataclass
class World:
    alice: Node
    bob: Node
    profile: Profile
    files: Path


def receiving(folder: Path) -> TransferSettings:
    return TransferSettings(downloads=folder, accept_files=True, min_free_after=0)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    profile = Profile(tmp_path, "alice", kdf_iterations=1_000)
    unlocked = profile.create("alice", PASSWORD)
    config = replace(
        loopback_config(files=receiving(tmp_path / "alice-dl")),
        monitor=True,
        monitor_interval=0.2,
        profile_events=profile.events_path,
    )
    alice = await Node.open(unlocked.identity, "alice", profile.db_path, unlocked.data_key, config)
    factory = NodeFactory(tmp_path)
    await alice.start()
    try:
        bob = await factory("bob", config=loopback_config(files=receiving(tmp_path / "bob-dl")))
        yield World(alice, bob, profile, tmp_path)
    finally:
        await factory.close()
        await alice.stop()


async def wait_for_events(node: Node, *names: str, timeout: float = 5.0) -> None:
    async def logged() -> bool:
        return set(names) <= {e["event"] for e in await node.security_events(20_000)}

    await eventually(logged, timeout=timeout)


async def transfer(sender: Node, to: Node, path: Path, payload: bytes) -> None:
    path.write_bytes(payload)
    await sender.send_file(to.fingerprint, str(path))


def hostile(port: int) -> dict[str, str]:
    """The raw-socket attacks, each from its own loopback address; returns fingerprints."""
    host = "127.0.0.1"
    with contextlib.closing(raw_peer.connect(host, port, "127.0.0.201")) as sock:
        raw_peer.forged_handshake(
            sock, Identity.generate(os.urandom), Identity.generate(os.urandom), "forger"
        )
    with contextlib.closing(raw_peer.connect(host, port, "127.0.0.202")) as sock:
        sock.sendall(b"\x00\x00\x00\x00")  # a zero-length frame: no frame type is empty
        raw_peer.wait_closed(sock)
    replayer = raw_peer.open_session(host, port, "127.0.0.203", name="replayer")
    record = replayer.chat_record("twice")
    replayer.send(record)
    replayer.pump(0.2)
    replayer.send(record)
    raw_peer.wait_closed(replayer.sock)
    flipper = raw_peer.open_session(host, port, "127.0.0.204", name="flipper")
    flipper.send(raw_peer.flip_last_bit(flipper.chat_record("flip")))
    raw_peer.wait_closed(flipper.sock)
    relabeller = raw_peer.open_session(
        host, port, "127.0.0.205", name="relabeller", suites=("chacha20-poly1305",)
    )
    relabeller.send(raw_peer.relabel_suite(relabeller.chat_record("x"), "aes-256-gcm"))
    raw_peer.wait_closed(relabeller.sock)
    impostor = raw_peer.open_session(host, port, "127.0.0.206", name="bob")
    impostor.sock.close()
    flood: list[socket.socket] = []
    try:
        for _ in range(30):  # bounded: the listener's burst is 16 per address
            with contextlib.suppress(OSError):
                flood.append(raw_peer.connect(host, port, "127.0.0.207", timeout=1.0))
    finally:
        for sock in flood:
            sock.close()
    return {
        "replayer": replayer.fingerprint,
        "flipper": flipper.fingerprint,
        "relabeller": relabeller.fingerprint,
        "impostor": impostor.fingerprint,
    }


async def test_every_event_kind_is_logged_in_the_exact_schema(world: World) -> None:
    alice, bob, profile = world.alice, world.bob, world.profile

    def guesses() -> None:  # another process at the profile's password prompt
        profile.unlock(PASSWORD)
        with contextlib.suppress(WrongPasswordError):
            profile.unlock("a wrong guess")

    await asyncio.to_thread(guesses)
    stranger = hashlib.sha256(b"a laptop that came and went").hexdigest()
    alice.router.on_discovery_event(PeerAdvertised(stranger, "carol", ("127.0.0.250",), 9, 1))
    await wait_for_events(alice, "peer_discovered")
    alice.router.on_discovery_event(PeerWithdrawn(stranger))

    await connect(bob, alice)
    texts = [f"message {i}" for i in range(CHAT_MESSAGES)]
    sent = await alice.send_texts(bob.fingerprint, texts)
    await bob.send_text(alice.fingerprint, "and one back")
    await alice.wait_delivered(sent[-1].id, 10.0)
    await alice.rotate(bob.fingerprint)
    await alice.set_suite(bob.fingerprint, "chacha20-poly1305")
    await transfer(alice, bob, world.files / "out.bin", os.urandom(100_000))
    await transfer(bob, alice, world.files / "in.bin", os.urandom(100_000))
    liar = await asyncio.to_thread(
        LyingSender.prepare, os.urandom(16), alice.fingerprint, world.files / "in.bin"
    )
    await bob.files.launch(liar)
    fps = await asyncio.to_thread(hostile, alice.listen_port)

    await wait_for_events(alice, *EVENT_NAMES, timeout=15.0)
    await alice.flushed()
    records = await alice.security_events(20_000)
    for record in records:
        assert tuple(record) == SCHEMA_KEYS, record
        event_from_dict(record)  # the monitor's strict reader: raises on any deviation
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_name.setdefault(record["event"], []).append(record)
    assert set(by_name) == set(EVENT_NAMES)

    # Who each event is about, where it matters to the monitor's keys.
    assert {r["peer"] for r in by_name["replay_rejected"]} == {fps["replayer"]}
    assert {r["peer"] for r in by_name["decrypt_fail"]} == {fps["flipper"]}
    assert {r["peer"] for r in by_name["downgrade_rejected"]} == {fps["relabeller"]}
    changed = [r for r in by_name["identity_changed"] if r["peer"] == fps["impostor"]]
    assert changed and changed[0]["detail"] == {"reason": "name_clash", "claims": bob.fingerprint}
    assert {r["addr"] for r in by_name["frame_rejected"]} == {"127.0.0.202"}
    assert {r["addr"] for r in by_name["rate_limited"]} == {"127.0.0.207"}
    assert {r["addr"] for r in by_name["handshake_fail"]} == {"127.0.0.201"}
    assert [r["detail"]["reason"] for r in by_name["unlock_fail"]] == ["wrong_password"]

    # Chat is logged per delivered batch with a count, never once per message.
    outgoing = [r for r in by_name["msg_sent"] if r["peer"] == bob.fingerprint]
    assert sum(r["detail"]["count"] for r in outgoing) == CHAT_MESSAGES
    assert len(outgoing) <= CHAT_MESSAGES // 20, len(outgoing)
    assert sum(r["bytes"] for r in outgoing) == sum(len(t) for t in texts)

    # The monitor saw the same stream: the single-event rules have all fired.
    async def single_event_rules_fired() -> bool:
        kinds = {a.kind for a in await alice.alerts()}
        return {"replay", "integrity_violation", "impersonation", "flood"} <= kinds

    await eventually(single_event_rules_fired, timeout=5.0)

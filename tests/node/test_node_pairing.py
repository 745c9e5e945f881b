"""Pairing by a short code between real nodes: TCP on 127.0.0.1, real sessions and store.

The man in the middle is built from two real sessions joined by a relaying
peer: a third identity with a Noise session to each node, passing every pair
message across unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import ConfigError, NotConnectedError
from p2pmsg.node.api import PairingFinished, PeerUpdated
from p2pmsg.node.net.session import Session
from p2pmsg.node.node import Node
from p2pmsg.protocol.connection import PeerConnection, Role
from p2pmsg.protocol.events import Event, UserMessage
from p2pmsg.protocol.messages import PAIR_MESSAGES, PairFinish
from p2pmsg.protocol.pairing import CODE_LIFETIME
from p2pmsg.store import Store
from tests.node.conftest import FAST_PROTOCOL, NodeFactory, connect, eventually

pytestmark = pytest.mark.timeout(60)


async def _verified(node: Node, peer: str) -> bool:
    record = await node._store.run(Store.get_peer, peer)
    return record is not None and record.verified


async def _events(node: Node, name: str) -> list[dict[str, object]]:
    return [e for e in await node.security_events() if e["event"] == name]


async def _pair(
    shower: Node, typer: Node, typed: str | None = None, timeout: float = 10.0
) -> tuple[str, str, str]:
    """The shower shows a code, the typer types it (or `typed`); both reasons."""
    code = await shower.pairing_code(typer.fingerprint)
    waiting = asyncio.create_task(shower.wait_pairing(typer.fingerprint, timeout))
    outcome = await typer.enter_pairing_code(shower.fingerprint, typed or code.code, timeout)
    shown = await waiting
    assert shown.peer == typer.fingerprint and outcome.peer == shower.fingerprint
    return code.code, shown.reason, outcome.reason


async def test_the_right_code_marks_both_sides_verified(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    events_a, events_b = alice.subscribe(), bob.subscribe()

    started = time.perf_counter()
    code, shown, typed = await _pair(alice, bob)
    elapsed = time.perf_counter() - started
    print(f"pairing over loopback took {elapsed * 1000:.1f} ms")

    assert len(code) == 7 and code[3] == "-" and code.replace("-", "").isdigit()
    assert (shown, typed) == ("verified", "verified")
    assert await _verified(alice, bob.fingerprint) and await _verified(bob, alice.fingerprint)
    for events, peer in ((events_a, bob.fingerprint), (events_b, alice.fingerprint)):
        seen = events.drain()  # type: ignore[attr-defined]
        assert PairingFinished(peer, True, "verified") in seen
        assert any(
            isinstance(e, PeerUpdated) and e.peer.fingerprint == peer and e.peer.verified
            for e in seen
        )
    assert (await alice.session_status(bob.fingerprint)).verified  # type: ignore[union-attr]
    assert not await _events(alice, "handshake_fail")
    assert not await _events(bob, "handshake_fail")


async def test_a_wrong_code_marks_nothing_and_burns_the_code(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    code = await alice.pairing_code(bob.fingerprint)
    wrong = f"{(int(code.code.replace('-', '')) + 1) % 10**6:06d}"
    waiting = asyncio.create_task(alice.wait_pairing(bob.fingerprint, 10))
    typed = await bob.enter_pairing_code(alice.fingerprint, wrong, 10)
    shown = await waiting
    assert (typed.ok, typed.reason) == (False, "wrong_code")
    assert (shown.ok, shown.reason) == (False, "wrong_code")

    # The right code now finds nothing to pair with: it was used up by the wrong one.
    again = await bob.enter_pairing_code(alice.fingerprint, code.code, 10)
    assert (again.ok, again.reason) == (False, "no_code")
    assert not await _verified(alice, bob.fingerprint)
    assert not await _verified(bob, alice.fingerprint)

    failures = await _events(alice, "handshake_fail")
    assert [(e["detail"]["outcome"], e["detail"]["reason"]) for e in failures] == [  # type: ignore[index]
        ("wrong_code", "pairing_failed"),
        ("no_code", "pairing_failed"),
    ]
    assert all(e["peer"] == bob.fingerprint for e in failures)
    # Still one working session: pairing failures never cost the connection.
    sent = await bob.send_text(alice.fingerprint, "still friends")
    assert await bob.wait_delivered(sent.id, 5) == "delivered"


async def test_an_expired_code_fails(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    code = await alice.pairing_code(bob.fingerprint)
    waiting = asyncio.create_task(alice.wait_pairing(bob.fingerprint, 10))
    alice.pairing.clock = lambda: time.time() + CODE_LIFETIME  # two minutes later
    typed = await bob.enter_pairing_code(alice.fingerprint, code.code, 10)
    assert (typed.ok, typed.reason) == (False, "no_code")
    shown = await waiting
    assert (shown.ok, shown.reason) == (False, "expired")
    assert not await _verified(alice, bob.fingerprint)
    assert not await _verified(bob, alice.fingerprint)


async def test_a_code_shown_while_offline_works_once_the_typer_connects(
    make_node: NodeFactory,
) -> None:
    """The code is for a peer, not a session: the typer's node connects to pair."""
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(bob, alice)  # bob knows alice's address
    await bob.stop()
    await eventually(lambda: _no_session(alice, bob.fingerprint))
    code = await alice.pairing_code(bob.fingerprint)
    waiting = asyncio.create_task(alice.wait_pairing(bob.fingerprint, 15))
    bob = await make_node("bob")  # restarted; it dials alice when asked to pair
    typed = await bob.enter_pairing_code(alice.fingerprint, code.code, 15)
    assert (typed.reason, (await waiting).reason) == ("verified", "verified")
    assert await _verified(alice, bob.fingerprint) and await _verified(bob, alice.fingerprint)


async def _no_session(node: Node, peer: str) -> bool:
    return node.directory.session(peer) is None


async def test_limits_and_refusals(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    carol = await make_node("carol")
    await connect(alice, bob)
    await connect(carol, alice)
    await carol.stop()

    # A peer that cannot be reached: a clear error, nothing sent, nothing burnt.
    with pytest.raises(NotConnectedError, match="could not connect"):
        await alice.enter_pairing_code(carol.fingerprint, "123-456", 0.3)
    with pytest.raises(ConfigError, match="6 digits"):
        await alice.enter_pairing_code(bob.fingerprint, "12-34", 1)
    with pytest.raises(ConfigError, match="no pairing code is shown"):
        await alice.wait_pairing(bob.fingerprint, 0.1)

    # One code per peer: a new one replaces the old, which then cannot be used.
    first = await alice.pairing_code(bob.fingerprint)
    second = await alice.pairing_code(bob.fingerprint)
    with pytest.raises(ConfigError, match="shows a code"):
        await alice.enter_pairing_code(bob.fingerprint, second.code, 1)
    if first.code != second.code:
        stale = await bob.enter_pairing_code(alice.fingerprint, first.code, 10)
        assert stale.reason == "wrong_code"

    # A pair message that belongs to no attempt is dropped and logged; the session lives.
    session = bob.directory.session(alice.fingerprint)
    assert session is not None
    session.send_messages([PairFinish(os.urandom(16), os.urandom(32))])

    async def logged() -> list[dict[str, object]]:
        return [
            e
            for e in await _events(alice, "frame_rejected")
            if e["detail"]["reason"] == "unexpected_pairing_message"
        ]  # type: ignore[index]

    assert (await eventually(logged))[0]["detail"]["message"] == "PairFinish"  # type: ignore[index]
    assert alice.directory.session(bob.fingerprint) is not None


# --- a man in the middle ---------------------------------------------------------------------


class Relay:
    """Mallory: one identity, a session to each victim, every pair message passed on."""

    def __init__(self) -> None:
        self.identity = Identity.generate(os.urandom)
        self.sessions: dict[str, Session] = {}  # victim's fingerprint -> session
        self.relayed: list[type] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def dial(self, node: Node, claimed_name: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.listen_port)
        role: Role = "initiator"
        conn = PeerConnection(
            role, self.identity, claimed_name, os.urandom, time.time, config=FAST_PROTOCOL
        )
        session = Session(conn, reader, writer, self, remote_address="127.0.0.1")
        self.tasks.append(asyncio.create_task(session.run()))
        async with asyncio.timeout(10):
            while not session.trusted:
                await asyncio.sleep(0.01)
        self.sessions[node.fingerprint] = session

    # SessionHandler
    async def authenticated(self, session: Session) -> bool:
        return True

    def received(self, session: Session, messages: list[UserMessage]) -> None:
        other = next(s for s in self.sessions.values() if s is not session)
        pair = [m for m in messages if type(m) in PAIR_MESSAGES]
        self.relayed += [type(m) for m in pair]
        other.send_messages(pair)

    def protocol_event(self, session: Session, event: Event) -> None:
        pass

    def closed(self, session: Session, reason: str, detail: str) -> None:
        pass

    async def read_allowed(self, session: Session) -> None:
        return None

    async def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_relaying_man_in_the_middle_cannot_complete_pairing(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    mallory = Relay()
    try:
        await mallory.dial(alice, "bob")  # alice pins mallory's key as "bob"
        await mallory.dial(bob, "alice")  # and bob pins it as "alice"
        m_fp = mallory.identity.fingerprint.hex()
        assert (await alice.resolve_peer("bob")).fingerprint == m_fp
        assert (await bob.resolve_peer("alice")).fingerprint == m_fp

        # Bob shows a code "to alice", alice types it correctly "for bob": mallory
        # relays every message faithfully, and it still fails on both sides.
        code = await bob.pairing_code("alice")
        waiting = asyncio.create_task(bob.wait_pairing("alice", 10))
        typed = await alice.enter_pairing_code("bob", code.code, 10)
        shown = await waiting
        assert (typed.ok, typed.reason) == (False, "wrong_code")
        assert (shown.ok, shown.reason) == (False, "wrong_code")
        assert mallory.relayed[:2] == [PAIR_MESSAGES[0], PAIR_MESSAGES[1]]
        assert not await _verified(alice, m_fp) and not await _verified(bob, m_fp)
        for node in (alice, bob):
            [failure] = await _events(node, "handshake_fail")
            assert failure["peer"] == m_fp
            assert failure["detail"] == {
                "reason": "pairing_failed",
                "outcome": "wrong_code",
                "role": "typer" if node is alice else "shower",
            }
    finally:
        await mallory.close()

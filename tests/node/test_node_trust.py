"""Trust through real sessions: TOFU pinning, name clashes kept apart, the user's key change,
blocking, and an advert the handshake does not prove."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from p2pmsg.errors import ConfigError, PeerBlockedError
from p2pmsg.node.api import NameClashed, PeerUpdated
from p2pmsg.node.net.advert import PeerAdvertised
from p2pmsg.store import Store
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config


async def _events(node, name: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [e for e in await node.security_events() if e["event"] == name]


async def test_first_handshake_pins_the_key(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    record = await bob._store.run(Store.get_peer, alice.fingerprint)
    assert record is not None and record.identity_key == alice.identity.public_key
    assert not record.verified
    ok = await _events(bob, "handshake_ok")
    assert ok[0]["peer"] == alice.fingerprint and ok[0]["detail"]["trust"] == "new"  # type: ignore[index]


async def _flagged_impostor(make_node: NodeFactory, claimed: str = "alice"):  # type: ignore[no-untyped-def]
    """alice and bob know each other; then a new key claiming `claimed` calls bob."""
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    warnings = bob.subscribe()
    impostor = await make_node(f"impostor-{claimed!r}", display_name=claimed)
    await connect(impostor, bob)

    async def warned() -> list[NameClashed]:
        return [
            e
            for e in warnings.drain()  # type: ignore[attr-defined]
            if isinstance(e, NameClashed)
        ]

    clash = (await eventually(warned))[0]
    return alice, bob, impostor, clash


async def test_a_new_key_under_a_known_name_is_flagged_and_the_contact_keeps_working(
    make_node: NodeFactory,
) -> None:
    alice, bob, impostor, clash = await _flagged_impostor(make_node)
    assert (clash.fingerprint, clash.contact) == (impostor.fingerprint, alice.fingerprint)
    assert clash.claimed_name == "alice" and clash.contact_name == "alice"
    event = (await _events(bob, "identity_changed"))[0]
    assert event["peer"] == impostor.fingerprint
    assert event["detail"] == {"reason": "name_clash", "claims": alice.fingerprint}  # type: ignore[comparison-overlap]

    views = {v.fingerprint: v for v in await bob.peers()}
    assert views[alice.fingerprint].state == "pinned" and views[alice.fingerprint].sendable
    flagged = views[impostor.fingerprint]
    assert flagged.state == "flagged" and not flagged.sendable
    assert (flagged.clash_with, flagged.clash_with_name) == (alice.fingerprint, "alice")
    # "alice" is still the real alice: the impostor's claim makes nothing ambiguous.
    sent = await bob.send_text("alice", "still you?")
    assert await bob.wait_delivered(sent.id, 5) == "delivered"
    assert [m.text for m in await alice.conversation(bob.fingerprint)] == ["still you?"]
    with pytest.raises(PeerBlockedError, match="claims a name"):
        await bob.send_text(impostor.fingerprint, "held back")
    # The impostor can still talk to bob; it lands in its own conversation, not alice's.
    await impostor.send_text(bob.fingerprint, "it's me, alice, new laptop")
    got = await eventually(lambda: _texts(bob, impostor.fingerprint))
    assert got == ["it's me, alice, new laptop"]
    assert [m.text for m in await bob.conversation(alice.fingerprint)] == ["still you?"]


async def _texts(node, fp: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.text for m in await node.conversation(fp) if m.direction == "in"]


async def test_someone_else_gets_a_name_and_becomes_a_contact(make_node: NodeFactory) -> None:
    alice, bob, impostor, _ = await _flagged_impostor(make_node)
    with pytest.raises(ConfigError, match="reads like"):
        await bob.keep_apart(impostor.fingerprint, "Alice")  # a petname must tell them apart
    view = await bob.rename_peer(impostor.fingerprint, "alice from work")
    assert view.state == "pinned" and view.name == "alice from work"
    assert view.claimed_name == "alice"
    assert (await bob.resolve_peer("alice")).fingerprint == alice.fingerprint
    assert (await bob.resolve_peer("Alice from  WORK")).fingerprint == impostor.fingerprint
    sent = await bob.send_text("alice from work", "hello, other alice")
    assert await bob.wait_delivered(sent.id, 5) == "delivered"


async def test_the_users_key_change_moves_the_contact_and_retires_the_old_key(
    make_node: NodeFactory,
) -> None:
    alice, bob, impostor, _ = await _flagged_impostor(make_node)
    await bob.set_verified(alice.fingerprint, True)
    before = await bob.send_text("alice", "before the change")
    assert await bob.wait_delivered(before.id, 5) == "delivered"
    await bob.rename_peer(alice.fingerprint, "Alice Liddell")

    view = await bob.change_key("Alice Liddell", impostor.fingerprint[:12])
    assert view.fingerprint == impostor.fingerprint and view.state == "pinned"
    assert view.name == "Alice Liddell" and not view.verified  # verify the new key again
    history = [m.text for m in await bob.conversation(impostor.fingerprint)]
    assert history == ["before the change"]
    retired = {v.fingerprint: v for v in await bob.peers()}[alice.fingerprint]
    assert retired.state == "retired" and retired.successor == impostor.fingerprint
    with pytest.raises(PeerBlockedError, match="retired"):
        await bob.send_text(alice.fingerprint, "old key")
    after = await bob.send_text("Alice Liddell", "welcome back")
    assert await bob.wait_delivered(after.id, 5) == "delivered"
    assert "welcome back" in await _texts(impostor, bob.fingerprint)

    # The retired key is refused from now on: its session ends, a new one is closed.
    async def alice_gone() -> bool:
        return bob.directory.session(alice.fingerprint) is None

    assert await eventually(alice_gone)
    with contextlib.suppress(Exception):
        await connect(alice, bob, timeout=1.5)
    assert bob.directory.session(alice.fingerprint) is None


async def test_a_known_key_renaming_itself_to_a_contacts_name_is_flagged(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    mallory = await make_node("mallory")
    await connect(alice, bob)
    await connect(mallory, bob)
    assert {v.name for v in await bob.peers()} == {"alice", "mallory"}
    await mallory.stop()
    renamed = await make_node("mallory", display_name="\u0430lice")  # Cyrillic a
    await connect(renamed, bob)

    async def flagged() -> bool:
        views = {v.fingerprint: v for v in await bob.peers()}
        return views[mallory.fingerprint].state == "flagged"

    assert await eventually(flagged)
    views = {v.fingerprint: v for v in await bob.peers()}
    assert views[mallory.fingerprint].clash_with == alice.fingerprint
    assert views[alice.fingerprint].state == "pinned"
    assert (await bob.resolve_peer("alice")).fingerprint == alice.fingerprint
    reasons = [e["detail"]["reason"] for e in await _events(bob, "identity_changed")]  # type: ignore[index]
    assert reasons == ["name_clash"]


async def test_a_blocked_key_is_refused_and_can_be_unblocked(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    view = await bob.block_peer("alice")
    assert view.state == "blocked" and not view.sendable

    async def dropped() -> bool:
        return bob.directory.session(alice.fingerprint) is None

    assert await eventually(dropped)
    with pytest.raises(PeerBlockedError, match="blocked"):
        await bob.send_text("alice", "no")
    with contextlib.suppress(Exception):
        await connect(alice, bob, timeout=1.5)
    assert bob.directory.session(alice.fingerprint) is None
    assert (await bob.unblock_peer(alice.fingerprint)).state == "pinned"
    await connect(alice, bob)
    sent = await bob.send_text("alice", "yes again")
    assert await bob.wait_delivered(sent.id, 5) == "delivered"


@pytest.mark.parametrize(
    "claimed", ["Alice", "ALICE", "\u0430lice", "AIice", "a1ice", "\u0391lice"]
)  # Greek capital alpha
async def test_look_alikes_at_first_contact_are_flagged(
    make_node: NodeFactory, claimed: str
) -> None:
    alice, bob, _, clash = await _flagged_impostor(make_node, claimed)
    assert clash.contact == alice.fingerprint and clash.claimed_name == claimed
    assert (await bob.resolve_peer("alice")).fingerprint == alice.fingerprint
    sent = await bob.send_text("alice", "only the real one")
    assert await bob.wait_delivered(sent.id, 5) == "delivered"


async def test_an_advert_the_handshake_does_not_prove_is_refused(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob", config=loopback_config(dial_grace=0.0))
    await connect(alice, bob)
    await alice.stop()
    queued = await bob.send_text("alice", "for alice only")

    # Mallory advertises alice's name and fingerprint at her own address, with her own key.
    mallory = await make_node("mallory", display_name="alice")
    bob.router.on_discovery_event(
        PeerAdvertised(alice.fingerprint, "alice", ("127.0.0.1",), mallory.listen_port, 1)
    )

    async def caught() -> list[dict[str, object]]:
        return await _events(bob, "identity_changed")

    event = (await eventually(caught))[0]
    assert event["peer"] == mallory.fingerprint
    assert event["detail"] == {
        "reason": "advertised_fingerprint_not_proven",  # type: ignore[comparison-overlap]
        "claimed": alice.fingerprint,
    }
    # Refused inside the handshake: mallory never even learnt who bob is.
    assert await mallory.peers() == []
    assert await mallory._store.run(Store.peers_with_outbox) == []
    assert (await bob.conversation("alice"))[-1].status == "queued"
    assert queued.status == "queued"
    # The refuted address is not hammered: one attempt per advertisement.
    assert len(await caught()) == 1


async def test_a_decision_written_by_another_process_reaches_the_running_node(
    make_node: NodeFactory,
) -> None:
    """`p2pmsg block/rename/trust` write to the store without the profile lock while the
    node runs; the node notices the other connection's commit and applies it live."""
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    updates = bob.subscribe()
    _, data_key = make_node.keys["bob"]

    def another_process() -> None:  # one thread: a sqlite3 connection stays on its own
        with Store.open(make_node.root / "bob.db", data_key) as other:
            other.set_local_name(alice.fingerprint, "Alice (desk)")
            other.block(alice.fingerprint, 1.0)

    await asyncio.to_thread(another_process)

    async def dropped() -> bool:
        return bob.directory.session(alice.fingerprint) is None

    assert await eventually(dropped, timeout=5.0)
    seen = [
        e.peer
        for e in updates.drain()  # type: ignore[attr-defined]
        if isinstance(e, PeerUpdated) and e.peer.fingerprint == alice.fingerprint
    ]
    assert seen and seen[-1].state == "blocked" and seen[-1].name == "Alice (desk)"
    with pytest.raises(PeerBlockedError):
        await bob.send_text("Alice (desk)", "no")


async def test_every_decision_from_either_entry_is_safe(make_node: NodeFactory) -> None:
    """The crash this replaces: an impostor with a known name, then the user acting on
    either entry. Every decision either applies or is refused with a clear ConfigError,
    and alice's history never moves to the impostor's key by mistake."""
    alice, bob, impostor, _ = await _flagged_impostor(make_node)
    sent = await bob.send_text("alice", "for alice")
    assert await bob.wait_delivered(sent.id, 5) == "delivered"
    a, m = alice.fingerprint, impostor.fingerprint

    with pytest.raises(ConfigError, match="flagged"):
        await bob.change_key(m, a)  # "the impostor's new key is alice's": backwards
    with pytest.raises(ConfigError, match="not flagged"):
        await bob.keep_apart(a, "alice two")  # alice is not the flagged one
    with pytest.raises(ConfigError, match="already"):
        await bob.change_key(a, a)
    assert [x.text for x in await bob.conversation(a)] == ["for alice"]
    assert await bob.conversation(m) == []

    assert (await bob.block_peer(m)).state == "blocked"
    assert (await bob.unblock_peer(m)).state == "flagged"
    assert (await bob.block_peer(a)).state == "blocked"
    assert (await bob.unblock_peer(a)).state == "pinned"
    with pytest.raises(ConfigError, match="not blocked"):
        await bob.unblock_peer(a)
    views = {v.fingerprint: v for v in await bob.peers()}
    assert views[a].state == "pinned" and views[m].state == "flagged"
    assert [x.text for x in await bob.conversation(a)] == ["for alice"]

"""Trust: TOFU pinning, a changed key blocks sending, an advert the handshake does not prove."""

from __future__ import annotations

import pytest

from p2pmsg.errors import AmbiguousPeerError, PeerBlockedError
from p2pmsg.node.advert import PeerAdvertised
from p2pmsg.node.api import IdentityChanged
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


async def test_a_new_key_under_a_known_name_blocks_sending_until_accepted(
        make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    await alice.stop()
    warnings = bob.subscribe()

    # Someone else (a reinstall, or an impostor) shows up calling itself "alice".
    claimant = await make_node("alice-2", display_name="alice")
    await connect(claimant, bob)

    async def warned() -> list[IdentityChanged]:
        return [e for e in warnings.drain()  # type: ignore[attr-defined]
                if isinstance(e, IdentityChanged)]

    changed = (await eventually(warned))[0]
    assert changed.fingerprint == claimant.fingerprint
    assert changed.old_fingerprint == alice.fingerprint
    assert (await _events(bob, "identity_changed"))[0]["detail"]["reason"] == "key_changed"  # type: ignore[index]

    with pytest.raises(AmbiguousPeerError):
        await bob.send_text("alice", "which one?")
    for who in (alice.fingerprint, claimant.fingerprint):
        with pytest.raises(PeerBlockedError):
            await bob.send_text(who, "held back")
    views = {v.fingerprint: v for v in await bob.peers()}
    assert views[alice.fingerprint].key_change_pending
    assert views[claimant.fingerprint].key_change_pending
    assert await claimant.conversation(bob.fingerprint) == []

    await bob.accept_new_key(claimant.fingerprint)
    sent = await bob.send_text(claimant.fingerprint, "welcome back")
    assert await bob.wait_delivered(sent.id, 5) == "delivered"
    assert [m.text for m in await claimant.conversation(bob.fingerprint)] == ["welcome back"]


async def test_an_advert_the_handshake_does_not_prove_is_refused(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob", config=loopback_config(dial_grace=0.0))
    await connect(alice, bob)
    await alice.stop()
    queued = await bob.send_text("alice", "for alice only")

    # Mallory advertises alice's name and fingerprint at her own address, with her own key.
    mallory = await make_node("mallory", display_name="alice")
    bob.on_discovery_event(PeerAdvertised(alice.fingerprint, "alice", ("127.0.0.1",),
                                          mallory.listen_port, 1))

    async def caught() -> list[dict[str, object]]:
        return await _events(bob, "identity_changed")

    event = (await eventually(caught))[0]
    assert event["peer"] == mallory.fingerprint
    assert event["detail"] == {"reason": "advertised_fingerprint_not_proven",  # type: ignore[comparison-overlap]
                               "claimed": alice.fingerprint}
    # Refused inside the handshake: mallory never even learnt who bob is.
    assert await mallory.peers() == []
    assert await mallory._store.run(Store.peers_with_outbox) == []
    assert (await bob.conversation("alice"))[-1].status == "queued"
    assert queued.status == "queued"
    # The refuted address is not hammered: one attempt per advertisement.
    assert len(await caught()) == 1

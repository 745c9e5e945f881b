"""Adverts from keys never met are an in-memory cache, never store rows.

Discovery is a hint anyone on the LAN can send. 360 fake adverts, withdrawn in
waves so discovery's own cap never applied, once left 361 permanent rows in
the peers table. Now an advert of an unknown key lives only in the node's
directory, for as long as it is advertised; a row is made when the user acts on
that peer (opens it, writes to it), and rows older versions made from adverts
alone are forgotten at start.
"""

from __future__ import annotations

import hashlib
import os
import time

from p2pmsg.node.net.advert import PeerAdvertised, PeerWithdrawn
from p2pmsg.store import Store
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config


def _fake_fp() -> str:
    return hashlib.sha256(os.urandom(32)).hexdigest()


async def test_waves_of_fake_adverts_leave_no_rows(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    rows_before = len(await alice.refresh_peers())
    for wave in range(6):
        fakes = [_fake_fp() for _ in range(60)]
        for i, fp in enumerate(fakes):
            host = f"127.0.{wave + 10}.{i + 1}"
            alice.router.on_discovery_event(PeerAdvertised(fp, "alice", (host,), 9, 1))

        async def all_seen(fakes: list[str] = fakes) -> bool:
            return all(alice.directory.advert(fp) is not None for fp in fakes)

        await eventually(all_seen)
        assert {v.fingerprint for v in await alice.peers()} >= set(fakes)  # shown, unproven
        for fp in fakes:
            alice.router.on_discovery_event(PeerWithdrawn(fp))

        async def all_gone(fakes: list[str] = fakes) -> bool:
            return all(alice.directory.advert(fp) is None for fp in fakes)

        await eventually(all_gone)
    assert len(await alice.refresh_peers()) == rows_before  # 360 adverts, no row
    assert (await alice.resolve_peer("bob")).fingerprint == bob.fingerprint


async def test_a_row_is_made_when_the_user_writes_to_an_advertised_peer(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    zoe = _fake_fp()
    alice.router.on_discovery_event(PeerAdvertised(zoe, "zoe", ("127.0.0.250",), 9, 1))

    async def seen() -> bool:
        return alice.directory.advert(zoe) is not None

    await eventually(seen)
    assert zoe not in {r.fingerprint for r in await alice.refresh_peers()}
    view = await alice.send_text("zoe", "first contact")  # by the advertised name
    assert view.peer == zoe and view.status == "queued"
    stored = {r.fingerprint: r for r in await alice.refresh_peers()}
    assert zoe in stored and not stored[zoe].pinned
    assert [str(a) for a in stored[zoe].addresses] == ["127.0.0.250:9"]


async def test_rows_made_by_adverts_alone_are_forgotten_at_start(
    make_node: NodeFactory,
) -> None:
    node = await make_node("carol", start=False, config=loopback_config())
    only_advert = _fake_fp()
    written_to = _fake_fp()
    await node._store.run(Store.upsert_discovered, only_advert, "x", "10.0.0.1", 9, 1.0)
    await node._store.run(Store.upsert_discovered, written_to, "y", "10.0.0.2", 9, 1.0)
    await node._store.run(Store.enqueue_outgoing, written_to, "hello", 2.0)
    # Proven in a handshake just now (a silent stranger is forgotten only after a day).
    pinned = await node._store.run(Store.record_handshake, os.urandom(32), "dave", time.time())
    await node.start()
    left = {r.fingerprint for r in await node.refresh_peers()}
    assert only_advert not in left
    assert {written_to, pinned.peer.fingerprint} <= left

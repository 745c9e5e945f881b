"""Strangers that never said anything are forgotten: a key that only completed a
handshake is a row anyone on the LAN can make by the thousand (100 one-shot
strangers once left 100 rows forever). A real node forgets them at start and
every sweep, never one that is connected now, never one with a conversation."""

from __future__ import annotations

import os
import time

from p2pmsg.store import IncomingMessage, Store
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config

DAY = 24 * 3600.0


async def test_a_node_forgets_silent_strangers_but_not_a_conversation_or_a_session(
    make_node: NodeFactory,
) -> None:
    carol = await make_node("carol", start=False, config=loopback_config())
    long_ago = time.time() - 2 * DAY
    silent = [
        (
            await carol._store.run(Store.record_handshake, os.urandom(32), f"s{i}", long_ago)
        ).peer.fingerprint
        for i in range(20)
    ]
    talker = (
        await carol._store.run(Store.record_handshake, os.urandom(32), "talker", long_ago)
    ).peer.fingerprint
    hello = IncomingMessage(os.urandom(16), "hello?", long_ago)
    await carol._store.run(Store.insert_incoming, talker, hello, long_ago)
    await carol.start()
    left = {r.fingerprint for r in await carol.refresh_peers()}
    assert not left & set(silent)
    assert talker in left

    # Two days on, a stranger connected now stays; the same stranger gone is forgotten.
    dave = await make_node("dave")
    await connect(dave, carol)
    carol._clock = lambda: time.time() + 2 * DAY
    assert await carol.forget_strangers() == 0
    assert dave.fingerprint in {r.fingerprint for r in await carol.refresh_peers()}
    await dave.stop()

    async def dave_gone() -> bool:
        return dave.fingerprint not in carol.router.connected_peers()

    await eventually(dave_gone)
    assert await carol.forget_strangers() == 1
    assert dave.fingerprint not in {r.fingerprint for r in await carol.refresh_peers()}

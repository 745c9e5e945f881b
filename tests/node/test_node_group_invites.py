"""Who may put us in a group (node/services/groups.py, `_may_join`), through the real
stack on loopback: a stranger in one group, strangers in four, a contact in 32, a blocked
key in none (also when a member we trust relays its invitation), and at most two
unjoined groups waiting per peer that brought them.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from p2pmsg.crypto.identity import Identity
from p2pmsg.node.node import Node
from p2pmsg.node.services import groups as groups_module
from p2pmsg.protocol.groups import GroupReplica, MemberInfo
from p2pmsg.protocol.messages import GroupOpMessage
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config


async def _names(node: Node) -> list[str]:
    return sorted(g.name for g in await node.groups())


async def _count(node: Node, n: int) -> bool:
    return len(await node.groups()) == n


async def _events(node: Node, reason: str) -> list[dict[str, Any]]:
    return [e for e in await node.security_events() if e["detail"].get("reason") == reason]


async def test_a_stranger_puts_us_in_one_group_and_naming_it_accepts_the_next(
    make_node: NodeFactory,
) -> None:
    x = await make_node("x")
    b = await make_node("b")
    await connect(x, b)
    await x.create_group("first", ["b"])
    await eventually(lambda: _names(b))
    await x.create_group("second", ["b"])

    refused = await eventually(lambda: _events(b, "group_invite_cap"))
    assert refused[0]["peer"] == x.fingerprint and refused[0]["event"] == "rate_limited"
    await asyncio.sleep(0.3)
    assert await _names(b) == ["first"]

    # The user accepts by making x a contact: x's next session offers the group again.
    await b.rename_peer(x.fingerprint, "Xavier")
    x_port = x.listen_port
    await x.stop()
    await eventually(lambda: asyncio.sleep(0, b.directory.session(x.fingerprint) is None))
    x = await make_node("x", config=loopback_config(port=x_port))

    async def both() -> bool:
        return await _names(b) == ["first", "second"]

    await eventually(both, timeout=10)


async def test_strangers_together_put_us_in_at_most_four_groups(
    make_node: NodeFactory, monkeypatch: Any
) -> None:
    monkeypatch.setattr(groups_module, "MAX_STRANGER_GROUPS", 2)  # shrunk: 3 strangers suffice
    b = await make_node("b")
    strangers = [await make_node(f"s{i}") for i in range(3)]
    for i, s in enumerate(strangers):
        await connect(s, b)
        await s.create_group(f"g{i}", ["b"])
        if i < 2:
            await eventually(lambda i=i: _count(b, i + 1))  # type: ignore[misc]
    refused = await eventually(lambda: _events(b, "group_invite_cap"))
    assert refused[0]["peer"] == strangers[2].fingerprint
    assert await _names(b) == ["g0", "g1"]

    # A contact is not held to the strangers' cap.
    c = await make_node("c")
    await connect(c, b)
    await b.rename_peer(c.fingerprint, "Carol")
    await c.create_group("with a contact", ["b"])
    await eventually(lambda: _count(b, 3))


async def test_a_contact_is_capped_too(make_node: NodeFactory, monkeypatch: Any) -> None:
    monkeypatch.setattr(groups_module, "MAX_GROUPS_PER_CONTACT", 2)
    c = await make_node("c")
    b = await make_node("b")
    await connect(c, b)
    await b.rename_peer(c.fingerprint, "Carol")
    for i in range(3):
        await c.create_group(f"g{i}", ["b"])
        if i < 2:
            await eventually(lambda i=i: _count(b, i + 1))  # type: ignore[misc]
    refused = await eventually(lambda: _events(b, "group_invite_cap"))
    assert refused[0]["peer"] == c.fingerprint
    assert await _names(b) == ["g0", "g1"]


async def test_a_blocked_keys_invitation_is_refused_also_when_a_member_relays_it(
    make_node: NodeFactory,
) -> None:
    x = await make_node("x")
    a = await make_node("a")
    b = await make_node("b")
    await connect(x, a)
    await connect(x, b)
    await b.block_peer(x.fingerprint)
    await connect(a, b)
    await b.rename_peer(a.fingerprint, "Alice")  # a contact relays x's group to b

    await x.create_group("from a blocked key", ["a", "b"])
    await eventually(lambda: _names(a))
    # a's next session with b carries a summary for the group; b asks for it, a sends
    # the history x signed, and b refuses to be put there by x.
    a_port = a.listen_port
    await a.stop()
    a = await make_node("a", config=loopback_config(port=a_port))
    refused = await eventually(lambda: _events(b, "group_invite_refused"), timeout=10)
    assert refused[0]["peer"] == x.fingerprint and refused[0]["detail"]["via"] == a.fingerprint
    assert refused[0]["event"] == "frame_rejected"
    assert await _names(b) == []


async def test_at_most_two_unjoined_groups_wait_per_peer(make_node: NodeFactory) -> None:
    x = await make_node("x")
    b = await make_node("b")
    await connect(x, b)
    session = x.directory.session(b.fingerprint)
    assert session is not None
    identity, _ = make_node.keys["x"]
    other = MemberInfo(Identity.generate(os.urandom).public_key, "someone")
    # Creates that never name b: held as candidates, waiting for an add that never comes.
    creates = [
        GroupReplica.create(identity, os.urandom, 1.0, f"c{i}", "x", [other]).create_op
        for i in range(3)
    ]
    session.send_messages([GroupOpMessage(op.body, op.signature) for op in creates])
    flood = await eventually(lambda: _events(b, "group_flood"))
    assert flood[0]["peer"] == x.fingerprint and len(flood) == 1
    assert len(b.groups_service._candidates) == 2
    assert await _names(b) == []

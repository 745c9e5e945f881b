"""Two nodes on loopback: connect by host:port, chat both ways, receipts, read receipts."""

from __future__ import annotations

import asyncio
import socket

from p2pmsg.node.api import AddressDialed, MessageReceived, MessageStatusChanged
from tests.node.conftest import NodeFactory, connect, eventually


async def test_two_nodes_chat_both_ways_with_delivery_receipts(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    events = bob.subscribe()
    await connect(alice, bob)

    peers = {p.name: p for p in await alice.peers()}
    assert peers["bob"].fingerprint == bob.fingerprint
    assert peers["bob"].online and peers["bob"].manual

    sent = await alice.send_text("bob", "hello bob")
    assert sent.status == "queued" and sent.direction == "out"
    assert await alice.wait_delivered(sent.id, timeout=5) == "delivered"

    received = None
    async for event in events:
        if isinstance(event, MessageReceived):
            received = event.message
            break
    assert received is not None
    assert (received.id, received.text, received.peer) == (sent.id, "hello bob", alice.fingerprint)

    reply = await bob.send_text("alice", "hi alice")
    assert await bob.wait_delivered(reply.id, timeout=5) == "delivered"
    history = await alice.conversation("bob")
    assert [(m.direction, m.text, m.status) for m in history] == [
        ("out", "hello bob", "delivered"),
        ("in", "hi alice", "delivered"),
    ]


async def test_read_receipt_reaches_the_sender(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    sent = await alice.send_text("bob", "read me")
    await alice.wait_delivered(sent.id, 5)
    changes = alice.subscribe()
    await bob.mark_read("alice")

    async def read() -> bool:
        return (await alice.conversation("bob"))[-1].status == "read"

    await eventually(read)
    statuses = [e for e in changes.drain() if isinstance(e, MessageStatusChanged)]  # type: ignore[attr-defined]
    assert any(e.status == "read" and sent.id in e.ids for e in statuses)
    assert (await bob.peers())[0].unread == 0


async def test_many_messages_arrive_in_order_exactly_once(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    await bob.rename_peer(alice.fingerprint, "alice")  # a contact: more than a stranger may
    texts = [f"message {i}" for i in range(2000)]
    views = await asyncio.gather(*(alice.send_text("bob", t) for t in texts))
    await asyncio.wait_for(asyncio.gather(*(alice.wait_delivered(v.id, 10) for v in views)), 20)
    history = await bob.conversation("alice", limit=5000)
    assert [m.text for m in history] == texts
    assert len({m.id for m in history}) == len(texts)


async def test_adding_an_address_reports_each_outcome(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    events = alice.subscribe()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: the dial is refused
    dead_port = closed.getsockname()[1]
    try:
        await alice.add_peer("127.0.0.1", dead_port)
        await alice.add_peer("127.0.0.1", bob.listen_port)
        outcomes: dict[int, AddressDialed] = {}
        async with asyncio.timeout(10):
            async for event in events:
                if isinstance(event, AddressDialed):
                    outcomes.setdefault(event.port, event)
                    if len(outcomes) == 2:
                        break
    finally:
        closed.close()
    refused = outcomes[dead_port]
    assert (refused.host, refused.peer, refused.problem) == (
        "127.0.0.1",
        None,
        "connection refused",
    )
    reached = outcomes[bob.listen_port]
    assert reached.problem is None and reached.peer is not None
    assert (reached.peer.fingerprint, reached.peer.name) == (bob.fingerprint, "bob")

"""Delivery across restarts, duplicate connections and disappearing messages (loopback)."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from p2pmsg.errors import ConfigError
from p2pmsg.node.api import MessageReceived, MessagesExpired
from p2pmsg.store import IncomingMessage, Store
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config


async def test_messages_to_an_offline_peer_are_queued_then_delivered_once_in_order(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    port = bob.listen_port
    await connect(alice, bob)
    await bob.stop()

    async def offline() -> bool:
        return alice.directory.session(bob.fingerprint) is None

    await eventually(offline)
    texts = [f"while you were away {i}" for i in range(20)]
    views = [await alice.send_text("bob", t) for t in texts]
    assert {v.status for v in views} == {"queued"}

    bob = await make_node("bob", config=loopback_config(port=port))  # same identity and db
    statuses = await asyncio.gather(*(alice.wait_delivered(v.id, 10) for v in views))
    assert set(statuses) == {"delivered"}
    history = await bob.conversation("alice")
    assert [m.text for m in history] == texts


async def test_simultaneous_dials_leave_one_shared_session(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    # Each learns the other's address, then both dial in the same loop turn. (Dialling
    # from two `add_peer` calls raced: on a loaded machine one handshake could finish
    # before the other side's store write, and that side then saw its peer connected
    # and never dialled, so there was no tie to break.)
    now = time.time()
    await alice._store.run(Store.add_manual_address, "127.0.0.1", bob.listen_port, now)
    await bob._store.run(Store.add_manual_address, "127.0.0.1", alice.listen_port, now)
    alice.router.dial_manual("127.0.0.1", bob.listen_port)
    bob.router.dial_manual("127.0.0.1", alice.listen_port)

    async def settled() -> bool:
        a = alice.directory.session(bob.fingerprint)
        b = bob.directory.session(alice.fingerprint)
        return (
            a is not None
            and b is not None
            and len([s for s in alice.router._sessions if s.is_open]) == 1
            and len([s for s in bob.router._sessions if s.is_open]) == 1
        )

    await eventually(settled)
    a = alice.directory.session(bob.fingerprint)
    b = bob.directory.session(alice.fingerprint)
    assert a is not None and b is not None
    # Both ends kept the same TCP connection: its initiator is the lower fingerprint.
    assert a.initiator != b.initiator
    assert a.initiator == (alice.fingerprint < bob.fingerprint)
    sent = await alice.send_text("bob", "one session")
    assert await alice.wait_delivered(sent.id, 5) == "delivered"
    assert [m.text for m in await bob.conversation("alice")] == ["one session"]


async def test_disappearing_message_is_deleted_on_both_sides_after_reading(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    alice_events = alice.subscribe()
    sent = await alice.send_text("bob", "this will self-destruct", ttl=1)
    await alice.wait_delivered(sent.id, 5)
    keep = await alice.send_text("bob", "this stays")
    await alice.wait_delivered(keep.id, 5)
    assert (await bob.conversation("alice"))[0].deadline is None  # not read yet: no timer
    await bob.mark_read("alice")

    async def gone_on_both_sides() -> bool:
        theirs = await bob.conversation("alice")
        ours = await alice.conversation("bob")
        return theirs[0].text is None and ours[0].text is None

    await eventually(gone_on_both_sides, timeout=6)
    assert [m.text for m in await bob.conversation("alice")] == [None, "this stays"]
    assert [m.text for m in await alice.conversation("bob")] == [None, "this stays"]
    expired = [
        e
        for e in alice_events.drain()  # type: ignore[attr-defined]
        if isinstance(e, MessagesExpired)
    ]
    assert expired and sent.id in expired[0].ids
    # The row stays, so a late resend of the same id is still recognised as a duplicate.
    assert await bob._store.run(Store.get_message, bytes.fromhex(sent.id)) is not None


async def test_stop_says_bye_and_the_peer_sees_an_orderly_close(make_node: NodeFactory) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    await bob.stop()

    async def closed_by_peer() -> list[dict[str, object]]:
        events = await alice.security_events()
        return [
            e
            for e in events
            if e["event"] == "conn_close" and e["detail"].get("reason") == "peer_closed"
        ]  # type: ignore[union-attr]

    await eventually(closed_by_peer)


async def test_a_conversation_timer_set_off_or_unset_reaches_the_store_and_messages(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    await alice.set_conversation_ttl("bob", 30.0)
    timed = await alice.send_text("bob", "gone 30 s after reading")
    await alice.set_conversation_ttl("bob", math.inf)  # off here, whatever a UI default says
    assert await alice.conversation_ttl("bob") == math.inf
    kept = await alice.send_text("bob", "kept")
    with pytest.raises(ConfigError, match="number of seconds"):  # "never" is not a message's
        await alice.send_text("bob", "infinite", ttl=math.inf)
    await alice.set_conversation_ttl("bob", None)
    assert await alice.conversation_ttl("bob") is None
    for sent in (timed, kept):
        assert await alice.wait_delivered(sent.id, 5) == "delivered"
    got = {m.text: m.ttl for m in await bob.conversation("alice")}
    assert got == {"gone 30 s after reading": 30.0, "kept": None}


async def test_a_read_receipt_owed_to_an_absent_peer_survives_a_restart(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    sent = await alice.send_text("bob", "read this while I am away")
    assert await alice.wait_delivered(sent.id, 5) == "delivered"
    await alice.stop()
    await bob.mark_read("alice")  # alice is gone: the receipt cannot leave now
    await bob.stop()
    bob = await make_node("bob")
    alice = await make_node("alice")
    await connect(alice, bob)

    async def read_at_alice() -> bool:
        return [m.status for m in await alice.conversation("bob")] == ["read"]

    await eventually(read_at_alice)

    async def nothing_owed() -> bool:
        return await bob._store.run(Store.read_receipts_due, alice.fingerprint) == []

    await eventually(nothing_owed)


async def test_a_message_stored_before_a_crash_is_shown_again_when_resent(
    make_node: NodeFactory,
) -> None:
    """A kill -9 between storing a message and acknowledging it: the sender resends it
    to the next run, which must show it (it may never have been shown), once, with the
    same id, and flagged; a message read before the crash is not shown again."""
    alice = await make_node("alice")
    bob = await make_node("bob")
    port = bob.listen_port
    await connect(alice, bob)
    await bob.stop()
    views = [
        await alice.send_text("bob", t)
        for t in ("stored, never acknowledged", "stored and read", "new to bob")
    ]
    assert {v.status for v in views} == {"queued"}
    # What bob's previous run wrote before it died: the rows, but no receipt left.
    _, data_key = make_node.keys["bob"]
    store = Store.open(make_node.root / "bob.db", data_key)
    try:
        stored = [IncomingMessage(bytes.fromhex(v.id), v.text or "", v.created) for v in views]
        store.insert_incoming_many(alice.fingerprint, stored[1:2], 1.0)
        store.mark_conversation_read(alice.fingerprint, 2.0)
        store.insert_incoming_many(alice.fingerprint, stored[:1], 3.0)
    finally:
        store.close()

    bob = await make_node("bob", config=loopback_config(port=port), start=False)
    events = bob.subscribe()
    await bob.start()
    statuses = await asyncio.gather(*(alice.wait_delivered(v.id, 10) for v in views))
    assert statuses[0] == statuses[2] == "delivered"
    assert statuses[1] in ("delivered", "read")  # its read receipt was owed, and goes too

    shown: list[MessageReceived] = []
    async for event in events:
        if isinstance(event, MessageReceived):
            shown.append(event)
            if event.message.text == "new to bob":
                break
    assert [(e.message.id, e.message.text, e.replayed) for e in shown] == [
        (views[0].id, "stored, never acknowledged", True),
        (views[2].id, "new to bob", False),
    ]
    history = await bob.conversation("alice")
    assert [m.text for m in history] == [
        "stored and read",
        "stored, never acknowledged",
        "new to bob",
    ]

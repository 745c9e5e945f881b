"""The lazy bookkeeping writes of the outbox: fewer transactions, never a wrong status."""

from __future__ import annotations

import asyncio

from p2pmsg.node.api import MessageStatusChanged
from p2pmsg.node.services.delivery.core import LAZY_WRITE_DELAY, SENT_MARK_DELAY
from p2pmsg.node.services.delivery.pending import MAX_SUBMITS_PER_BATCH
from p2pmsg.store import Store
from tests.node.conftest import NodeFactory, connect, eventually


async def test_a_quick_receipt_is_announced_at_once_and_written_with_no_sent_mark(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    events = alice.bus.subscribe()
    sent = await alice.send_text("bob", "quick")
    assert await alice.wait_delivered(sent.id, 5) == "delivered"
    # The history agrees with the announcement even while the row may still say "queued".
    assert [m.status for m in await alice.conversation("bob")] == ["delivered"]

    async def written() -> bool:
        record = await alice._store.run(Store.get_message, bytes.fromhex(sent.id))
        return record is not None and record.status == "delivered"

    # Nothing else happens on alice's side: the receipt's own timer writes it.
    await eventually(written, timeout=LAZY_WRITE_DELAY + 2.0)
    await alice.flushed()
    statuses = [
        e.status for e in events.drain() if isinstance(e, MessageStatusChanged) and sent.id in e.ids
    ]
    assert statuses == ["delivered"]  # acknowledged within a tick: never marked "sent"
    record = await alice._store.run(Store.get_message, bytes.fromhex(sent.id))
    assert record is not None and record.sent_at is not None  # set with the receipt


async def test_an_unacknowledged_message_is_marked_sent_within_two_ticks(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    events = alice.bus.subscribe()
    # Bob's receipts never reach alice's outbox.
    alice.delivery.receipt_received = lambda peer, receipt: None  # type: ignore[method-assign]
    sent = await alice.send_text("bob", "slow to be acknowledged")

    async def marked_sent() -> bool:
        record = await alice._store.run(Store.get_message, bytes.fromhex(sent.id))
        return record is not None and record.status == "sent"

    await eventually(marked_sent, timeout=2 * SENT_MARK_DELAY + 2.0)
    assert any(
        isinstance(e, MessageStatusChanged) and e.status == "sent" and sent.id in e.ids
        for e in events.drain()
    )


async def test_send_texts_beyond_one_batch_keeps_order_with_single_sends_between(
    make_node: NodeFactory,
) -> None:
    alice = await make_node("alice")
    bob = await make_node("bob")
    await connect(alice, bob)
    await bob.rename_peer(alice.fingerprint, "alice")  # a contact: more than a stranger may
    many = [f"bulk {i}" for i in range(MAX_SUBMITS_PER_BATCH + 10)]  # two parts
    bulk, single = await asyncio.gather(
        alice.send_texts("bob", many), alice.send_text("bob", "single")
    )
    assert [v.text for v in bulk] == many and len({v.id for v in bulk}) == len(many)
    assert await alice.wait_delivered(single.id, 10) == "delivered"
    assert await alice.wait_delivered(bulk[-1].id, 10) == "delivered"
    stored = [m.text for m in await bob.conversation("alice", limit=10_000)]
    assert stored == [*many, "single"]

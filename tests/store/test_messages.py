"""Outbox order, receipts, de-duplication, history, unread counts, disappearing messages."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from p2pmsg.errors import UnknownPeerError
from p2pmsg.store import IncomingMessage, Store
from tests.store.conftest import PeerFactory, raw_bytes


def incoming(text: str, created: float = 10.0, ttl: float | None = None) -> IncomingMessage:
    return IncomingMessage(os.urandom(16), text, created, ttl)


def test_outbox_keeps_sending_order_across_batches_and_peers(
    store: Store, make_peer: PeerFactory
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    a1 = store.enqueue_outgoing_many(alice, ["a1", "a2"], 5.0)
    store.enqueue_outgoing(bob, "b1", 4.0)  # an earlier clock must not reorder anything
    a3 = store.enqueue_outgoing(alice, "a3", 1.0)
    assert all(m.status == "queued" for m in [*a1, a3])
    assert [m.text for m in store.outbox(alice)] == ["a1", "a2", "a3"]
    assert [m.text for m in store.outbox(bob)] == ["b1"]
    assert store.peers_with_outbox() == sorted([alice, bob])
    # Sent but unacknowledged messages stay in the outbox (resent after a reconnect)...
    store.mark_sent_many(alice, [a1[0].id, a1[1].id], 6.0)
    assert [(m.text, m.status) for m in store.outbox(alice)] == [
        ("a1", "sent"),
        ("a2", "sent"),
        ("a3", "queued"),
    ]
    # ...until the receipt arrives.
    assert store.mark_delivered_many(alice, [a1[0].id], 7.0) == [a1[0].id]
    assert [m.text for m in store.outbox(alice)] == ["a2", "a3"]


def test_status_only_moves_forward(store: Store, make_peer: PeerFactory) -> None:
    fp = make_peer()
    m = store.enqueue_outgoing(fp, "hi", 1.0)
    assert store.mark_delivered_many(fp, [m.id], 2.0) == [m.id]  # receipt before "sent" mark
    assert store.mark_sent_many(fp, [m.id], 3.0) == []  # a late "sent" changes nothing
    assert store.mark_delivered_many(fp, [m.id], 4.0) == []  # a repeated receipt neither
    record = store.get_message(m.id)
    assert record is not None
    assert (record.status, record.sent_at, record.delivered_at) == ("delivered", 2.0, 2.0)
    assert store.mark_read_many(fp, [m.id], 5.0) == [m.id]
    assert store.get_message(m.id).status == "read"  # type: ignore[union-attr]
    failed = store.enqueue_outgoing(fp, "never", 6.0)
    assert store.mark_failed_many(fp, [failed.id]) == [failed.id]
    assert store.mark_delivered_many(fp, [failed.id], 7.0) == []
    assert store.outbox(fp) == []


def test_receipts_from_one_peer_cannot_touch_another_peers_messages(
    store: Store, make_peer: PeerFactory
) -> None:
    alice, mallory = make_peer("alice"), make_peer("mallory")
    to_alice = store.enqueue_outgoing(alice, "for alice only", 1.0)
    assert store.mark_delivered_many(mallory, [to_alice.id], 2.0) == []
    assert store.mark_read_many(mallory, [to_alice.id], 2.0) == []
    assert store.get_message(to_alice.id).status == "queued"  # type: ignore[union-attr]
    # Nor can a "receipt" mark one of our incoming messages.
    got = store.insert_incoming(alice, incoming("hello"), 3.0)
    assert got is not None
    assert store.mark_delivered_many(alice, [got.id], 4.0) == []


def test_incoming_is_deduplicated_by_id(store: Store, make_peer: PeerFactory) -> None:
    fp = make_peer()
    first = [incoming("one"), incoming("two")]
    new = store.insert_incoming_many(fp, first, 5.0)
    assert [m.text for m in new] == ["one", "two"]
    assert all(m.status == "delivered" and m.direction == "in" for m in new)
    # A reconnect resends everything plus one new message: only the new one is stored.
    again = store.insert_incoming_many(fp, [*first, incoming("three")], 6.0)
    assert [m.text for m in again] == ["three"]
    assert store.insert_incoming(fp, first[0], 7.0) is None
    assert [m.text for m in store.conversation(fp)] == ["one", "two", "three"]
    # The same id inside one batch is stored once.
    dup = incoming("four")
    assert [m.text for m in store.insert_incoming_many(fp, [dup, dup], 8.0)] == ["four"]


def test_conversation_pages_back_in_local_order(store: Store, make_peer: PeerFactory) -> None:
    fp = make_peer()
    store.enqueue_outgoing_many(fp, [f"m{i}" for i in range(10)], 1.0)
    last = store.conversation(fp, limit=4)
    assert [m.text for m in last] == ["m6", "m7", "m8", "m9"]
    before = store.conversation(fp, limit=4, before_seq=last[0].seq)
    assert [m.text for m in before] == ["m2", "m3", "m4", "m5"]


def test_unread_counts_and_marking_a_conversation_read(
    store: Store, make_peer: PeerFactory
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    got = store.insert_incoming_many(alice, [incoming("a"), incoming("b")], 1.0)
    store.insert_incoming(bob, incoming("c"), 1.0)
    store.enqueue_outgoing(alice, "outgoing never counts", 1.0)
    assert store.unread_counts() == {alice: 2, bob: 1}
    assert store.get_peer(alice).unread == 2  # type: ignore[union-attr]
    assert store.mark_conversation_read(alice, 2.0) == [m.id for m in got]
    assert store.mark_conversation_read(alice, 3.0) == []  # receipts are sent once
    assert store.unread_counts() == {bob: 1}


def test_a_conversation_timer_explicitly_off_is_kept_apart_from_none(
    store: Store, make_peer: PeerFactory
) -> None:
    fp = make_peer()
    store.set_disappearing_ttl(fp, math.inf)  # "/ttl off": a UI's default must not apply
    assert store.get_peer(fp).disappearing_ttl == math.inf  # type: ignore[union-attr]
    assert store.enqueue_outgoing(fp, "no timer", 1.0).ttl is None
    store.set_disappearing_ttl(fp, None)
    assert store.get_peer(fp).disappearing_ttl is None  # type: ignore[union-attr]
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="positive"):
            store.set_disappearing_ttl(fp, bad)


def test_disappearing_messages_lose_their_bodies_after_reading(
    store: Store, make_peer: PeerFactory, db_path: Path
) -> None:
    fp = make_peer()
    store.set_disappearing_ttl(fp, 30.0)
    out = store.enqueue_outgoing(fp, "self-destructing outgoing", 1.0)
    assert out.ttl == 30.0  # the conversation timer applies
    keep = store.enqueue_outgoing(fp, "outgoing kept", 1.0)  # never read: its timer never runs
    store.set_disappearing_ttl(fp, None)
    keep_too = store.enqueue_outgoing(fp, "plain", 1.0)
    got = store.insert_incoming(fp, incoming("burn after reading", ttl=10.0), 2.0)
    assert got is not None
    assert store.purge_expired(1e9) == {}  # nothing read yet: no deadline runs
    sealed = store._conn.execute("SELECT body FROM messages WHERE id = ?", (got.id,)).fetchone()[0]
    store.mark_conversation_read(fp, 100.0)  # incoming deadline: 110
    store.mark_read_many(fp, [out.id], 105.0)  # read receipt: outgoing deadline 135
    assert store.next_expiry() == 110.0
    assert store.purge_expired(109.9) == {}
    assert store.purge_expired(110.0) == {fp: [got.id]}
    assert store.purge_expired(135.0) == {fp: [out.id]}
    texts = {m.id: m.text for m in store.conversation(fp)}
    assert texts[got.id] is None and texts[out.id] is None
    assert texts[keep.id] == "outgoing kept" and texts[keep_too.id] == "plain"
    assert store.next_expiry() is None
    # The row stays, so a late resend of the same id is still a duplicate...
    assert (
        store.insert_incoming(fp, IncomingMessage(got.id, "burn after reading", 2.0, 10.0), 200.0)
        is None
    )
    # ...and not even the ciphertext is left on disk.
    assert sealed not in raw_bytes(db_path)


def test_unknown_peer_and_bad_arguments(store: Store, make_peer: PeerFactory) -> None:
    with pytest.raises(UnknownPeerError):
        store.enqueue_outgoing("ab" * 32, "to nobody", 1.0)
    with pytest.raises(ValueError, match="fingerprint"):
        store.outbox("not hex")
    fp = make_peer()
    with pytest.raises(ValueError, match="16 bytes"):
        store.mark_delivered_many(fp, [b"short"], 1.0)
    with pytest.raises(ValueError, match="positive"):
        store.enqueue_outgoing(fp, "x", 1.0, ttl=0)
    # The fingerprint may come as bytes or in the spaced display form.
    spaced = " ".join(fp[i : i + 4] for i in range(0, 64, 4)).upper()
    store.enqueue_outgoing(bytes.fromhex(fp), "bytes", 1.0)
    assert [m.text for m in store.outbox(spaced)] == ["bytes"]


def test_read_receipts_stay_owed_until_a_session_takes_them(
    store: Store, make_peer: PeerFactory, db_path: Path, data_key: bytes
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    first = store.insert_incoming(alice, incoming("one"), 1.0)
    second = store.insert_incoming(alice, incoming("two"), 1.0)
    store.insert_incoming(bob, incoming("bob's"), 1.0)
    assert first is not None and second is not None
    assert store.read_receipts_due(alice) == []  # nothing read yet
    store.mark_conversation_read(alice, 2.0)
    assert store.read_receipts_due(alice) == [first.id, second.id]  # oldest first
    assert store.read_receipts_due(bob) == []  # another conversation, not read
    store.close()
    with Store.open(db_path, data_key) as again:  # a restart keeps what is owed
        assert again.read_receipts_due(alice) == [first.id, second.id]
        again.read_receipts_told(alice, [first.id])
        assert again.read_receipts_due(alice) == [second.id]
        again.read_receipts_told(bob, [second.id])  # another peer's id: changes nothing
        assert again.read_receipts_due(alice) == [second.id]
        again.read_receipts_told(alice, [second.id, second.id])
        assert again.read_receipts_due(alice) == []


def test_unread_incoming_among_names_only_that_peers_unread_rows_up_to_a_seq(
    store: Store, make_peer: PeerFactory
) -> None:
    alice, bob = make_peer("alice"), make_peer("bob")
    read = incoming("read already")
    store.insert_incoming_many(alice, [read], 1.0)
    store.mark_conversation_read(alice, 2.0)
    older = [incoming(f"unread {i}") for i in range(70)]  # more than one IN chunk
    store.insert_incoming_many(alice, older, 3.0)
    from_bob = incoming("bob's")
    store.insert_incoming_many(bob, [from_bob], 3.0)
    cut = store.last_seq()
    later = incoming("after the cut")
    store.insert_incoming_many(alice, [later], 4.0)
    sent = store.enqueue_outgoing(alice, "ours", 5.0)
    asked = [later.id, from_bob.id, sent.id, read.id, os.urandom(16)]
    asked += [m.id for m in reversed(older)]
    found = store.unread_incoming_among(alice, asked + asked[:3], cut)
    assert [m.text for m in found] == [m.text for m in older]  # in seq order, each once
    assert store.unread_incoming_among(alice, [], cut) == []

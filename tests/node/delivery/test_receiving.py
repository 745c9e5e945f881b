"""The receiving side of the delivery core: store, then show once, then acknowledge."""

from __future__ import annotations

import os
from pathlib import Path

from p2pmsg.node.services.delivery.actions import DeadlinesChanged, PublishReceived, Send
from p2pmsg.node.services.delivery.core import CHAT_OVERHEAD
from p2pmsg.protocol.messages import Chat, Receipt
from tests.node.delivery.pair import CorePair, make_pair


def test_a_duplicate_is_shown_once_and_acknowledged_again(pair: CorePair) -> None:
    b = pair.b
    chat = Chat(os.urandom(16), pair.clock(), "only once")
    b.receive([chat])
    b.run_batch()
    b.receive([chat])  # the sender did not hear our receipt and sent it again
    b.run_batch()
    assert b.shown_texts() == [("only once", False)]
    assert b.history(pair.a) == [("only once", "delivered")]
    assert b.channel is not None
    acks = [m for m in b.channel.wire if isinstance(m, Receipt)]
    assert [(r.ids, r.status) for r in acks] == [((chat.id,), "delivered")] * 2
    assert [n.detail for n in b.notes if n.event == "msg_recv"] == [
        {"count": 1, "new": 1},
        {"count": 1, "new": 0},
    ]


def test_a_message_is_published_before_its_receipt_leaves(pair: CorePair) -> None:
    # `listen` prints inside `publish`: a kill must not fall between receipt and line.
    pair.a.send(pair.b, "print me first")
    pair.settle()
    kinds = [type(action) for action in pair.b.actions]
    assert kinds.index(PublishReceived) < kinds.index(Send)


def test_nothing_is_acknowledged_that_was_not_stored(pair: CorePair) -> None:
    b = pair.b
    assert b.channel is not None
    b.channel.peer = "cd" * 32  # a key this store never met: the insert step fails
    b.receive([Chat(os.urandom(16), pair.clock(), "from a stranger")])
    b.run_batch()
    assert b.channel.wire == [] and b.shown == []
    assert not [n for n in b.notes if n.event == "msg_recv"]


def test_receipts_for_ids_never_sent_to_that_peer_are_a_security_event(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    (reply,) = a.send(b, "mine")
    pair.settle()
    pair.advance(1.0)
    ours = bytes.fromhex(a.view(reply).id)
    a.receive([Receipt((ours, os.urandom(16), os.urandom(16)), "delivered")])  # 1 old, 2 bogus
    a.run_batch()
    rejected = [n for n in a.notes if n.event == "frame_rejected"]
    assert [n.detail["count"] for n in rejected if n.detail] == [2]
    assert a.status_events(ours) == ["delivered"]  # acknowledged twice: fine, announced once


def test_back_pressure_counts_chats_until_a_batch_takes_them(pair: CorePair) -> None:
    b = pair.b
    b.receive([Chat(os.urandom(16), pair.clock(), f"c{i}") for i in range(5)])
    b.receive([Chat(os.urandom(16), pair.clock(), "c5")])
    assert b.core.inbound == 6 * (2 + CHAT_OVERHEAD)  # bytes, charged to alice
    assert b.core.may_read(pair.a.fingerprint)
    batch = b.core.next_batch()
    assert b.core.inbound == 0  # on their way to the store: room for more
    assert batch is not None
    assert [len(part) for part in batch.work.incoming[pair.a.fingerprint]] == [5, 1]
    b.complete(batch)
    assert [t for t, _ in b.history(pair.a)] == [f"c{i}" for i in range(6)]


def test_read_receipts_reach_the_sender_and_start_its_timers(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    (reply,) = a.send(b, "gone after reading", ttl=1.2)
    pair.settle()
    [chat] = b.shown
    assert chat.message.ttl == 2.0  # the wire carries whole seconds, rounded up
    assert b.history(a)[0] == ("gone after reading", "delivered")
    assert b.read(a) == [bytes.fromhex(a.view(reply).id)]
    pair.settle()
    assert a.status_events(a.view(reply).id) == ["delivered", "read"]
    assert a.history(b) == [("gone after reading", "read")]
    assert any(isinstance(x, DeadlinesChanged) for x in a.actions)  # expiry looks again
    assert a.core.recent_status(bytes.fromhex(a.view(reply).id)) == "read"
    # Handed to the session: no longer owed, written lazily with the next chance.
    assert b.store.read_receipts_due(a.fingerprint) != []
    pair.advance(1.0)
    assert b.store.read_receipts_due(a.fingerprint) == []


def test_read_receipts_owed_to_an_absent_peer_leave_with_the_next_session(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    (reply,) = a.send(b, "read while you are away")
    pair.settle()
    pair.disconnect()  # before alice wrote bob's receipt down: it is written all the same
    b.read(a)
    pair.advance(1.0)
    assert a.history(b)[0][1] == "delivered"
    b.restart()  # owed across a restart too: the store keeps them
    pair.connect()
    pair.settle()
    assert a.status_events(a.view(reply).id)[-1] == "read"
    pair.advance(1.0)
    assert b.store.read_receipts_due(a.fingerprint) == []


def test_a_strangers_chats_past_its_quota_are_held_by_the_sender_until_answered(
    tmp_path: Path,
) -> None:
    """A key the user never answered may store 200 chats; the rest get no receipt, so
    its sender keeps them, and they arrive once the user has answered."""
    pair = make_pair(tmp_path, strangers=True)
    try:
        a, b = pair.a, pair.b
        texts = [f"hello {i}" for i in range(250)]
        a.send_many(b, texts)
        pair.settle()
        pair.advance(5.0)  # receipts are written lazily
        assert [t for t, _ in b.history(a)] == texts[:200]
        outbox = a.store.outbox(b.fingerprint)
        assert [m.text for m in outbox] == texts[200:]  # not acknowledged: kept
        assert {m.status for m in outbox} == {"sent"}
        [held] = [n for n in b.notes if n.event == "rate_limited"]
        assert held.detail is not None and held.detail["refused"] == 50
        assert held.detail["reason"].startswith("stranger_quota: this stranger's chats")
        b.send(a, "hi, who is this?")  # the user answers: no longer a stranger
        pair.settle()
        pair.disconnect()
        pair.connect()  # the sender resends its backlog on the next session
        pair.settle()
        pair.advance(5.0)
        assert [t for t, _ in b.history(a, "in")] == texts
        assert a.store.outbox(b.fingerprint) == []
    finally:
        pair.a.store.close()
        pair.b.store.close()

"""The sending side of the delivery core: store first, in order, resent until acknowledged."""

from __future__ import annotations

from p2pmsg.errors import P2PMsgError, UnknownPeerError
from p2pmsg.node.services.delivery.actions import Accepted, Refused, Send
from p2pmsg.node.services.delivery.pending import MAX_SUBMITS_PER_BATCH
from p2pmsg.protocol.limits import MAX_RECEIPT_IDS
from p2pmsg.protocol.messages import Chat, Receipt
from tests.node.delivery.pair import CorePair, FakeChannel


def test_a_message_is_stored_before_it_is_sent(pair: CorePair) -> None:
    a = pair.a
    (reply,) = a.send(pair.b, "hello")
    assert a.channel is not None and a.channel.wire == []  # nothing leaves before the store
    batch = a.core.next_batch()
    assert batch is not None
    assert [(e.peer, e.texts) for e in batch.work.enqueue] == [(pair.b.fingerprint, ["hello"])]
    assert a.store.outbox(pair.b.fingerprint) == []  # the work is a description, not run yet
    a.complete(batch)
    # The caller hears "stored" before the chat is handed to the session.
    kinds = [type(action) for action in a.actions]
    assert kinds.index(Accepted) < kinds.index(Send)
    view = a.view(reply)
    assert (view.text, view.status, view.direction) == ("hello", "queued", "out")
    [chat] = a.channel.wire
    assert isinstance(chat, Chat) and chat.id.hex() == view.id
    assert [m.id.hex() for m in a.store.outbox(pair.b.fingerprint)] == [view.id]


def test_the_receipt_marks_it_delivered(pair: CorePair) -> None:
    (reply,) = pair.a.send(pair.b, "hello")
    pair.settle()
    view = pair.a.view(reply)
    assert pair.b.history(pair.a) == [("hello", "delivered")]
    assert pair.a.status_events(view.id) == ["delivered"]
    assert pair.a.core.recent_status(bytes.fromhex(view.id)) == "delivered"
    pair.advance(1.0)  # the lazy write
    assert pair.a.history(pair.b) == [("hello", "delivered")]
    assert pair.a.status_events(view.id) == ["delivered"]  # announced once


def test_queued_messages_go_out_in_order_before_newer_ones(offline: CorePair) -> None:
    a, b = offline.a, offline.b
    early = a.send(b, "queued 1", "queued 2", "queued 3")
    offline.settle()  # stored; no session
    assert [a.view(r).status for r in early] == ["queued"] * 3
    offline.connect()
    a.send(b, "new")  # in the same turn as the session coming up
    offline.settle()
    assert [t for t, _ in b.history(a)] == ["queued 1", "queued 2", "queued 3", "new"]
    # Each went out once: "new" was not also part of the backlog.
    sent = [action for action in a.actions if isinstance(action, Send)]
    chats = [m.text for s in sent for m in s.messages if isinstance(m, Chat)]
    assert chats == ["queued 1", "queued 2", "queued 3", "new"]
    assert a.status_events(a.view(early[0]).id) == ["delivered"]


def test_unacknowledged_messages_are_resent_on_the_next_session(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    replies = a.send(b, "one", "two")
    a.run_batch()
    pair.carry(a)
    b.run_batch()  # bob stored both; his receipt is on the wire
    pair.disconnect()  # ... and is lost
    assert a.history(b) == [("one", "queued"), ("two", "queued")]
    assert not a.core.on_wire(bytes.fromhex(a.view(replies[0]).id))
    pair.connect()
    pair.settle()
    assert [a.status_events(a.view(r).id) for r in replies] == [["delivered"]] * 2
    pair.advance(1.0)
    assert a.history(b) == [("one", "delivered"), ("two", "delivered")]
    assert b.history(a) == [("one", "delivered"), ("two", "delivered")]
    assert b.shown_texts() == [("one", False), ("two", False)]  # shown once, by id


def test_a_backlog_is_not_sent_on_a_session_that_closed_meanwhile(offline: CorePair) -> None:
    a, b = offline.a, offline.b
    a.send(b, "waiting")
    offline.settle()
    channel = FakeChannel(b.fingerprint)
    a.core.session_ready(channel)
    batch = a.core.next_batch()
    assert batch is not None and batch.work.backlogs == [b.fingerprint]
    channel.is_open = False  # closed while its backlog was read
    a.core.session_closed(channel)
    touched = a.complete(batch)
    assert touched == set() and channel.wire == []
    assert a.core.ready_channel(b.fingerprint) is None


def test_a_peer_that_may_not_be_sent_to_keeps_its_backlog(offline: CorePair) -> None:
    a, b = offline.a, offline.b
    a.send(b, "held")
    offline.settle()
    a.store.block(b.fingerprint, offline.clock())
    offline.connect()
    offline.settle()
    assert a.channel is not None and a.channel.wire == [] and b.history(a) == []
    assert a.core.ready_channel(b.fingerprint) is None
    assert [m.text for m in a.store.outbox(b.fingerprint)] == ["held"]


def test_many_submits_make_one_transaction_and_one_receipt(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    texts = [f"m{i}" for i in range(300)]
    a.send(b, *texts)
    pair.settle()
    assert len(a.works) == 1 and len(a.works[0].enqueue) == 1  # one insert for all
    assert len(b.works) == 1  # one read of the session, one transaction
    [send] = [s for s in b.actions if isinstance(s, Send)]  # one answer to the one read
    receipts = [m for m in send.messages if isinstance(m, Receipt)]
    assert len(receipts) == -(-len(texts) // MAX_RECEIPT_IDS)  # as few as the protocol allows
    assert sum(len(r.ids) for r in receipts) == len(texts)
    assert [t for t, _ in b.history(a)] == texts
    pair.advance(1.0)
    assert len(a.works) == 2  # the lazy receipt: one more transaction, not 300
    assert {s for _, s in a.history(b)} == {"delivered"}


def test_a_large_submit_many_is_cut_between_batches_in_order(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    bulk = [f"bulk {i}" for i in range(MAX_SUBMITS_PER_BATCH - 1)]
    first = a.send_many(b, bulk)
    (single,) = a.send(b, "single")
    last = a.send_many(b, ["after 1", "after 2"])
    batch = a.core.next_batch()
    assert batch is not None
    # Whole submits only, up to the limit: the bulk and the single fit, the rest waits.
    assert [len(e.texts) for e in batch.work.enqueue] == [MAX_SUBMITS_PER_BATCH]
    assert a.core.wants_batch  # ... without waiting for anything else
    a.complete(batch)
    pair.settle()
    views = a.answers[first]
    assert isinstance(views, list) and [v.text for v in views] == bulk
    assert a.view(single).text == "single"
    assert [v.text for v in a.answers[last]] == ["after 1", "after 2"]  # type: ignore[union-attr]
    assert [t for t, _ in b.history(a)] == [*bulk, "single", "after 1", "after 2"]


def test_a_refused_insert_answers_its_own_callers_only(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    stranger = "stranger"
    a.core.submit("ab" * 32, "to nobody", None, stranger)  # a fingerprint the store never met
    (known,) = a.send(b, "to bob")
    pair.settle()
    assert isinstance(a.answers[stranger], UnknownPeerError)
    assert a.view(known).text == "to bob"
    assert b.history(a) == [("to bob", "delivered")]


def test_a_failed_store_refuses_every_submit_of_the_batch(pair: CorePair) -> None:
    a = pair.a
    replies = [*a.send(pair.b, "x", "y"), a.send_many(pair.b, ["z"])]
    batch = a.core.next_batch()
    assert batch is not None
    a.core.store_failed(batch, P2PMsgError("disk gone"))
    a.perform()
    refused = [action for action in a.actions if isinstance(action, Refused)]
    assert len(refused) == 1 and refused[0].replies == replies
    assert all(isinstance(a.answers[r], P2PMsgError) for r in replies)
    assert a.core.unanswered() == []


def test_submits_not_yet_taken_are_the_ones_a_stop_must_answer(pair: CorePair) -> None:
    a = pair.a
    replies = a.send(pair.b, "one", "two")
    assert a.core.unanswered() == replies
    batch = a.core.next_batch()
    assert batch is not None and batch.replies == replies and a.core.unanswered() == []

"""The lazy writes on the fake clock: fewer transactions, never a wrong status, no sleeps."""

from __future__ import annotations

from p2pmsg.node.services.delivery.core import LAZY_WRITE_DELAY, SENT_MARK_DELAY
from tests.node.delivery.pair import CorePair

EPSILON = 1e-3


def test_a_quick_receipt_is_announced_at_once_and_written_after_the_lazy_delay(
    pair: CorePair,
) -> None:
    a, b = pair.a, pair.b
    (reply,) = a.send(b, "quick")
    pair.settle()
    view = a.view(reply)
    assert a.status_events(view.id) == ["delivered"]  # announced on arrival
    assert a.history(b) == [("quick", "queued")]  # not written yet: waits for company
    assert not a.core.wants_batch
    assert a.core.deadline == pair.clock() + LAZY_WRITE_DELAY
    transactions = len(a.works)
    pair.advance(LAZY_WRITE_DELAY - EPSILON)
    assert a.history(b) == [("quick", "queued")]
    pair.advance(EPSILON)
    assert a.history(b) == [("quick", "delivered")]
    assert len(a.works) == transactions + 1
    record = a.store.get_message(bytes.fromhex(view.id))
    assert record is not None and record.sent_at is not None  # set with the receipt
    pair.advance(3 * SENT_MARK_DELAY)
    assert a.status_events(view.id) == ["delivered"]  # acknowledged within a tick: no "sent"
    assert a.core.deadline is None and a.core.tracked == 0  # nothing left to track


def test_a_lazy_receipt_rides_along_with_the_next_batch(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    (first,) = a.send(b, "first")
    pair.settle()
    transactions = len(a.works)
    a.send(b, "second")  # before the lazy delay is up
    batch = a.core.next_batch()
    assert batch is not None
    assert batch.work.receipts == {(b.fingerprint, "delivered"): [bytes.fromhex(a.view(first).id)]}
    assert a.core.deadline != pair.clock() + LAZY_WRITE_DELAY  # its own timer is off
    a.complete(batch)
    assert len(a.works) == transactions + 1
    assert a.history(b)[0] == ("first", "delivered")


def test_an_unacknowledged_message_is_marked_sent_one_to_two_ticks_after_it_left(
    pair: CorePair,
) -> None:
    a, b = pair.a, pair.b
    pair.deaf.add(b.name)  # bob is not reading
    (reply,) = a.send(b, "slow to be acknowledged")
    a.run_batch()
    view = a.view(reply)
    assert a.core.deadline == pair.clock() + SENT_MARK_DELAY
    pair.advance(SENT_MARK_DELAY + EPSILON)  # one tick: it went out during that tick
    assert a.history(b) == [("slow to be acknowledged", "queued")]
    pair.advance(SENT_MARK_DELAY)  # the second tick
    assert a.history(b) == [("slow to be acknowledged", "sent")]
    assert a.status_events(view.id) == ["sent"]
    assert a.core.deadline is None  # nothing more owed: the tick stops
    pair.deaf.clear()  # bob reads now
    pair.settle()
    assert a.status_events(view.id) == ["sent", "delivered"]


def test_a_message_acknowledged_between_ticks_is_never_marked_sent(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    pair.deaf.add(b.name)
    (reply,) = a.send(b, "acknowledged late")
    a.run_batch()
    pair.advance(SENT_MARK_DELAY + EPSILON)
    pair.deaf.clear()
    pair.settle()  # the receipt, after one tick and before the second
    pair.advance(4 * SENT_MARK_DELAY)
    assert a.status_events(a.view(reply).id) == ["delivered"]
    assert not any(work.sent for work in a.works)  # no "sent" write at all


def test_a_session_that_drops_still_gets_its_sent_marks(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    (reply,) = a.send(b, "went out, then the session died")
    a.run_batch()
    pair.disconnect()
    pair.advance(2 * SENT_MARK_DELAY)
    assert a.history(b) == [("went out, then the session died", "sent")]
    assert not a.core.on_wire(bytes.fromhex(a.view(reply).id))


def test_flush_marks_writes_every_owed_mark_without_waiting(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    pair.deaf.add(b.name)
    a.send(b, "one")
    a.run_batch()
    pair.advance(SENT_MARK_DELAY)
    a.send(b, "two")
    a.run_batch()  # "one" is a tick old, "two" fresh
    a.core.flush_marks()
    assert a.core.wants_batch and a.core.deadline is None
    a.run_batch()
    assert a.history(b) == [("one", "sent"), ("two", "sent")]


def test_read_receipts_handed_to_a_session_are_written_lazily(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    a.send(b, "read me")
    pair.settle()
    pair.advance(1.0)
    b.read(a)
    b.run_batch()  # reads the owed receipts, sends them
    assert b.store.read_receipts_due(a.fingerprint) != []
    assert not b.core.wants_batch and b.core.deadline == pair.clock() + LAZY_WRITE_DELAY
    pair.advance(LAZY_WRITE_DELAY)
    assert b.store.read_receipts_due(a.fingerprint) == []


def test_hurry_sends_lazy_work_at_once(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    a.send(b, "x")
    pair.settle()
    assert not a.core.wants_batch and a.core.has_pending
    a.core.hurry()  # what `flushed()` does: nothing waits for company
    assert a.run_batch()
    assert a.history(b) == [("x", "delivered")] and not a.core.has_pending

"""Nothing stored goes unshown: a resend after a crash is shown again, once per run."""

from __future__ import annotations

from pathlib import Path

from tests.node.delivery.pair import CorePair, make_pair


def crash_after_storing(pair: CorePair, *texts: str) -> list[str]:
    """Alice sends; bob stores them and dies before his receipt leaves (kill -9)."""
    a, b = pair.a, pair.b
    replies = a.send(b, *texts)
    a.run_batch()
    pair.carry(a)
    b.run_batch()
    pair.disconnect()  # the receipts on the wire are lost with the process
    b.restart()
    return replies


def resend_with_receipt_lost(pair: CorePair) -> None:
    """A session on which alice resends her backlog and bob's receipt is lost again."""
    pair.connect()
    pair.a.run_batch()
    pair.carry(pair.a)
    pair.b.run_batch()
    pair.disconnect()


def test_a_resend_of_a_message_stored_before_a_crash_is_shown_again_once_per_run(
    pair: CorePair,
) -> None:
    a, b = pair.a, pair.b
    crash_after_storing(pair, "stored, never acknowledged")
    assert b.shown_texts() == [("stored, never acknowledged", False)]  # the run that died
    resend_with_receipt_lost(pair)
    assert b.shown_texts()[1:] == [("stored, never acknowledged", True)]
    resend_with_receipt_lost(pair)  # the same run: shown already
    assert len(b.shown) == 2
    b.restart()  # the next run shows it again: it may have died before showing it
    resend_with_receipt_lost(pair)
    assert b.shown_texts()[2:] == [("stored, never acknowledged", True)]
    pair.connect()
    pair.settle()
    pair.advance(1.0)
    assert a.history(b) == [("stored, never acknowledged", "delivered")]
    assert b.history(a) == [("stored, never acknowledged", "delivered")]  # one row, one id
    assert len(b.shown) == 3


def test_the_replay_keeps_the_id_and_comes_before_newer_messages(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    (old,) = crash_after_storing(pair, "old")
    b.shown.clear()
    pair.connect()
    (new,) = a.send(b, "new")
    pair.settle()
    assert [(e.message.id, e.replayed) for e in b.shown] == [
        (a.view(old).id, True),
        (a.view(new).id, False),
    ]
    assert b.history(a) == [("old", "delivered"), ("new", "delivered")]


def test_a_message_read_before_the_crash_is_not_shown_again(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    crash_after_storing(pair, "read before the crash")
    b.read(a)
    b.shown.clear()
    pair.connect()
    pair.settle()
    assert b.shown == []


def test_a_duplicate_stored_in_this_run_is_not_a_replay(pair: CorePair) -> None:
    a, b = pair.a, pair.b
    a.send(b, "this run")
    a.run_batch()
    pair.carry(a)
    b.run_batch()
    pair.disconnect()  # no crash: bob's run goes on
    pair.connect()
    pair.settle()
    assert b.shown_texts() == [("this run", False)]


def test_replays_are_bounded_per_run(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, max_replays=2)
    try:
        crash_after_storing(pair, "r1", "r2", "r3")
        pair.b.shown.clear()
        pair.connect()
        pair.settle()
        assert pair.b.shown_texts() == [("r1", True), ("r2", True)]  # the third is not shown
        assert [s for _, s in pair.a.history(pair.b)] == ["queued"] * 3  # lazy write pending
        pair.advance(1.0)
        assert [s for _, s in pair.a.history(pair.b)] == ["delivered"] * 3  # acknowledged all
    finally:
        pair.a.store.close()
        pair.b.store.close()

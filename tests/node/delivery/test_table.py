"""`MessageTable`: one record per message, closed as soon as nothing is left to do for it."""

from __future__ import annotations

from p2pmsg.node.services.delivery.table import MARK_OWED, ON_WIRE, UNWRITTEN, MessageTable

PEER, OTHER = "aa" * 32, "bb" * 32


def ids(*numbers: int) -> list[bytes]:
    return [n.to_bytes(16, "big") for n in numbers]


def test_an_early_receipt_closes_the_record_once_written() -> None:
    table = MessageTable()
    table.went_out(PEER, ids(1, 2))
    assert table.flags(ids(1)[0]) == ON_WIRE | MARK_OWED and len(table) == 2
    assert table.acknowledged_early(PEER, ids(1)) == ids(1)
    assert table.flags(ids(1)[0]) == UNWRITTEN  # off the wire, no mark owed
    assert table.written(PEER, ids(1)) == ids(1)  # announced before: not again
    assert table.written(PEER, ids(1)) == []
    assert len(table) == 1  # only 2 is still open


def test_a_receipt_from_another_peer_is_not_early() -> None:
    table = MessageTable()
    table.went_out(PEER, ids(1))
    assert table.acknowledged_early(OTHER, ids(1)) == []
    assert table.flags(ids(1)[0]) & ON_WIRE


def test_a_resent_id_keeps_its_pending_write() -> None:
    table = MessageTable()
    table.went_out(PEER, ids(1))
    table.acknowledged_early(PEER, ids(1))
    table.session_closed(PEER)
    table.went_out(PEER, ids(1))  # the write was not in when the next session began
    assert table.flags(ids(1)[0]) == ON_WIRE | MARK_OWED | UNWRITTEN


def test_marks_are_due_for_ids_of_the_tick_before_the_last() -> None:
    table = MessageTable()
    table.went_out(PEER, ids(1))
    assert table.tick() == {} and table.marks_coming
    table.went_out(OTHER, ids(2))
    assert table.tick() == {PEER: ids(1)}  # a tick old; 2 waits for the next
    table.acknowledged(OTHER, ids(2))  # before its tick: no mark owed any more
    assert table.tick() == {}
    assert not table.marks_coming
    assert table.flags(ids(2)[0]) == ON_WIRE  # still waiting for its receipt


def test_a_closed_session_takes_its_ids_off_the_wire_but_keeps_their_marks() -> None:
    table = MessageTable()
    table.went_out(PEER, ids(1))
    table.went_out(OTHER, ids(2))
    table.session_closed(PEER)
    assert table.flags(ids(1)[0]) == MARK_OWED and table.flags(ids(2)[0]) & ON_WIRE
    assert table.all_marks() == {PEER: ids(1), OTHER: ids(2)}
    assert len(table) == 1  # 2 is still on the wire
    table.session_closed(OTHER)
    assert len(table) == 0


def test_recent_statuses_are_bounded_oldest_first() -> None:
    table = MessageTable(recent_limit=3)
    table.settle(ids(1, 2, 3), "delivered")
    table.settle(ids(1), "read")  # a later status keeps the id's age
    table.settle(ids(4), "delivered")
    recent = [table.recent(i) for i in ids(1, 2, 3, 4)]
    assert recent == [None, "delivered", "delivered", "delivered"]

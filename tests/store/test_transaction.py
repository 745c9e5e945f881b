"""`Store.transaction()`: one commit for several operations, each still all-or-nothing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from p2pmsg.errors import StoreError, UnknownPeerError
from p2pmsg.store import IncomingMessage, Store
from tests.store.conftest import PeerFactory


def test_a_failed_operation_is_undone_alone_and_the_rest_commits_once(
    store: Store, make_peer: PeerFactory, db_path: Path, data_key: bytes
) -> None:
    fp = make_peer()
    first = store.enqueue_outgoing(fp, "before", 1.0)
    with store.transaction():
        store.mark_delivered_many(fp, [first.id], 2.0)
        queued = store.enqueue_outgoing_many(fp, ["a", "b"], 2.0)
        with pytest.raises(UnknownPeerError):
            store.enqueue_outgoing("ab" * 32, "to nobody", 2.0)
        # The database refuses the last row (NaN is stored as NULL: NOT NULL fails) after
        # a first chunk of 256 went in: the savepoint takes that chunk back too.
        batch = [IncomingMessage(os.urandom(16), "ok", 2.0) for _ in range(256)]
        with pytest.raises(StoreError):
            store.insert_incoming_many(
                fp, [*batch, IncomingMessage(os.urandom(16), "bad", float("nan"))], 2.0
            )
        # Reads inside see the transaction's own writes.
        assert [m.text for m in store.outbox(fp)] == ["a", "b"]
        # Nothing is visible to another connection before the block ends.
        assert _outgoing_statuses(db_path) == ["queued"]
    with Store.open(db_path, data_key) as other:
        assert [m.id for m in other.outbox(fp)] == [m.id for m in queued]
        assert other.get_message(first.id).status == "delivered"  # type: ignore[union-attr]
    assert _outgoing_statuses(db_path) == ["delivered", "queued", "queued"]
    assert [m.direction for m in store.conversation(fp)] == ["out"] * 3  # no incoming chunk


def _outgoing_statuses(db_path: Path) -> list[str]:
    reader = sqlite3.connect(db_path)
    try:
        return [
            row[0]
            for row in reader.execute(
                "SELECT status FROM messages WHERE direction = 'out' ORDER BY seq"
            )
        ]
    finally:
        reader.close()


def test_an_error_escaping_the_block_rolls_everything_back(
    store: Store, make_peer: PeerFactory
) -> None:
    fp = make_peer()
    with pytest.raises(RuntimeError), store.transaction():
        store.enqueue_outgoing(fp, "never committed", 1.0)
        raise RuntimeError("the caller failed")
    assert store.outbox(fp) == []
    store.enqueue_outgoing(fp, "after", 2.0)  # the connection is usable again
    assert [m.text for m in store.outbox(fp)] == ["after"]


def test_transactions_do_not_nest(store: Store) -> None:
    with store.transaction(), pytest.raises(StoreError, match="nest"), store.transaction():
        pass

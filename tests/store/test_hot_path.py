"""The hot-path benchmark runs, loses nothing, and stays in the right order of magnitude."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from p2pmsg.store import IncomingMessage, Store
from p2pmsg.store.bench import measure_hot_path
from p2pmsg.store.messages import (
    _MARK_DELIVERED,
    _MARK_FAILED,
    _MARK_READ,
    _MARK_SENT,
    _update_sql,
    new_message_ids,
)
from tests.store.conftest import PeerFactory


def test_hot_path_batches_are_fast_and_lossless(tmp_path: Path) -> None:
    figures = measure_hot_path(tmp_path, messages=3000, batch=250)
    assert figures.messages == 3000
    # About 25,000/s end to end on a shared 2-core box; the floor only catches a
    # regression by an order of magnitude (e.g. a query that scans the table per
    # message) and leaves room for slow CI machines.
    assert figures.end_to_end_per_s > 2000, figures


def test_batches_across_chunk_sizes_keep_order_dedup_and_scope(
    store: Store, make_peer: PeerFactory
) -> None:
    """Batches are split into power-of-two statements (256, 128, ..., 1): an odd size
    exercises every shape, with duplicates and foreign ids spread across them."""
    alice, mallory = make_peer("alice"), make_peer("mallory")
    texts = [f"m{i}" for i in range(300 + 64 + 7)]
    out = store.enqueue_outgoing_many(alice, texts, 100.0)
    assert [m.text for m in store.outbox(alice)] == texts
    assert [m.seq for m in out] == sorted(m.seq for m in out)
    ids = [m.id for m in out]
    foreign = store.enqueue_outgoing(mallory, "not alice's", 100.0).id
    receipt = [*ids[::2], ids[0], foreign, ids[-1]]
    changed = store.mark_delivered_many(alice, receipt, 101.0)
    assert changed == list(dict.fromkeys([*ids[::2], ids[-1]]))  # caller's order, once each
    assert store.get_message(foreign).status == "queued"  # type: ignore[union-attr]
    assert [m.id for m in store.outbox(alice)] == [i for i in ids if i not in set(changed)]

    known = [IncomingMessage(os.urandom(16), f"in{i}", 100.0) for i in range(200)]
    assert len(store.insert_incoming_many(alice, known[:100], 102.0)) == 100
    fresh = [IncomingMessage(os.urandom(16), f"new{i}", 100.0) for i in range(171)]
    batch = [*known, fresh[0], *fresh, known[5]]  # resends, then a repeat inside the batch
    stored = store.insert_incoming_many(alice, batch, 103.0)
    assert [m.text for m in stored] == [m.text for m in known[100:]] + [m.text for m in fresh]
    assert [m.seq for m in stored] == sorted(m.seq for m in stored)
    for record in stored[:3] + stored[-3:]:
        assert store.get_message(record.id) == record


def test_receipts_use_the_id_index(store: Store, make_peer: PeerFactory) -> None:
    """A receipt for a few ids must not walk the peer's history or whole outbox."""
    for transition, returning in itertools.product(
        (_MARK_SENT, _MARK_DELIVERED, _MARK_READ, _MARK_FAILED), (False, True)
    ):
        sql = _update_sql(*transition, size=4, returning=returning)
        params = [0.0] * sql.split(" WHERE ")[0].count("?") + [b"x" * 16] * 4 + [1]
        plan = store._conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        assert "(id=?)" in plan[0][3], (transition, plan)


def test_message_ids_grow_with_time_and_stay_unguessable() -> None:
    early, late = new_message_ids(500, 1000.0), new_message_ids(500, 1000.002)
    assert len(set(early + late)) == 1000
    assert all(len(i) == 16 for i in early + late)
    assert max(early) < min(late)  # index inserts append instead of scattering
    assert {i[:6] for i in early} == {(1_000_000).to_bytes(6, "big")}
    assert len({i[6:] for i in early}) == 500  # 80 random bits behind the clock


def test_seqs_and_changes_without_returning_match_the_rows(
    store: Store, make_peer: PeerFactory
) -> None:
    """The common case (every id new, every receipt id changes) is answered without
    reading rows back: the seqs and ids it reports must be the stored ones."""
    alice = make_peer("alice")
    out = store.enqueue_outgoing_batch(alice, [f"m{i}" for i in range(300)], 100.0)
    assert [store.get_message(i).seq for i in out.ids] == list(out.seqs)  # type: ignore[union-attr]
    assert store.mark_delivered_many(alice, list(out.ids), 101.0) == list(out.ids)
    assert all(store.get_message(i).status == "delivered" for i in out.ids)  # type: ignore[union-attr]
    assert store.mark_delivered_many(alice, list(out.ids[:3]), 102.0) == []  # none changes
    incoming = [IncomingMessage(os.urandom(16), f"in{i}", 100.0) for i in range(300)]
    positions = store.insert_incoming_positions(alice, incoming, 103.0)
    assert [p for p, _ in positions] == list(range(300))
    assert [store.get_message(m.id).seq for m in incoming] == [s for _, s in positions]  # type: ignore[union-attr]

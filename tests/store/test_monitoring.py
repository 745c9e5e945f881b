"""Security events (bounded, filterable) and alerts (acknowledgeable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pmsg.security_events import Alert, SecurityEvent
from p2pmsg.store import Store
from p2pmsg.store.monitoring import MAX_DETAIL_CHARS, _bounds_sql


def test_events_round_trip_in_the_design_record_shape(store: Store) -> None:
    store.append_events(
        [
            SecurityEvent(1.5, "handshake_fail", None, "10.0.0.9", 0, {"reason": "timeout"}),
            SecurityEvent(2.5, "msg_recv", "ab" * 32, "10.0.0.2", 120),
        ]
    )
    first, second = store.recent_events()
    assert first.to_dict() == {
        "ts": 1.5,
        "event": "handshake_fail",
        "peer": None,
        "addr": "10.0.0.9",
        "bytes": 0,
        "detail": {"reason": "timeout"},
    }
    assert second.detail == {} and second.bytes == 120


def test_event_filters_and_counts(store: Store) -> None:
    store.append_events(
        [
            SecurityEvent(
                float(t), "conn_open" if t % 2 else "conn_close", "cd" * 32 if t < 5 else None
            )
            for t in range(10)
        ]
    )
    assert store.count_events() == 10
    assert store.count_events("conn_open") == 5
    assert store.count_events(since=7.0) == 3
    opens = store.recent_events(3, event="conn_open")
    assert [e.ts for e in opens] == [5.0, 7.0, 9.0]  # the newest three, oldest first
    assert [e.ts for e in store.recent_events(peer="cd" * 32, since=2.0)] == [2.0, 3.0, 4.0]


def test_events_are_bounded_newest_kept(db_path: Path, data_key: bytes) -> None:
    with Store.open(db_path, data_key, max_events=100) as store:
        for batch in range(10):
            store.append_events(
                [SecurityEvent(float(batch * 50 + i), "rate_limited") for i in range(50)]
            )
            assert store.count_events() <= 100 + 100 // 10  # the pruning slack
        kept = store.recent_events(1000)
        assert kept[-1].ts == 499.0  # the newest survive
        assert len(kept) >= 100
        assert [e.ts for e in kept] == [float(t) for t in range(500 - len(kept), 500)]


def test_a_storm_of_routine_events_never_prunes_the_evidence(
    db_path: Path, data_key: bytes
) -> None:
    """240,000 one-record epochs once pushed an identity change out of the log: now
    routine events go first, then refusal noise, and evidence last."""
    with Store.open(db_path, data_key, max_events=100) as store:
        store.append_events(
            [SecurityEvent(0.0, "identity_changed", "ab" * 32)]
            + [SecurityEvent(0.5, "handshake_fail", addr="10.0.0.9") for _ in range(30)]
        )
        for start in range(1, 2001, 40):
            store.append_events(
                [
                    SecurityEvent(float(t), "key_rotated", "cd" * 32)
                    for t in range(start, start + 40)
                ]
            )
            assert store.count_events() <= 100 + 100 // 10 + 40  # slack: a batch, an append
        assert store.count_events("identity_changed") == 1
        assert store.count_events("handshake_fail") == 30
        rotations = store.recent_events(1000, event="key_rotated")
        assert rotations[-1].ts == 2000.0  # the newest routine events are the ones kept
        # Noise goes before evidence once routine events are gone.
        store.append_events([SecurityEvent(3000.0 + i, "rate_limited") for i in range(200)])
        assert store.count_events("identity_changed") == 1
        assert store.count_events("key_rotated") == 0
        assert store.count_events("handshake_fail") == 0
        # Evidence alone over the bound: the oldest evidence goes, the newest stays.
        store.append_events([SecurityEvent(5000.0 + i, "unlock_fail") for i in range(150)])
        assert store.count_events("identity_changed") == 0
        assert [e.ts for e in store.recent_events(1, event="unlock_fail")] == [5149.0]


def test_oversized_event_detail_is_capped(store: Store) -> None:
    store.append_event(SecurityEvent(1.0, "frame_rejected", detail={"junk": "x" * 100_000}))
    (event,) = store.recent_events()
    assert event.detail == {"truncated": True, "chars": pytest.approx(100_011, abs=10)}
    assert len(str(event.detail)) < MAX_DETAIL_CHARS


def test_alerts_add_list_acknowledge(store: Store) -> None:
    made = [
        store.add_alert(
            Alert(
                float(t),
                "brute_force",
                "high",
                None,
                "10.0.0.7",
                "rule:unlock_burst",
                0.9,
                f"alert {t}",
            )
        )
        for t in range(3)
    ]
    assert [a.id for a in made] == [1, 2, 3]
    assert [a.message for a in store.list_alerts()] == ["alert 2", "alert 1", "alert 0"]
    assert store.acknowledge_alerts([made[1].id or 0], 10.0) == 1
    assert store.acknowledge_alerts([made[1].id or 0], 11.0) == 0
    assert [a.message for a in store.list_alerts(unacknowledged_only=True)] == [
        "alert 2",
        "alert 0",
    ]
    assert store.acknowledge_alerts(None, 12.0) == 2
    assert all(a.acknowledged for a in store.list_alerts())
    with pytest.raises(ValueError, match="severity"):
        store.add_alert(Alert(1.0, "flood", "apocalyptic", None, None, "model", 1.0, "x"))


def test_a_stored_alert_outside_the_schema_is_a_corrupt_store(store: Store) -> None:
    """Only valid alerts are ever written, so a row that is not one was changed behind
    the store's back: `StoreCorruptError` (the CLI's one line), not a bare ValueError."""
    from p2pmsg.errors import StoreCorruptError

    made = store.add_alert(Alert(1.0, "flood", "high", None, None, "model", 1.0, "x"))
    with store._write() as conn:
        conn.execute("UPDATE alerts SET kind = 'normal' WHERE id = ?", (made.id,))
    with pytest.raises(StoreCorruptError, match=f"stored alert {made.id} is malformed"):
        store.list_alerts()


def test_pruning_finds_the_bounds_without_scanning_the_table(store: Store) -> None:
    """The alerts' bounds check runs on every add, on the thread that stores messages."""
    plan = store._conn.execute("EXPLAIN QUERY PLAN " + _bounds_sql("alerts")).fetchall()
    assert not any(step[3].startswith("SCAN") and "alerts" in step[3] for step in plan), plan


def test_events_are_counted_once_per_prune_batch_not_per_append(
    db_path: Path, data_key: bytes
) -> None:
    """Counting the events scans an index, so appends count only once per batch (a
    tenth of the bound), on the thread that stores messages."""
    statements: list[str] = []
    with Store.open(db_path, data_key, max_events=1000) as store:
        store._conn.set_trace_callback(statements.append)
        for t in range(500):
            store.append_event(SecurityEvent(float(t), "msg_recv"))
        store._conn.set_trace_callback(None)
    counts = [s for s in statements if "count(*) FROM events" in s]
    assert 1 <= len(counts) <= 1 + 500 // 100

"""The alert lifecycle in the store: unread -> acknowledged -> dismissed, false alarms,
all-or-nothing on unknown ids, the generation another process's node polls, and the
state surviving a reopen (a real SQLite file)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from p2pmsg.errors import UnknownAlertError
from p2pmsg.security_events import Alert
from p2pmsg.store import Store

PEER = "ab" * 32


def _alert(ts: float, kind: str = "flood", severity: str = "medium", peer: str | None = PEER):
    return Alert(ts, kind, severity, peer, "10.0.0.7", "rule:connection_rate", 1.0, f"at {ts}")


def _ids(store: Store, n: int) -> list[int]:
    return [store.add_alert(_alert(float(t))).id or 0 for t in range(n)]


def test_new_alerts_are_unread_and_counted(store: Store) -> None:
    made = store.add_alert(_alert(1.0))
    assert made.state == "unread" and made.state_at is None and made.id == 1
    assert store.alert_counts() == {
        "unread": 1,
        "acknowledged": 0,
        "dismissed": 0,
        "false_alarm": 0,
    }


def test_states_move_forward_only_and_say_what_stayed(store: Store) -> None:
    a, b, c = _ids(store, 3)
    acked = store.set_alert_state([a, b], "acknowledged", 10.0)
    assert [x.id for x in acked.changed] == [a, b] and acked.unchanged == []
    assert all(x.state == "acknowledged" and x.state_at == 10.0 for x in acked.changed)
    assert acked.changed[0].acknowledged_at == 10.0

    dismissed = store.set_alert_state([a, c], "dismissed", 20.0)
    assert {x.id for x in dismissed.changed} == {a, c}
    # dismissing an unread alert also counts as the user's first act on it
    assert store.get_alerts([c])[0].acknowledged_at == 20.0
    assert store.get_alerts([a])[0].acknowledged_at == 10.0  # kept from the ack

    back = store.set_alert_state([a], "acknowledged", 30.0)  # never backwards
    assert back.changed == [] and [x.state for x in back.unchanged] == ["dismissed"]
    again = store.set_alert_state([b], "acknowledged", 31.0)  # already there
    assert again.changed == [] and again.unchanged[0].state_at == 10.0

    false = store.set_alert_state([a, b], "false_alarm", 40.0)  # from dismissed and acked
    assert {x.id for x in false.changed} == {a, b}
    assert store.set_alert_state([a], "dismissed", 41.0).changed == []  # final
    assert store.alert_counts() == {
        "unread": 0,
        "acknowledged": 0,
        "dismissed": 1,
        "false_alarm": 2,
    }
    assert [x.id for x in store.list_alerts(states=("false_alarm",))] == [b, a]
    assert [x.id for x in store.list_alerts(states=("unread", "acknowledged"))] == []
    assert store.list_alerts(states=()) == []


def test_an_unknown_id_changes_nothing(store: Store) -> None:
    a, b = _ids(store, 2)
    before = store.alert_generation()
    with pytest.raises(UnknownAlertError, match="no alert with id 99"):
        store.set_alert_state([a, 99, b], "dismissed", 5.0)
    assert [x.state for x in store.get_alerts([a, b])] == ["unread", "unread"]
    assert store.alert_generation() == before
    with pytest.raises(UnknownAlertError, match="7, 8"):
        store.get_alerts([7, a, 8])
    with pytest.raises(ValueError, match="not 'unread'"):
        store.set_alert_state([a], "unread", 5.0)
    with pytest.raises(ValueError, match="one by one"):
        store.set_alert_state(None, "false_alarm", 5.0)


def test_acknowledge_all_takes_only_the_unread(store: Store) -> None:
    a, b, c = _ids(store, 3)
    store.set_alert_state([a], "dismissed", 1.0)
    change = store.set_alert_state(None, "acknowledged", 2.0)
    assert [x.id for x in change.changed] == [b, c]
    assert store.acknowledge_alerts(None, 3.0) == 0
    assert [x.state for x in store.get_alerts([a, b, c])] == [
        "dismissed",
        "acknowledged",
        "acknowledged",
    ]
    assert [x.id for x in store.list_alerts(unacknowledged_only=True)] == []


def test_the_generation_moves_and_finds_what_changed(store: Store) -> None:
    a, b, c = _ids(store, 3)
    start = store.alert_generation()
    assert start == 0 and store.alerts_changed_since(0) == []
    first = store.set_alert_state([a], "acknowledged", 1.0)
    assert first.generation == store.alert_generation() == 1
    store.set_alert_state([b, c], "dismissed", 2.0)
    assert store.alert_generation() == 2
    assert [x.id for x in store.alerts_changed_since(1)] == [b, c]
    assert [x.id for x in store.alerts_changed_since(0)] == [a, b, c]
    # a no-op does not move it
    assert store.set_alert_state([a], "acknowledged", 3.0).generation == 2
    assert store.alert_generation() == 2


def test_false_alarms_since_a_time(store: Store) -> None:
    a, b, c = _ids(store, 3)
    store.set_alert_state([a], "false_alarm", 100.0)
    store.set_alert_state([c], "false_alarm", 200.0)
    store.set_alert_state([b], "dismissed", 300.0)
    marks = store.false_alarms(150.0)
    assert [(m.id, m.kind, m.key, m.state_at) for m in marks] == [(c, "flood", PEER, 200.0)]
    assert [m.id for m in store.false_alarms(0.0)] == [a, c]


def test_states_survive_a_reopen(db_path: Path, data_key: bytes) -> None:
    with Store.open(db_path, data_key) as store:
        a, b, c = _ids(store, 3)
        store.set_alert_state([a], "acknowledged", 1.0)
        store.set_alert_state([b], "dismissed", 2.0)
        store.set_alert_state([c], "false_alarm", 3.0)
    with Store.open(db_path, data_key) as store:
        assert [(x.state, x.state_at) for x in store.get_alerts([a, b, c])] == [
            ("acknowledged", 1.0),
            ("dismissed", 2.0),
            ("false_alarm", 3.0),
        ]
        assert store.alert_generation() == 3


def test_evidence_is_kept_and_a_tampered_row_is_refused(db_path: Path, data_key: bytes) -> None:
    """An alert's explanation survives a reopen; evidence that is not the schema (a
    file changed behind our back) is a corrupt store, not a crash in the UI."""
    import sqlite3

    from p2pmsg.errors import StoreCorruptError
    from p2pmsg.security_events import Evidence

    why = (
        Evidence("connections refused in 60 s", 40.0, "alert at 20"),
        Evidence("handshake timeouts in 60 s", 3.0, "usually 0-1"),
    )
    with Store.open(db_path, data_key) as store:
        made = store.add_alert(dataclasses.replace(_alert(1.0), evidence=why))
        assert made.evidence == why
    with Store.open(db_path, data_key) as store:
        assert store.get_alerts([made.id or 0])[0].evidence == why
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("UPDATE alerts SET evidence = '[{\"name\": 3}]'")
    conn.close()
    with Store.open(db_path, data_key) as store, pytest.raises(StoreCorruptError):
        store.get_alerts([made.id or 0])

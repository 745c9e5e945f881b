"""The two records every layer shares (p2pmsg.security_events): their JSON shape, in
DESIGN.md's key order, and the alert schema, checked whenever an alert is made."""

from __future__ import annotations

import dataclasses

import pytest

from p2pmsg.security_events import (
    ATTACK_KINDS,
    LABELS,
    MAX_EVIDENCE,
    Alert,
    Evidence,
    SecurityEvent,
)


def test_an_event_is_the_design_record_in_schema_order() -> None:
    event = SecurityEvent(1.5, "msg_recv", "ab" * 32, "10.0.0.2", 120, {"reason": "x"})
    assert list(event.to_dict()) == ["ts", "event", "peer", "addr", "bytes", "detail"]
    assert event.to_json() == (
        '{"ts":1.5,"event":"msg_recv","peer":"' + "ab" * 32 + '","addr":"10.0.0.2",'
        '"bytes":120,"detail":{"reason":"x"}}'
    )
    labelled = SecurityEvent(1.5, "msg_recv", label="normal")
    assert list(labelled.to_dict())[-1] == "label"
    assert "label" not in labelled.to_dict(with_label=False)
    assert SecurityEvent(2.0, "unlock_ok").to_dict()["detail"] == {}


def test_the_labels_name_every_attack_kind_and_normal() -> None:
    assert set(ATTACK_KINDS) == set(LABELS) - {"normal"}


def test_alert_schema_is_enforced() -> None:
    alert = Alert(1.0, "flood", "high", None, "10.0.0.1", "rule:connection_rate", 1.5, "m")
    assert set(alert.to_dict()) == {
        "ts",
        "kind",
        "severity",
        "peer",
        "addr",
        "source",
        "score",
        "message",
        "evidence",
    }
    assert Alert.from_dict(alert.to_dict()) == alert
    explained = dataclasses.replace(
        alert, evidence=(Evidence("connections in 10 s", 40.0, "alert at 20"),)
    )
    assert explained.to_dict()["evidence"] == [
        {"name": "connections in 10 s", "observed": 40.0, "expected": "alert at 20"}
    ]
    assert Alert.from_dict(explained.to_dict()) == explained
    # An explanation is a few of our own lines, never a dump or a peer's text.
    with pytest.raises(ValueError):
        dataclasses.replace(alert, evidence=(Evidence("n", 1.0, "e"),) * (MAX_EVIDENCE + 1))
    with pytest.raises(ValueError):
        Evidence("x" * 81, 1.0, "alert at 1")
    with pytest.raises(ValueError):
        Evidence("connections", float("nan"), "alert at 1")
    with pytest.raises(ValueError):
        Evidence("connections", 1.0, "")
    with pytest.raises(ValueError):
        Alert(1.0, "normal", "high", None, None, "model", 0.0, "m")
    with pytest.raises(ValueError):
        Alert(1.0, "flood", "severe", None, None, "model", 0.0, "m")
    with pytest.raises(ValueError):
        Alert(1.0, "flood", "low", None, None, "heuristic", 0.0, "m")


def test_a_stored_alert_keeps_its_bookkeeping_out_of_the_record() -> None:
    alert = Alert(1.0, "flood", "high", None, "10.0.0.1", "model", 0.5, "m")
    assert (alert.id, alert.acknowledged) == (None, False)
    stored = Alert(1.0, "flood", "high", None, "10.0.0.1", "model", 0.5, "m", 3, 9.0)
    assert stored.acknowledged and stored.to_dict() == alert.to_dict()

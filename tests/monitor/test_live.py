"""The live engine the node drives: rule alerts within seconds, batched model scoring."""

from __future__ import annotations

import pytest

from p2pmsg.monitor.alerts import AlertDeduper
from p2pmsg.monitor.live import MODELS, NOT_LOADED, Monitor, model_message
from p2pmsg.monitor.simulate import SimConfig, generate
from p2pmsg.security_events import Alert
from tests.monitor.helpers import PEER, T0, ev


@pytest.fixture(scope="module")
def loaded() -> Monitor:
    monitor = Monitor()
    assert monitor.load_models(T0) is True
    return monitor


def test_before_loading_the_monitor_runs_on_rules_and_says_so() -> None:
    monitor = Monitor()
    assert monitor.mode == NOT_LOADED
    for i in range(5):
        monitor.observe(ev(i * 2, "unlock_fail"))
    (alert,) = monitor.tick(T0 + 10)
    assert (alert.kind, alert.source, alert.severity) == (
        "brute_force",
        "rule:unlock_failures",
        "high",
    )


@pytest.mark.parametrize(
    ("events", "kind"),
    [
        ([ev(i * 0.5, "handshake_fail", addr="10.6.6.6") for i in range(6)], "brute_force"),
        ([ev(i * 0.05, "conn_open", addr="10.7.7.7") for i in range(40)], "flood"),
        ([ev(1, "identity_changed", peer=PEER, addr="10.0.0.2")], "impersonation"),
        ([ev(1, "replay_rejected", peer=PEER, addr="10.0.0.2")], "replay"),
        ([ev(1, "decrypt_fail", peer=PEER, addr="10.0.0.2")], "integrity_violation"),
        (
            [
                ev(1 + i, "file_sent", peer=PEER, addr="10.0.0.2", size=120_000_000)
                for i in range(2)
            ],
            "exfiltration",
        ),
    ],
)
def test_rule_backed_attacks_alert_on_the_next_tick(events: list, kind: str) -> None:
    monitor = Monitor()
    for event in events:
        monitor.observe(event)
    # The first tick after the events (ticks run every few seconds): well within 10 s.
    alerts = monitor.tick(events[-1].ts + 2.0)
    assert kind in {a.kind for a in alerts}
    assert all(a.ts <= events[-1].ts + 2.0 for a in alerts)
    # Every rule alert explains itself: its measure, what it saw, its threshold.
    assert all(a.evidence and a.evidence[0].expected.startswith("alert") for a in alerts)


def test_repeated_hits_become_one_alert(loaded: Monitor) -> None:
    monitor = Monitor()
    for i in range(300):
        monitor.observe(ev(i * 0.1, "conn_open", addr="10.7.7.8"))
    alerts = monitor.tick(T0 + 31)
    assert [a.source for a in alerts] == ["rule:connection_rate"]


def test_models_score_closed_windows_in_one_batch(loaded: Monitor) -> None:
    assert loaded.mode == MODELS and loaded.anomaly_threshold is not None
    events = generate(SimConfig(hours=3, seed=77, attack_rate=24))
    before = loaded.windows_scored
    alerts = []
    tick = events[0].ts
    for event in events:
        while event.ts >= tick:
            alerts += loaded.tick(tick)
            tick += 5.0
        loaded.observe(event)
    alerts += loaded.tick(tick + 120)
    assert loaded.windows_scored > before
    assert any(a.source == "model" for a in alerts)
    assert {a.kind for a in alerts} <= {
        "brute_force",
        "exfiltration",
        "integrity_violation",
        "replay",
        "flood",
        "impersonation",
    }
    scores = loaded.recent_scores()
    assert scores and all(0.0 < s < 1.0 for s in scores)
    status = loaded.status()
    assert status["mode"] == MODELS and status["pending"] == 0


def test_observe_is_bounded_and_counts_what_it_drops() -> None:
    monitor = Monitor(max_pending=10)
    for i in range(15):
        monitor.observe(ev(i, "msg_recv", peer=PEER, addr="10.0.0.2", size=10))
    assert monitor.status()["pending"] == 10 and monitor.dropped_events == 5


def alert(ts: float, severity: str = "medium", kind: str = "flood") -> Alert:
    return Alert(ts, kind, severity, None, "10.0.0.1", "rule:x", 1.0, "m")


def test_dedup_cooldown_and_more_severe_alerts_get_through() -> None:
    dedup = AlertDeduper(cooldown=300, repeat_threshold=100)
    assert dedup.offer("k", alert(0)) is not None
    assert dedup.offer("k", alert(10)) is None
    assert dedup.offer("k", alert(20, "high")) is not None  # more severe: reported
    assert dedup.offer("k", alert(30, kind="replay")) is not None  # another kind
    assert dedup.offer("other", alert(40)) is not None  # another key
    assert dedup.offer("k", alert(400)) is not None  # cool-down over
    assert dedup.suppressed == 1


def test_repeat_offenders_are_escalated() -> None:
    dedup = AlertDeduper(cooldown=60, repeat_threshold=3)
    severities = [
        dedup.offer("k", alert(i * 100.0, "low")).severity  # type: ignore[union-attr]
        for i in range(10)
    ]
    assert severities[:2] == ["low", "low"]
    assert severities[2] == "medium"
    assert severities[-1] == "high"


def test_a_model_alert_says_which_way_the_data_went() -> None:
    """Alice sent files to Bob; "exfiltration by bob" named Bob as the actor."""
    assert model_message("exfiltration", "75cd3d3f38a38c4e0000", 0.85, 0.62) == (
        "model: exfiltration to 75cd3d3f38a38c4e (p=0.85, anomaly 0.62)"
    )
    assert model_message("brute_force", "10.0.0.9", 0.9, 0.7).startswith(
        "model: brute force by 10.0.0.9"
    )

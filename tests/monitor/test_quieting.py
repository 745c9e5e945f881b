"""False alarms quiet the same kind for the same peer one step, for a week, and never
what may not be quieted (critical, impersonation, single-trigger rules)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from p2pmsg.monitor.live import Monitor
from p2pmsg.monitor.quieting import QUIET_FOR, FalseAlarmPolicy, quietable
from p2pmsg.security_events import Alert
from tests.monitor.helpers import OTHER, PEER, T0, ev

DAY = 86400.0


def _alert(
    severity: str = "medium",
    kind: str = "flood",
    peer: str | None = PEER,
    source: str = "rule:malformed_frames",
    ts: float = T0 + 3600,
) -> Alert:
    return Alert(ts, kind, severity, peer, "10.0.0.2", source, 1.0, "3 malformed frames")


def _mark(alert: Alert, at: float = T0) -> Alert:
    """The alert as the store returns it once the user marked it a false alarm."""
    return replace(alert, id=1, state="false_alarm", state_at=at, ts=at - 60)


def _policy(*marks: Alert) -> FalseAlarmPolicy:
    policy = FalseAlarmPolicy()
    policy.set_marks(marks)
    return policy


def test_a_false_alarm_quiets_a_medium_alert_for_that_peer_and_kind() -> None:
    policy = _policy(_mark(_alert()))
    quieted = policy.apply(_alert())
    assert quieted.severity == "low"
    assert "one step quieter" in quieted.message and quieted.message.startswith("3 malformed")
    assert policy.quieted == 1
    # another peer, another kind: untouched
    assert policy.apply(_alert(peer=OTHER)).severity == "medium"
    assert policy.apply(_alert(kind="brute_force")).severity == "medium"
    # a high one goes one step, not more
    assert policy.apply(_alert("high")).severity == "medium"


def test_never_below_low_and_never_dropped() -> None:
    policy = _policy(_mark(_alert()), _mark(_alert(), at=T0 + 10))  # two marks: still one step
    low = _alert("low")
    assert policy.apply(low) is low
    assert policy.apply(_alert("high")).severity == "medium"


@pytest.mark.parametrize(
    "alert",
    [
        _alert("critical"),
        _alert("high", kind="impersonation", source="model"),
        _alert("high", kind="replay", source="rule:replay_rejected"),
        _alert("high", kind="integrity_violation", source="rule:decrypt_fail"),
        _alert("high", kind="impersonation", source="rule:downgrade_rejected"),
        _alert("high", kind="impersonation", source="rule:identity_changed"),
    ],
    ids=["critical", "impersonation", "replay", "decrypt", "downgrade", "identity_changed"],
)
def test_what_may_never_be_quieted(alert: Alert) -> None:
    assert not quietable(alert)
    policy = _policy(_mark(alert))
    assert policy.apply(alert) is alert
    assert policy.quieted == 0


def test_the_mark_expires_and_does_not_reach_back() -> None:
    policy = _policy(_mark(_alert()))
    assert policy.apply(_alert(ts=T0 + QUIET_FOR - 1)).severity == "low"
    assert policy.apply(_alert(ts=T0 + QUIET_FOR)).severity == "medium"
    assert policy.apply(_alert(ts=T0 + 8 * DAY)).severity == "medium"
    assert policy.apply(_alert(ts=T0 - 1)).severity == "medium"  # raised before the mark


def test_only_false_alarms_mark_and_new_marks_replace_old_ones() -> None:
    policy = _policy(replace(_mark(_alert()), state="dismissed"))
    assert policy.apply(_alert()).severity == "medium"
    policy.set_marks([_mark(_alert())])
    assert policy.apply(_alert()).severity == "low"
    policy.set_marks([])
    assert policy.apply(_alert()).severity == "medium"


def test_keys_follow_the_monitor_address_then_device() -> None:
    by_addr = _alert(peer=None)  # no peer: the address is the key
    policy = _policy(_mark(by_addr))
    assert policy.apply(_alert(peer=None)).severity == "low"
    assert policy.apply(_alert()).severity == "medium"  # the peer is another key


def _frames(monitor: Monitor, start: float, peer: str = PEER) -> list[Alert]:
    for i in range(3):
        monitor.observe(ev(start + i, "frame_rejected", peer=peer, addr="10.0.0.2"))
    return monitor.tick(T0 + start + 5)


def test_the_live_monitor_quiets_after_the_dedup_and_escalation() -> None:
    """End to end through the rules: 3 malformed frames are a medium integrity alert; after
    the user marks one a false alarm, the next (past the 15 min fold) is low. A repeat
    offender escalated to high comes out medium: one step below what it would be."""
    monitor = Monitor()
    (first,) = _frames(monitor, 0)
    assert (first.kind, first.severity) == ("integrity_violation", "medium")
    monitor.set_false_alarms([replace(first, id=1, state="false_alarm", state_at=T0 + 60)])
    (second,) = _frames(monitor, 1000)
    assert second.severity == "low" and "one step quieter" in second.message
    (third,) = _frames(monitor, 2000)  # third alert in a day: escalated, then quieted
    assert third.severity == "medium" and "repeat offender" in third.message
    assert monitor.status()["quieted_alerts"] == 2
    (other,) = _frames(monitor, 3000, peer=OTHER)
    assert other.severity == "medium"


def test_the_live_monitor_never_quiets_an_identity_change() -> None:
    monitor = Monitor()
    monitor.observe(ev(1, "identity_changed", peer=PEER, addr="10.0.0.2"))
    (first,) = monitor.tick(T0 + 3)
    assert first.severity == "critical"
    monitor.set_false_alarms([replace(first, id=1, state="false_alarm", state_at=T0 + 5)])
    monitor.observe(ev(2000, "identity_changed", peer=PEER, addr="10.0.0.2"))
    (second,) = monitor.tick(T0 + 2003)
    assert second.severity == "critical" and "quieter" not in second.message

"""False alarms make the same alert quieter for a while, within limits.

When the user marks an alert a false alarm, they say "this kind of alert about
this peer was wrong". Raising the next one just as loudly teaches them to
ignore the panel; silencing it would let an attacker hide behind one mistaken
alert. The rule is in between, and deliberately narrow:

- A mark covers alerts of the same kind about the same key (the peer, else
  the address, else this device: `Alert.key`), raised from the moment it was
  made (`state_at`) for `QUIET_FOR` (7 days). Then it expires on its own.
- A covered alert is raised one severity step lower (high -> medium, medium ->
  low), never below "low" and never dropped: a low alert stays low and is
  still shown. Several marks lower it one step, no more. Its message says so.
- Never quieted: anything critical (as raised, after the repeat-offender
  escalation), any alert of kind "impersonation", and the single-trigger rules
  (`identity_changed`, `downgrade_rejected`, `replay_rejected`,
  `decrypt_fail`, `model_integrity`): one such event is the attack itself, so
  no earlier mistake may make the next one quieter.

Sans-I/O: the node hands in the marks it read from the store (`set_marks`), and
time is each alert's own `ts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from p2pmsg.monitor.rules import SINGLE_TRIGGERS
from p2pmsg.security_events import SEVERITIES, Alert

#: How long one false-alarm mark quiets its (kind, key): seconds.
QUIET_FOR = 7 * 86400.0
#: Kinds no false alarm ever quiets.
UNQUIETABLE_KINDS = frozenset({"impersonation"})
#: Rules that fire on one event: never quieted, whatever their kind or severity.
UNQUIETABLE_SOURCES = frozenset(
    {f"rule:{name}" for name in SINGLE_TRIGGERS} | {"rule:model_integrity"}
)


def quietable(alert: Alert) -> bool:
    """Whether a false alarm can ever make an alert like this one quieter."""
    return (
        alert.severity != "critical"
        and alert.kind not in UNQUIETABLE_KINDS
        and alert.source not in UNQUIETABLE_SOURCES
    )


class FalseAlarmPolicy:
    """Holds the current false-alarm marks and lowers the alerts they cover."""

    def __init__(self, *, quiet_for: float = QUIET_FOR) -> None:
        self.quiet_for = quiet_for
        self.quieted = 0  # alerts lowered so far (the monitor's status shows it)
        self._marks: dict[tuple[str, str], float] = {}

    def set_marks(self, false_alarms: Iterable[Alert]) -> None:
        """Replace the marks with these alerts the user marked a false alarm (their kind,
        key and `state_at`; an alert with no `state_at` marks nothing). One dict swap,
        so a tick running in another thread sees the old marks or the new ones."""
        marks: dict[tuple[str, str], float] = {}
        for alert in false_alarms:
            if alert.state != "false_alarm" or alert.state_at is None:
                continue
            pair = (alert.kind, alert.key)
            marks[pair] = max(marks.get(pair, alert.state_at), alert.state_at)
        self._marks = marks

    def mark_covering(self, alert: Alert) -> float | None:
        """When the mark that covers this alert was made, or None."""
        marked_at = self._marks.get((alert.kind, alert.key))
        if marked_at is None or not (marked_at <= alert.ts < marked_at + self.quiet_for):
            return None
        return marked_at

    def apply(self, alert: Alert) -> Alert:
        """The alert as it should be raised: one step lower if a mark covers it and it
        may be quieted, else unchanged."""
        if not quietable(alert) or self.mark_covering(alert) is None:
            return alert
        rank = SEVERITIES.index(alert.severity)
        if rank == 0:
            return alert  # never below low, never dropped
        self.quieted += 1
        return replace(
            alert,
            severity=SEVERITIES[rank - 1],
            message=f"{alert.message} (one step quieter: you marked a {alert.kind} alert "
            "about this peer a false alarm)",
        )

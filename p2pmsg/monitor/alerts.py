"""From detections to alerts: de-duplication and escalation for repeat offenders.

A flood produces a rule hit on every connection attempt and a model verdict
every minute; the owner needs one alert, not hundreds. Like fail2ban's ban
time and CrowdSec's decisions, an alert for a (key, kind) silences further
ones for the same pair during a cool-down, unless the new one is more severe.
A key that keeps coming back (three alerts within a day) is escalated one
severity step, two steps from nine on, so a patient attacker becomes more
visible, not less.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import replace

from p2pmsg.security_events import SEVERITIES, Alert


class AlertDeduper:
    def __init__(
        self,
        *,
        cooldown: float = 900.0,
        repeat_window: float = 86400.0,
        repeat_threshold: int = 3,
        max_keys: int = 10000,
    ) -> None:
        self.cooldown = cooldown
        self.repeat_window = repeat_window
        self.repeat_threshold = repeat_threshold
        self.max_keys = max_keys
        self.suppressed = 0
        self._last: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self._history: OrderedDict[str, deque[float]] = OrderedDict()

    def offer(self, key: str, alert: Alert) -> Alert | None:
        """The alert to emit (possibly escalated), or None when it repeats a recent one."""
        pair = (key, alert.kind)
        rank = SEVERITIES.index(alert.severity)
        last = self._last.get(pair)
        if last is not None and alert.ts - last[0] < self.cooldown and rank <= last[1]:
            self.suppressed += 1
            return None
        history = self._history.pop(key, None) or deque(maxlen=64)
        self._history[key] = history
        while history and history[0] < alert.ts - self.repeat_window:
            history.popleft()
        history.append(alert.ts)
        if len(history) >= self.repeat_threshold:
            steps = 2 if len(history) >= 3 * self.repeat_threshold else 1
            rank = min(rank + steps, len(SEVERITIES) - 1)
            alert = replace(
                alert,
                severity=SEVERITIES[rank],
                message=f"{alert.message} (repeat offender: {len(history)} alerts "
                f"in {self.repeat_window / 3600:.0f} h)",
            )
        self._last.pop(pair, None)
        self._last[pair] = (alert.ts, rank)
        for table in (self._last, self._history):
            while len(table) > self.max_keys:
                table.popitem(last=False)
        return alert

"""The live monitor the node drives: events in, alerts out.

    monitor = Monitor(utc_offset=local_utc_offset)
    await asyncio.to_thread(monitor.load_models, time.time())   # once, off the loop
    monitor.observe(event)                                        # per security event
    alerts = await asyncio.to_thread(monitor.tick, time.time())  # every ~2 s
    monitor.set_false_alarms(store.false_alarms(since))          # when the user marks one

`observe` only appends to a bounded queue (O(1), never blocks, safe to call
from the event loop while a tick runs in a worker thread). `tick` drains the
queue through the rules (so rule-backed attacks alert on the next tick, within
seconds), closes the 60-second windows that have ended, scores all of them in
one batch, and returns de-duplicated alerts, quieted where the user marked the
same kind for the same peer a false alarm (p2pmsg.monitor.quieting). Nothing in
here touches disk or network except `load_models`; storing and streaming alerts
is the caller's job.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from p2pmsg.errors import ModelIntegrityError
from p2pmsg.monitor.alerts import AlertDeduper
from p2pmsg.monitor.detect import model_severity, model_verdicts
from p2pmsg.monitor.features import Windower
from p2pmsg.monitor.quieting import FalseAlarmPolicy
from p2pmsg.monitor.rules import RuleConfig, RuleEngine, RuleHit
from p2pmsg.security_events import Alert, SecurityEvent

MODELS = "models"
NOT_LOADED = "rules-only: models not loaded yet"


class Monitor:
    def __init__(
        self,
        *,
        rules: RuleConfig | None = None,
        model_dir: Path | None = None,
        utc_offset: float = 0.0,
        cooldown: float = 900.0,
        max_pending: int = 100_000,
        score_history: int = 120,
    ) -> None:
        self.model_dir = model_dir
        self._rules = RuleEngine(rules)
        self._windower = Windower(utc_offset=utc_offset)
        self._dedup = AlertDeduper(cooldown=cooldown)
        self._quieting = FalseAlarmPolicy()
        self._pending: deque[SecurityEvent] = deque()
        self._max_pending = max_pending
        self._outbox: deque[Alert] = deque()
        self._scores: deque[float] = deque(maxlen=score_history)
        self._tick_lock = threading.Lock()
        self._bundle: Any = None
        self._mode = NOT_LOADED
        self.dropped_events = 0
        self.windows_scored = 0

    # --- state the UI shows ---------------------------------------------------------------

    @property
    def mode(self) -> str:
        """ "models", or "rules-only: <reason>" (not loaded yet, or refused and why)."""
        return self._mode

    @property
    def anomaly_threshold(self) -> float | None:
        bundle = self._bundle
        return None if bundle is None else float(bundle.threshold)

    def recent_scores(self) -> tuple[float, ...]:
        """Highest anomaly score of each recent batch, oldest first (for a sparkline)."""
        return tuple(self._scores)

    def status(self) -> dict[str, Any]:
        return {
            "mode": self._mode,
            "recent_scores": self.recent_scores(),
            "anomaly_threshold": self.anomaly_threshold,
            "active_keys": self._windower.active_keys,
            "pending": len(self._pending),
            "dropped_events": self.dropped_events,
            "windows_scored": self.windows_scored,
            "suppressed_alerts": self._dedup.suppressed,
            "quieted_alerts": self._quieting.quieted,
        }

    # --- input ------------------------------------------------------------------------------

    def set_false_alarms(self, false_alarms: Iterable[Alert]) -> None:
        """The alerts the user marked a false alarm (recent ones: a mark quiets for
        `quieting.QUIET_FOR`); replaces the previous set. Safe while a tick runs."""
        self._quieting.set_marks(false_alarms)

    def observe(self, event: SecurityEvent) -> None:
        """Queue one event. O(1); drops (and counts) events beyond `max_pending`."""
        if len(self._pending) >= self._max_pending:
            self.dropped_events += 1
            return
        self._pending.append(event)

    # --- work (call these off the event loop) -----------------------------------------------

    def load_models(self, now: float) -> bool:
        """Verify and load the models (blocking: run it in a thread).

        On refusal the monitor stays on rules alone, says why in `mode`, and the
        next `tick` returns a critical alert about it.
        """
        from p2pmsg.monitor.model import load_models

        try:
            bundle = load_models(self.model_dir)
        except ModelIntegrityError as exc:
            self._bundle = None
            self._mode = f"rules-only: {exc}"
            self._outbox.append(
                Alert(
                    now,
                    "integrity_violation",
                    "critical",
                    None,
                    None,
                    "rule:model_integrity",
                    1.0,
                    f"the monitor's model files were refused ({exc}); monitoring continues on "
                    "rules alone",
                )
            )
            return False
        self._bundle = bundle
        self._mode = MODELS
        return True

    def tick(self, now: float) -> list[Alert]:
        """Process queued events, score the windows that closed by `now`, return new alerts."""
        with self._tick_lock:
            alerts: list[Alert] = []
            while self._outbox:
                alerts.append(self._outbox.popleft())
            for _ in range(len(self._pending)):  # only what is queued now: a flood cannot
                event = self._pending.popleft()  # keep one tick busy forever
                self._windower.observe(event)
                for hit in self._rules.observe(event):
                    self._emit(alerts, hit.key, _rule_alert(hit))
            closed = self._windower.close_until(now)
            bundle = self._bundle
            if closed and bundle is not None:
                verdicts = model_verdicts(bundle, closed)
                self.windows_scored += len(closed)
                self._scores.append(round(max(v.anomaly for v in verdicts), 4))
                for window, verdict in zip(closed, verdicts, strict=True):
                    if verdict.kind == "normal":
                        continue
                    who = window.peer or window.addr or "this device"
                    self._emit(
                        alerts,
                        window.key,
                        Alert(
                            window.end,
                            verdict.kind,
                            model_severity(verdict),
                            window.peer,
                            window.addr,
                            "model",
                            round(verdict.probability, 3),
                            model_message(verdict.kind, who, verdict.probability, verdict.anomaly),
                            evidence=verdict.evidence,
                        ),
                    )
            return alerts

    def _emit(self, alerts: list[Alert], key: str, alert: Alert) -> None:
        kept = self._dedup.offer(key, alert)
        if kept is not None:
            # After the dedup and its escalation: what ends up critical is never quieted.
            alerts.append(self._quieting.apply(kept))


def model_message(kind: str, who: str, probability: float, anomaly: float) -> str:
    """A model verdict in words that say who did what: an exfiltration window is
    keyed by the peer the data went *to* (this profile was the sender), every other
    kind by the one who did it."""
    what = kind.replace("_", " ")
    relation = "to" if kind == "exfiltration" else "by"
    return f"model: {what} {relation} {who[:16]} (p={probability:.2f}, anomaly {anomaly:.2f})"


def _rule_alert(hit: RuleHit) -> Alert:
    return Alert(
        hit.ts,
        hit.kind,
        hit.severity,
        hit.peer,
        hit.addr,
        f"rule:{hit.rule}",
        hit.score,
        hit.message,
        evidence=hit.evidence,
    )

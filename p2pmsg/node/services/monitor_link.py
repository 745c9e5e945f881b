"""Security events -> the live monitor -> alerts stored and streamed.

The security log hands every `SecurityEvent` to `observe` (O(1), on the loop).
Every `interval` seconds `tick` runs in a worker thread (rules, window closing,
batch model scoring), and each `Alert` it returns is stored in the profile as
it is and published as `AlertRaised` with its `AlertView`, the API's shape.
The models load in the background after start, so a node is usable at once
and the monitor says "rules-only" until then.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, cast

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import AlertRaised, AlertState, AlertView, MonitorChanged, MonitorStatus
from p2pmsg.node.bus import EventBus
from p2pmsg.node.tasks import cancel_and_wait
from p2pmsg.security_events import Alert, SecurityEvent
from p2pmsg.store import AsyncStore, Store

if TYPE_CHECKING:
    from p2pmsg.monitor.live import Monitor

log = logging.getLogger(__name__)


def _freeze_startup_heap() -> None:
    """Keep the models (scikit-learn, SciPy: some 100,000 objects that live as long as the
    process) out of every later garbage collection. Each full collection walked them all:
    11-12 us per chat message on the sender, a quarter of its CPU (bench chat, py-spy and
    gc callbacks). Garbage from loading is collected first; what survives is frozen."""
    gc.collect()
    gc.freeze()


def alert_view(alert: Alert) -> AlertView:
    """The API's view of a stored alert, with its lifecycle state."""
    # `Alert` refuses any other severity or state when it is made: the narrowing is safe.
    severity = cast(Literal["low", "medium", "high", "critical"], alert.severity)
    return AlertView(
        alert.ts,
        alert.kind,
        severity,
        alert.peer,
        alert.addr,
        alert.source,
        alert.score,
        alert.message,
        alert.id,
        cast(AlertState, alert.state),
        alert.state_at,
        alert.evidence,
    )


class MonitorLink:
    def __init__(
        self,
        store: AsyncStore,
        bus: EventBus,
        clock: Callable[[], float],
        *,
        enabled: bool,
        load_models: bool,
        interval: float,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._enabled = enabled
        self._load_models = load_models
        self._interval = interval
        self._monitor: Monitor | None = None
        self._task: asyncio.Task[None] | None = None

    def status(self) -> MonitorStatus:
        if self._monitor is None:
            return MonitorStatus(
                "rules-only: the monitor is off" if not self._enabled else "rules-only: starting"
            )
        return MonitorStatus(self._monitor.mode, self._monitor.recent_scores())

    def set_false_alarms(self, false_alarms: list[Alert]) -> None:
        """Hand the user's recent false alarms to the monitor's quieting policy."""
        if self._monitor is not None:
            self._monitor.set_false_alarms(false_alarms)

    def observe(self, event: SecurityEvent) -> None:
        if self._monitor is not None:
            self._monitor.observe(event)

    async def start(self) -> None:
        if not self._enabled or self._task is not None:
            return
        from p2pmsg.monitor.live import Monitor

        self._monitor = Monitor()
        self._task = asyncio.create_task(self._run(), name="p2pmsg-monitor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.tick()  # alerts for what happened right before the stop

    async def _run(self) -> None:
        monitor = self._monitor
        assert monitor is not None
        if self._load_models:
            try:
                await asyncio.to_thread(monitor.load_models, self._clock())
            except Exception:  # a broken model file must not stop the node
                log.exception("loading the monitor's models failed")
            _freeze_startup_heap()
            self._bus.publish(MonitorChanged(self.status()))
        while True:
            await asyncio.sleep(self._interval)
            await self.tick()

    async def tick(self) -> list[AlertView]:
        monitor = self._monitor
        if monitor is None:
            return []
        try:
            alerts = await asyncio.to_thread(monitor.tick, self._clock())
        except Exception:
            log.exception("monitor tick failed")
            return []
        raised: list[AlertView] = []
        for alert in alerts:
            try:
                stored = await self._store.run(Store.add_alert, alert)
            except P2PMsgError as exc:
                log.warning("could not store an alert: %s", exc)
                continue
            view = alert_view(stored)
            self._bus.publish(AlertRaised(view))
            raised.append(view)
        return raised

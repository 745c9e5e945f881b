"""Security events -> the live monitor -> alerts stored and streamed.

The security log hands every event to `observe` (O(1), on the loop). Every
`interval` seconds `tick` runs in a worker thread (rules, window closing,
batch model scoring), and each alert it returns is stored in the profile and
published as `AlertRaised`. The models load in the background after start, so
a node is usable at once and the monitor says "rules-only" until then.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import AlertRaised, AlertView, MonitorChanged, MonitorStatus
from p2pmsg.node.bus import EventBus
from p2pmsg.node.tasks import cancel_and_wait
from p2pmsg.store import Alert, AsyncStore, Store

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
        self._event_type: Any = None

    def status(self) -> MonitorStatus:
        if self._monitor is None:
            return MonitorStatus(
                "rules-only: the monitor is off" if not self._enabled else "rules-only: starting"
            )
        return MonitorStatus(self._monitor.mode, self._monitor.recent_scores())

    def observe(self, record: dict[str, Any]) -> None:
        if self._monitor is None:
            return
        self._monitor.observe(
            self._event_type(
                record["ts"],
                record["event"],
                record["peer"],
                record["addr"],
                record["bytes"],
                record["detail"],
            )
        )

    async def start(self) -> None:
        if not self._enabled or self._task is not None:
            return
        from p2pmsg.monitor.events import SecurityEvent
        from p2pmsg.monitor.live import Monitor

        self._event_type = SecurityEvent
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
                stored = await self._store.run(
                    Store.add_alert,
                    Alert(
                        alert.ts,
                        alert.kind,
                        alert.severity,
                        alert.peer,
                        alert.addr,
                        alert.source,
                        alert.score,
                        alert.message,
                    ),
                )
            except (P2PMsgError, ValueError) as exc:
                log.warning("could not store an alert: %s", exc)
                continue
            view = AlertView(
                stored.ts,
                stored.kind,
                stored.severity,  # type: ignore[arg-type]
                stored.peer,
                stored.addr,
                stored.source,
                stored.score,
                stored.message,
                stored.id,
            )
            self._bus.publish(AlertRaised(view))
            raised.append(view)
        return raised

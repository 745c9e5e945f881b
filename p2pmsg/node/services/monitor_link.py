"""Security events -> the live monitor -> alerts stored and streamed.

The security log hands every `SecurityEvent` to `observe` (O(1), on the loop).
Every `interval` seconds the monitor ticks (rules, window closing, batch model
scoring), and each `Alert` it returns is stored in the profile as it is and
published as `AlertRaised` with its `AlertView`, the API's shape.

Where the monitor runs: with its models, in a process of its own
(`monitor_worker`: scikit-learn in a thread starved the event loop of the GIL
for tens of milliseconds per tick, see there), which loads and verifies the
models in the background after start, so a node is usable at once and the
monitor says "rules-only" until then. On rules alone (short-lived commands,
`monitor_models=False`) a tick is light and runs in a worker thread, with no
process to start. If the worker process dies (the OOM killer, a crash in a
native library, a stray `kill`), a fresh one is started and loads the models
again, up to `MAX_RESTARTS` times an hour; the windows the dead one held are
lost, the events since its last tick are not. A worker that keeps dying is not
restarted for ever (each start costs seconds of CPU importing scikit-learn):
past the limit the monitor goes on in a thread on rules alone and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Literal, Protocol, cast

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import AlertRaised, AlertState, AlertView, MonitorChanged, MonitorStatus
from p2pmsg.node.bus import EventBus
from p2pmsg.node.tasks import cancel_and_wait
from p2pmsg.security_events import Alert, SecurityEvent
from p2pmsg.store import AsyncStore, Store

if TYPE_CHECKING:
    from p2pmsg.monitor.live import Monitor

log = logging.getLogger(__name__)

#: Events waiting for the worker process between two ticks, at most (as `Monitor`'s own
#: queue): beyond it they are dropped and counted, so a flood cannot fill the memory.
MAX_PENDING = 100_000
#: Fresh worker processes started after a death, at most, within `RESTART_PERIOD` seconds.
MAX_RESTARTS = 3
RESTART_PERIOD = 3600.0


def _freeze_startup_heap() -> None:
    """Keep what lives as long as the process out of every later garbage collection.
    When the models were loaded in this process (scikit-learn, SciPy: some 100,000
    objects), each full collection walked them all: 11-12 us per chat message on the
    sender, a quarter of its CPU (bench chat, py-spy and gc callbacks). They now load in
    the monitor's process, which freezes its own heap; the node's startup heap is frozen
    all the same. Garbage is collected first; what survives is frozen."""
    gc.collect()
    gc.freeze()


class _Runner(Protocol):
    """Where the monitor runs: a thread of this process, or a process of its own."""

    @property
    def mode(self) -> str: ...

    def recent_scores(self) -> tuple[float, ...]: ...

    def observe(self, event: SecurityEvent) -> None: ...

    def set_false_alarms(self, false_alarms: list[Alert]) -> None: ...

    async def load_models(self, now: float) -> None: ...

    async def tick(self, now: float) -> list[Alert]: ...

    async def close(self) -> None: ...


class _InThread:
    """The monitor in this process; its tick in a worker thread. For rules alone: the
    GIL is held for a few milliseconds at most (bench monitor)."""

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    @property
    def mode(self) -> str:
        return self._monitor.mode

    def recent_scores(self) -> tuple[float, ...]:
        return self._monitor.recent_scores()

    def observe(self, event: SecurityEvent) -> None:
        self._monitor.observe(event)

    def set_false_alarms(self, false_alarms: list[Alert]) -> None:
        self._monitor.set_false_alarms(false_alarms)

    async def load_models(self, now: float) -> None:
        await asyncio.to_thread(self._monitor.load_models, now)

    async def tick(self, now: float) -> list[Alert]:
        return await asyncio.to_thread(self._monitor.tick, now)

    async def close(self) -> None:
        return None


class _InProcess:
    """The monitor in a process of its own (`monitor_worker`). Events wait here between
    ticks; each tick hands them over with the time and takes back the alerts and the
    state the UI shows. If the process dies, a fresh one takes over (models loaded
    again, the quieting marks handed over again, the tick's events replayed into it),
    at most `max_restarts` times per `RESTART_PERIOD`; after that a monitor in a thread
    takes over on rules alone. Either way the windows the dead one held are lost, and
    `mode` says what happened."""

    def __init__(self, max_restarts: int = MAX_RESTARTS) -> None:
        from p2pmsg.monitor.live import NOT_LOADED
        from p2pmsg.node.services import monitor_worker

        self._worker = monitor_worker
        self._max_restarts = max_restarts
        self._restarts: deque[float] = deque()  # time.monotonic() of each restart
        self.deaths = 0
        self._pool = self._new_pool()
        self._pending: deque[SecurityEvent] = deque()
        #: the quieting marks not yet handed over, and the last list handed over
        #: (handed over again to a fresh worker)
        self._false_alarms: list[Alert] | None = None
        self._quieting: list[Alert] | None = None
        self._mode = NOT_LOADED
        self._scores: tuple[float, ...] = ()
        self._fallback: _InThread | None = None
        self.dropped_events = 0

    def _new_pool(self) -> ProcessPoolExecutor:
        # "spawn": a fork of a process with threads (the store's, the executor's, the
        # UI's) can copy a held lock into the child; a fresh interpreter cannot.
        # The pool's first lock starts multiprocessing's resource tracker, which hands
        # `sys.stderr.fileno()` to its child. Under the TUI, sys.stderr is Textual's print
        # capture, whose fileno() is -1: the spawn failed ("bad value(s) in fds_to_keep")
        # and took the app down at unlock. The tracker only writes leak warnings; they go
        # nowhere rather than across a full-screen terminal.
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            return ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=self._worker.init,
                initargs=(os.getpid(),),
            )

    @property
    def mode(self) -> str:
        return self._mode

    def recent_scores(self) -> tuple[float, ...]:
        return self._scores if self._fallback is None else self._fallback.recent_scores()

    def observe(self, event: SecurityEvent) -> None:
        if self._fallback is not None:
            self._fallback.observe(event)
        elif len(self._pending) < MAX_PENDING:
            self._pending.append(event)
        else:
            self.dropped_events += 1

    def set_false_alarms(self, false_alarms: list[Alert]) -> None:
        if self._fallback is not None:
            self._fallback.set_false_alarms(false_alarms)
        else:
            self._false_alarms = list(false_alarms)  # handed over with the next tick

    async def load_models(self, now: float) -> None:
        loop = asyncio.get_running_loop()
        while self._fallback is None:
            try:
                self._mode = await loop.run_in_executor(self._pool, self._worker.load_models, now)
                return
            except BrokenProcessPool as exc:
                self._after_death(exc)

    async def tick(self, now: float) -> list[Alert]:
        events: Sequence[SecurityEvent] = list(self._pending)
        self._pending.clear()
        false_alarms, self._false_alarms = self._false_alarms, None
        if false_alarms is not None:
            self._quieting = false_alarms
        loop = asyncio.get_running_loop()
        while self._fallback is None:
            try:
                alerts, self._mode, self._scores = await loop.run_in_executor(
                    self._pool, self._worker.tick, events, false_alarms, now
                )
                return alerts
            except BrokenProcessPool as exc:
                if not self._after_death(exc):
                    break
                await self.load_models(now)
                false_alarms = self._quieting  # the fresh worker has no marks yet
        fallback = self._fallback
        assert fallback is not None
        for event in events:
            fallback.observe(event)
        return await fallback.tick(now)

    def _after_death(self, exc: BaseException) -> bool:
        """The worker died: start a fresh one (True) or, past the restart limit, fall
        back to rules alone in a thread (False)."""
        from p2pmsg.monitor.live import Monitor

        self.deaths += 1
        self._pool.shutdown(wait=False, cancel_futures=True)
        why = str(exc) or type(exc).__name__
        clock = time.monotonic()
        while self._restarts and clock - self._restarts[0] > RESTART_PERIOD:
            self._restarts.popleft()
        if len(self._restarts) < self._max_restarts:
            self._restarts.append(clock)
            log.warning("the monitor's process stopped (%s); starting a fresh one", why)
            self._mode = f"rules-only: restarting the monitor's process, which stopped ({why})"
            self._pool = self._new_pool()
            return True
        log.error(
            "the monitor's process stopped (%s), %d times within the hour; "
            "continuing on rules alone",
            why,
            len(self._restarts) + 1,
        )
        self._mode = f"rules-only: the monitor's process stopped ({why})"
        if self._restarts:
            self._mode += f", {len(self._restarts) + 1} times within the hour"
        self._fallback = _InThread(Monitor())
        if self._quieting is not None:
            self._fallback.set_false_alarms(self._quieting)
        return False

    async def close(self) -> None:
        # Joining the worker blocks: not on the loop.
        await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)


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
        max_restarts: int = MAX_RESTARTS,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._enabled = enabled
        self._load_models = load_models
        self._interval = interval
        self._max_restarts = max_restarts
        self._runner: _Runner | None = None
        self._task: asyncio.Task[None] | None = None

    def status(self) -> MonitorStatus:
        if self._runner is None:
            return MonitorStatus(
                "rules-only: the monitor is off" if not self._enabled else "rules-only: starting"
            )
        return MonitorStatus(self._runner.mode, self._runner.recent_scores())

    def set_false_alarms(self, false_alarms: list[Alert]) -> None:
        """Hand the user's recent false alarms to the monitor's quieting policy."""
        if self._runner is not None:
            self._runner.set_false_alarms(false_alarms)

    def observe(self, event: SecurityEvent) -> None:
        if self._runner is not None:
            self._runner.observe(event)

    async def start(self) -> None:
        if not self._enabled or self._task is not None:
            return
        if self._load_models:
            self._runner = _InProcess(self._max_restarts)
        else:
            from p2pmsg.monitor.live import Monitor

            self._runner = _InThread(Monitor())
        self._task = asyncio.create_task(self._run(), name="p2pmsg-monitor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.tick()  # alerts for what happened right before the stop
        if self._runner is not None:
            await self._runner.close()

    async def _run(self) -> None:
        runner = self._runner
        assert runner is not None
        if self._load_models:
            try:
                await runner.load_models(self._clock())
            except Exception:  # a broken model file must not stop the node
                log.exception("loading the monitor's models failed")
            _freeze_startup_heap()
            self._bus.publish(MonitorChanged(self.status()))
        while True:
            await asyncio.sleep(self._interval)
            await self.tick()

    async def tick(self) -> list[AlertView]:
        runner = self._runner
        if runner is None:
            return []
        mode = runner.mode
        try:
            alerts = await runner.tick(self._clock())
        except Exception:
            log.exception("monitor tick failed")
            return []
        if runner.mode != mode:  # e.g. the worker process died: the UI says so
            self._bus.publish(MonitorChanged(self.status()))
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

"""The monitor's own process, when it runs with its models (the side that runs there).

Why a process and not a thread: scoring is scikit-learn, whose per-tree loops
release and retake the GIL thousands of times per batch. A thread waiting for
the GIL (the event loop, woken by a socket or a timer) keeps losing that race:
CPython forces a hand-over only after a whole switch interval passes with no
switch at all, and every release-and-retake restarts that wait. Measured with
`p2pmsg bench monitor`, the loop stalled 16-35 ms per tick with 100 keys while
the tick ran in a worker thread, in sklearn's predict paths; a shorter switch
interval made it worse (more switches, same starvation). In a process of its
own the monitor has its own GIL, and the node's loop only hands over the
events of the last interval and takes back the alerts.

`MonitorLink` calls these functions through a ProcessPoolExecutor with one
worker, so they run one at a time, in order, on the one `Monitor` made by
`init`. The models are loaded here by `Monitor.load_models`, with every
integrity check of `p2pmsg.monitor.model` (nothing unpickled before its pinned
hash matches); the parent never unpickles a model.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Sequence

from p2pmsg.monitor.live import Monitor
from p2pmsg.security_events import Alert, SecurityEvent

PARENT_POLL = 0.5  # seconds; how soon an orphaned worker notices and exits

_monitor: Monitor | None = None


def init(parent: int) -> None:
    """The worker's start: a fresh monitor, and an exit when the node is gone."""
    global _monitor
    # Ctrl-C in a terminal reaches the whole process group: the node decides when its
    # monitor stops (executor shutdown), not the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A node killed outright (SIGKILL, a crash) cannot shut the pool down, and the
    # worker holds both ends of its call queue, so it would wait forever: poll instead.
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    _monitor = Monitor()


def _exit_with(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL)
        if os.getppid() != parent:
            os._exit(0)


def _the_monitor() -> Monitor:
    if _monitor is None:
        raise RuntimeError("the monitor worker was not initialised")
    return _monitor


def load_models(now: float) -> str:
    """Verify and load the models; the monitor's mode afterwards ("models" or why not)."""
    monitor = _the_monitor()
    monitor.load_models(now)
    # The models are some 100,000 objects that live as long as the worker: keep them
    # out of every later collection (see monitor_link._freeze_startup_heap).
    gc.collect()
    gc.freeze()
    return monitor.mode


def tick(
    events: Sequence[SecurityEvent], false_alarms: Sequence[Alert] | None, now: float
) -> tuple[list[Alert], str, tuple[float, ...]]:
    """The events since the last tick in, the new alerts out, with the state the UI shows.

    `false_alarms`, when not None, replaces the quieting marks first (the user marked
    one since the last tick)."""
    monitor = _the_monitor()
    if false_alarms is not None:
        monitor.set_false_alarms(false_alarms)
    for event in events:
        monitor.observe(event)
    alerts = monitor.tick(now)
    return alerts, monitor.mode, monitor.recent_scores()

"""Scenario `monitor`: model loading, scoring 100 keys, and the event loop's stall.

- load: `Monitor.load_models` end to end (read, SHA-256, version checks,
  unpickle, validation); the first load also imports scikit-learn, the
  best and median of the later ones show the load itself;
- score: both models on one batch of 100 keys' closed windows (the per-tick
  work when 100 keys were active in the last minute); target <= 50 ms;
- tick: a whole `Monitor.tick` for 100 keys (drain events, rules, windows,
  features, scoring, de-duplication);
- stall: the event loop's lateness, through the node's own `MonitorLink`
  (models loaded and hash-verified in the background as a node does, the
  startup heap frozen, alerts stored in a real store): a probe coroutine that
  sleeps 1 ms at a time records how late it wakes, first with the loop idle
  (the baseline: this machine's own noise), then while the link ticks with
  100 keys' traffic. Whatever the loop waits for then (the GIL, work the link
  does on the loop) every other task waits for too: a chat message, a frame of
  the TUI. Target: at most 10 ms.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from p2pmsg.bench.timing import Budget, measure
from p2pmsg.monitor.detect import model_verdicts
from p2pmsg.monitor.features import WINDOW, Window, Windower
from p2pmsg.monitor.live import Monitor
from p2pmsg.node.api import MonitorChanged
from p2pmsg.node.bus import EventBus
from p2pmsg.node.services.monitor_link import MonitorLink
from p2pmsg.security_events import SecurityEvent
from p2pmsg.store import AsyncStore

TITLE = "security monitor: model load, batch scoring, event-loop stall"
KEYS = 100
SCORE_TARGET_MS = 50.0
STALL_TARGET_MS = 10.0
LOAD_TIMEOUT = 120.0  # importing scikit-learn on a busy machine takes seconds
START = 1_763_337_600.0


def _minute_of_traffic(minute: int) -> list[SecurityEvent]:
    """One minute in which 100 keys are active: chatting peers and probing addresses."""
    start = START + minute * WINDOW
    events = []
    for k in range(KEYS):
        peer = f"{k:064x}" if k % 2 == 0 else None
        addr = f"10.20.{k // 200}.{k % 200 + 1}"
        for j in range(4):
            ts = start + 1 + k * 0.5 + j * 0.1
            if peer is not None:
                events.append(SecurityEvent(ts, "msg_recv", peer, addr, 180 + j))
            else:
                events.append(SecurityEvent(ts, "conn_open", None, addr, 0))
    return events


def _windows() -> list[Window]:
    windower = Windower()
    for event in _minute_of_traffic(0):
        windower.observe(event)
    return windower.close_until(START + WINDOW)


class _LagProbe:
    """A coroutine that sleeps 1 ms at a time and records how late it wakes.

    Lateness is what any other task on the loop (a chat message, a UI frame)
    would wait too. It is filed under the current `phase`, so one probe on one
    loop measures the idle loop and the loop during ticks alike.
    """

    def __init__(self) -> None:
        self.phase = "idle"
        self.lateness: dict[str, list[float]] = {"idle": [], "while_scoring": []}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            phase = self.phase
            before = loop.time()
            await asyncio.sleep(0.001)
            self.lateness[phase].append(loop.time() - before - 0.001)


def _summary(lateness: list[float]) -> dict[str, float]:
    ordered = sorted(lateness)
    return {
        "max_ms": round(ordered[-1] * 1e3, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1e3, 2),
        "median_ms": round(statistics.median(ordered) * 1e3, 3),
    }


async def _stall_through_link(ticks: int) -> dict[str, Any]:
    """The loop's lateness, idle and while `ticks` ticks with 100 keys run, through the
    node's own `MonitorLink` (models loaded and verified as a node does, its heap frozen,
    `tick` off the loop as the node runs it, alerts stored in a real store)."""
    now = START

    def clock() -> float:
        return now

    with tempfile.TemporaryDirectory(prefix="p2pmsg-bench-monitor-") as tmp:
        store = await AsyncStore.open(Path(tmp) / "bench.db", os.urandom(32))
        bus = EventBus()
        changes = bus.subscribe()
        # A long interval: the link's own timer never fires; the bench ticks it.
        link = MonitorLink(store, bus, clock, enabled=True, load_models=True, interval=3600.0)
        probe = _LagProbe()
        try:
            await link.start()
            loaded = await asyncio.wait_for(anext(aiter(changes)), LOAD_TIMEOUT)
            assert isinstance(loaded, MonitorChanged)
            probe.start()
            for _ in range(ticks):  # the idle loop, as long as the ticks take, roughly
                await asyncio.sleep(0.04)
            probe.phase = "while_scoring"
            alerts = 0
            took: list[float] = []
            for minute in range(1, ticks + 1):
                for event in _minute_of_traffic(minute):
                    link.observe(event)
                now = START + (minute + 1) * WINDOW
                began = time.perf_counter()
                alerts += len(await link.tick())
                took.append(time.perf_counter() - began)
            await probe.stop()
            mode = link.status().mode
            worker_rss = _rss_mib(multiprocessing.active_children())
        finally:
            await probe.stop()
            await link.stop()
            changes.close()
            await store.close()
    return {
        "mode": mode,
        "idle": _summary(probe.lateness["idle"]),
        "while_scoring": _summary(probe.lateness["while_scoring"]),
        "ticks": ticks,
        # One `MonitorLink.tick` as the node awaits it: hand-over, tick, alerts stored.
        "link_tick_ms": {
            "best": round(min(took) * 1e3, 2),
            "median": round(statistics.median(took) * 1e3, 2),
        },
        "alerts": alerts,
        "target": STALL_TARGET_MS,
        # What the worker process costs in memory, models loaded, after the ticks.
        "worker_rss_mib": worker_rss,
    }


def _rss_mib(children: list[multiprocessing.process.BaseProcess]) -> float | None:
    """Resident memory of the monitor's worker (the one child process), from /proc."""
    if len(children) != 1 or children[0].pid is None:
        return None
    try:
        status = Path(f"/proc/{children[0].pid}/status").read_text()
    except OSError:
        return None  # not Linux
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _stall(ticks: int) -> dict[str, Any]:
    try:
        return asyncio.run(_stall_through_link(ticks))
    finally:
        # MonitorLink froze the heap with the models in it, as a node does; later
        # scenarios in this process should see an ordinary collector.
        gc.unfreeze()


def run(quick: bool) -> dict[str, Any]:
    budget = Budget.for_run(quick)
    loads = []
    monitor = Monitor()
    for _ in range(3 if quick else 6):
        monitor = Monitor()
        began = time.perf_counter()
        ok = monitor.load_models(START)
        loads.append(time.perf_counter() - began)
        if not ok:
            return {"mode": monitor.mode, "error": "models refused; nothing to measure"}
    bundle = monitor._bundle
    windows = _windows()
    assert len(windows) == KEYS
    scoring = measure(lambda: model_verdicts(bundle, windows), budget)

    def one_tick() -> None:
        fresh = Monitor()
        fresh._bundle, fresh._mode = bundle, monitor.mode
        for event in _minute_of_traffic(0):
            fresh.observe(event)
        fresh.tick(START + WINDOW)

    ticking = measure(one_tick, Budget(budget.repeats, budget.batch_seconds))
    stall = _stall(5 if quick else 20)
    stall["meets_target"] = stall["while_scoring"]["max_ms"] <= STALL_TARGET_MS
    return {
        "mode": monitor.mode,
        # The first load also imports scikit-learn; later ones show the verify+unpickle cost.
        "load_ms": {
            "first": round(loads[0] * 1e3, 1),
            "best": round(min(loads[1:]) * 1e3, 1),
            "median": round(statistics.median(loads[1:]) * 1e3, 1),
        },
        "score_100_keys_ms": {
            "best": round(scoring.best * 1e3, 2),
            "median": round(scoring.median * 1e3, 2),
            "target": SCORE_TARGET_MS,
            "meets_target": scoring.best * 1e3 <= SCORE_TARGET_MS,
        },
        "tick_100_keys_ms": {
            "best": round(ticking.best * 1e3, 2),
            "median": round(ticking.median * 1e3, 2),
        },
        "loop_stall_ms": stall,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    if "error" in result:
        return [("measure", "result"), ("monitor", f"{result['mode']}: {result['error']}")]
    score = result["score_100_keys_ms"]
    stall = result["loop_stall_ms"]
    return [
        ("measure", "best ms", "median ms", "note"),
        (
            "load + verify models",
            f"{result['load_ms']['best']:.1f}",
            f"{result['load_ms']['median']:.1f}",
            f"{result['mode']}; first load {result['load_ms']['first']:.0f} ms incl. import",
        ),
        (
            f"score {KEYS} keys (both models)",
            f"{score['best']:.2f}",
            f"{score['median']:.2f}",
            f"target <= {score['target']:.0f} ms: {'ok' if score['meets_target'] else 'MISSED'}",
        ),
        (
            f"tick with {KEYS} keys",
            f"{result['tick_100_keys_ms']['best']:.2f}",
            f"{result['tick_100_keys_ms']['median']:.2f}",
            "rules + windows + scoring",
        ),
        (
            f"MonitorLink.tick, {KEYS} keys",
            f"{stall['link_tick_ms']['best']:.2f}",
            f"{stall['link_tick_ms']['median']:.2f}",
            f"as the node awaits it; {stall['alerts']} alerts stored; worker RSS "
            + (
                "unknown"
                if stall.get("worker_rss_mib") is None
                else f"{stall['worker_rss_mib']:.0f} MiB"
            ),
        ),
        (
            "loop stall, idle (max)",
            f"{stall['idle']['max_ms']:.2f}",
            f"{stall['idle']['median_ms']:.3f}",
            f"p99 {stall['idle']['p99_ms']:.2f} ms",
        ),
        (
            "loop stall, ticking (max)",
            f"{stall['while_scoring']['max_ms']:.2f}",
            f"{stall['while_scoring']['median_ms']:.3f}",
            f"p99 {stall['while_scoring']['p99_ms']:.2f} ms over {stall['ticks']} ticks; "
            f"target <= {stall['target']:.0f} ms: {'ok' if stall['meets_target'] else 'MISSED'}",
        ),
    ]

"""Scenario `monitor`: model loading, scoring 100 keys, and the event loop's stall.

- load: `Monitor.load_models` end to end (read, SHA-256, version checks,
  unpickle, validation); the first load also imports scikit-learn, the
  best and median of the later ones show the load itself;
- score: both models on one batch of 100 keys' closed windows (the per-tick
  work when 100 keys were active in the last minute); target <= 50 ms;
- tick: a whole `Monitor.tick` for 100 keys (drain events, rules, windows,
  features, scoring, de-duplication);
- stall: the node runs `tick` through `asyncio.to_thread`; a ticker coroutine
  that wakes every millisecond records how late it wakes, first with the loop
  idle (baseline), then while ticks with 100 keys run in the worker thread.
  Scoring holds the GIL part of the time, so the stall is not zero; it must
  stay far below what a user would notice in the TUI.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from p2pmsg.bench.timing import Budget, measure
from p2pmsg.monitor.detect import model_verdicts
from p2pmsg.monitor.features import WINDOW, Window, Windower
from p2pmsg.monitor.live import Monitor
from p2pmsg.security_events import SecurityEvent

TITLE = "security monitor: model load, batch scoring, event-loop stall"
KEYS = 100
SCORE_TARGET_MS = 50.0
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


def _stall(monitor: Monitor | None, ticks: int) -> dict[str, float]:
    """Longest and typical lateness of a 1 ms ticker while `ticks` ticks run off the loop."""
    lateness: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.001)
            lateness.append(loop.time() - before - 0.001)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        await asyncio.sleep(0.01)
        for minute in range(1, ticks + 1):
            if monitor is None:
                await asyncio.sleep(0.02)
                continue
            for event in _minute_of_traffic(minute):
                monitor.observe(event)
            await asyncio.to_thread(monitor.tick, START + (minute + 1) * WINDOW)
        stop.set()
        await task

    asyncio.run(main())
    ordered = sorted(lateness)
    return {
        "max_ms": round(ordered[-1] * 1e3, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1e3, 2),
        "median_ms": round(statistics.median(ordered) * 1e3, 3),
    }


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
    ticks = 5 if quick else 20
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
        "loop_stall_ms": {
            "idle": _stall(None, ticks),
            "while_scoring": _stall(monitor, ticks),
            "ticks": ticks,
        },
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
            "loop stall, idle (max)",
            f"{stall['idle']['max_ms']:.2f}",
            f"{stall['idle']['median_ms']:.3f}",
            f"p99 {stall['idle']['p99_ms']:.2f} ms",
        ),
        (
            "loop stall, scoring (max)",
            f"{stall['while_scoring']['max_ms']:.2f}",
            f"{stall['while_scoring']['median_ms']:.3f}",
            f"p99 {stall['while_scoring']['p99_ms']:.2f} ms over {stall['ticks']} ticks",
        ),
    ]

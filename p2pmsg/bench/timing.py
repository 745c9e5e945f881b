"""Timing helpers every benchmark scenario uses, so figures are comparable.

The method, in one place:
- a *batch* calls the function `number` times back to back under
  `time.perf_counter`, with the garbage collector paused (as `timeit` does),
  and yields seconds per call;
- `number` is calibrated first so one batch lasts about `batch_seconds`
  (long enough that timer resolution and call overhead of the loop vanish);
- each function gets `repeats` batches; we report the BEST batch (the run
  least disturbed by other processes; the machine is shared) and the median
  (to show the spread);
- functions that are compared with each other are measured INTERLEAVED
  (A, B, A, B, ...) so a burst of background load hits both sides alike and
  the ratio stays honest.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Budget:
    """How long to measure: `repeats` batches of about `batch_seconds` each."""

    repeats: int
    batch_seconds: float

    @classmethod
    def for_run(cls, quick: bool) -> Budget:
        # quick: smoke-test figures in a couple of seconds per scenario;
        # full: enough batches for a stable best-of-N on a busy 2-core box.
        return cls(repeats=3, batch_seconds=0.015) if quick else cls(repeats=7, batch_seconds=0.15)


@dataclass(frozen=True)
class Measurement:
    """Seconds per call of each batch, and what follows from them."""

    number: int
    seconds_per_call: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.seconds_per_call)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds_per_call)

    @property
    def ops_per_s(self) -> float:
        return 1.0 / self.best

    @property
    def median_ops_per_s(self) -> float:
        return 1.0 / self.median

    def mb_per_s(self, bytes_per_op: int) -> float:
        """Payload throughput in MB/s (10^6 bytes), from the best batch."""
        return bytes_per_op * self.ops_per_s / 1e6

    def as_dict(self, bytes_per_op: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ops_per_s": round(self.ops_per_s, 1),
            "ops_per_s_median": round(self.median_ops_per_s, 1),
            "us_per_op": round(self.best * 1e6, 3),
            "calls_per_batch": self.number,
            "batches": len(self.seconds_per_call),
        }
        if bytes_per_op is not None:
            out["mb_per_s"] = round(self.mb_per_s(bytes_per_op), 2)
        return out


def time_batch(fn: Callable[[], object], number: int) -> float:
    """Seconds per call over `number` back-to-back calls, GC paused."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed / number


def calibrate(fn: Callable[[], object], batch_seconds: float, max_number: int = 10_000_000) -> int:
    """Calls per batch so that a batch takes about `batch_seconds` (at least one call)."""
    number = 1
    while True:
        per_call = time_batch(fn, number)
        total = per_call * number
        if total >= batch_seconds / 4 or number >= max_number:
            wanted = int(batch_seconds / per_call) if per_call > 0 else max_number
            return max(1, min(max_number, wanted))
        number *= 4


def measure_interleaved(
    fns: Mapping[str, Callable[[], object]], budget: Budget
) -> dict[str, Measurement]:
    """Measure several functions round-robin; see the module docstring for why."""
    numbers = {name: calibrate(fn, budget.batch_seconds) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(budget.repeats):
        for name, fn in fns.items():
            samples[name].append(time_batch(fn, numbers[name]))
    return {name: Measurement(numbers[name], tuple(samples[name])) for name in fns}


def measure(fn: Callable[[], object], budget: Budget) -> Measurement:
    """Measure one function on its own."""
    return measure_interleaved({"fn": fn}, budget)["fn"]

"""Scenario `latency`: message-to-receipt round trip, idle and under a file transfer.

Two real nodes over loopback TCP (twonodes.py: receiver in its own process,
product defaults, every suite offered). One round trip = `send_text` (the
sender stores the message encrypted), the record goes out, the receiver
stores it and answers with a delivery receipt, the sender stores that, and
`wait_delivered` returns. One message is in flight at a time.

- low load: the round trips alone (targets: p50 < 1 ms, p99 < 5 ms);
- during a transfer: the same round trips while `send_file` streams a
  256 MiB file (`--quick`: 16 MiB) over the same session (target: p99 <
  20 ms). The receiver accepts files automatically into a temporary folder.
  Sampling starts when the transfer reaches "transferring" and stops when it
  leaves that state.

The baseline is the plain-frames connection (baselines.py) doing the same
one-at-a-time round trip: one frame of the same size there, one ack back.

Every loop is bounded by a count and a deadline; a transfer that does not
start, or fails, gives `p99_during_transfer_ms: null` and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from p2pmsg.bench.baselines import chat_like_frame
from p2pmsg.bench.netutil import LOOPBACK, BenchError, ChildProcess, percentile
from p2pmsg.bench.twonodes import Pair, record_frame_size, two_nodes
from p2pmsg.node.api import TransferUpdated

TITLE = "message -> delivery receipt round trip, two nodes on loopback"
TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0
TARGET_P99_TRANSFER_MS = 20.0
TEXT = ("p2pmsg bench: one typical chat line, " * 3)[:100]
WARMUP = 50
#: (round trips at low load, file size, most round trips during the transfer)
FULL = (2000, 256 << 20, 20_000)
QUICK = (200, 16 << 20, 2_000)
ROUND_TRIP_TIMEOUT = 10.0
TRANSFER_START_TIMEOUT = 30.0
TRANSFER_TIMEOUT = 300.0
_ENDED = ("completed", "failed", "cancelled", "declined", "expired")


async def round_trip(pair: Pair) -> float:
    start = time.perf_counter()
    view = await pair.sender.send_text(pair.peer, TEXT)
    status = await pair.sender.wait_delivered(view.id, ROUND_TRIP_TIMEOUT)
    elapsed = time.perf_counter() - start
    if status not in ("delivered", "read"):
        raise BenchError(
            f"a message was not acknowledged within {ROUND_TRIP_TIMEOUT:g} s (status {status})"
        )
    return elapsed


def _stats(samples: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": round(percentile(samples, 50) * 1e3, 3),
        "p99_ms": round(percentile(samples, 99) * 1e3, 3),
        "mean_ms": round(statistics.fmean(samples) * 1e3, 3),
        "max_ms": round(max(samples) * 1e3, 3),
        "count": len(samples),
    }


def _write_file(path: Path, size: int) -> None:
    chunk = 1 << 20
    with path.open("wb") as f:
        for _ in range(size // chunk):
            f.write(os.urandom(chunk))


class _TransferWatch:
    """Follows one transfer's state through the node's event stream."""

    def __init__(self, pair: Pair) -> None:
        self.transfer_id: str | None = None
        self.state = "unknown"
        self.error: str | None = None
        self.changed = asyncio.Event()
        self._events = pair.sender.subscribe()
        self._task = asyncio.create_task(self._follow())
        self.started_at: float | None = None
        self.ended_at: float | None = None

    async def _follow(self) -> None:
        async for event in self._events:
            if type(event) is not TransferUpdated or event.transfer.id != self.transfer_id:
                continue
            state = event.transfer.state
            if state == "transferring" and self.started_at is None:
                self.started_at = time.perf_counter()
            if state in _ENDED and self.ended_at is None:
                self.ended_at = time.perf_counter()
            self.state, self.error = state, event.transfer.error
            self.changed.set()

    async def wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self.state):
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _during_transfer(pair: Pair, size: int, most: int) -> dict[str, Any]:
    """Round trips while a file streams over the same session; or why there are none."""
    watch = _TransferWatch(pair)
    try:
        with tempfile.TemporaryDirectory(prefix="p2pmsg-bench-file-") as tmp:
            path = Path(tmp) / "bench-payload.bin"
            await asyncio.to_thread(_write_file, path, size)
            try:
                view = await pair.sender.send_file(pair.peer, str(path))
            except Exception as exc:  # the engine's own error, reported, not raised
                return {"reason": f"send_file failed: {type(exc).__name__}: {exc}"}
            watch.transfer_id = view.id
            if not await watch.wait(
                lambda s: s == "transferring" or s in _ENDED, TRANSFER_START_TIMEOUT
            ):
                return {
                    "reason": f"the transfer did not start within "
                    f"{TRANSFER_START_TIMEOUT:g} s (state {watch.state})"
                }
            samples: list[float] = []
            deadline = time.monotonic() + TRANSFER_TIMEOUT
            while (
                watch.state == "transferring"
                and len(samples) < most
                and time.monotonic() < deadline
            ):
                samples.append(await round_trip(pair))
            await watch.wait(lambda s: s in _ENDED, max(0.0, deadline - time.monotonic()))
            if watch.state != "completed":
                return {
                    "reason": f"the transfer ended {watch.state}: {watch.error}",
                    "samples": len(samples),
                }
            if not samples:
                return {"reason": "the transfer finished before a round trip could be timed"}
            seconds = (watch.ended_at or 0.0) - (watch.started_at or 0.0)
            return {
                **_stats(samples),
                "file_bytes": size,
                "transfer_mb_per_s": round(size / seconds / 1e6, 1) if seconds > 0 else None,
            }
    finally:
        await watch.close()


async def _baseline(count: int, frame_size: int) -> dict[str, Any]:
    """One frame there, one ack back, one at a time, over plain asyncio TCP."""
    argv = [sys.executable, "-m", "p2pmsg.bench.baselines", "serve"]
    with ChildProcess(argv, ready_timeout=30.0) as child:
        reader, writer = await asyncio.open_connection(LOOPBACK, int(child.ready["port"]))
        samples: list[float] = []
        try:
            for i in range(WARMUP + count):
                start = time.perf_counter()
                writer.write(chat_like_frame(TEXT, frame_size, i))
                header = await asyncio.wait_for(reader.readexactly(4), ROUND_TRIP_TIMEOUT)
                await reader.readexactly(int.from_bytes(header, "big"))
                if i >= WARMUP:
                    samples.append(time.perf_counter() - start)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    return {
        "name": "plain asyncio TCP: one msgpack frame of the same size, one ack back",
        **_stats(samples),
    }


async def _run(quick: bool) -> dict[str, Any]:
    count, file_size, most = QUICK if quick else FULL
    async with two_nodes(suite=None, models=not quick, downloads=True) as pair:
        for _ in range(WARMUP):
            await round_trip(pair)
        low = [await round_trip(pair) for _ in range(count)]
        status = await pair.sender.session_status(pair.peer)
        suite = status.send.suite if status is not None else "unknown"
        during = await _during_transfer(pair, file_size, most)
        monitor = pair.monitor
    baseline = await _baseline(count, record_frame_size(suite, TEXT) if suite != "unknown" else 160)
    low_stats = _stats(low)
    result: dict[str, Any] = {
        "p50_ms": low_stats["p50_ms"],
        "p99_ms": low_stats["p99_ms"],
        "p99_during_transfer_ms": during.get("p99_ms"),
        "low_load": low_stats,
        "during_transfer": during,
        "baseline": baseline,
        "suite": suite,
        "monitor": monitor,
        "file_bytes": file_size,
        "targets": {
            "p50_ms": {"limit": TARGET_P50_MS, "met": low_stats["p50_ms"] < TARGET_P50_MS},
            "p99_ms": {"limit": TARGET_P99_MS, "met": low_stats["p99_ms"] < TARGET_P99_MS},
            "p99_during_transfer_ms": {
                "limit": TARGET_P99_TRANSFER_MS,
                "met": None
                if "p99_ms" not in during
                else during["p99_ms"] < TARGET_P99_TRANSFER_MS,
            },
        },
    }
    if "reason" in during:
        result["reason"] = during["reason"]
    return result


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick))


def _verdict(target: dict[str, Any]) -> str:
    if target["met"] is None:
        return "not measured"
    return f"< {target['limit']:g} ms: {'met' if target['met'] else 'MISSED'}"


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    low, during, base = result["low_load"], result["during_transfer"], result["baseline"]
    t = result["targets"]
    table: list[tuple[str, ...]] = [
        ("what", "p50 ms", "p99 ms", "max ms", "count", "p50 target", "p99 target"),
        (
            "low load",
            f"{low['p50_ms']:.3f}",
            f"{low['p99_ms']:.3f}",
            f"{low['max_ms']:.1f}",
            str(low["count"]),
            _verdict(t["p50_ms"]),
            _verdict(t["p99_ms"]),
        ),
    ]
    if "p99_ms" in during:
        table.append(
            (
                f"during a {result['file_bytes'] >> 20} MiB transfer",
                f"{during['p50_ms']:.3f}",
                f"{during['p99_ms']:.3f}",
                f"{during['max_ms']:.1f}",
                str(during["count"]),
                "",
                _verdict(t["p99_during_transfer_ms"]),
            )
        )
    else:
        table.append(("during a transfer", "-", "-", "-", "0", "", "not measured"))
    table.append(
        (
            "baseline: plain frames",
            f"{base['p50_ms']:.3f}",
            f"{base['p99_ms']:.3f}",
            f"{base['max_ms']:.1f}",
            str(base["count"]),
            "",
            "",
        )
    )
    return table


def notes(result: dict[str, Any]) -> list[str]:
    lines = [f"suite {result['suite']}; monitor: {result['monitor']}; one message in flight"]
    during = result["during_transfer"]
    if "reason" in during:
        lines.append(f"during-transfer figure missing: {during['reason']}")
    elif during.get("transfer_mb_per_s"):
        lines.append(f"the file moved at {during['transfer_mb_per_s']} MB/s meanwhile")
    return lines

"""Scenario `chat`: chat messages per second, end to end, per cipher suite.

For each suite: two real nodes over loopback TCP (the receiver in its own
process, see twonodes.py), the sender restricted to that one suite, then
50,000 messages (`--quick`: 2,000) of 100 bytes through `NodeAPI.send_text`,
each one stored encrypted by the sender, sealed and sent, received, stored
by the receiver and acknowledged by a delivery receipt that the sender
stores. The clock stops when the sender has seen the receipt for every
message; the receiver's store is then checked to hold every one of them.

Up to `WINDOW` `send_text` calls are in flight at a time, as a script or a
busy TUI would issue them; the node batches the rest (store transactions,
writes, receipts) itself.

Beside each figure:
- the plain-frames baseline (baselines.py): the same number of msgpack
  frames of the same size as one encrypted chat record, over a plain asyncio
  TCP connection to a child process, decoded and acknowledged; measured
  before each suite, the best run is the one reported (conservative ratio);
- the seed system's stated figures (1,000 / 1,200 / 800 msgs/s).
Targets: at least 20x the seed per suite, at least 0.25x the baseline.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from p2pmsg.bench.baselines import send_frames
from p2pmsg.bench.netutil import LOOPBACK, BenchError, ChildProcess, cpu_seconds
from p2pmsg.bench.report import fmt_rate, fmt_ratio
from p2pmsg.bench.twonodes import DeliveryCounter, Pair, record_frame_size, two_nodes
from p2pmsg.crypto.suites import SUITE_NAMES

TITLE = "chat messages end to end (stored, sent, received, stored, receipt), two nodes"
#: What the seed system claimed "on modern hardware", messages per second.
SEED_MSGS_PER_S = {
    "aes-256-gcm": 1000.0,
    "chacha20-poly1305": 1200.0,
    "twofish-cbc-hmac-sha256": 800.0,
}
TARGET_VS_SEED = 20.0
TARGET_VS_BASELINE = 0.25
FULL_COUNT = 50_000
QUICK_COUNT = 2_000
WARMUP = 200
WINDOW = 2048
#: 100 bytes of ASCII: a typical chat line.
TEXT = ("p2pmsg bench: one typical chat line, " * 3)[:100]
#: Upper bounds per measurement; a run that needs longer is a failure, not a figure.
FULL_TIMEOUT = 300.0
QUICK_TIMEOUT = 60.0


async def send_and_confirm(pair: Pair, count: int, timeout: float, bulk: bool = False) -> float:
    """Send `count` messages; seconds until the last delivery receipt was seen.

    `bulk` hands each window to `Node.send_texts` in one call instead of one
    `send_text` call per message.
    """
    node, peer = pair.sender, pair.peer
    counter = DeliveryCounter(node)

    async def body() -> None:
        sent = 0
        while sent < count:
            n = min(WINDOW, count - sent)
            if bulk:
                views = await node.send_texts(peer, [TEXT] * n)
            else:
                views = await asyncio.gather(*(node.send_text(peer, TEXT) for _ in range(n)))
            for view in views:
                counter.sent(view.id)
            sent += n
        counter.expect(count)
        await counter.done.wait()

    try:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(body(), timeout)
        except TimeoutError:
            raise BenchError(
                f"only {counter.delivered} of {count} messages were acknowledged "
                f"within {timeout:g} s"
            ) from None
        return time.perf_counter() - start
    finally:
        await counter.close()


async def _baseline(count: int, frame_size: int, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "p2pmsg.bench.baselines", "serve"]
    with ChildProcess(argv, ready_timeout=30.0) as child:
        receiver_before = cpu_seconds(child.pid)
        sender_before = time.process_time()
        result = await send_frames(
            LOOPBACK, int(child.ready["port"]), count, TEXT, frame_size, timeout
        )
        sender_cpu = time.process_time() - sender_before
        receiver_after = cpu_seconds(child.pid)
    out = result.as_dict()
    out["sender_cpu_us_per_msg"] = round(sender_cpu / count * 1e6, 2)
    if receiver_before is not None and receiver_after is not None:
        out["receiver_cpu_us_per_msg"] = round((receiver_after - receiver_before) / count * 1e6, 2)
    return out


async def _measured(pair: Pair, count: int, timeout: float, bulk: bool) -> dict[str, Any]:
    """One timed run, with the CPU each process spent on it.

    CPU per message does not depend on what else this (shared) machine runs,
    so it shows what bounds the pipeline even when the wall-clock rate is noisy.
    """
    receiver_before = cpu_seconds(pair.receiver.pid)
    sender_before = time.process_time()
    seconds = await send_and_confirm(pair, count, timeout, bulk=bulk)
    sender_cpu = time.process_time() - sender_before
    receiver_after = cpu_seconds(pair.receiver.pid)
    out: dict[str, Any] = {
        "msgs_per_s": round(count / seconds, 1),
        "seconds": round(seconds, 3),
        "sender_cpu_us_per_msg": round(sender_cpu / count * 1e6, 1),
    }
    if receiver_before is not None and receiver_after is not None:
        receiver_us = (receiver_after - receiver_before) / count * 1e6
        out["receiver_cpu_us_per_msg"] = round(receiver_us, 1)
        busiest = max(out["sender_cpu_us_per_msg"], receiver_us)
        # The rate if each node had a core to itself: the busier process sets the pace.
        out["cpu_bound_msgs_per_s"] = round(1e6 / busiest, 1) if busiest > 0 else None
    return out


async def _suite(suite: str, count: int, models: bool, timeout: float) -> dict[str, Any]:
    async with two_nodes(suite=suite, models=models) as pair:
        await send_and_confirm(pair, WARMUP, timeout)
        entry = await _measured(pair, count, timeout, bulk=False)
        total = WARMUP + count
        if hasattr(pair.sender, "send_texts"):
            entry["bulk"] = await _measured(pair, count, timeout, bulk=True)
            total += count
        status = await pair.sender.session_status(pair.peer)
        stored = await pair.stored()
        if stored != total:
            raise BenchError(f"{suite}: the receiver stored {stored} messages, expected {total}")
        monitor = pair.monitor
    if status is None or status.send.suite != suite:
        raise BenchError(f"{suite}: the session did not use the suite under test ({status})")
    return {
        **entry,
        "count": count,
        "stored_by_receiver": stored,
        "send_epoch": status.send.epoch,
        "monitor": monitor,
    }


async def _run(quick: bool) -> dict[str, Any]:
    count = QUICK_COUNT if quick else FULL_COUNT
    timeout = QUICK_TIMEOUT if quick else FULL_TIMEOUT
    # Quick runs keep the monitor on rules alone: loading the models takes seconds.
    models = not quick
    sizes = {suite: record_frame_size(suite, TEXT) for suite in SUITE_NAMES}
    frame_size = min(sizes.values())  # smaller frames make the baseline faster: conservative
    baselines: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for suite in SUITE_NAMES:
        baselines.append(await _baseline(count, frame_size, timeout))
        out[suite] = await _suite(suite, count, models, timeout)
        out[suite]["frame_size"] = sizes[suite]
    best = max(b["msgs_per_s"] for b in baselines)
    met: list[bool] = []
    met_bulk: list[bool] = []
    for suite in SUITE_NAMES:
        entry = out[suite]
        entry["seed_msgs_per_s"] = SEED_MSGS_PER_S[suite]
        met += _judge(entry, SEED_MSGS_PER_S[suite], best)
        if "bulk" in entry:
            met_bulk += _judge(entry["bulk"], SEED_MSGS_PER_S[suite], best)
    return {
        "baseline_msgs_per_s": best,
        "baseline": {
            "name": "plain asyncio TCP, msgpack frames of the same size, decoded and "
            "acknowledged per read, receiver in a child process",
            "frame_size": frame_size,
            "runs": baselines,
        },
        "messages": count,
        "text_bytes": len(TEXT.encode()),
        "window": WINDOW,
        **out,
        "all_targets_met": all(met),
        "all_targets_met_bulk": all(met_bulk) if met_bulk else None,
    }


def _judge(entry: dict[str, Any], seed: float, baseline: float) -> list[bool]:
    """Ratios and target verdicts for one measurement (the per-call or the bulk one)."""
    entry["vs_seed"] = round(entry["msgs_per_s"] / seed, 2)
    entry["vs_baseline"] = round(entry["msgs_per_s"] / baseline, 3)
    entry["targets"] = {
        "vs_seed": {"limit": TARGET_VS_SEED, "met": entry["vs_seed"] >= TARGET_VS_SEED},
        "vs_baseline": {
            "limit": TARGET_VS_BASELINE,
            "met": entry["vs_baseline"] >= TARGET_VS_BASELINE,
        },
    }
    return [t["met"] for t in entry["targets"].values()]


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick))


def _cpu_cell(entry: dict[str, Any]) -> str:
    receiver = entry.get("receiver_cpu_us_per_msg")
    return f"{entry['sender_cpu_us_per_msg']:.0f} / " + (
        "-" if receiver is None else f"{receiver:.0f}"
    )


def _verdicts(entry: dict[str, Any]) -> str:
    return " / ".join("met" if t["met"] else "MISSED" for t in entry["targets"].values())


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = [
        (
            "suite",
            "msgs/s",
            "bulk msgs/s",
            "CPU us/msg snd/rcv",
            "seed",
            "vs seed",
            "vs base",
            "targets >=20x seed, >=0.25x base",
        )
    ]
    for suite in SUITE_NAMES:
        e = result[suite]
        verdicts = _verdicts(e)
        if "bulk" in e and "targets" in e["bulk"]:
            verdicts += f" (bulk {fmt_ratio(e['bulk']['vs_seed'])}: {_verdicts(e['bulk'])})"
        table.append(
            (
                suite,
                fmt_rate(e["msgs_per_s"]),
                fmt_rate(e["bulk"]["msgs_per_s"]) if "bulk" in e else "-",
                _cpu_cell(e),
                fmt_rate(e["seed_msgs_per_s"]),
                fmt_ratio(e["vs_seed"]),
                fmt_ratio(e["vs_baseline"]),
                verdicts,
            )
        )
    best = max(result["baseline"]["runs"], key=lambda r: r["msgs_per_s"])
    table.append(
        (
            "baseline: plain msgpack frames",
            fmt_rate(result["baseline_msgs_per_s"]),
            "",
            _cpu_cell(best) if "sender_cpu_us_per_msg" in best else "-",
            "",
            "",
            "1.00x",
            "",
        )
    )
    return table


def notes(result: dict[str, Any]) -> list[str]:
    return [
        f"{result['messages']} messages of {result['text_bytes']} B per suite, up to "
        f"{result['window']} send_text calls in flight (bulk: one send_texts call per "
        f"{result['window']}); receiver node in a child process",
        "CPU us/msg: CPU time each process spent per message during the run (all "
        "threads); unlike msgs/s it does not depend on other load on this machine",
        f"baseline: {result['baseline']['name']}; frames of "
        f"{result['baseline']['frame_size']} B (best of {len(result['baseline']['runs'])})",
        f"monitor during the run: {result[SUITE_NAMES[0]]['monitor']}",
    ]

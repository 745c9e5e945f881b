"""The monitor with its models runs in a process of its own (node/services/monitor_worker.py):
the same alerts as in-process, through a real node too; only hash-verified models load
there; when that process dies the node goes on on rules alone and says so; when the node
dies, the process follows it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.monitor import model as models
from p2pmsg.monitor.live import MODELS, Monitor
from p2pmsg.monitor.simulate import SimConfig, generate
from p2pmsg.node.api import AlertView, MonitorChanged
from p2pmsg.node.bus import EventBus, Subscription
from p2pmsg.node.node import Node
from p2pmsg.node.services.monitor_link import MonitorLink
from p2pmsg.security_events import Alert
from p2pmsg.store import AsyncStore
from tests.monitor.helpers import T0, ev
from tests.node.conftest import eventually, loopback_config

REPO = Path(__file__).resolve().parents[2]
LOAD_TIMEOUT = 60.0  # a spawned interpreter imports scikit-learn: seconds on a busy box


@dataclass
class Linked:
    link: MonitorLink
    store: AsyncStore
    changes: Subscription
    now: list[float] = field(default_factory=lambda: [T0])

    async def loaded(self) -> str:
        event = await asyncio.wait_for(anext(aiter(self.changes)), LOAD_TIMEOUT)
        assert isinstance(event, MonitorChanged)
        return event.status.mode


async def _linked(tmp_path: Path, max_restarts: int) -> AsyncIterator[Linked]:
    store = await AsyncStore.open(tmp_path / "alerts.db", os.urandom(32))
    bus = EventBus()
    changes = bus.subscribe()
    now = [T0]
    link = MonitorLink(
        store,
        bus,
        lambda: now[0],
        enabled=True,
        load_models=True,
        interval=3600.0,
        max_restarts=max_restarts,
    )
    await link.start()
    yield Linked(link, store, changes, now)
    await link.stop()
    await store.close()


@pytest.fixture
async def linked(tmp_path: Path) -> AsyncIterator[Linked]:
    """A MonitorLink with its models (so in its process), a real store, the time in hand;
    a worker that dies is not restarted (the fallback's own tests)."""
    async for linked in _linked(tmp_path, max_restarts=0):
        yield linked


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[Linked]:
    """The same with one restart allowed."""
    async for linked in _linked(tmp_path, max_restarts=1):
        yield linked


def _fields(a: Alert) -> tuple[object, ...]:
    return (a.ts, a.kind, a.severity, a.peer, a.addr, a.source, a.score, a.message)


def _worker() -> multiprocessing.Process:
    (worker,) = multiprocessing.active_children()
    return worker


async def test_the_process_raises_the_alerts_a_monitor_in_this_process_raises(
    linked: Linked,
) -> None:
    assert await linked.loaded() == MODELS
    assert linked.link.status().mode == MODELS
    here = Monitor()
    assert here.load_models(T0)
    events = generate(SimConfig(hours=1, seed=77, attack_rate=24))
    expected: list[tuple[object, ...]] = []
    got: list[tuple[object, ...]] = []

    async def tick(now: float) -> None:
        expected.extend(_fields(a) for a in here.tick(now))
        linked.now[0] = now
        got.extend(
            (v.ts, v.kind, v.severity, v.peer, v.addr, v.source, v.score, v.message)
            for v in await linked.link.tick()
        )

    now = events[0].ts
    for event in events:
        while event.ts >= now:
            await tick(now)
            now += 30.0
        here.observe(event)
        linked.link.observe(event)
    await tick(now + 120.0)  # the last windows close
    assert got == expected
    assert "model" in {source for *_, source, _, _ in got}  # scored there, not only rules
    assert linked.link.status().recent_scores == here.recent_scores()


async def test_a_dead_worker_leaves_the_rules_running_and_says_so(linked: Linked) -> None:
    assert await linked.loaded() == MODELS
    os.kill(_worker().pid or 0, signal.SIGKILL)
    for i in range(6):
        linked.link.observe(ev(i * 0.5, "handshake_fail", addr="10.6.6.6"))
    linked.now[0] = T0 + 10
    (alert,) = await linked.link.tick()
    assert (alert.kind, alert.addr) == ("brute_force", "10.6.6.6")
    assert alert.source.startswith("rule:")
    mode = linked.link.status().mode
    assert mode.startswith("rules-only: the monitor's process stopped"), mode
    changed = linked.changes.drain()
    assert [e.status.mode for e in changed if isinstance(e, MonitorChanged)] == [mode]
    # and on it goes on rules alone
    for i in range(40):
        linked.link.observe(ev(20 + i * 0.05, "conn_open", addr="10.7.7.7"))
    linked.now[0] = T0 + 25
    assert "flood" in {a.kind for a in await linked.link.tick()}


def _brute_force_at(linked: Linked, start: float, addr: str) -> None:
    for i in range(6):
        linked.link.observe(ev(start + i * 0.5, "handshake_fail", addr=addr))


async def test_a_dead_worker_is_replaced_by_a_fresh_one_once_then_rules_alone(
    restartable: Linked,
) -> None:
    linked = restartable
    assert await linked.loaded() == MODELS
    first = _worker().pid
    os.kill(first or 0, signal.SIGKILL)
    _brute_force_at(linked, 0.0, "10.6.6.6")
    linked.now[0] = T0 + 10
    # the events handed to the dead worker's tick reach the fresh one: nothing is lost
    (alert,) = await linked.link.tick()
    assert (alert.kind, alert.addr) == ("brute_force", "10.6.6.6")
    second = _worker().pid
    assert second != first
    assert linked.link.status().mode == MODELS  # the fresh worker loaded the models
    # past the limit (one restart per hour here) it goes on on rules alone and says so
    os.kill(second or 0, signal.SIGKILL)
    _brute_force_at(linked, 20.0, "10.8.8.8")
    linked.now[0] = T0 + 30
    (alert,) = await linked.link.tick()
    assert (alert.kind, alert.addr) == ("brute_force", "10.8.8.8")
    assert alert.source.startswith("rule:")
    mode = linked.link.status().mode
    assert mode.startswith("rules-only: the monitor's process stopped"), mode
    assert mode.endswith("2 times within the hour"), mode
    assert multiprocessing.active_children() == []


async def test_the_worker_refuses_models_that_fail_their_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models.default_model_dir(), copy)
    path = copy / models.ANOMALY_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(copy))  # the worker inherits it
    store = await AsyncStore.open(tmp_path / "alerts.db", os.urandom(32))
    bus = EventBus()
    changes = bus.subscribe()
    link = MonitorLink(store, bus, time.time, enabled=True, load_models=True, interval=3600.0)
    await link.start()
    try:
        loaded = Linked(link, store, changes)
        mode = await loaded.loaded()
        assert mode.startswith("rules-only: anomaly_detector.joblib does not match"), mode
        (alert,) = await link.tick()
        assert (alert.kind, alert.severity, alert.source) == (
            "integrity_violation",
            "critical",
            "rule:model_integrity",
        )
    finally:
        await link.stop()
        await store.close()


async def test_a_node_with_models_raises_alerts_through_its_worker(tmp_path: Path) -> None:
    config = loopback_config(monitor=True, monitor_models=True, monitor_interval=0.2)
    node = await Node.open(
        Identity.generate(os.urandom), "alice", tmp_path / "alice.db", os.urandom(32), config
    )
    await node.start()
    try:

        async def with_models() -> bool:
            return (await node.monitor_status()).mode == MODELS

        await eventually(with_models, timeout=LOAD_TIMEOUT, interval=0.1)
        assert len(multiprocessing.active_children()) == 1
        for _ in range(6):
            node.security.record("handshake_fail", addr="10.6.6.6")

        async def brute_force() -> list[AlertView]:
            return [a for a in await node.alerts() if a.addr == "10.6.6.6"]

        (alert,) = await eventually(brute_force, timeout=10.0)
        assert alert.kind == "brute_force" and alert.source.startswith("rule:")
    finally:
        await node.stop()
    assert multiprocessing.active_children() == []  # stopping the node ends its worker


ORPHAN = """
import asyncio, os, signal, sys
from p2pmsg.node.services.monitor_link import _InProcess
import multiprocessing

async def main():
    runner = _InProcess()
    await runner.load_models(0.0)
    (worker,) = multiprocessing.active_children()
    print(worker.pid, runner.mode, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no shutdown, no atexit: a crash

asyncio.run(main())
"""


def test_the_worker_exits_when_its_node_is_killed() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ORPHAN], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid, mode = proc.stdout.split(maxsplit=1)
    assert mode.strip() == MODELS
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(int(pid)):
        time.sleep(0.1)
    assert not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


UNDER_TUI = """
import asyncio, multiprocessing, sys
from p2pmsg.node.services.monitor_link import _InProcess

class PrintCapture:
    # Textual's stand-in for sys.stdout/sys.stderr while an app runs: its fileno() is -1.
    def write(self, text): return len(text)
    def flush(self): pass
    def isatty(self): return True
    def fileno(self): return -1

async def main():
    sys.stdout = sys.stderr = PrintCapture()
    runner = _InProcess()
    await runner.load_models(0.0)
    await runner.tick(1.0)
    mode = runner.mode
    await runner.close()
    sys.__stdout__.write(mode + "\\n")

asyncio.run(main())
"""


def test_the_worker_starts_under_the_tui() -> None:
    """Under the TUI, sys.stderr is Textual's print capture (fileno() -1). Starting the
    pool then started multiprocessing's resource tracker with that descriptor, and the
    spawn failed ("bad value(s) in fds_to_keep"), which took the app down at unlock.
    A fresh interpreter: in this one the tracker may already run, hiding the failure."""
    proc = subprocess.run(
        [sys.executable, "-c", UNDER_TUI], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == MODELS
    assert proc.stderr == ""  # nothing from the worker or the tracker reaches the terminal

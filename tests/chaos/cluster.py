"""The processes of a chaos run: driver nodes and the relay, each in its namespace host.

`NodeHandle` starts, kills (-9) and restarts one `tests.chaos.driver`
process, keeping the same profile and port across incarnations, and turns
its stdout into calls of one callback (from a reader thread per
incarnation). Requests are JSON lines on its stdin; a request can be posted
(fire and forget: the reply arrives as an event) or awaited.
`RelayHandle` does the same for `tests.chaos.relay`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from p2pmsg.bench.netns import Host

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Chaos-Soak-Passw0rd!"  # noqa: S105 - a throwaway test profile
ENV = {"P2PMSG_PASSWORD": PASSWORD, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
NODE_PORT = 7700

OnEvent = Callable[["NodeHandle", dict[str, Any], float], None]


class NodeHandle:
    """One node of the soak; `index` is its place in the cast, `name` its profile name."""

    def __init__(
        self,
        index: int,
        host: Host,
        data_dir: Path,
        *,
        downloads: Path,
        discovery: bool,
        fast_timeouts: bool,
        max_per_key: int,
        on_event: OnEvent,
    ) -> None:
        self.index = index
        self.name = f"node{index}"
        self.host = host
        self.data_dir = data_dir
        self.downloads = downloads
        self.discovery = discovery
        self.fast_timeouts = fast_timeouts
        self.max_per_key = max_per_key
        self.on_event = on_event
        self.fingerprint = ""
        self.proc: subprocess.Popen[str] | None = None
        self.incarnation = 0
        self.started_at = 0.0
        self.stderr_tail: list[str] = []
        self._reqs = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self._ready.is_set()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self, timeout: float = 30.0) -> None:
        argv = [
            sys.executable,
            "-m",
            "tests.chaos.driver",
            "--data-dir",
            str(self.data_dir),
            "--profile",
            self.name,
            "--port",
            str(NODE_PORT),
            "--downloads",
            str(self.downloads),
            "--max-per-key",
            str(self.max_per_key),
        ]
        if not self.discovery:
            argv.append("--no-discovery")
        if self.fast_timeouts:
            argv.append("--fast-timeouts")
        self._ready.clear()
        self.incarnation += 1
        # ip netns exec execs the program, so this pid is the node's own process.
        self.proc = self.host.run(
            argv,
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            bufsize=1,
        )
        for target, stream in (
            (self._read_stdout, self.proc.stdout),
            (self._read_stderr, self.proc.stderr),
        ):
            threading.Thread(target=target, args=(self.proc, stream), daemon=True).start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.name} did not start: {self.stderr_tail[-20:]}")
        self.started_at = time.monotonic()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._ready.clear()
        self._fail_waiters()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait for the orderly stop (bye to peers, store closed)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
        self._ready.clear()

    # --- requests ------------------------------------------------------------------------

    def post(self, cmd: dict[str, Any]) -> int | None:
        """Send a command without waiting; its reply comes back as an event. None: down."""
        proc = self.proc
        if proc is None or proc.stdin is None or not self.alive:
            return None
        req = next(self._reqs)
        try:
            proc.stdin.write(json.dumps({**cmd, "req": req}) + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return None
        return req

    def request(self, cmd: dict[str, Any], timeout: float = 60.0) -> dict[str, Any] | None:
        """Send a command and wait for its reply; None if the node is or goes down."""
        done, box = threading.Event(), list[dict[str, Any]]()
        with self._lock:
            req = self.post(cmd)
            if req is None:
                return None
            self._waiting[req] = (done, box)
        done.wait(timeout)
        with self._lock:
            self._waiting.pop(req, None)
        return box[0] if box else None

    def _fail_waiters(self) -> None:
        with self._lock:
            for done, _ in self._waiting.values():
                done.set()

    # --- output --------------------------------------------------------------------------

    def _read_stdout(self, proc: subprocess.Popen[str], stream: Any) -> None:
        for line in stream:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            now = time.monotonic()
            if obj.get("event") == "ready":
                self.fingerprint = obj["fingerprint"]
                self._ready.set()
            if obj.get("event") == "reply":
                with self._lock:
                    waiting = self._waiting.get(obj.get("req"))
                if waiting is not None:
                    waiting[1].append(obj)
                    waiting[0].set()
            self.on_event(self, obj, now)
        if proc is self.proc:
            self._fail_waiters()

    def _read_stderr(self, proc: subprocess.Popen[str], stream: Any) -> None:
        for line in stream:
            self.stderr_tail.append(line.rstrip("\n"))
            del self.stderr_tail[:-200]


class RelayHandle:
    """The lossy relay process on its own host; commands are awaited one at a time."""

    def __init__(self, host: Host, routes: list[str], seed: int) -> None:
        argv = [sys.executable, "-m", "tests.chaos.relay", "--seed", str(seed)]
        for route in routes:
            argv += ["--route", route]
        self.proc = host.run(
            argv,
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            bufsize=1,
        )
        self._lock = threading.Lock()
        assert self.proc.stdout is not None
        first = json.loads(self.proc.stdout.readline() or "{}")
        if first.get("event") != "ready":
            raise RuntimeError(f"relay did not start: {first}")

    def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            return dict(json.loads(self.proc.stdout.readline() or "{}"))

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def rss_and_fds(pid: int) -> tuple[int, int] | None:
    """(VmRSS in KiB, open descriptors) of a live process, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]), fds
    return None

"""Small helpers shared by the network scenarios (chat, latency, handshake, discovery).

Why a helper for child processes: on a 2-core machine one Python process is
one core (the GIL), so the honest way to measure two peers is to give each
its own process. A child prints one JSON `ready` line (its port, its
fingerprint), then more JSON lines if it has something to say, and exits
when its stdin closes; the parent never waits on a pipe without a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

#: Every benchmark connection stays on this machine (DESIGN.md, "Networking safety").
LOOPBACK = "127.0.0.1"


class BenchError(RuntimeError):
    """A benchmark could not run (a helper died, a deadline passed); says why."""


def emit(event: str, **fields: Any) -> None:
    """A child's one way to speak to its parent: one JSON line on stdout."""
    print(json.dumps({"event": event, **fields}), flush=True)


def run_child(work: Callable[[], Coroutine[Any, Any, object]]) -> int:
    """Run a child process's work; its exit code: 0 done, 1 after an error (told to the
    parent as an `error` line, which `ChildProcess` turns into a BenchError), 130
    interrupted."""
    try:
        asyncio.run(work())
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) by the nearest-rank method: a value that was measured."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process in KiB (Linux /proc), or None when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far (all threads; Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class ChildProcess:
    """A helper process speaking JSON lines; ended by closing its stdin, then by signals.

    Use as a context manager; `ready` holds the first line whose `event` is
    "ready". Output is read by background threads, so a chatty or stuck child
    can never block the parent.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        ready_timeout: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.ready_timeout = ready_timeout
        self.env = None if env is None else {**os.environ, **env}
        self.cwd = cwd
        self.ready: dict[str, Any] = {}
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[str] = []

    def __enter__(self) -> ChildProcess:
        # The argv is built by the bench module itself (this interpreter, a module of ours).
        self.proc = subprocess.Popen(  # noqa: S603
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.cwd,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._pump_stdout, args=(self.proc.stdout,), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,), daemon=True).start()
        try:
            self.ready = self.wait_for("ready", self.ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _pump_stdout(self, stream: IO[str]) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    self._lines.put(obj)
        self._lines.put(None)

    def _pump_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            self._stderr.append(line)
            del self._stderr[:-50]  # keep the tail for error messages

    def send(self, obj: Mapping[str, Any]) -> None:
        """One JSON command line to the child's stdin."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        """The next line whose `event` is `event`; a child error or exit is a BenchError."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(
                    f"{self._name()}: no {event!r} within {timeout:g} s{self._stderr_tail()}"
                )
            try:
                obj = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if obj is None:
                self._lines.put(None)
                raise BenchError(f"{self._name()} exited before {event!r}{self._stderr_tail()}")
            if obj.get("event") == "error":
                raise BenchError(f"{self._name()}: {obj.get('message')}{self._stderr_tail()}")
            if obj.get("event") == event:
                return obj

    def stop(self, grace: float = 5.0) -> None:
        """Close stdin (the child's cue to finish), then terminate, then kill: by our pid only."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        for action in (None, proc.terminate, proc.kill):
            if action is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    action()
            try:
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def _name(self) -> str:
        return f"helper process {' '.join(self.argv[1:4])}"

    def _stderr_tail(self) -> str:
        tail = "".join(self._stderr[-15:]).strip()
        return f"\n--- its stderr:\n{tail}" if tail else ""

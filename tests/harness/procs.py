"""Read one-JSON-object-per-line output of a child process, with deadlines.

`p2pmsg listen --json` and the discovery probe both speak this way. A reader
thread drains stdout into a queue, so a test can wait for "the first line
that matches" with a timeout instead of blocking forever on a pipe, and a
failure message can show everything the process said.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

JsonObject = dict[str, Any]


class JsonLines:
    """Collects JSON lines from `proc.stdout` (opened with text=True) in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        if proc.stdout is None:
            raise ValueError("start the process with stdout=subprocess.PIPE, text=True")
        self.proc = proc
        self.seen: list[JsonObject] = []  # every object read so far, in order
        self.garbage: list[str] = []  # lines that were not JSON objects
        self.raw: list[str] = []  # every line as printed (without its newline)
        self._queue: queue.Queue[JsonObject | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line.rstrip("\n"))
            try:
                obj = json.loads(line)
            except ValueError:
                self.garbage.append(line.rstrip("\n"))
                continue
            if isinstance(obj, dict):
                self._queue.put(obj)
            else:
                self.garbage.append(line.rstrip("\n"))
        self._queue.put(None)  # end of output

    def wait_for(
        self, predicate: Callable[[JsonObject], bool], timeout: float, what: str = "a matching line"
    ) -> JsonObject:
        """The next unread line satisfying `predicate` (earlier lines are not rescanned).

        Raises AssertionError with everything the process said on timeout or EOF.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    self._context(f"timed out after {timeout:.1f} s waiting for {what}")
                )
            try:
                obj = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if obj is None:
                self._queue.put(None)  # keep reporting EOF to later callers
                raise AssertionError(self._context(f"output ended before {what}"))
            self.seen.append(obj)
            if predicate(obj):
                return obj

    def wait_for_all(
        self, predicates: dict[str, Callable[[JsonObject], bool]], timeout: float
    ) -> dict[str, JsonObject]:
        """One line per predicate, in any order, counting lines already read."""
        found: dict[str, JsonObject] = {}
        for key, predicate in predicates.items():
            match = next((obj for obj in self.seen if predicate(obj)), None)
            if match is not None:
                found[key] = match
        deadline = time.monotonic() + timeout
        while len(found) < len(predicates):
            missing = {k: p for k, p in predicates.items() if k not in found}
            obj = self.wait_for(
                _any_of(list(missing.values())),
                max(0.0, deadline - time.monotonic()),
                "all of: " + ", ".join(missing),
            )
            found.update({k: obj for k, p in missing.items() if p(obj)})
        return found

    def _context(self, message: str) -> str:
        stderr = ""
        if self.proc.poll() is not None and self.proc.stderr is not None:
            stderr = self.proc.stderr.read() or ""
        return (
            f"{message}\nexit status: {self.proc.poll()}\nlines: {self.seen}\n"
            f"non-JSON: {self.garbage}\nstderr: {stderr[-4000:]}"
        )


def _any_of(predicates: list[Callable[[JsonObject], bool]]) -> Callable[[JsonObject], bool]:
    return lambda obj: any(p(obj) for p in predicates)

"""Outbound connections: who to dial, when, and how often to try again.

A dial target is an address plus what we expect to find there (an advertised
fingerprint, a fingerprint proven there before, or nothing for a fresh
`add-peer`). Failed attempts back off exponentially with jitter, so a peer
that went away is not hammered and a LAN full of nodes that lost the same
peer does not retry in lockstep. Before every attempt the node is asked
whether the target is still wanted (not already connected, still advertised
or holding messages), so the dialer itself holds no policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from p2pmsg.node.net.trust import Expectation

log = logging.getLogger(__name__)

Uniform = Callable[[float, float], float]


@dataclass(frozen=True)
class BackoffPolicy:
    base: float = 0.5
    factor: float = 2.0
    cap: float = 60.0

    def delay(self, failures: int, uniform: Uniform) -> float:
        """Equal jitter: half the exponential step is fixed, half random.

        The fixed half keeps a dead address from being retried almost at once;
        the random half spreads the retries of many nodes apart.
        """
        if failures <= 0:
            return 0.0
        step = min(self.cap, self.base * self.factor ** (failures - 1))
        return step / 2 + uniform(0.0, step / 2)


@dataclass(frozen=True)
class DialTarget:
    host: str
    port: int
    expected_fingerprint: str | None
    source: str  # "advert" | "address" | "manual"

    @property
    def key(self) -> tuple[str, int]:
        return (self.host, self.port)

    def expectation(self) -> Expectation:
        kind = (
            "advert"
            if self.source == "advert"
            else ("address" if self.expected_fingerprint else "none")
        )
        return Expectation(self.expected_fingerprint, kind)  # type: ignore[arg-type]


@dataclass
class _State:
    target: DialTarget
    failures: int = 0
    not_before: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


#: Attempt a connection; True once a trusted session is up.
Connect = Callable[[DialTarget], Awaitable[bool]]
Wanted = Callable[[DialTarget], bool]


class Dialer:
    def __init__(
        self,
        connect: Connect,
        wanted: Wanted,
        clock: Callable[[], float],
        uniform: Uniform,
        *,
        policy: BackoffPolicy | None = None,
        max_concurrent: int = 8,
    ) -> None:
        self._connect = connect
        self._wanted = wanted
        self._clock = clock
        self._uniform = uniform
        self.policy = policy or BackoffPolicy()
        self._states: dict[tuple[str, int], _State] = {}
        self._slots = asyncio.Semaphore(max_concurrent)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="p2pmsg-dialer")

    async def stop(self) -> None:
        tasks = [s.task for s in self._states.values() if s.task is not None]
        if self._task is not None:
            tasks.append(self._task)
            self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def request(self, target: DialTarget, *, delay: float = 0.0) -> None:
        """Dial `target` (after `delay`, or its backoff if later). Idempotent."""
        state = self._states.get(target.key)
        if state is None:
            state = self._states[target.key] = _State(target, not_before=self._clock() + delay)
        else:
            state.target = target  # the newest expectation wins (a fresh advert)
        self._wakeup.set()

    def reset(self, host: str, port: int) -> None:
        """The next attempt may happen at once (e.g. the peer just re-announced itself)."""
        state = self._states.get((host, port))
        if state is not None:
            state.failures = 0
            state.not_before = self._clock()
            self._wakeup.set()

    def failures(self, host: str, port: int) -> int:
        state = self._states.get((host, port))
        return state.failures if state else 0

    @property
    def targets(self) -> list[DialTarget]:
        return [s.target for s in self._states.values()]

    async def _run(self) -> None:
        while True:
            now = self._clock()
            next_due: float | None = None
            # One attempt per identity at a time: a peer on two addresses is dialled on
            # one, and only if that fails on the other.
            busy = {
                s.target.expected_fingerprint
                for s in self._states.values()
                if s.task is not None and s.target.expected_fingerprint
            }
            for key, state in list(self._states.items()):
                if state.task is not None:
                    continue
                if not self._wanted(state.target):
                    del self._states[key]
                    continue
                fp = state.target.expected_fingerprint
                if fp in busy:
                    continue
                if state.not_before <= now:
                    if fp:
                        busy.add(fp)
                    state.task = asyncio.create_task(self._attempt(state))
                else:
                    next_due = (
                        state.not_before if next_due is None else min(next_due, state.not_before)
                    )
            self._wakeup.clear()
            timeout = None if next_due is None else max(0.0, next_due - self._clock())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _attempt(self, state: _State) -> None:
        ok = False
        try:
            async with self._slots:
                if self._wanted(state.target):
                    ok = await self._connect(state.target)
        except Exception:  # a bug in one attempt must not stop the dialer
            log.exception("dial attempt to %s:%s failed", state.target.host, state.target.port)
        finally:
            state.task = None
            if ok:
                # Connected: forget the target; the node asks again if the session drops.
                self._states.pop(state.target.key, None)
            else:
                state.failures += 1
                state.not_before = self._clock() + self.policy.delay(state.failures, self._uniform)
            self._wakeup.set()

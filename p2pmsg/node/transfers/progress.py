"""Progress bookkeeping shared by both directions: rate, throttling, views.

A transfer moves thousands of chunks; neither the event bus nor the store
should see one update per chunk. `Progress` decides when an update is worth
publishing (a state change always; otherwise at most `PUBLISH_INTERVAL`
apart) and when to persist `bytes_done` (at most `PERSIST_INTERVAL` apart:
the receiver's disk, not this hint, is what a resume trusts).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from p2pmsg.node.api import Direction, TransferState, TransferView

PUBLISH_INTERVAL = 0.25
PERSIST_INTERVAL = 1.0
RATE_WINDOW = 3.0

#: States after which a transfer never moves again.
FINAL_STATES: frozenset[TransferState] = frozenset(
    {"declined", "expired", "completed", "failed", "cancelled"}
)


@dataclass
class RateMeter:
    """Bytes per second over the last `window` seconds (a sliding window of samples)."""

    clock: Callable[[], float]
    window: float = RATE_WINDOW
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def reset(self, done: int) -> None:
        self._samples.clear()
        self._samples.append((self.clock(), done))

    def add(self, done: int) -> None:
        now = self.clock()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] > self.window:
            self._samples.popleft()

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


@dataclass
class Progress:
    """The mutable, displayable state of one transfer (either direction)."""

    transfer_id: bytes
    peer: str
    direction: Direction
    name: str
    size: int
    sha256: bytes | None  # known at the end (the sender's FileDone), None until then
    clock: Callable[[], float]
    state: TransferState = "offered"
    bytes_done: int = 0
    path: str | None = None
    error: str | None = None
    created: float = 0.0
    files: int = 0  # a folder offer's number of files (0: a single-file transfer)
    files_done: int = 0
    bundle_id: bytes | None = None  # the folder offer this file belongs to
    _published_at: float = float("-inf")
    _persisted_at: float = float("-inf")
    meter: RateMeter = field(init=False)

    def __post_init__(self) -> None:
        self.meter = RateMeter(self.clock)
        self.meter.reset(self.bytes_done)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def advance(self, done: int) -> None:
        self.bytes_done = done
        self.meter.add(done)

    def due_publish(self) -> bool:
        now = self.clock()
        if now - self._published_at >= PUBLISH_INTERVAL:
            self._published_at = now
            return True
        return False

    def persisted_now(self) -> None:
        """Count the record as just written (a new one): the next progress write is due
        `PERSIST_INTERVAL` from now. A small file of a folder offer then ends before
        any: a store write less per file and side."""
        self._persisted_at = self.clock()

    def due_persist(self) -> bool:
        now = self.clock()
        if now - self._persisted_at >= PERSIST_INTERVAL:
            self._persisted_at = now
            return True
        return False

    def view(self) -> TransferView:
        return TransferView(
            id=self.transfer_id.hex(),
            peer=self.peer,
            direction=self.direction,
            name=self.name,
            size=self.size,
            sha256=self.sha256.hex() if self.sha256 is not None else "",
            state=self.state,
            bytes_done=self.bytes_done,
            rate_bps=self.meter.rate if self.state == "transferring" else 0.0,
            path=self.path,
            error=self.error,
            created=self.created,
            files=self.files,
            files_done=self.files_done,
            bundle_id=self.bundle_id.hex() if self.bundle_id is not None else None,
        )

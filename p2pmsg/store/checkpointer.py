"""WAL checkpoints on a thread of their own, so no commit waits for one.

SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past
`wal_autocheckpoint` pages (1000 by default): that commit copies the WAL into
the main file and fsyncs both, 5-15 ms on this machine's disk, and it happens
every few hundred chat transactions. The store has one writer thread, so every
message behind that commit waited too; it was most of the round trips slower
than 5 ms. SQLite's documentation offers the alternative used here: switch the
automatic checkpoint off on the writing connection and run checkpoints from a
second connection on another thread. A PASSIVE checkpoint never blocks the
writer or the readers; its fsyncs happen here.

A passive checkpoint copies the frames that existed when it started, and
SQLite rewinds the WAL (writes it from its start again) only when a
transaction begins while every frame is copied. A checkpoint's fsyncs take
milliseconds, and a writer that commits every millisecond or so always adds
frames meanwhile, so at chat pace that moment never comes and the file would
grow without bound. Once the WAL holds more than `max_wal_frames`, a RESTART
checkpoint therefore waits for the current transaction, holds the next one off
while it copies the few frames the passive passes left, and makes the next
one rewind. The automatic checkpoint paused the writer every 1,000 pages; this
pauses it every `max_wal_frames` pages, for less work each time.

Durability does not change: a transaction is in the WAL (the kernel's page
cache) once COMMIT returns, whoever copies it into the main file later, and a
kill -9 at any moment leaves a WAL that the next open replays.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from p2pmsg.store.base import open_connection

log = logging.getLogger(__name__)

#: Seconds between checkpoint rounds: the WAL holds about this much traffic.
DEFAULT_INTERVAL = 0.25
#: Past this many WAL frames (4 KiB pages) a round may hold the writer off to rewind.
DEFAULT_MAX_WAL_FRAMES = 8192
#: Passive passes per round; each later one copies only what the writer added meanwhile.
PASSIVE_PASSES = 3


class Checkpointer:
    """Runs `checkpoint_round` every `interval` seconds on a daemon thread until `stop`."""

    def __init__(
        self,
        path: Path,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_wal_frames: int = DEFAULT_MAX_WAL_FRAMES,
    ) -> None:
        if interval <= 0 or max_wal_frames < 1:
            raise ValueError("interval and max_wal_frames must be positive")
        self._path = path
        self._interval = interval
        self._max_wal_frames = max_wal_frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self.restarts = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="p2pmsg-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the round in progress (blocks for at most that round)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            conn = open_connection(self._path, durable=False)
        except Exception:  # the writer's own checkpoint at close still folds the WAL
            log.exception("the checkpoint thread cannot open %s", self._path)
            return
        try:
            while not self._stop.wait(self._interval):
                try:
                    self.checkpoint_round(conn)
                except sqlite3.Error as exc:  # busy or a full disk: try again next round
                    log.warning("background checkpoint failed: %s", exc)
        finally:
            conn.close()

    def checkpoint_round(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """Copy the WAL into the main file; returns (frames in the WAL, frames copied)."""
        self.rounds += 1
        frames = copied = 0
        for _ in range(PASSIVE_PASSES):
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if copied >= frames:
                break
        if frames > self._max_wal_frames:
            self.restarts += 1
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        return frames, copied

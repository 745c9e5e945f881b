"""Sealing a batch of records on two threads, for a suite whose sealing is slow.

Twofish-CBC encryption is sequential within a record, ~190 MB/s on one core,
and every record used to be sealed on the event loop: a Twofish transfer moved
no faster than one core could encrypt. Records are independent, though, so a
batch of file chunks is split: the worker thread seals the first half while
the event loop seals the rest (libgcrypt via ctypes releases the GIL, as do
the `cryptography` AEADs and hashlib), and the session writes the frames in
counter order once both halves are done (session.py holds anything written
meanwhile behind them). One worker for the whole process: the machine this
was measured on has two cores, and the other sessions' batches queue behind.

The protocol core stays sans-I/O: `PeerConnection.send_messages_deferred`
takes each record's counter, key and header in order on the loop, and only
the pure `PendingRecord.seal` runs here. The bytes on the wire are exactly
those of sealing inline (tests/node/test_parallel_sealing.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from p2pmsg.protocol.record import PendingRecord

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="p2pmsg-seal")
        return _executor


def seal_all(records: Sequence[PendingRecord]) -> list[bytes]:
    """The frames of `records` in order, as pieces to write one after the other."""
    parts: list[bytes] = []
    for record in records:
        parts.append(record.head)
        parts.append(record.seal())
    return parts


class SealBatch:
    """One batch of records being sealed: the first half on the worker thread, the
    second on the calling thread (in the constructor, while the worker runs)."""

    __slots__ = ("_first", "_rest", "size")

    def __init__(self, records: Sequence[PendingRecord]) -> None:
        split = len(records) // 2
        self.size = sum(len(r.head) + r.size for r in records)
        self._first: Future[list[bytes]] | None = (
            _worker().submit(seal_all, records[:split]) if split else None
        )
        self._rest = seal_all(records[split:])

    @property
    def done(self) -> bool:
        return self._first is None or self._first.done()

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the worker thread, or at once) when `done`."""
        if self._first is None:
            callback()
        else:
            self._first.add_done_callback(lambda _: callback())

    def parts(self) -> list[bytes]:
        """The frames, in counter order (only once `done`; re-raises a worker's error)."""
        if self._first is None:
            return self._rest
        return self._first.result() + self._rest

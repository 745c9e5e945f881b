"""The sending side of one transfer: chunks read from disk under a window of acknowledgements.

    prepare() --> offered --on_accept(offset)--> transferring
        next_chunks() / on_ack() ... --> all sent + FileDone --> verifying
        --receiver's FileDone--> completed        (receiver's FileCancel --> failed)

Flow control: at most `window` chunks are unacknowledged at any time, so a
transfer holds at most `window * chunk_size` bytes in memory and in the
session's queues, whatever the file size, and a chat message written into the
same session waits behind at most that much data. Acks are cumulative byte
offsets; the receiver writes before it acks, so an acknowledged offset is one
it can resume from.

The file is read in place (there is no staging copy to clean up). Its size and
modification time are remembered when it is hashed for the offer; if either
changes before the last chunk, the transfer stops with a clear message rather
than sending bytes that would fail the receiver's hash check. After a restart
the whole file is hashed again for the same reason.

Blocking methods (`prepare`, `open_at`, `next_chunks`) touch the disk and run
in a worker thread; the rest are cheap bookkeeping for the event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from p2pmsg.errors import TransferError
from p2pmsg.node.transfers.safe_name import safe_name
from p2pmsg.protocol.messages import FileChunk, FileDone, FileOffer

CHUNK_SIZE = 64 * 1024
#: Chunks in flight: 2 MiB at the default chunk size (the protocol allows 4 MiB,
#: `manager.MAX_UNACKED_BYTES`). Covers a receiver's write batch (1 MiB) plus its
#: ack's round trip. Measured on loopback with the pipelined receiver: 1, 2 and
#: 4 MiB stream alike, 4 MiB costs the receiver more CPU; 2 MiB leaves headroom
#: for a LAN's longer round trip while memory stays flat and small.
DEFAULT_WINDOW = 32
HASH_READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class SourceIdentity:
    """Enough of a stat result to notice that a file changed under us."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> SourceIdentity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


def hash_file(path: Path) -> tuple[bytes, SourceIdentity]:
    """SHA-256 of a regular file and its identity, read once in large blocks (blocking)."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror}") from None
    try:
        before = os.fstat(fd)
        if not _is_regular(before):
            raise TransferError(f"{path} is not a regular file")
        while block := os.read(fd, HASH_READ_SIZE):
            digest.update(block)
        after = os.fstat(fd)
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if SourceIdentity.of(before) != SourceIdentity.of(after):
        raise TransferError(f"{path} changed while it was being hashed")
    return digest.digest(), SourceIdentity.of(after)


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


class OutgoingTransfer:
    """One file on its way out. Not thread-safe: one caller (thread) at a time."""

    def __init__(self, transfer_id: bytes, peer: str, path: Path, name: str, size: int,
                 sha256: bytes, source: SourceIdentity, *, chunk_size: int = CHUNK_SIZE,
                 window: int = DEFAULT_WINDOW) -> None:
        if chunk_size < 1 or window < 1:
            raise ValueError("chunk_size and window must be positive")
        self.transfer_id = transfer_id
        self.peer = peer
        self.path = path
        self.name = name
        self.size = size
        self.sha256 = sha256
        self.source = source
        self.chunk_size = chunk_size
        self.window = window
        self.start_offset = 0  # where the receiver asked us to start (non-zero: resumed)
        self.next_offset = 0  # the next byte to send
        self.acked = 0  # every byte before this one is written on the receiver's disk
        self.done_sent = False
        self._fd: int | None = None

    @classmethod
    def prepare(cls, transfer_id: bytes, peer: str, path: Path, *, name: str | None = None,
                chunk_size: int = CHUNK_SIZE, window: int = DEFAULT_WINDOW,
                expected_sha256: bytes | None = None) -> OutgoingTransfer:
        """Hash `path` for an offer (blocking). With `expected_sha256` (a resume after a
        restart) a file whose content changed since the offer is refused."""
        path = path.resolve()
        digest, source = hash_file(path)
        if expected_sha256 is not None and digest != expected_sha256:
            raise TransferError(f"{path.name} changed since it was offered; offer it again")
        # The offered name is made safe here too: a file on our disk may be called
        # "a\nb" or be 255 bytes of UTF-8 that the protocol would refuse to carry.
        return cls(transfer_id, peer, path, safe_name(name or path.name), source.size, digest,
                   source,
                   chunk_size=chunk_size, window=window)

    def offer(self) -> FileOffer:
        return FileOffer(self.transfer_id, self.name, self.size, self.sha256, self.chunk_size)

    # --- accepted ---------------------------------------------------------------------------

    def open_at(self, offset: int) -> None:
        """The receiver accepted from `offset` (blocking: opens the source file)."""
        if not 0 <= offset <= self.size:
            raise TransferError(f"the receiver asked to resume at {offset}, past the end")
        self.close()
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:  # the peer may hear this message: the name, not the path
            raise TransferError(f"the sender cannot read {self.name}: {exc.strerror}") from None
        self._fd = fd
        self._check_unchanged()
        self.start_offset = self.next_offset = self.acked = offset
        self.done_sent = False

    def _check_unchanged(self) -> None:
        assert self._fd is not None
        if SourceIdentity.of(os.fstat(self._fd)) != self.source:
            self.close()
            raise TransferError(f"{self.name} changed while it was being sent; offer it again")

    @property
    def in_flight(self) -> int:
        """Chunks sent but not yet acknowledged (rounded up)."""
        return -(-(self.next_offset - self.acked) // self.chunk_size)

    @property
    def window_free(self) -> int:
        """Chunks that may be sent right now."""
        if self.next_offset >= self.size:
            return 0
        return max(0, self.window - self.in_flight)

    @property
    def all_sent(self) -> bool:
        return self.next_offset >= self.size

    def next_chunks(self, max_n: int) -> list[FileChunk | FileDone]:
        """Up to `max_n` chunks within the window, then `FileDone` once (blocking: reads)."""
        fd = self._fd
        if fd is None:
            raise TransferError("the transfer is not open")
        out: list[FileChunk | FileDone] = []
        n = min(max_n, self.window_free)
        if n:
            self._check_unchanged()
        for _ in range(n):
            if self.next_offset >= self.size:
                break
            length = min(self.chunk_size, self.size - self.next_offset)
            try:
                data = os.pread(fd, length, self.next_offset)
            except OSError as exc:
                raise TransferError(f"cannot read {self.name}: {exc.strerror}") from None
            if len(data) != length:
                raise TransferError(f"{self.name} shrank while it was being sent")
            out.append(FileChunk(self.transfer_id, self.next_offset, data))
            self.next_offset += length
        if self.all_sent and not self.done_sent:
            out.append(FileDone(self.transfer_id))
            self.done_sent = True
        return out

    def on_ack(self, offset: int) -> bool:
        """A cumulative ack; False (ignored) when it does not move forward."""
        if offset > self.next_offset:
            raise TransferError(f"the receiver acknowledged {offset} bytes, "
                                f"only {self.next_offset} were sent")
        if offset <= self.acked:
            return False
        self.acked = offset
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

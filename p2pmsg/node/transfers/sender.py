"""The sending side of one transfer: chunks read from disk under a window of acknowledgements.

    prepare() --> offered --on_accept(offset)--> transferring
        next_chunks() / on_ack() ... --> all sent + FileDone(sha256) --> verifying
        --receiver's FileDone--> completed        (receiver's FileCancel --> failed)

Flow control: at most `window` chunks are unacknowledged at any time, so a
transfer holds at most `window * chunk_size` bytes in memory and in the
session's queues, whatever the file size, and a chat message written into the
same session waits behind at most that much data. Acks are cumulative byte
offsets; the receiver writes before it acks, so an acknowledged offset is one
it can resume from.

The whole-file SHA-256 is computed as the file is read (protocol version 2
sends it in `FileDone`, not in the offer): the first byte moves without a
pass over the file first. Every byte read for a chunk is hashed exactly once,
in order; on `open_at(offset)` (a resume) the hash starts again and the first
`offset` bytes are re-read from the file, so the digest always covers the
whole file as this side read it, and the receiver, which re-hashes its
partial file the same way, compares like with like. A file whose prefix
changed between the two reads fails that comparison.

The file is read in place (there is no staging copy to clean up). Its size,
modification time and inode are remembered when it is offered; if any of them
changes before the last chunk, the transfer stops with a clear message rather
than sending bytes that would fail the receiver's hash check. After a restart
a file of another size is refused the same way.

Blocking methods (`prepare`, `open_at`, `next_chunks`, `absorb`) touch the
disk or hash and run in a worker thread; the rest are cheap bookkeeping for
the event loop. The exception is `read_batch(wait=False)`: on Linux it reads
with RWF_NOWAIT, which takes what the page cache holds and fails rather than
wait for the disk, so the event loop may call it; it leaves the hashing of
what it read to the caller (`take_unhashed`, then `absorb` in a thread), so
no hashing happens on the event loop. A thread hop per batch (two wake-ups,
each up to a few milliseconds on a loaded machine) cost more than the read.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from p2pmsg.errors import TransferError
from p2pmsg.node.transfers.safe_name import safe_name
from p2pmsg.protocol.limits import MAX_CHUNK_SIZE
from p2pmsg.protocol.messages import FileChunk, FileDone, FileOffer

#: The chunk size this side offers: the protocol's largest (limits.MAX_CHUNK_SIZE), as
#: each record costs both sides Python work whatever its size.
CHUNK_SIZE = MAX_CHUNK_SIZE
#: Bytes in flight the default window is meant to hold: 2 MiB (the protocol allows
#: 4 MiB, `limits.MAX_UNACKED_BYTES`). Covers a receiver's write batch (1 MiB) plus
#: its ack's round trip. Measured on loopback with the pipelined receiver (64 KiB
#: chunks): 1, 2 and 4 MiB stream alike, 4 MiB costs the receiver more CPU; 2 MiB
#: leaves headroom for a LAN's longer round trip while memory stays flat and small.
WINDOW_BYTES = 2 * 1024 * 1024
#: Chunks in flight (the window counts chunks): 10 of 192 KiB, 1.875 MiB, the whole
#: chunks that fit `WINDOW_BYTES` (with 64 KiB chunks it was 32, exactly 2 MiB).
DEFAULT_WINDOW = WINDOW_BYTES // CHUNK_SIZE
HASH_READ_SIZE = 1024 * 1024
#: preadv2 flag: return EAGAIN instead of waiting for the disk (Linux 4.14+; else None).
_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None) if hasattr(os, "preadv") else None
#: errors after which a no-wait read is given up for this file (the filesystem cannot do it)
_NOWAIT_UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)


@dataclass(frozen=True)
class SourceIdentity:
    """Enough of a stat result to notice that a file changed under us."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> SourceIdentity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


def identify_file(path: Path) -> SourceIdentity:
    """The identity of a regular file we can open for reading (blocking: open, fstat)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if not _is_regular(st):
        raise TransferError(f"{path} is not a regular file")
    return SourceIdentity.of(st)


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


class OutgoingTransfer:
    """One file on its way out. Not thread-safe: one caller (thread) at a time."""

    def __init__(
        self,
        transfer_id: bytes,
        peer: str,
        path: Path,
        name: str,
        size: int,
        source: SourceIdentity,
        *,
        chunk_size: int = CHUNK_SIZE,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if chunk_size < 1 or window < 1:
            raise ValueError("chunk_size and window must be positive")
        self.transfer_id = transfer_id
        self.peer = peer
        self.path = path
        self.name = name
        self.size = size
        self.sha256: bytes | None = None  # the whole file's, once every byte was read
        self.source = source
        self.chunk_size = chunk_size
        self.window = window
        self.start_offset = 0  # where the receiver asked us to start (non-zero: resumed)
        self.next_offset = 0  # the next byte to send
        self.acked = 0  # every byte before this one is written on the receiver's disk
        self.done_sent = False
        self.bundle_id: bytes | None = None  # one file of this folder offer (section 7.2)
        self._fd: int | None = None
        self._nowait = _RWF_NOWAIT is not None  # cleared if this file's filesystem refuses it
        self._read_buffer = bytearray()  # reused by no-wait reads (fresh memory faults in)
        self._hash = hashlib.sha256()  # of bytes [0, next_offset) once `_unhashed` is absorbed
        self._unhashed: list[bytes] = []  # read for chunks, not yet in `_hash` (in order)

    @classmethod
    def prepare(
        cls,
        transfer_id: bytes,
        peer: str,
        path: Path,
        *,
        name: str | None = None,
        chunk_size: int = CHUNK_SIZE,
        window: int = DEFAULT_WINDOW,
        expected_size: int | None = None,
    ) -> OutgoingTransfer:
        """Check that `path` is a readable regular file and note its identity (blocking,
        but no read of the content: the hash is made while the chunks are read). With
        `expected_size` (a resume after a restart) a file of another size is refused."""
        path = path.resolve()
        source = identify_file(path)
        if expected_size is not None and source.size != expected_size:
            raise TransferError(f"{path.name} changed since it was offered; offer it again")
        # The offered name is made safe here too: a file on our disk may be called
        # "a\nb" or be 255 bytes of UTF-8 that the protocol would refuse to carry.
        return cls(
            transfer_id,
            peer,
            path,
            safe_name(name or path.name),
            source.size,
            source,
            chunk_size=chunk_size,
            window=window,
        )

    def offer(self) -> FileOffer:
        return FileOffer(self.transfer_id, self.name, self.size, self.chunk_size)

    @classmethod
    def open_fresh(
        cls,
        transfer_id: bytes,
        peer: str,
        path: Path,
        name: str,
        size: int,
        *,
        window: int = DEFAULT_WINDOW,
    ) -> OutgoingTransfer:
        """A file of an accepted folder offer that starts now, from byte 0 (section 7.2:
        its chunks follow its offer without waiting): opened once and checked against
        the size offered, with no `prepare` (its path was resolved and its name made
        safe when the offer was made) and no separate `open_at(0)`. Blocking, but one
        open and one fstat: cheaper on the loop than a thread hop, per small file."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise TransferError(f"cannot read {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not _is_regular(st):
                raise TransferError(f"{path} is not a regular file")
            if st.st_size != size:
                raise TransferError(f"{path.name} changed since it was offered; offer it again")
        except BaseException:
            os.close(fd)
            raise
        sender = cls(transfer_id, peer, path, name, size, SourceIdentity.of(st), window=window)
        sender._fd = fd
        return sender

    # --- accepted ---------------------------------------------------------------------------

    def open_at(self, offset: int) -> None:
        """The receiver accepted from `offset` (blocking: opens the source file and
        hashes its first `offset` bytes, the part the receiver already holds)."""
        if not 0 <= offset <= self.size:
            raise TransferError(f"the receiver asked to resume at {offset}, past the end")
        self.close()
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:  # the peer may hear this message: the name, not the path
            raise TransferError(f"the sender cannot read {self.name}: {exc.strerror}") from None
        self._fd = fd
        self._check_unchanged()
        if hasattr(os, "posix_fadvise"):  # read in order: let the kernel read ahead further
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        self._hash = hashlib.sha256()
        self._unhashed = []
        self.sha256 = None
        self._rehash_prefix(fd, offset)
        self.start_offset = self.next_offset = self.acked = offset
        self.done_sent = False

    def _rehash_prefix(self, fd: int, length: int) -> None:
        """Hash [0, length) as the file holds it now (a resume): one sequential read."""
        done = 0
        try:
            while done < length:
                block = os.pread(fd, min(HASH_READ_SIZE, length - done), done)
                if not block:
                    raise TransferError(f"{self.name} shrank while it was being sent")
                self._hash.update(block)
                done += len(block)
        except OSError as exc:
            raise TransferError(f"cannot read {self.name}: {exc.strerror}") from None

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
        """Up to `max_n` chunks within the window, hashed, then `FileDone` once (blocking:
        reads and hashes; for one caller that does both in the same thread)."""
        out: list[FileChunk | FileDone] = []
        out.extend(self._read_batch(max_n, wait=True) or ())
        self.absorb(self.take_unhashed())
        if self.all_sent and not self.done_sent:
            out.append(self.done_message())
        return out

    def next_chunks_cached(self, max_n: int) -> list[FileChunk | FileDone] | None:
        """`next_chunks` reading only what the page cache holds: None (nothing taken,
        nothing changed) means the read would have waited for the disk (or this platform
        cannot tell). It hashes in the calling thread: the event loop uses `read_batch`."""
        batch = self._read_batch(max_n, wait=False)
        if batch is None:
            return None
        out: list[FileChunk | FileDone] = list(batch)
        self.absorb(self.take_unhashed())
        if self.all_sent and not self.done_sent:
            out.append(self.done_message())
        return out

    def read_batch(self, max_n: int, *, wait: bool) -> list[FileChunk] | None:
        """Up to `max_n` chunks within the window, not hashed: their data waits in
        `take_unhashed()` for `absorb` (in a thread), and `done_message()` comes once
        everything is sent and absorbed. `wait=False` reads only the page cache and may
        return None (nothing taken); `wait=True` blocks on the disk."""
        return self._read_batch(max_n, wait=wait)

    def _read_batch(self, max_n: int, *, wait: bool) -> list[FileChunk] | None:
        fd = self._fd
        if fd is None:
            raise TransferError("the transfer is not open")
        out: list[FileChunk] = []
        n = min(max_n, self.window_free)
        if n:
            if not wait and not self._nowait:
                return None
            self._check_unchanged()
            lengths: list[int] = []
            offset = self.next_offset
            while len(lengths) < n and offset < self.size:
                lengths.append(min(self.chunk_size, self.size - offset))
                offset += lengths[-1]
            datas = self._read(fd, lengths) if wait else self._read_cached(fd, lengths)
            if datas is None:
                return None
            for data in datas:
                # Hashed as read, before `_chunk`: the digest is of the file, not of what
                # a (test's) corrupting seam makes of it.
                self._unhashed.append(data)
                out.append(self._chunk(self.next_offset, data))
                self.next_offset += len(data)
        return out

    def take_unhashed(self) -> list[bytes]:
        """The data read since the last call, in file order, for `absorb` (cheap)."""
        datas, self._unhashed = self._unhashed, []
        return datas

    def absorb(self, datas: list[bytes]) -> None:
        """Add data from `take_unhashed` to the whole-file hash, in the order taken
        (blocking CPU work: hashlib releases the GIL for it; one thread at a time)."""
        for data in datas:
            self._hash.update(data)

    def done_message(self) -> FileDone:
        """The end of the stream: `FileDone` with the digest of the whole file as read.
        Only once every byte is sent and its data absorbed."""
        if not self.all_sent or self._unhashed:
            raise TransferError("the transfer is not finished reading and hashing")
        self.sha256 = self._hash.digest()
        self.done_sent = True
        return FileDone(self.transfer_id, self.sha256)

    def _chunk(self, offset: int, data: bytes) -> FileChunk:
        """The message for `data` read at `offset` (the one seam tests corrupt chunks at)."""
        return FileChunk(self.transfer_id, offset, data)

    def _read(self, fd: int, lengths: list[int]) -> list[bytes]:
        out = []
        offset = self.next_offset
        for length in lengths:
            try:
                data = os.pread(fd, length, offset)
            except OSError as exc:
                raise TransferError(f"cannot read {self.name}: {exc.strerror}") from None
            if len(data) != length:
                raise TransferError(f"{self.name} shrank while it was being sent")
            out.append(data)
            offset += length
        return out

    def _read_cached(self, fd: int, lengths: list[int]) -> list[bytes] | None:
        """One preadv2(RWF_NOWAIT) into a reused buffer; None unless all of it was cached.

        A short read (partly cached, or a shrunk file) is also None: the blocking
        read that follows tells the two apart and reports a shrunk file."""
        assert _RWF_NOWAIT is not None
        total = sum(lengths)
        if len(self._read_buffer) < total:
            self._read_buffer = bytearray(total)
        with memoryview(self._read_buffer) as view:
            try:
                got = os.preadv(fd, [view[:total]], self.next_offset, _RWF_NOWAIT)
            except BlockingIOError:
                return None
            except OSError as exc:
                if exc.errno in _NOWAIT_UNSUPPORTED:
                    self._nowait = False
                return None  # anything else: the blocking read will report it properly
            if got != total:
                return None
            out = []
            start = 0
            for length in lengths:
                out.append(bytes(view[start : start + length]))
                start += length
        return out

    def on_ack(self, offset: int) -> bool:
        """A cumulative ack; False (ignored) when it does not move forward."""
        if offset > self.next_offset:
            raise TransferError(
                f"the receiver acknowledged {offset} bytes, only {self.next_offset} were sent"
            )
        if offset <= self.acked:
            return False
        self.acked = offset
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

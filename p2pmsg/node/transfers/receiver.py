"""The receiving side of one transfer: a small state machine with blocking disk methods.

Life of an incoming file:

    offered --accept()--> transferring --write()...--> finish() --> completed
                                 \\--(ENOSPC, bad chunk, cancel)--> failed, partial removed

Bytes go to a private partial file, `<downloads>/.partial/<transfer id>.part`
(directory 0700, file 0600), on the same filesystem as the destination so the
final move is an atomic rename. The SHA-256 is computed as the bytes are
written; only when it equals the digest the sender's `FileDone` carries (its
hash of the file as it read it: protocol version 2 sends it at the end, not in
the offer) does the file move to its safe name in the downloads folder.
Nothing is ever given execute permission.

Resume: the partial file itself is the record of progress. After a dropped
session or a restart, `accept()` finds it, cuts it back to a whole number of
chunks, re-hashes that prefix (one sequential read, far cheaper than
re-sending it) and answers with that offset. The store's `bytes_done` is only
a progress hint for the UI; the disk is the truth, so a crash between a write
and a progress update can never make us skip bytes.

Every method that touches the disk is blocking and meant to run in a worker
thread (the manager uses one executor per transfer so writes stay ordered).
Methods raise `p2pmsg.errors.TransferError` subclasses with messages fit to
show both users; after any error the partial file is already gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from p2pmsg.errors import (
    DiskFullError,
    TransferError,
    TransferIntegrityError,
    TransferRejectedError,
)
from p2pmsg.node.transfers.folder import place_in_folder
from p2pmsg.node.transfers.safe_name import create_unique, extension_allowed, safe_name

PARTIAL_DIR = ".partial"
#: Tries to make the partial folder and open the partial file in it (see `open`).
PARTIAL_DIR_ATTEMPTS = 5
DEFAULT_MAX_SIZE = 4 * 1024**3
#: Room we leave on the disk after the file, so a transfer cannot fill it to the last byte.
DEFAULT_MIN_FREE_AFTER = 32 * 1024**2
HASH_READ_SIZE = 1024 * 1024
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_FADV_DONTNEED: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)


@dataclass(frozen=True)
class ReceivePolicy:
    """What this node accepts. `allowed_extensions=None` means any extension."""

    downloads: Path
    max_size: int = DEFAULT_MAX_SIZE
    min_free_after: int = DEFAULT_MIN_FREE_AFTER
    allowed_extensions: frozenset[str] | None = None


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged process may still write under `directory`."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def _unlink_quietly(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


#: Held while the partial folder is made and a partial file opened in it, and while the
#: empty folder is removed: in one process the two never interleave (a folder offer's
#: small files finish and start back to back, on several threads). Another process on
#: the same downloads folder is covered by `open`'s retries.
_PARTIAL_DIR_LOCK = threading.Lock()


def _remove_if_empty(partial_dir: Path) -> None:
    """The private partial folder goes once the last partial file in it went: a user's
    downloads folder keeps no empty `.partial/` (it is made again when needed)."""
    with _PARTIAL_DIR_LOCK, contextlib.suppress(OSError):  # not empty, or already gone
        partial_dir.rmdir()


class IncomingTransfer:
    """One file on its way in. Not thread-safe: one caller (thread) at a time."""

    def __init__(
        self,
        transfer_id: bytes,
        peer: str,
        offered_name: str,
        size: int,
        chunk_size: int,
    ) -> None:
        self.transfer_id = transfer_id
        self.peer = peer
        self.offered_name = offered_name
        self.name = safe_name(offered_name)  # what the user sees and what lands on disk
        self.size = size
        self.sha256: bytes | None = None  # the verified digest, once finished
        self.chunk_size = chunk_size
        self.bytes_done = 0  # written to the partial file and hashed
        self.partial_path: Path | None = None
        self.final_path: Path | None = None
        #: One file of a folder offer: its accepted offer's folder and the file's safe
        #: components under it (manifest.py); None: a single file, into the downloads folder
        self.dest: tuple[Path, tuple[str, ...]] | None = None
        self._fd: int | None = None
        self._hash = hashlib.sha256()

    # --- before accepting -------------------------------------------------------------------

    def check(self, policy: ReceivePolicy, reserved: int = 0) -> None:
        """Raise `TransferRejectedError` if `policy` refuses this offer (blocking: statvfs).

        `reserved`: bytes other accepted transfers still have to write to the same
        disk. Offers are checked against the free space *together*: three 60 MiB
        offers with 96 MiB free were once all accepted, each checked alone."""
        if self.size > policy.max_size:
            raise TransferRejectedError(
                f"{self.name} is {human_size(self.size)}, over the receiver's limit of "
                f"{human_size(policy.max_size)}"
            )
        if not extension_allowed(self.name, policy.allowed_extensions):
            raise TransferRejectedError(
                f"the receiver does not accept this type of file ({self.name})"
            )
        try:
            policy.downloads.mkdir(parents=True, exist_ok=True)
            available = (
                free_bytes(policy.downloads) + self._existing_partial_bytes(policy) - reserved
            )
        except OSError as exc:
            raise TransferRejectedError(
                f"the receiver's downloads folder is unusable: {exc.strerror}"
            ) from None
        needed = self.size + policy.min_free_after
        if available < needed:
            held = f" beside {human_size(reserved)} held for other files" if reserved else ""
            raise TransferRejectedError(
                f"not enough free space on the receiver for {self.name}: needs "
                f"{human_size(needed)} including a reserve, {human_size(max(0, available))} "
                f"free{held}"
            )

    def _partial_for(self, downloads: Path) -> Path:
        # The transfer id is hex, never the offered name: nothing of the peer's choosing
        # reaches a path until the final, sanitised name.
        return downloads / PARTIAL_DIR / f"{self.transfer_id.hex()}.part"

    def _existing_partial_bytes(self, policy: ReceivePolicy) -> int:
        try:
            return self._partial_for(policy.downloads).stat().st_size
        except FileNotFoundError:
            return 0

    # --- accept / resume --------------------------------------------------------------------

    def open(self, policy: ReceivePolicy, *, checked: bool = False) -> int:
        """Open (or reopen, to resume) the partial file; return the offset to ask for.
        `checked`: the policy and the free space were checked already (a file of an
        accepted folder offer: the offer was checked as a whole).

        Blocking: may re-hash up to `size` bytes of an existing partial file.
        """
        if not checked:
            self.check(policy)
        partial_dir = policy.downloads / PARTIAL_DIR
        path = self._partial_for(policy.downloads)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        # A few times at most: another transfer that just finished may remove the (then
        # empty) folder between our mkdir and our open, or between mkdir's EEXIST and its
        # own check that the folder is there (FileExistsError); a folder offer's small
        # files finishing back to back made that race a real one.
        for attempt in range(1, PARTIAL_DIR_ATTEMPTS + 1):
            try:
                with _PARTIAL_DIR_LOCK:
                    partial_dir.mkdir(mode=0o700, exist_ok=True)
                    st = os.lstat(partial_dir)  # gone again (another process): retried
                    if not stat.S_ISDIR(st.st_mode):  # a symlink or a file planted there
                        raise TransferRejectedError(f"{partial_dir} is not a private directory")
                    os.chmod(partial_dir, 0o700)
                    fd = os.open(path, flags, 0o600)
                break
            except (FileNotFoundError, FileExistsError):
                if attempt == PARTIAL_DIR_ATTEMPTS:
                    raise TransferRejectedError(
                        f"cannot create the partial file: {partial_dir} keeps disappearing"
                    ) from None
            except OSError as exc:
                raise TransferRejectedError(
                    f"cannot create the partial file: {exc.strerror}"
                ) from None
        self._fd, self.partial_path = fd, path
        try:
            os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
            existing = os.fstat(fd).st_size
            # Whole chunks only: a chunk cut short by a crash is simply asked for again.
            resume = min(existing, self.size) // self.chunk_size * self.chunk_size
            if resume != existing:
                os.ftruncate(fd, resume)
            self._hash = hashlib.sha256()
            self._rehash_prefix(fd, resume)
            os.lseek(fd, resume, os.SEEK_SET)
        except OSError as exc:
            self.discard()
            raise TransferError(f"cannot reopen the partial file: {exc.strerror}") from None
        self.bytes_done = resume
        return resume

    def _rehash_prefix(self, fd: int, length: int) -> None:
        done = 0
        while done < length:
            block = os.pread(fd, min(HASH_READ_SIZE, length - done), done)
            if not block:
                raise TransferError("the partial file shrank while it was re-read")
            self._hash.update(block)
            done += len(block)

    # --- data -------------------------------------------------------------------------------

    def expect(self, offset: int, length: int) -> None:
        """Check a chunk's place before it is queued (cheap; safe on the event loop)."""
        if offset + length > self.size:
            raise TransferError(f"the sender sent data past the end of {self.name}")

    def write(self, chunks: Sequence[tuple[int, bytes]]) -> int:
        """Append chunks (offset, data) in order; return the new `bytes_done`.

        Chunks must continue exactly where the file ends: TCP keeps order and the
        sender resumes from our offset, so a gap or an overlap is a broken peer.
        A full disk removes the partial file and raises `DiskFullError`.

        The whole batch is checked first, then written and hashed as one buffer:
        one `write` and one `update` per batch rather than per chunk. Each of them
        releases the GIL, and getting it back from the busy event loop can take up
        to the interpreter's switch interval (5 ms), so per-chunk calls made a
        1 MiB batch cost 5 ms instead of 1.5 (profiled on a 256 MiB transfer).
        """
        fd = self._fd
        if fd is None:
            raise TransferError("the transfer is not open for writing")
        end = self.bytes_done
        for offset, data in chunks:
            if offset != end:
                self.discard()
                raise TransferError(f"the sender sent bytes at offset {offset}, expected {end}")
            end += len(data)
        if end > self.size:
            self.discard()
            raise TransferError(f"the sender sent data past the end of {self.name}")
        if not chunks:
            return self.bytes_done
        data = chunks[0][1] if len(chunks) == 1 else b"".join(chunk for _, chunk in chunks)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            self.discard()
            if exc.errno in _NO_SPACE:
                raise DiskFullError(
                    f"the receiver's disk is full; {self.name} was not saved"
                ) from None
            raise TransferError(
                f"the receiver could not write {self.name}: {exc.strerror}"
            ) from None
        self._hash.update(data)
        self.bytes_done = end
        return end

    def start_writeback(self, start: int, end: int) -> None:
        """Have the kernel start writing [start, end) to disk, and drop what of it is
        already clean from the page cache (blocking only for the I/O submission).

        Called from a thread beside the writer's, for ranges written a while ago
        (incoming.py): by the end the file is mostly on disk, so the fsync before
        the final rename, ~0.08 s per 256 MiB with the whole transfer waiting on
        it, has little left to do, and the file's cached footprint stays small (on
        a VM fresh page-cache pages fault in the host on first touch)."""
        fd = self._fd
        if fd is not None and _FADV_DONTNEED is not None:
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, start, end - start, _FADV_DONTNEED)

    # --- the end ----------------------------------------------------------------------------

    def finish(self, downloads: Path, sha256: bytes) -> Path:
        """Verify the whole-file SHA-256 against the sender's `sha256` (from its
        `FileDone`) and move the file to a fresh safe name.

        On a mismatch the partial file is removed and `TransferIntegrityError` raised.
        """
        fd = self._fd
        if fd is None or self.partial_path is None:
            raise TransferError("the transfer is not open")
        if self.bytes_done != self.size:
            self.discard()
            raise TransferError(
                f"the sender finished {self.name} after {self.bytes_done} of {self.size} bytes"
            )
        digest = self._hash.digest()
        if not hmac.compare_digest(digest, sha256):
            self.discard()
            raise TransferIntegrityError(
                f"{self.name} failed its integrity check (SHA-256 mismatch) and was deleted"
            )
        final: Path | None = None
        try:
            os.fsync(fd)  # the rename below must not publish a file whose bytes are not on disk
            os.close(fd)
            self._fd = None
            if self.dest is not None:
                final = place_in_folder(self.dest[0], self.dest[1], self.partial_path)
            else:
                final, placeholder = create_unique(downloads, self.name, mode=0o600)
                os.close(placeholder)
                # Replacing our own empty placeholder: the name was claimed with O_EXCL
                # above, so this rename can never clobber somebody else's file.
                os.replace(self.partial_path, final)
        except OSError as exc:
            self.discard()
            _unlink_quietly(final)
            if exc.errno in _NO_SPACE:
                raise DiskFullError(
                    f"the receiver's disk is full; {self.name} was not saved"
                ) from None
            raise TransferError(f"could not save {self.name}: {exc.strerror}") from None
        _remove_if_empty(self.partial_path.parent)
        self.partial_path = None
        self.final_path = final
        self.sha256 = digest
        return final

    def close(self) -> None:
        """Close the partial file but keep it, to resume later (a dropped session)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Close and delete the partial file (failure, cancel, decline). Idempotent."""
        self.close()
        _unlink_quietly(self.partial_path)
        if self.partial_path is not None:
            _remove_if_empty(self.partial_path.parent)
        self.partial_path = None


def discard_partial(downloads: Path, transfer_id: bytes) -> None:
    """Remove a stale partial file of a transfer we no longer have in memory."""
    _unlink_quietly(downloads / PARTIAL_DIR / f"{transfer_id.hex()}.part")
    _remove_if_empty(downloads / PARTIAL_DIR)

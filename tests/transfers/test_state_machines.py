"""The sender and receiver state machines joined directly, on real files (no node, no network)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from p2pmsg.errors import (
    TransferError,
    TransferIntegrityError,
    TransferRejectedError,
)
from p2pmsg.node.transfers.receiver import PARTIAL_DIR, IncomingTransfer, ReceivePolicy
from p2pmsg.node.transfers.sender import CHUNK_SIZE, OutgoingTransfer
from p2pmsg.protocol.messages import FileChunk, FileDone

PEER = "ab" * 32


def _source(tmp_path: Path, size: int, name: str = "src.bin") -> Path:
    path = tmp_path / "out" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def _pair(
    tmp_path: Path, src: Path, *, window: int = 4, policy: ReceivePolicy | None = None
) -> tuple[OutgoingTransfer, IncomingTransfer, ReceivePolicy]:
    sender = OutgoingTransfer.prepare(os.urandom(16), PEER, src, window=window)
    offer = sender.offer()
    receiver = IncomingTransfer(offer.transfer_id, PEER, offer.name, offer.size, offer.chunk_size)
    return sender, receiver, policy or ReceivePolicy(tmp_path / "dl", min_free_after=0)


def _run(
    sender: OutgoingTransfer,
    receiver: IncomingTransfer,
    policy: ReceivePolicy,
    stop_after: int | None = None,
) -> Path | None:
    """Drive both machines to the end (or until `stop_after` bytes are acked)."""
    sender.open_at(receiver.open(policy))
    # Private while partial files are in it (it goes once the last one went).
    assert stat.S_IMODE((policy.downloads / PARTIAL_DIR).stat().st_mode) == 0o700
    while True:
        batch = sender.next_chunks(max_n=3)
        assert sender.in_flight <= sender.window  # memory stays bounded by the window
        chunks = [(m.offset, m.data) for m in batch if isinstance(m, FileChunk)]
        assert all(data for _, data in chunks)  # the protocol forbids empty chunks
        if chunks:
            sender.on_ack(receiver.write(chunks))
        if stop_after is not None and sender.acked >= stop_after:
            receiver.close()
            return None
        if done := [m for m in batch if isinstance(m, FileDone)]:
            return receiver.finish(policy.downloads, done[0].sha256)


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 7])
def test_sizes_arrive_verified_and_private(tmp_path: Path, size: int) -> None:
    src = _source(tmp_path, size)
    sender, receiver, policy = _pair(tmp_path, src)
    final = _run(sender, receiver, policy)
    assert final is not None and final.parent == policy.downloads
    assert final.read_bytes() == src.read_bytes()
    assert hashlib.sha256(final.read_bytes()).digest() == sender.sha256
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert [p.name for p in policy.downloads.iterdir()] == [final.name]  # no empty .partial/


def test_resume_rehashes_the_partial_and_continues(tmp_path: Path) -> None:
    src = _source(tmp_path, 10 * CHUNK_SIZE + 123)
    sender, receiver, policy = _pair(tmp_path, src)
    assert _run(sender, receiver, policy, stop_after=4 * CHUNK_SIZE) is None
    # A crash can leave a half-written chunk behind: it must be cut off, not trusted.
    partial = policy.downloads / PARTIAL_DIR / f"{receiver.transfer_id.hex()}.part"
    with partial.open("ab") as f:
        f.write(b"garbage")
    # Both sides restart from scratch: fresh objects, the same ids.
    again = OutgoingTransfer.prepare(sender.transfer_id, PEER, src, expected_size=sender.size)
    fresh = IncomingTransfer(receiver.transfer_id, PEER, "src.bin", again.size, CHUNK_SIZE)
    offset = fresh.open(policy)
    assert offset >= 4 * CHUNK_SIZE and offset % CHUNK_SIZE == 0
    again.open_at(offset)  # re-hashes its first `offset` bytes from the file
    final = _run_opened(again, fresh, policy)
    assert final.read_bytes() == src.read_bytes()
    # The digests both sides agreed on cover the whole file, not only the resumed part.
    assert again.sha256 == fresh.sha256 == hashlib.sha256(src.read_bytes()).digest()


def test_a_prefix_changed_before_a_resume_fails_the_whole_file_check(tmp_path: Path) -> None:
    """The sender re-reads the prefix the receiver holds: if the file changed there
    (size and times kept, so no stat can tell), the digests differ at the end and the
    partial file is removed, never moved into place."""
    src = _source(tmp_path, 6 * CHUNK_SIZE)
    sender, receiver, policy = _pair(tmp_path, src)
    assert _run(sender, receiver, policy, stop_after=3 * CHUNK_SIZE) is None
    st = src.stat()
    with src.open("r+b") as f:
        f.write(b"changed")  # inside the part the receiver already wrote
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = OutgoingTransfer.prepare(sender.transfer_id, PEER, src, expected_size=sender.size)
    fresh = IncomingTransfer(receiver.transfer_id, PEER, "src.bin", again.size, CHUNK_SIZE)
    again.open_at(fresh.open(policy))
    with pytest.raises(TransferIntegrityError, match="integrity check"):
        _run_opened(again, fresh, policy)
    assert list(policy.downloads.iterdir()) == []  # nothing moved into place, no partial


def _run_opened(
    sender: OutgoingTransfer, receiver: IncomingTransfer, policy: ReceivePolicy
) -> Path:
    while True:
        batch = sender.next_chunks(8)
        chunks = [(m.offset, m.data) for m in batch if isinstance(m, FileChunk)]
        if chunks:
            sender.on_ack(receiver.write(chunks))
        if done := [m for m in batch if isinstance(m, FileDone)]:
            return receiver.finish(policy.downloads, done[0].sha256)


def test_hash_mismatch_deletes_the_partial(tmp_path: Path) -> None:
    src = _source(tmp_path, 3 * CHUNK_SIZE)
    sender, receiver, policy = _pair(tmp_path, src)
    assert _run(sender, receiver, policy, stop_after=sender.size) is None
    receiver.open(policy)  # reopened: re-hashes the whole partial file
    with pytest.raises(TransferIntegrityError, match="integrity check"):
        receiver.finish(policy.downloads, hashlib.sha256(b"something else").digest())
    assert list(policy.downloads.iterdir()) == []  # neither the file nor an empty .partial/


def test_gaps_overlaps_and_overruns_are_refused(tmp_path: Path) -> None:
    policy = ReceivePolicy(tmp_path / "dl", min_free_after=0)
    rx = IncomingTransfer(os.urandom(16), PEER, "f", 100, 64)
    rx.open(policy)
    rx.write([(0, b"x" * 64)])
    with pytest.raises(TransferError, match="expected 64"):
        rx.write([(32, b"y" * 10)])
    assert rx.partial_path is None  # discarded
    rx2 = IncomingTransfer(os.urandom(16), PEER, "f", 10, 64)
    rx2.open(policy)
    with pytest.raises(TransferError, match="past the end"):
        rx2.write([(0, b"z" * 11)])


def test_policy_refuses_before_anything_is_written(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    big = IncomingTransfer(os.urandom(16), PEER, "big.iso", 5 * 1024**3, CHUNK_SIZE)
    with pytest.raises(TransferRejectedError, match="over the receiver's limit"):
        big.check(ReceivePolicy(dl))
    exe = IncomingTransfer(os.urandom(16), PEER, "run.exe", 10, CHUNK_SIZE)
    with pytest.raises(TransferRejectedError, match="does not accept this type"):
        exe.check(ReceivePolicy(dl, allowed_extensions=frozenset({"txt"})))
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    huge = IncomingTransfer(os.urandom(16), PEER, "x", free + 1, CHUNK_SIZE)
    with pytest.raises(TransferRejectedError, match="not enough free space"):
        huge.check(ReceivePolicy(dl, max_size=1 << 50))
    assert not (dl / PARTIAL_DIR).exists()


def test_sender_notices_a_changed_source(tmp_path: Path) -> None:
    src = _source(tmp_path, 4 * CHUNK_SIZE)
    sender, receiver, policy = _pair(tmp_path, src, window=2)
    sender.open_at(receiver.open(policy))
    sender.next_chunks(1)
    with src.open("r+b") as f:
        f.write(b"changed")
    os.utime(src, ns=(1, 1))
    with pytest.raises(TransferError, match="changed while it was being sent"):
        sender.next_chunks(1)
    with src.open("ab") as f:  # after a restart: a file of another size is not the one offered
        f.write(b"more")
    with pytest.raises(TransferError, match="changed since it was offered"):
        OutgoingTransfer.prepare(sender.transfer_id, PEER, src, expected_size=sender.size)


def test_sender_refuses_bogus_acks_and_offsets(tmp_path: Path) -> None:
    src = _source(tmp_path, 2 * CHUNK_SIZE)
    sender = OutgoingTransfer.prepare(os.urandom(16), PEER, src, window=1)
    with pytest.raises(TransferError, match="past the end"):
        sender.open_at(sender.size + 1)
    sender.open_at(0)
    (chunk,) = sender.next_chunks(5)  # window of one
    assert sender.next_chunks(5) == []
    with pytest.raises(TransferError, match=f"only {CHUNK_SIZE} were sent"):
        sender.on_ack(CHUNK_SIZE + 1)
    assert sender.on_ack(CHUNK_SIZE) and not sender.on_ack(CHUNK_SIZE)
    assert isinstance(chunk, FileChunk) and chunk.offset == 0


def test_directories_and_missing_files_are_not_sendable(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="not a regular file"):
        OutgoingTransfer.prepare(os.urandom(16), PEER, tmp_path)
    with pytest.raises(TransferError, match="cannot read"):
        OutgoingTransfer.prepare(os.urandom(16), PEER, tmp_path / "missing")


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="preadv2 RWF_NOWAIT is Linux-only")
def test_cached_reads_match_blocking_reads_and_never_wait_for_the_disk(tmp_path: Path) -> None:
    """The event loop's read takes only what the page cache holds; None changes nothing."""
    src = _source(tmp_path, 3 * CHUNK_SIZE + 5)
    cached, _, _ = _pair(tmp_path, src, window=8)
    blocking = OutgoingTransfer.prepare(cached.transfer_id, PEER, src, window=8)
    cached.open_at(0)
    blocking.open_at(0)
    first = cached.next_chunks_cached(2)  # just hashed: in the cache
    assert first is not None and first == blocking.next_chunks(2)
    fd = os.open(src, os.O_RDONLY)
    try:  # push the clean pages out of the cache; the next read would have to wait
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    before = (cached.next_offset, cached.done_sent)
    rest = cached.next_chunks_cached(8)
    if rest is None:  # the usual case; a filesystem may keep the pages all the same
        assert (cached.next_offset, cached.done_sent) == before
        rest = cached.next_chunks(8)
    assert rest == blocking.next_chunks(8)
    assert isinstance(rest[-1], FileDone) and cached.all_sent


def test_opening_a_partial_while_others_remove_the_empty_partial_folder(tmp_path: Path) -> None:
    """Small files of a folder offer finish back to back: each removes `.partial/` once it
    is empty, while the next opens its partial file in it. Every open must win that race
    (it once failed with "File exists" or "not a private directory")."""
    import threading
    import time

    policy = ReceivePolicy(tmp_path, min_free_after=0)
    stop = time.monotonic() + 1.0
    errors: list[BaseException] = []

    def churn(worker: int) -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            rx = IncomingTransfer(os.urandom(16), "peer", f"f{worker}-{n}", 1, 1)
            try:
                rx.open(policy)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
                return
            rx.discard()  # removes .partial/ when it is the last one in it

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not (tmp_path / PARTIAL_DIR).exists()

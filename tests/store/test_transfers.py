"""Transfer records: resume state, and nothing but the record once finished."""

from __future__ import annotations

import hashlib
import os

import pytest

from p2pmsg.errors import StoreError
from p2pmsg.store import Store
from tests.store.conftest import PeerFactory

DIGEST = hashlib.sha256(b"file").digest()


def test_progress_resume_and_finish(store: Store, make_peer: PeerFactory) -> None:
    fp = make_peer()
    tid = os.urandom(16)
    made = store.create_transfer(
        fp,
        transfer_id=tid,
        direction="in",
        name="report.pdf",
        size=1000,
        sha256=DIGEST,
        chunk_size=256,
        now=1.0,
    )
    assert (made.state, made.bytes_done, made.name, made.peer) == ("offered", 0, "report.pdf", fp)
    store.update_transfer(
        tid, 2.0, state="transferring", bytes_done=512, partial_path="/dl/.report.pdf.part"
    )
    (resume,) = store.incomplete_transfers()
    assert (resume.bytes_done, resume.partial_path) == (512, "/dl/.report.pdf.part")
    store.finish_transfer(tid, "completed", 3.0, final_path="/dl/report.pdf")
    done = store.get_transfer(tid)
    assert done is not None
    assert (done.state, done.bytes_done, done.finished) == ("completed", 1000, 3.0)
    assert (done.partial_path, done.source_path, done.final_path) == (None, None, "/dl/report.pdf")
    assert store.incomplete_transfers() == []
    assert [t.id for t in store.list_transfers(fp)] == [tid]


def test_sender_side_and_failure(store: Store, make_peer: PeerFactory) -> None:
    fp = make_peer()
    tid = os.urandom(16)
    store.create_transfer(
        fp,
        transfer_id=tid,
        direction="out",
        name="a.bin",
        size=10,
        sha256=DIGEST,
        chunk_size=4,
        now=1.0,
        source_path="/home/me/a.bin",
    )
    assert store.get_transfer(tid).source_path == "/home/me/a.bin"  # type: ignore[union-attr]
    store.finish_transfer(tid, "failed", 2.0, error="receiver's disk is full")
    failed = store.get_transfer(tid)
    assert failed is not None and failed.error == "receiver's disk is full"
    assert failed.source_path is None and failed.bytes_done == 0
    assert store.remove_transfer(tid) and store.get_transfer(tid) is None


def test_invalid_transfer_updates(store: Store, make_peer: PeerFactory) -> None:
    fp = make_peer()
    tid = os.urandom(16)
    store.create_transfer(
        fp, transfer_id=tid, direction="in", name="x", size=10, sha256=DIGEST, chunk_size=4, now=1.0
    )
    with pytest.raises(ValueError, match="final"):
        store.finish_transfer(tid, "transferring", 2.0)
    with pytest.raises(ValueError, match="unknown transfer"):
        store.update_transfer(os.urandom(16), 2.0, bytes_done=1)
    from p2pmsg.errors import StoreError

    with pytest.raises(StoreError):  # more bytes than the file has: the schema refuses
        store.update_transfer(tid, 2.0, bytes_done=11)


def test_the_digest_is_recorded_at_the_end(store: Store, make_peer: PeerFactory) -> None:
    """Protocol version 2 sends the whole-file SHA-256 at the end: an offer's record has
    none, and the ending writes it (an ending without one keeps what is there)."""
    fp = make_peer()
    tid = os.urandom(16)
    made = store.create_transfer(
        fp, transfer_id=tid, direction="out", name="a", size=4, chunk_size=4, now=1.0
    )
    assert made.sha256 is None
    store.finish_transfer(tid, "completed", 2.0, sha256=DIGEST)
    assert store.get_transfer(tid).sha256 == DIGEST  # type: ignore[union-attr]
    store.finish_transfer(tid, "completed", 3.0)
    assert store.get_transfer(tid).sha256 == DIGEST  # type: ignore[union-attr]
    with pytest.raises(StoreError):  # the column's CHECK: a digest is 32 bytes or none
        store.finish_transfer(tid, "completed", 4.0, sha256=b"short")

"""Files between two real nodes on loopback: sizes, verification, clean-up, records."""

from __future__ import annotations

import asyncio
import itertools
import os
import stat
from pathlib import Path

import pytest

from p2pmsg.node.transfers import incoming
from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from p2pmsg.node.transfers.sender import CHUNK_SIZE
from tests.transfers.conftest import Pair, sha256_of, wait_final, write_random


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * 1024 * 1024 + 5])
async def test_files_arrive_verified(pair: Pair, tmp_path: Path, size: int) -> None:
    src = tmp_path / f"file-{size}.bin"
    digest = write_random(src, size)
    offer = await pair.alice.send_file("bob", str(src))
    # Protocol 2: the offer carries no digest; both ends hold the whole file's at the end.
    assert offer.state == "offered" and offer.size == size and offer.sha256 == ""
    sent = await wait_final(pair.alice, offer.id)
    assert sent.state == "completed", sent.error
    assert sent.sha256 == digest.hex()
    received = await wait_final(pair.bob, offer.id)
    assert received.state == "completed" and received.path is not None
    assert received.sha256 == digest.hex()
    landed = Path(received.path)
    assert landed.parent == pair.downloads and landed.name == src.name
    assert sha256_of(landed) == digest
    assert stat.S_IMODE(landed.stat().st_mode) & 0o177 == 0  # 0600: private, never executable
    assert not (pair.downloads / PARTIAL_DIR).exists()  # no empty .partial/ left behind


@pytest.mark.skipif(not hasattr(os, "POSIX_FADV_DONTNEED"), reason="no posix_fadvise")
async def test_received_bytes_go_to_writeback_in_steps_while_the_file_arrives(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every WRITEBACK_EVERY bytes the receiver starts the writeback of the new step (and
    drops the step before from the cache), beside its writes; the file still verifies."""
    step = 4 * CHUNK_SIZE
    monkeypatch.setattr(incoming, "WRITEBACK_EVERY", step)
    advised: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, how: int) -> None:
        if how == os.POSIX_FADV_DONTNEED:
            advised.append((offset, offset + length))
        real(fd, offset, length, how)

    monkeypatch.setattr(os, "posix_fadvise", record)
    src = tmp_path / "stepped.bin"
    digest = write_random(src, 40 * CHUNK_SIZE + 3)
    offer = await pair.alice.send_file("bob", str(src))
    received = await wait_final(pair.bob, offer.id)
    assert received.state == "completed" and received.path is not None
    assert sha256_of(Path(received.path)) == digest
    assert advised and advised[0][0] == 0
    for (start, end), (next_start, next_end) in itertools.pairwise(advised):
        assert start < end <= next_end and next_start <= end  # in order, each reaching back
        assert next_end - end >= step


async def test_files_both_ways_at_once_with_chat_all_arrive(pair: Pair, tmp_path: Path) -> None:
    """Both sessions' write buffers full at the same time: neither side may stop reading
    the other for it (each would wait for the other to read, forever). A session stops
    reading a peer only at READ_PAUSE_AT, which bulk senders never reach: they wait at
    WRITE_HIGH_WATER."""
    sources = {}
    for name in ("to-bob", "to-alice"):
        sources[name] = (tmp_path / f"{name}.bin", write_random(tmp_path / f"{name}.bin", 24 << 20))
    to_bob = await pair.alice.send_file("bob", str(sources["to-bob"][0]))
    to_alice = await pair.bob.send_file("alice", str(sources["to-alice"][0]))
    texts = [await pair.alice.send_text("bob", f"while the files move {i}") for i in range(50)]
    for sender, receiver, offer, (_, digest) in (
        (pair.alice, pair.bob, to_bob, sources["to-bob"]),
        (pair.bob, pair.alice, to_alice, sources["to-alice"]),
    ):
        assert (await wait_final(sender, offer.id, timeout=40)).state == "completed"
        received = await wait_final(receiver, offer.id, timeout=40)
        assert received.state == "completed" and received.path is not None
        assert sha256_of(Path(received.path)) == digest
    for text in texts:
        assert await pair.alice.wait_delivered(text.id, 10) in ("delivered", "read")


async def test_a_sent_files_event_says_whether_the_receiver_is_verified(
    pair: Pair, tmp_path: Path
) -> None:
    """The monitor judges volume to a verified contact differently from volume to a key
    first seen today, so `file_sent` carries the receiver's verification state."""
    src = tmp_path / "twice.bin"
    write_random(src, CHUNK_SIZE + 7)
    first = await pair.alice.send_file("bob", str(src))
    assert (await wait_final(pair.alice, first.id)).state == "completed"
    bob = next(p for p in await pair.alice.peers() if p.name == "bob")
    await pair.alice.set_verified(bob.fingerprint, True)
    second = await pair.alice.send_file("bob", str(src))
    assert (await wait_final(pair.alice, second.id)).state == "completed"
    await asyncio.sleep(0.3)  # the security log's flusher writes in batches
    sent = [e for e in await pair.alice.security_events(limit=5000) if e["event"] == "file_sent"]
    assert [e["detail"]["verified"] for e in sent] == [False, True]
    assert all(e["peer"] == bob.fingerprint and e["bytes"] == CHUNK_SIZE + 7 for e in sent)

"""Files between two real nodes on loopback: sizes, verification, clean-up, records."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from p2pmsg.node.transfers.sender import CHUNK_SIZE
from tests.transfers.conftest import Pair, sha256_of, wait_final, write_random


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * 1024 * 1024 + 5])
async def test_files_arrive_verified(pair: Pair, tmp_path: Path, size: int) -> None:
    src = tmp_path / f"file-{size}.bin"
    digest = write_random(src, size)
    offer = await pair.alice.send_file("bob", str(src))
    assert offer.state == "offered" and offer.size == size and offer.sha256 == digest.hex()
    sent = await wait_final(pair.alice, offer.id)
    assert sent.state == "completed", sent.error
    received = await wait_final(pair.bob, offer.id)
    assert received.state == "completed" and received.path is not None
    landed = Path(received.path)
    assert landed.parent == pair.downloads and landed.name == src.name
    assert sha256_of(landed) == digest
    assert stat.S_IMODE(landed.stat().st_mode) & 0o177 == 0  # 0600: private, never executable
    assert list((pair.downloads / PARTIAL_DIR).iterdir()) == []

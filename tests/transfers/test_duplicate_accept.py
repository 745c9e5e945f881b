"""A second accept in one session does not restart the stream under the receiver.

The receiver answers every offer with `file_accept`, so one session can carry
two: the user's accept and the answer to the sender's re-offer after a restart
(tests/transfers/test_chunk_size_restart.py met exactly that in CI). Acting on
the second sent the file from offset 0 again while the receiver expected the
bytes after what it had, and the transfer failed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.transfers.conftest import Pair, sha256_of, wait_final, write_random


async def test_a_duplicate_accept_mid_stream_is_ignored(pair: Pair, tmp_path: Path) -> None:
    alice, bob = pair.alice, pair.bob
    source = tmp_path / "big.bin"
    digest = write_random(source, 48 * 1024 * 1024)
    sent = await alice.send_file(bob.fingerprint, str(source))
    actor = alice.files._actors[bytes.fromhex(sent.id)]
    deadline = asyncio.get_running_loop().time() + 20
    while actor.progress.state != "transferring" or actor.progress.bytes_done == 0:
        assert asyncio.get_running_loop().time() < deadline, "the transfer never started"
        await asyncio.sleep(0.001)
    actor.push("accept", 0)  # as the answer to an offer this session already had answered
    done = await wait_final(bob, sent.id, timeout=60)
    assert done.state == "completed", done.error
    assert done.path is not None and sha256_of(Path(done.path)) == digest
    assert (await wait_final(alice, sent.id)).state == "completed"

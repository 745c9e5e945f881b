"""A transfer offered with another chunk size than today's default resumes with it.

The chunk limit grew from 64 KiB to 192 KiB within protocol version 2. A sender
restarted with a transfer it offered in 64 KiB chunks must re-offer it as stored:
the receiver compares the re-offer with its record of the offer (a different
chunk size is "transfer id already in use"), and the resume offset is a whole
number of the offer's chunks.
"""

from __future__ import annotations

import os
from pathlib import Path

from p2pmsg.node.transfers.sender import CHUNK_SIZE, OutgoingTransfer
from p2pmsg.store import Store
from tests.node.conftest import NodeFactory, connect, loopback_config
from tests.transfers.conftest import (
    file_settings,
    sha256_of,
    wait_final,
    wait_incoming,
    write_random,
)

OLD_CHUNK = 64 * 1024


async def test_a_restarted_sender_re_offers_the_stored_chunk_size(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    assert CHUNK_SIZE != OLD_CHUNK
    downloads = tmp_path / "downloads"
    alice_config = loopback_config(files=file_settings(tmp_path / "a"))
    bob_config = loopback_config(files=file_settings(downloads, accept_files=False))
    alice = await make_node("alice", config=alice_config)
    bob = await make_node("bob", config=bob_config)
    await connect(alice, bob)
    source = tmp_path / "old-offer.bin"
    digest = write_random(source, 5 * OLD_CHUNK + 11)
    sender = OutgoingTransfer.prepare(os.urandom(16), bob.fingerprint, source, chunk_size=OLD_CHUNK)
    sent = await alice.files.launch(sender)
    offered = await wait_incoming(bob)
    assert offered.id == sent.id
    await alice.stop()
    alice = await make_node("alice", config=alice_config)
    record = await alice._store.run(Store.get_transfer, bytes.fromhex(sent.id))
    assert record is not None and record.chunk_size == OLD_CHUNK
    await bob.accept_file(sent.id)
    done = await wait_final(bob, sent.id)
    assert done.state == "completed", done.error
    assert done.path is not None and sha256_of(Path(done.path)) == digest
    assert (await wait_final(alice, sent.id)).state == "completed"

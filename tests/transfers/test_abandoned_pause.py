"""A paused incoming transfer the sender never resumes is given up, not kept forever.

The sender repeats its cancel of an ended transfer for a week (`RETELL_ENDED_FOR`);
a sender that lost its record (a wiped profile) never sends anything. Past that
week the receiver ends the transfer when it starts and removes the partial file.
"""

from __future__ import annotations

import time
from pathlib import Path

from p2pmsg.node.transfers.manager import ABANDON_PAUSED_AFTER
from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from p2pmsg.store import Store
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config
from tests.transfers.conftest import file_settings, wait_final, wait_incoming, write_random


async def test_a_transfer_paused_for_over_a_week_is_given_up_at_start(
        make_node: NodeFactory, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    bob_config = loopback_config(files=file_settings(downloads, accept_files=False))
    alice_config = loopback_config(files=file_settings(tmp_path / "a"))
    alice = await make_node("alice", config=alice_config)
    bob = await make_node("bob", config=bob_config)
    await connect(alice, bob)
    source = tmp_path / "report.bin"
    write_random(source, 256 * 1024)
    sent = await alice.send_file(bob.fingerprint, str(source))
    await wait_incoming(bob)
    await alice.stop()  # away (for over a week, as far as bob can tell)
    await bob.accept_file(sent.id)
    partial = downloads / PARTIAL_DIR / f"{sent.id}.part"

    async def partial_exists() -> bool:
        return partial.exists()

    await eventually(partial_exists)

    # A restart within the week keeps it paused, ready to resume.
    await bob.stop()
    bob = await make_node("bob", config=bob_config)
    assert [v.state for v in await bob.transfers() if v.id == sent.id] == ["paused"]
    assert partial.exists()

    # Its last activity moves past the week; the next start gives it up.
    long_ago = time.time() - ABANDON_PAUSED_AFTER - 3600
    await bob._store.run(Store.update_transfer, bytes.fromhex(sent.id), long_ago)
    await bob.stop()
    bob = await make_node("bob", config=bob_config)
    ended = await wait_final(bob, sent.id, timeout=10.0)
    assert ended.state == "failed"
    assert ended.error is not None and "did not resume it for a week" in ended.error
    assert not partial.exists()
    assert list((downloads / PARTIAL_DIR).glob("*.part")) == []

    # Should the sender come back after all, its re-offer is answered with a cancel.
    alice = await make_node("alice", config=alice_config)
    await connect(alice, bob)
    theirs = await wait_final(alice, sent.id, timeout=10.0)
    assert theirs.state == "failed"
    assert [v.state for v in await bob.transfers() if v.id == sent.id] == ["failed"]

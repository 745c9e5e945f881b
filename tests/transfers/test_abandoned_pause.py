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
from tests.node.conftest import NodeFactory, connect
from tests.transfers.conftest import paused_at_receiver, wait_final


async def test_a_transfer_paused_for_over_a_week_is_given_up_at_start(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    paused = await paused_at_receiver(make_node, tmp_path)  # a restart within the week
    bob, partial, sent_id = paused.bob, paused.partial, paused.transfer_id

    # Its last activity moves past the week; the next start gives it up.
    long_ago = time.time() - ABANDON_PAUSED_AFTER - 3600
    await bob._store.run(Store.update_transfer, bytes.fromhex(sent_id), long_ago)
    await bob.stop()
    bob = await make_node("bob", config=paused.bob_config)
    ended = await wait_final(bob, sent_id, timeout=10.0)
    assert ended.state == "failed"
    assert ended.error is not None and "did not resume it for a week" in ended.error
    assert not partial.exists()
    assert list((paused.downloads / PARTIAL_DIR).glob("*.part")) == []

    # Should the sender come back after all, its re-offer is answered with a cancel.
    alice = await make_node("alice", config=paused.alice_config)
    await connect(alice, bob)
    theirs = await wait_final(alice, sent_id, timeout=10.0)
    assert theirs.state == "failed"
    assert [v.state for v in await bob.transfers() if v.id == sent_id] == ["failed"]

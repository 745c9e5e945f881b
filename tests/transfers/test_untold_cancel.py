"""A transfer the sender ended while the receiver was away must end at the receiver too.

Found by the 30-minute chaos soak (seed 8008): the sender's transfer ended
"failed" while the receiver was unreachable, so its FileCancel never arrived;
the receiver kept the transfer "paused" with its partial file, waiting for a
re-offer that a finished transfer never sends. The sender now repeats the
cancel when the next session with that peer is up.
"""

from __future__ import annotations

from pathlib import Path

from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from tests.node.conftest import NodeFactory, connect, loopback_config
from tests.transfers.conftest import (
    file_settings,
    paused_at_receiver,
    wait_final,
    write_random,
)


async def test_a_transfer_the_sender_cancelled_while_the_receiver_was_away_ends_at_both(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    paused = await paused_at_receiver(make_node, tmp_path)
    bob, partial, sent_id = paused.bob, paused.partial, paused.transfer_id

    # The sender comes back without the network, cancels, and only then reconnects:
    # the cancel it sent to nobody must still reach the receiver.
    alice = await make_node("alice", config=paused.alice_config, start=False)
    await alice.files.start()
    await alice.cancel_file(sent_id)
    assert (await wait_final(alice, sent_id)).state == "cancelled"
    await alice.files.stop()
    await alice.start()
    await connect(alice, bob)

    ended = await wait_final(bob, sent_id, timeout=10.0)
    assert ended.state == "failed"
    assert ended.error is not None and "cancelled by the sender" in ended.error
    assert not partial.exists()
    assert list((paused.downloads / PARTIAL_DIR).glob("*.part")) == []


async def test_a_cancel_right_before_quitting_is_not_undone_by_the_next_start(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    """The cancel is still in the actor's inbox (or its ending is being written) when the
    node stops: the next start must find the transfer cancelled, not offered again."""
    alice_config = loopback_config(files=file_settings(tmp_path / "a"))
    alice = await make_node("alice", config=alice_config)
    bob = await make_node("bob", config=loopback_config(files=file_settings(tmp_path / "b")))
    await connect(alice, bob)
    source = tmp_path / "report.bin"
    write_random(source, 64 * 1024)
    sent = await alice.send_file(bob.fingerprint, str(source))

    await alice.cancel_file(sent.id)
    await alice.stop()  # at once: nothing has handled the cancel yet
    alice = await make_node("alice", config=alice_config)

    assert [(v.state, v.error) for v in await alice.transfers() if v.id == sent.id] == [
        ("cancelled", "cancelled by the sender")
    ]

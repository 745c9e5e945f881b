"""A paused incoming transfer the sender never resumes is given up, not kept forever.

The sender repeats its cancel of an ended transfer for a week (`RETELL_ENDED_FOR`);
a sender that lost its record (a wiped profile) never sends anything. Past that
week the receiver ends a contact's transfer and removes the partial file; a
stranger's after hours (its partial file is disk a stranger holds), at start or
by the sweep of a running node.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from p2pmsg.node.transfers import manager
from p2pmsg.node.transfers.manager import ABANDON_PAUSED_AFTER, ABANDON_STRANGERS_AFTER
from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from p2pmsg.store import Store
from tests.node.conftest import NodeFactory, connect, eventually
from tests.transfers.conftest import paused_at_receiver, wait_final


async def test_a_transfer_paused_for_over_a_week_is_given_up_at_start(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    paused = await paused_at_receiver(make_node, tmp_path)  # a restart within the week
    bob, partial, sent_id = paused.bob, paused.partial, paused.transfer_id
    (view,) = [v for v in await bob.transfers() if v.id == sent_id]
    await bob.set_verified(view.peer, True)  # alice is bob's contact: she gets the week

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


async def test_a_strangers_paused_transfer_is_given_up_after_hours(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    paused = await paused_at_receiver(make_node, tmp_path)  # alice is new to bob
    bob, sent_id = paused.bob, paused.transfer_id
    # An hour of pause is nothing; past ABANDON_STRANGERS_AFTER it is given up at start.
    for ago, state in ((3600.0, "paused"), (ABANDON_STRANGERS_AFTER + 3600, "failed")):
        await bob._store.run(Store.update_transfer, bytes.fromhex(sent_id), time.time() - ago)
        await bob.stop()
        bob = await make_node("bob", config=paused.bob_config)
        if state == "paused":
            assert [v.state for v in await bob.transfers() if v.id == sent_id] == ["paused"]
    ended = await wait_final(bob, sent_id, timeout=10.0)
    assert ended.error == "given up: the sender did not resume it for 6 hours"
    assert not paused.partial.exists()


async def test_a_running_node_sweeps_abandoned_transfers(
    make_node: NodeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager, "ABANDON_SWEEP_INTERVAL", 0.05)
    paused = await paused_at_receiver(make_node, tmp_path)
    bob, sent_id = paused.bob, paused.transfer_id
    (actor,) = [a for a in bob.files._actors.values() if a.transfer_id.hex() == sent_id]
    actor.paused_since = time.time() - ABANDON_STRANGERS_AFTER - 1  # type: ignore[attr-defined]

    async def given_up() -> bool:
        return not paused.partial.exists()

    await eventually(given_up, timeout=5.0)  # no restart needed
    assert (await wait_final(bob, sent_id, timeout=5.0)).state == "failed"


async def test_an_accepted_folder_offer_never_resumed_is_given_up(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    """Accepted while its sender was away, before any file started: no paused file holds
    it, so the offer itself is given up past the stranger's hours."""
    from tests.node.conftest import loopback_config
    from tests.transfers.conftest import file_settings
    from tests.transfers.test_folders import wait_bundle

    downloads = tmp_path / "downloads"
    alice_config = loopback_config(files=file_settings(tmp_path / "a"))
    bob_config = loopback_config(files=file_settings(downloads, accept_files=False))
    alice = await make_node("alice", config=alice_config)
    bob = await make_node("bob", config=bob_config)
    await connect(alice, bob)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    offer = await alice.send_files(bob.fingerprint, [str(tmp_path / "src")])

    async def offered() -> bool:
        return any(v.id == offer.id for v in await bob.transfers())

    await eventually(offered)
    await alice.stop()
    await bob.accept_file(offer.id)  # its answer cannot leave: alice is gone
    long_ago = time.time() - ABANDON_STRANGERS_AFTER - 3600
    await bob._store.run(Store.update_bundle, bytes.fromhex(offer.id), long_ago)
    await bob.stop()
    bob = await make_node("bob", config=bob_config)
    ended = await wait_bundle(bob, offer.id, timeout=10.0)
    assert ended.state == "failed" and "did not resume" in (ended.error or "")
    assert list((downloads / "src").iterdir()) == []  # its new folder stays, empty

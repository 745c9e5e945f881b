"""Folder and multi-file offers between two real nodes on loopback (protocol section 7.2)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from p2pmsg.node.api import TransferView
from p2pmsg.node.node import Node
from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config
from tests.node.conftest import make_node as make_node  # the fixture, re-exported
from tests.transfers.conftest import FINAL, Pair, file_settings, sha256_of, write_random

#: The large file of the mixed folder: 200 MiB (about 3 s on loopback, 400 MiB of temporary
#: disk for source and copy); P2PMSG_FOLDER_BIG_MB=32 shrinks it on a small CI disk.
BIG_MB = int(os.environ.get("P2PMSG_FOLDER_BIG_MB", "200"))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> SHA-256), nothing else."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = sha256_of(path)
    return out


def mixed_folder(root: Path, big_mb: int = 0) -> dict[str, bytes]:
    (root / "empty-dir-is-not-sent").mkdir(parents=True)
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "photos été").mkdir()
    (root / "zero.bin").write_bytes(b"")
    (root / "a" / "zero too.txt").write_bytes(b"")
    write_random(root / "a" / "b" / "c" / "deep.bin", 70_000)
    write_random(root / "photos été" / "café ☕.jpg", 123_457)
    write_random(root / "photos été" / "日本語.txt", 1)
    for i in range(20):
        write_random(root / "a" / f"small-{i:02}.dat", 100 + i * 37)
    if big_mb:
        write_random(root / "big.bin", big_mb * 1024 * 1024)
    return tree(root)


async def wait_bundle(node: Node, bundle_id: str, timeout: float = 60.0) -> TransferView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for view in await node.transfers():
            if view.id == bundle_id and view.state in FINAL:
                return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"folder offer {bundle_id} not finished in {timeout} s")


async def test_a_folder_of_mixed_files_arrives_identical(pair: Pair, tmp_path: Path) -> None:
    src = tmp_path / "holiday"
    expected = mixed_folder(src, BIG_MB)
    offer = await pair.alice.send_files("bob", [str(src)])
    assert offer.files == len(expected) and offer.size == sum(
        (src / p).stat().st_size for p in expected
    )
    sent = await wait_bundle(pair.alice, offer.id, timeout=120)
    assert sent.state == "completed", sent.error
    received = await wait_bundle(pair.bob, offer.id)
    assert received.state == "completed", received.error
    assert received.files_done == len(expected)
    assert received.path is not None
    folder = Path(received.path)
    assert folder == pair.downloads / "holiday"
    assert tree(folder) == expected
    assert not (pair.downloads / PARTIAL_DIR).exists()
    # per-file progress: every file is a transfer of the offer, completed and verified
    files = await pair.bob.bundle_files(offer.id)
    assert len(files) == len(expected)
    assert all(f.state == "completed" and f.bundle_id == offer.id for f in files)
    # the transfer list shows the offer once, not its files
    assert [v.id for v in await pair.bob.transfers()] == [offer.id]


async def test_a_second_offer_of_the_same_name_gets_a_new_folder(
    pair: Pair, tmp_path: Path
) -> None:
    src = tmp_path / "docs"
    src.mkdir()
    (src / "x.txt").write_text("one")
    (pair.downloads / "docs").mkdir(parents=True)
    (pair.downloads / "docs" / "x.txt").write_text("the user's own, untouched")
    offer = await pair.alice.send_files("bob", [str(src)])
    received = await wait_bundle(pair.bob, offer.id)
    assert received.state == "completed"
    assert received.path == str(pair.downloads / "docs (1)")
    assert (pair.downloads / "docs" / "x.txt").read_text() == "the user's own, untouched"
    assert (pair.downloads / "docs (1)" / "x.txt").read_text() == "one"


async def test_several_paths_are_one_offer(pair: Pair, tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("1")
    (tmp_path / "two.txt").write_text("22")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "three.txt").write_text("333")
    paths = [str(tmp_path / "one.txt"), str(tmp_path / "two.txt"), str(tmp_path / "sub")]
    offer = await pair.alice.send_files("bob", paths)
    assert (offer.files, offer.size) == (3, 6)
    received = await wait_bundle(pair.bob, offer.id)
    assert received.state == "completed"
    assert received.path is not None
    folder = Path(received.path)
    assert {p: (folder / p).read_text() for p in tree(folder)} == {
        "one.txt": "1",
        "two.txt": "22",
        "sub/three.txt": "333",
    }


async def test_symlinks_inside_a_folder_are_skipped_not_followed(
    pair: Pair, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_ed25519").write_text("PRIVATE")
    src = tmp_path / "project"
    src.mkdir()
    (src / "main.py").write_text("print(1)")
    (src / "keys").symlink_to(secret)
    (src / "key-file").symlink_to(secret / "id_ed25519")
    offer = await pair.alice.send_files("bob", [str(src)])
    assert offer.files == 1
    assert offer.error is not None and "keys" in offer.error and "key-file" in offer.error
    received = await wait_bundle(pair.bob, offer.id)
    assert received.path is not None
    folder = Path(received.path)
    assert list(tree(folder)) == ["main.py"]


async def _offered_to_bob(pair: Pair, src: Path) -> TransferView:
    pair.bob.files.auto_accept = False  # bob's user decides
    offer = await pair.alice.send_files("bob", [str(src)])

    async def shown() -> list[TransferView]:
        return [v for v in await pair.bob.transfers() if v.id == offer.id]

    [view] = await eventually(shown)
    assert (view.state, view.files, view.size, view.direction) == (
        "offered",
        offer.files,
        offer.size,
        "in",
    )
    return offer


async def test_a_declined_folder_offer_ends_on_both_sides_and_writes_nothing(
    pair: Pair, tmp_path: Path
) -> None:
    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.txt").write_text("a")
    offer = await _offered_to_bob(pair, src)
    await pair.bob.decline_file(offer.id)
    sent = await wait_bundle(pair.alice, offer.id)
    assert sent.state == "declined" and sent.error == "declined by the receiver"
    assert not pair.downloads.exists() or list(pair.downloads.iterdir()) == []


async def test_a_folder_offer_cancelled_mid_way_stops_both_sides(
    pair: Pair, tmp_path: Path
) -> None:
    src = tmp_path / "big"
    src.mkdir()
    for i in range(4):
        write_random(src / f"part-{i}.bin", 8 * 1024 * 1024)
    offer = await _offered_to_bob(pair, src)
    await pair.bob.accept_file(offer.id)

    async def moving() -> bool:
        views = [v for v in await pair.alice.transfers() if v.id == offer.id]
        return bool(views) and views[0].bytes_done > 0

    await eventually(moving, timeout=20)
    await pair.alice.cancel_file(offer.id)
    sent = await wait_bundle(pair.alice, offer.id)
    assert sent.state == "cancelled"
    received = await wait_bundle(pair.bob, offer.id)
    assert received.state in ("failed", "cancelled") and "cancelled by the sender" in (
        received.error or ""
    )

    async def no_partials() -> bool:
        return not (pair.downloads / PARTIAL_DIR).exists()

    await eventually(no_partials)


async def test_a_file_changed_before_its_turn_fails_the_offer_with_the_reason(
    pair: Pair, tmp_path: Path
) -> None:
    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.txt").write_text("first")
    (src / "b.txt").write_text("second")
    offer = await _offered_to_bob(pair, src)
    (src / "b.txt").write_text("second, and longer now")  # after the offer, before its turn
    await pair.bob.accept_file(offer.id)
    sent = await wait_bundle(pair.alice, offer.id)
    assert sent.state == "failed" and "b.txt" in (sent.error or "")
    assert "changed since it was offered" in (sent.error or "")
    received = await wait_bundle(pair.bob, offer.id)
    assert received.state == "failed"


async def test_an_unanswered_folder_offer_expires_on_both_sides(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    alice = await make_node(
        "alice", config=loopback_config(files=file_settings(tmp_path / "a", offer_timeout=0.5))
    )
    bob = await make_node(
        "bob",
        config=loopback_config(
            files=file_settings(tmp_path / "dl", accept_files=False, offer_timeout=0.5)
        ),
    )
    await connect(alice, bob)
    (tmp_path / "x.txt").write_text("x")
    (tmp_path / "y.txt").write_text("y")
    offer = await alice.send_files(
        bob.fingerprint, [str(tmp_path / "x.txt"), str(tmp_path / "y.txt")]
    )
    assert (await wait_bundle(alice, offer.id, timeout=10)).state == "expired"
    # bob's own timer, or alice's cancel of her expired offer, whichever comes first
    theirs = await wait_bundle(bob, offer.id, timeout=10)
    assert (theirs.state, theirs.error) in (
        ("expired", "the offer was not answered in time"),
        ("cancelled", "the sender withdrew the offer: the offer expired"),
    )
    assert not (tmp_path / "dl").exists() or list((tmp_path / "dl").iterdir()) == []


async def test_an_offer_the_sender_cancelled_while_the_receiver_was_away_is_told_again(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    """Bob accepted while alice was away; alice cancelled while bob was away: when they
    meet again alice repeats the cancel, and bob's offer ends instead of waiting."""
    alice_config = loopback_config(files=file_settings(tmp_path / "a"))
    bob_config = loopback_config(files=file_settings(tmp_path / "dl", accept_files=False))
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
    await bob.accept_file(offer.id)
    await bob.stop()
    alice = await make_node("alice", config=alice_config)
    await alice.cancel_file(offer.id)
    assert (await wait_bundle(alice, offer.id)).state == "cancelled"
    bob = await make_node("bob", config=bob_config)
    await connect(alice, bob)
    ended = await wait_bundle(bob, offer.id, timeout=10)
    assert ended.state == "failed" and "cancelled by the sender" in (ended.error or "")

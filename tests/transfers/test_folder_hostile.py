"""Hostile folder offers: a scripted peer (the real handshake and record layer, then a
manifest of its choosing) against a real node that accepts files. Every case leaves
nothing outside the offer's new folder, and a refused offer leaves nothing at all."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from p2pmsg.node.node import Node
from p2pmsg.node.transfers.bundles import MAX_INCOMING_BUNDLES_PER_PEER, MAX_LIVE_ENTRIES
from p2pmsg.protocol.limits import (
    MAX_BUNDLE_DEPTH,
    MAX_BUNDLE_ENTRIES,
    MAX_BUNDLE_PART_ENTRIES,
)
from p2pmsg.protocol.messages import (
    BundleOffer,
    FileAccept,
    FileCancel,
    FileChunk,
    FileDecline,
    FileDone,
    FileOffer,
    bundle_entry_id,
)
from tests.chaos.hostile import HostilePeer
from tests.node.conftest import NodeFactory, eventually, loopback_config
from tests.node.conftest import make_node as make_node  # the fixture, re-exported
from tests.transfers.conftest import file_settings

pytestmark = pytest.mark.timeout(60)


@dataclass
class Victim:
    node: Node
    root: Path  # everything the victim could reach: tmp_path
    downloads: Path


@pytest.fixture
async def victim(make_node: NodeFactory, tmp_path: Path) -> AsyncIterator[Victim]:
    downloads = tmp_path / "downloads"
    node = await make_node("victim", config=loopback_config(files=file_settings(downloads)))
    yield Victim(node, tmp_path, downloads)


def snapshot(root: Path) -> set[str]:
    """Every path under `root` except the victim node's own profile files."""
    out = set()
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if not rel.startswith("victim"):
                out.add(rel)
    return out


def parts(bundle_id: bytes, name: str, entries: list[tuple[str, int]]) -> list[BundleOffer]:
    total = sum(size for _, size in entries)
    return [
        BundleOffer(
            bundle_id,
            name,
            len(entries),
            total,
            first,
            tuple(entries[first : first + MAX_BUNDLE_PART_ENTRIES]),
        )
        for first in range(0, len(entries), MAX_BUNDLE_PART_ENTRIES)
    ]


async def refused_event(node: Node, peer: HostilePeer, reason: str) -> None:
    async def found() -> list[dict[str, object]]:
        return [
            e
            for e in await node.security_events(limit=5000)
            if e["event"] == "frame_rejected"
            and e["peer"] == peer.fingerprint
            and reason in str(e["detail"].get("reason", ""))
        ]

    await eventually(found, timeout=5.0)


REFUSED = [
    (["/etc/passwd"], "absolute"),
    (["ok.txt", "/var/x"], "absolute"),
    (["../outside.txt"], "'..'"),
    (["a/../../outside.txt"], "'..'"),
    (["a/./b.txt"], "'.'"),
    (["a//b.txt"], "empty"),
    (["a/"], "empty"),
    (["a\\..\\..\\outside.txt"], "backslash"),
    (["C:evil.txt"], "drive"),
    (["\uff0e\uff0e/outside.txt"], "escapes once normalised"),  # fullwidth dots: NFKC '..'
    (["..\u200b/outside.txt"], "escapes once normalised"),  # a zero-width space hides '..'
    (["Readme.txt", "README.TXT"], "same file"),
    (["caf\u00e9.txt", "cafe\u0301.txt"], "same file"),  # NFC and NFD of one name
    (["x.txt", "x.txt"], "same file"),
    (["a", "a/b.txt"], "both a file and a folder"),
    (["/".join(["d"] * (MAX_BUNDLE_DEPTH + 1))], "deeper"),
]


@pytest.mark.parametrize(("paths", "reason"), REFUSED)
async def test_a_hostile_manifest_is_refused_as_a_whole(
    victim: Victim, paths: list[str], reason: str
) -> None:
    before = snapshot(victim.root)
    peer = await HostilePeer.connect(victim.node.listen_port)
    bundle_id = os.urandom(16)
    peer.send(*parts(bundle_id, "loot", [(p, 5) for p in paths]))
    decline = await peer.wait_for(
        lambda m: isinstance(m, FileDecline) and m.transfer_id == bundle_id
    )
    assert reason in decline.reason
    await refused_event(victim.node, peer, reason)
    # A file of the refused offer is an ordinary offer no longer: nothing is written.
    peer.send(FileOffer(bundle_entry_id(bundle_id, 0), "x", 5, 5))
    assert snapshot(victim.root) == before
    assert [v for v in await victim.node.transfers() if v.files] == []
    peer.close()


async def test_a_path_over_the_protocol_limit_ends_the_session(victim: Victim) -> None:
    before = snapshot(victim.root)
    peer = await HostilePeer.connect(victim.node.listen_port)
    peer.send_raw(
        peer.seal(
            msgpack.packb(
                [18, os.urandom(16), "loot", 1, 1, 0, [["x" * 2000, 1]]], use_bin_type=True
            )
        )
    )
    assert await peer.closed_by_victim()
    assert snapshot(victim.root) == before


async def test_too_many_files_or_too_many_path_bytes_are_refused(victim: Victim) -> None:
    peer = await HostilePeer.connect(victim.node.listen_port)
    # 10,000 entries with 200-byte paths: 2 MB of manifest, over the 1 MiB limit.
    bundle_id = os.urandom(16)
    entries = [(f"{i:05}-" + "p" * 194, 0) for i in range(MAX_BUNDLE_ENTRIES)]
    peer.send(*parts(bundle_id, "many", entries))
    decline = await peer.wait_for(
        lambda m: isinstance(m, FileDecline) and m.transfer_id == bundle_id, timeout=20
    )
    assert "exceed" in decline.reason
    # One entry over the count: the protocol itself refuses the message (session ends).
    peer.send_raw(
        peer.seal(
            msgpack.packb(
                [18, os.urandom(16), "many", MAX_BUNDLE_ENTRIES + 1, 0, 0, [["a", 0]]],
                use_bin_type=True,
            )
        )
    )
    assert await peer.closed_by_victim()
    assert not victim.downloads.exists() or list(victim.downloads.iterdir()) == []


async def test_open_offers_per_peer_are_limited(victim: Victim) -> None:
    peer = await HostilePeer.connect(victim.node.listen_port)
    victim.node.files.auto_accept = False  # offers wait for the user: they pile up
    ids = [os.urandom(16) for _ in range(MAX_INCOMING_BUNDLES_PER_PEER + 1)]
    for bundle_id in ids[:-1]:
        peer.send(*parts(bundle_id, "pile", [("a.txt", 1)]))

    async def waiting() -> bool:
        return len([v for v in await victim.node.transfers() if v.files]) == len(ids) - 1

    await eventually(waiting)
    peer.send(*parts(ids[-1], "pile", [("a.txt", 1)]))
    decline = await peer.wait_for(lambda m: isinstance(m, FileDecline) and m.transfer_id == ids[-1])
    assert "too many folder offers" in decline.reason


async def _send_entry(peer: HostilePeer, bundle_id: bytes, index: int, data: bytes) -> object:
    """Act as an honest sender for one file of an accepted offer; the victim's answer."""
    tid = bundle_entry_id(bundle_id, index)
    peer.send(FileOffer(tid, "ignored-name", len(data), 65536))
    answer = await peer.wait_for(
        lambda m: isinstance(m, (FileAccept, FileCancel)) and m.transfer_id == tid
    )
    if isinstance(answer, FileCancel):
        return answer
    if data:
        peer.send(FileChunk(tid, 0, data))
    peer.send(FileDone(tid, hashlib.sha256(data).digest()))
    return await peer.wait_for(
        lambda m: isinstance(m, (FileDone, FileCancel)) and m.transfer_id == tid
    )


async def test_device_names_and_escapes_are_neutralised_inside_the_new_folder(
    victim: Victim,
) -> None:
    peer = await HostilePeer.connect(victim.node.listen_port)
    bundle_id = os.urandom(16)
    paths = [
        "CON",
        "nul.txt",
        "COM1/aux.tar.gz",
        "q?b/.hidden",
        "-rf",
        "x\u202etxt.exe",  # a bidi override: invisible, dropped
        "a\u2215b/x",  # a division slash only looks like a separator: kept as a character
    ]
    peer.send(*parts(bundle_id, "..outside", [(p, 3) for p in paths]))
    accept = await peer.wait_for(lambda m: isinstance(m, FileAccept) and m.transfer_id == bundle_id)
    assert accept.offset == 0
    for i in range(len(paths)):
        assert isinstance(await _send_entry(peer, bundle_id, i, b"abc"), FileDone)
    folder = victim.downloads / "outside"  # the offer's name, made safe: one component
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert found == {
        "_CON",
        "_nul.txt",
        "_COM1/_aux.tar.gz",
        "q_b/hidden",
        "rf",
        "xtxt.exe",
        "a\u2215b/x",
    }
    assert {p.name for p in victim.downloads.iterdir()} == {"outside"}


async def test_a_symlink_planted_in_the_folder_is_not_followed(victim: Victim) -> None:
    outside = victim.root / "outside"
    outside.mkdir()
    peer = await HostilePeer.connect(victim.node.listen_port)
    bundle_id = os.urandom(16)
    peer.send(*parts(bundle_id, "album", [("sub/x.txt", 3), ("y.txt", 3)]))
    await peer.wait_for(lambda m: isinstance(m, FileAccept) and m.transfer_id == bundle_id)
    folder = victim.downloads / "album"
    (folder / "sub").symlink_to(outside)  # planted by anyone between accept and the file
    answer = await _send_entry(peer, bundle_id, 0, b"abc")
    assert isinstance(answer, FileCancel) and "not a folder" in answer.reason
    assert list(outside.iterdir()) == []
    # the offer failed as a whole: the receiver says so, and takes no further file
    await peer.wait_for(lambda m: isinstance(m, FileCancel) and m.transfer_id == bundle_id)


async def test_a_file_that_does_not_match_the_manifest_is_refused(victim: Victim) -> None:
    peer = await HostilePeer.connect(victim.node.listen_port)
    bundle_id = os.urandom(16)
    peer.send(*parts(bundle_id, "album", [("a.txt", 3)]))
    await peer.wait_for(lambda m: isinstance(m, FileAccept) and m.transfer_id == bundle_id)
    tid = bundle_entry_id(bundle_id, 0)
    peer.send(FileOffer(tid, "a.txt", 3_000_000, 65536))  # bigger than announced
    cancel = await peer.wait_for(lambda m: isinstance(m, FileCancel) and m.transfer_id == tid)
    assert "does not match" in cancel.reason
    assert list((victim.downloads / "album").iterdir()) == []


@pytest.mark.parametrize("ending", ["declined", "cancelled"])
async def test_an_offer_ended_before_a_restart_comes_back_ended(
    make_node: NodeFactory, tmp_path: Path, ending: str
) -> None:
    """An offer the receiver ended before it restarted, before any file started: after the
    restart it is listed as ended (from its record alone: the manifest is not read for a
    list), and a file of it is refused, never taken as an ordinary offer."""
    downloads = tmp_path / "downloads"
    config = loopback_config(files=file_settings(downloads, accept_files=False))
    node = await make_node("victim", config=config)
    peer = await HostilePeer.connect(node.listen_port)
    bundle_id = os.urandom(16)
    peer.send(*parts(bundle_id, "album", [("a.txt", 3), ("b/c.txt", 4)]))

    async def offered() -> bool:
        return [v.state for v in await node.transfers() if v.id == bundle_id.hex()] == ["offered"]

    await eventually(offered)
    if ending == "declined":
        await node.decline_file(bundle_id.hex())
    else:
        await node.cancel_file(bundle_id.hex())
    await peer.wait_for(
        lambda m: isinstance(m, (FileDecline, FileCancel)) and m.transfer_id == bundle_id
    )
    peer.close()
    await node.stop()
    # The manifest is made unreadable: neither the start nor a list may need it.
    with sqlite3.connect(tmp_path / "victim.db") as db:
        db.execute("UPDATE bundles SET manifest = x'00' WHERE id = ?", (bundle_id,))
    db.close()
    node = await make_node("victim", config=config)
    [view] = [v for v in await node.transfers() if v.id == bundle_id.hex()]
    assert (view.state, view.files, view.size) == (ending, 2, 7)
    peer = await HostilePeer.connect(node.listen_port)
    tid = bundle_entry_id(bundle_id, 1)
    peer.send(FileOffer(tid, "c.txt", 4, 65536))
    cancel = await peer.wait_for(lambda m: isinstance(m, FileCancel) and m.transfer_id == tid)
    assert "does not match" in cancel.reason
    assert [v.id for v in await node.transfers()] == [bundle_id.hex()]  # no ordinary offer
    assert not downloads.exists() or list(downloads.iterdir()) == []


async def test_a_sender_may_not_open_every_file_of_an_offer_at_once(victim: Victim) -> None:
    """The files of an accepted offer are outside the per-peer limit of open transfers,
    but within the offer's own: one file past `MAX_LIVE_ENTRIES` open at once is refused."""
    peer = await HostilePeer.connect(victim.node.listen_port)
    bundle_id = os.urandom(16)
    count = MAX_LIVE_ENTRIES + 1
    peer.send(*parts(bundle_id, "many", [(f"f{i:03}.txt", 3) for i in range(count)]))
    await peer.wait_for(lambda m: isinstance(m, FileAccept) and m.transfer_id == bundle_id)
    opened = {bundle_entry_id(bundle_id, i) for i in range(MAX_LIVE_ENTRIES)}
    peer.send(*(FileOffer(tid, "x", 3, 65536) for tid in sorted(opened)))
    for _ in range(MAX_LIVE_ENTRIES):  # each accepted (and held open: no data follows)
        accept = await peer.wait_for(
            lambda m: isinstance(m, FileAccept) and m.transfer_id in opened
        )
        opened.discard(accept.transfer_id)
    tid = bundle_entry_id(bundle_id, MAX_LIVE_ENTRIES)
    peer.send(FileOffer(tid, "x", 3, 65536))
    cancel = await peer.wait_for(lambda m: isinstance(m, FileCancel) and m.transfer_id == tid)
    assert "at once" in cancel.reason


async def test_a_first_start_is_taken_without_a_round_trip_and_held_to_its_rules(
    victim: Victim,
) -> None:
    """Section 7.2's first start: a file's offer, chunks and file_done sent in one go
    (no waiting for our answer) are taken at offset 0, answered with file_accept(0),
    verified and saved; a file whose data does not start at 0, or that sends more than
    the window of unacknowledged data before our answer, fails (and the offer with it)."""
    peer = await HostilePeer.connect(victim.node.listen_port)
    bundle_id = os.urandom(16)
    data = os.urandom(200_000)
    peer.send(*parts(bundle_id, "album", [("a/one.bin", len(data)), ("two.bin", 10)]))
    await peer.wait_for(lambda m: isinstance(m, FileAccept) and m.transfer_id == bundle_id)
    tid = bundle_entry_id(bundle_id, 0)
    chunk = 65536
    peer.send(
        FileOffer(tid, "one.bin", len(data), chunk),
        *(FileChunk(tid, o, data[o : o + chunk]) for o in range(0, len(data), chunk)),
        FileDone(tid, hashlib.sha256(data).digest()),
    )
    accept = await peer.wait_for(lambda m: isinstance(m, FileAccept) and m.transfer_id == tid)
    assert accept.offset == 0
    done = await peer.wait_for(lambda m: isinstance(m, FileDone) and m.transfer_id == tid)
    assert done.sha256 == hashlib.sha256(data).digest()
    assert (victim.downloads / "album" / "a" / "one.bin").read_bytes() == data
    # "verified" is said once the record is committed
    [record] = await victim.node.bundle_files(bundle_id.hex())
    assert record.state == "completed"
    # data not starting at 0 fails the file, and the offer
    tid2 = bundle_entry_id(bundle_id, 1)
    peer.send(FileOffer(tid2, "two.bin", 10, chunk), FileChunk(tid2, 5, b"x" * 5))
    await peer.wait_for(lambda m: isinstance(m, FileCancel) and m.transfer_id == tid2)
    await peer.wait_for(lambda m: isinstance(m, FileCancel) and m.transfer_id == bundle_id)
    assert sorted(p.name for p in (victim.downloads / "album").rglob("*")) == ["a", "one.bin"]
    peer.close()

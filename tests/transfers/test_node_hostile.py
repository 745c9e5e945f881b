"""What a hostile or broken sender, or a full disk, does to a real receiving node: nothing bad."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.node.api import MessageReceived, TransferUpdated
from p2pmsg.node.transfers import receiver
from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from p2pmsg.node.transfers.safe_name import MAX_NAME_BYTES
from p2pmsg.node.transfers.sender import CHUNK_SIZE, OutgoingTransfer
from p2pmsg.protocol.messages import FileChunk, FileOffer
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config
from tests.transfers.conftest import (
    LyingSender,
    Pair,
    file_settings,
    sha256_of,
    wait_final,
    wait_incoming,
    write_random,
)


class CorruptingSender(OutgoingTransfer):
    """Flips one bit of the second chunk after reading it: the hash in FileDone is honest."""

    def _chunk(self, offset: int, data: bytes) -> FileChunk:
        if offset == CHUNK_SIZE:
            data = bytes([data[0] ^ 1]) + data[1:]
        return super()._chunk(offset, data)


@pytest.mark.parametrize("how", ["lying hash", "corrupted chunk"])
async def test_a_bad_file_is_rejected_removed_and_reported(
    pair: Pair, tmp_path: Path, how: str
) -> None:
    src = tmp_path / "payload.bin"
    write_random(src, 5 * CHUNK_SIZE)
    cls = CorruptingSender if how == "corrupted chunk" else LyingSender
    sender = await asyncio.to_thread(cls.prepare, os.urandom(16), pair.bob.fingerprint, src)
    offer = await pair.alice.files.launch(sender)

    received = await wait_final(pair.bob, offer.id)
    sent = await wait_final(pair.alice, offer.id)
    assert received.state == "failed" and "integrity" in (received.error or "")
    assert sent.state == "failed" and "integrity" in (sent.error or "")  # the sender was told
    assert list(pair.downloads.iterdir()) == []  # neither the file nor an empty .partial/
    await pair.bob.security.flush()
    events = [e for e in await pair.bob.security_events() if e["event"] == "file_integrity_fail"]
    assert len(events) == 1 and events[0]["peer"] == pair.alice.fingerprint
    assert events[0]["detail"]["transfer"] == offer.id


HOSTILE_DISK_NAMES = {
    "con": "_con",
    "nul.txt": "_nul.txt",
    "a\x1b[31mb": "ab",
    "line\nbreak.txt": "line_break.txt",
    "..hidden": "hidden",
    "-rf": "rf",
    "invoice\u202efdp.exe": "invoicefdp.exe",
    "x" * 251 + ".txt": "x" * 251 + ".txt",
}


async def test_hostile_names_from_disk_land_safely(pair: Pair, tmp_path: Path) -> None:
    out = tmp_path / "hostile"
    out.mkdir()
    ids = {}
    for disk_name, expected in HOSTILE_DISK_NAMES.items():
        path = out / disk_name
        path.write_bytes(disk_name.encode())
        ids[(await pair.alice.send_file("bob", str(path))).id] = expected
    for transfer_id, expected in ids.items():
        view = await wait_final(pair.bob, transfer_id)
        assert view.state == "completed", view.error
        assert view.path is not None and Path(view.path).parent == pair.downloads
        assert Path(view.path).name == expected


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("a\x1b[31mb", "ab"),
        ("con", "_con"),
        ("y" * 300, "y" * MAX_NAME_BYTES),
        ("two\nlines", "two_lines"),
        ("..", "file"),
    ],
)
async def test_names_the_protocol_forbids_are_still_made_safe_by_the_receiver(
    pair: Pair, offered: str, expected: str
) -> None:
    """Defence in depth: the protocol layer refuses these names on the wire, so they are
    handed straight to the receiving node's transfer engine, as if the check were gone."""
    session = pair.bob.directory.session(pair.alice.fingerprint)
    assert session is not None
    offer = FileOffer(os.urandom(16), offered, 3, CHUNK_SIZE)
    pair.bob.files.messages_received(session, [offer])
    view = await wait_incoming(pair.bob)
    assert view.name == expected
    assert "/" not in view.name and "\x1b" not in view.name and "\n" not in view.name


async def test_offer_over_the_size_limit_is_declined_with_the_reason(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    alice = await make_node("alice", config=loopback_config(files=file_settings(tmp_path / "a")))
    bob = await make_node(
        "bob", config=loopback_config(files=file_settings(tmp_path / "dl", max_file_size=1000))
    )
    await connect(alice, bob)
    src = tmp_path / "big.bin"
    write_random(src, 1001)
    offer = await alice.send_file("bob", str(src))
    sent = await wait_final(alice, offer.id)
    assert sent.state == "declined" and "over the receiver's limit" in (sent.error or "")
    assert not (tmp_path / "dl" / PARTIAL_DIR).exists()


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A small filesystem of its own at `mount` (root only; skips otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],  # noqa: S607
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)  # noqa: S607


def _fill(path: Path) -> None:
    """Write zeros to `path` until its filesystem is full."""
    with path.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


async def _send_onto_a_full_disk(
    make_node: NodeFactory, tmp_path: Path, small_tmpfs: Path, size: int
) -> None:
    """Alice sends `size` bytes to bob, whose downloads (the small tmpfs) fill up on the
    way: both ends fail with "disk is full", and bob keeps nothing but the filler."""
    alice = await make_node("alice", config=loopback_config(files=file_settings(tmp_path / "a")))
    bob = await make_node("bob", config=loopback_config(files=file_settings(small_tmpfs)))
    await connect(alice, bob)
    src = tmp_path / "payload.bin"
    write_random(src, size)
    offer = await alice.send_file("bob", str(src))
    received = await wait_final(bob, offer.id)
    sent = await wait_final(alice, offer.id)
    assert received.state == "failed" and "disk is full" in (received.error or "")
    assert sent.state == "failed" and "disk is full" in (sent.error or "")
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler"]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "small", "4m") as mount:
        yield mount


async def test_offer_bigger_than_free_space_is_declined(
    make_node: NodeFactory, tmp_path: Path, small_tmpfs: Path
) -> None:
    alice = await make_node("alice", config=loopback_config(files=file_settings(tmp_path / "a")))
    bob = await make_node("bob", config=loopback_config(files=file_settings(small_tmpfs)))
    await connect(alice, bob)
    src = tmp_path / "big.bin"
    write_random(src, 6 * 1024 * 1024)
    offer = await alice.send_file("bob", str(src))
    sent = await wait_final(alice, offer.id)
    assert sent.state == "declined" and "not enough free space" in (sent.error or "")


async def test_disk_filling_up_mid_transfer_ends_cleanly(
    make_node: NodeFactory, tmp_path: Path, small_tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first batch is written, something else fills the disk: ENOSPC follows."""
    original = receiver.IncomingTransfer.write
    filler = small_tmpfs / "filler"

    def write_then_fill(self: receiver.IncomingTransfer, chunks: Any) -> int:
        done = original(self, chunks)
        if not filler.exists():
            _fill(filler)
        return done

    monkeypatch.setattr(receiver.IncomingTransfer, "write", write_then_fill)
    await _send_onto_a_full_disk(make_node, tmp_path, small_tmpfs, 3 * 1024 * 1024)


async def test_disk_full_when_a_small_file_is_written_and_verified_at_once(
    make_node: NodeFactory, tmp_path: Path, small_tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file's chunks and file_done arrive together and are written and verified
    in one step (incoming.py `_write_and_verify`): ENOSPC there ends it like any other."""
    original = receiver.IncomingTransfer.open
    filler = small_tmpfs / "filler"

    def open_then_fill(self: receiver.IncomingTransfer, *args: Any, **kwargs: Any) -> int:
        offset = original(self, *args, **kwargs)
        _fill(filler)
        return offset

    monkeypatch.setattr(receiver.IncomingTransfer, "open", open_then_fill)
    await _send_onto_a_full_disk(make_node, tmp_path, small_tmpfs, 100 * 1024)


async def test_chat_is_not_stuck_behind_a_big_transfer(pair: Pair, tmp_path: Path) -> None:
    size = 200 * 1000 * 1000
    src = tmp_path / "big.bin"
    digest = await asyncio.to_thread(write_random, src, size)
    events = pair.bob.subscribe()
    offer = await pair.alice.send_file("bob", str(src))
    loop = asyncio.get_running_loop()

    async def progressed() -> None:
        while True:
            views = [v for v in await pair.bob.transfers() if v.id == offer.id]
            if views and views[0].bytes_done > size // 10:
                return
            await asyncio.sleep(0.005)

    await asyncio.wait_for(progressed(), 20)
    chat_sent = loop.time()
    await pair.alice.send_text("bob", "still there?")
    chat_at = transfer_done_at = None
    async for event in events:
        if isinstance(event, MessageReceived) and chat_at is None:
            chat_at = loop.time()
        elif (
            isinstance(event, TransferUpdated)
            and event.transfer.id == offer.id
            and event.transfer.state in ("completed", "failed")
        ):
            transfer_done_at = loop.time()
            assert event.transfer.state == "completed", event.transfer.error
            break
    assert chat_at is not None, "the chat arrived only after the transfer ended"
    assert transfer_done_at is not None
    latency, rest = chat_at - chat_sent, transfer_done_at - chat_at
    assert latency < 0.5, f"chat took {latency:.3f} s"
    assert rest > 5 * latency, f"chat after {latency:.3f} s, transfer {rest:.3f} s later"
    assert sha256_of(pair.downloads / "big.bin") == digest


async def test_offers_are_checked_against_the_free_space_together(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    """Three 6 MiB offers at once with 16 MiB free: each alone fits, all three do not.
    Checked one by one against what the others already hold, the third is declined
    up front, instead of all three accepted and one failing with a full disk."""
    with mounted_tmpfs(tmp_path / "disk", "16m") as disk:
        alice = await make_node(
            "alice", config=loopback_config(files=file_settings(tmp_path / "a"))
        )
        bob = await make_node("bob", config=loopback_config(files=file_settings(disk)))
        await connect(alice, bob)
        sources = [tmp_path / f"part{i}.bin" for i in range(3)]
        for source in sources:
            write_random(source, 6 * 1024 * 1024)
        offers = await asyncio.gather(*(alice.send_file("bob", str(s)) for s in sources))
        finals = [await wait_final(alice, offer.id, timeout=30) for offer in offers]
        states = sorted(f.state for f in finals)
        assert states == ["completed", "completed", "declined"], [
            (f.state, f.error) for f in finals
        ]
        (declined,) = [f for f in finals if f.state == "declined"]
        assert "not enough free space" in (declined.error or "")
        assert "held for other files" in (declined.error or "")


async def test_a_paused_transfer_holds_no_thread(make_node: NodeFactory, tmp_path: Path) -> None:
    """Once, 4 strangers x 32 transfers x 1 chunk, then gone, held 132 extra threads:
    each paused transfer kept its idle writer thread until it ended."""
    alice = await make_node("alice", config=loopback_config(files=file_settings(tmp_path / "a")))
    bob = await make_node("bob", config=loopback_config(files=file_settings(tmp_path / "dl")))
    await connect(alice, bob)
    source = tmp_path / "big.bin"
    write_random(source, 256 * 1024 * 1024)
    offer = await alice.send_file("bob", str(source))

    async def receiving() -> bool:
        return any(
            v.id == offer.id and v.bytes_done > 0 and v.state == "transferring"
            for v in await bob.transfers()
        )

    await eventually(receiving, timeout=10)
    await alice.stop()

    async def paused() -> bool:
        return any(v.id == offer.id and v.state == "paused" for v in await bob.transfers())

    await eventually(paused, timeout=10)

    def writers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("p2pmsg-rx-")]

    async def no_writer() -> bool:
        return not writers()

    await eventually(no_writer, timeout=5)

"""Two real nodes on loopback (TCP, Noise, SQLite, disk) for the transfer tests."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.node.api import TransferUpdated, TransferView
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from p2pmsg.node.transfers.sender import OutgoingTransfer
from p2pmsg.node.transfers.settings import TransferSettings
from p2pmsg.protocol.messages import FileDone
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config
from tests.node.conftest import make_node as make_node  # the fixture, re-exported


class LyingSender(OutgoingTransfer):
    """Sends the file honestly and ends it with the digest of something else."""

    def done_message(self) -> FileDone:
        honest = super().done_message()
        return FileDone(honest.transfer_id, hashlib.sha256(b"not this file").digest())


FINAL = ("completed", "failed", "declined", "expired", "cancelled")


def file_settings(downloads: Path, **changes: Any) -> TransferSettings:
    return replace(
        TransferSettings(downloads=downloads, accept_files=True, min_free_after=0), **changes
    )


@dataclass
class Pair:
    alice: Node
    bob: Node
    downloads: Path
    factory: NodeFactory


def write_random(path: Path, size: int) -> bytes:
    """A file of `size` random bytes (written in 1 MiB blocks); returns its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            f.write(block)
            digest.update(block)
            left -= len(block)
    return digest.digest()


def sha256_of(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.digest()


async def wait_final(node: Node, transfer_id: str, timeout: float = 20.0) -> TransferView:
    """Poll the node's transfer list until the transfer reached a final state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for view in await node.transfers():
            if view.id == transfer_id and view.state in FINAL:
                return view
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"transfer {transfer_id} not finished in {timeout} s: "
        f"{[v for v in await node.transfers() if v.id == transfer_id]}"
    )


async def wait_incoming(node: Node, timeout: float = 10.0) -> TransferView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        views = [v for v in await node.transfers() if v.direction == "in"]
        if views:
            return views[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no incoming transfer appeared")


def updates(events: list[Any], transfer_id: str) -> list[TransferView]:
    return [
        e.transfer
        for e in events
        if isinstance(e, TransferUpdated) and e.transfer.id == transfer_id
    ]


@pytest.fixture
async def pair(make_node: NodeFactory, tmp_path: Path) -> AsyncIterator[Pair]:
    downloads = tmp_path / "downloads"
    alice = await make_node("alice", config=loopback_config(files=file_settings(tmp_path / "a")))
    bob = await make_node("bob", config=loopback_config(files=file_settings(downloads)))
    await connect(alice, bob)
    yield Pair(alice, bob, downloads, make_node)


@dataclass
class PausedAtReceiver:
    """A transfer the receiver accepted while its sender was away, then restarted with:
    bob holds it paused with its partial file; alice is stopped."""

    alice_config: NodeConfig
    bob_config: NodeConfig
    bob: Node
    transfer_id: str
    downloads: Path
    partial: Path


async def paused_at_receiver(make_node: NodeFactory, tmp_path: Path) -> PausedAtReceiver:
    downloads = tmp_path / "downloads"
    alice_config = loopback_config(files=file_settings(tmp_path / "a"))
    bob_config = loopback_config(files=file_settings(downloads, accept_files=False))
    alice = await make_node("alice", config=alice_config)
    bob = await make_node("bob", config=bob_config)
    await connect(alice, bob)
    source = tmp_path / "report.bin"
    write_random(source, 256 * 1024)
    sent = await alice.send_file(bob.fingerprint, str(source))
    offered = await wait_incoming(bob)
    assert offered.id == sent.id
    # The sender goes away; the receiver accepts meanwhile (its answer cannot leave),
    # then restarts: it holds the transfer paused, with its partial file.
    await alice.stop()
    await bob.accept_file(sent.id)
    partial = downloads / PARTIAL_DIR / f"{sent.id}.part"

    async def partial_exists() -> bool:
        return partial.exists()

    await eventually(partial_exists)
    await bob.stop()
    bob = await make_node("bob", config=bob_config)
    assert [v.state for v in await bob.transfers() if v.id == sent.id] == ["paused"]
    assert partial.exists()
    return PausedAtReceiver(alice_config, bob_config, bob, sent.id, downloads, partial)

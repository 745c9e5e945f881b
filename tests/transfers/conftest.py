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
from p2pmsg.node.node import Node
from p2pmsg.node.transfers.settings import TransferSettings
from tests.node.conftest import NodeFactory, connect, loopback_config
from tests.node.conftest import make_node as make_node  # the fixture, re-exported

FINAL = ("completed", "failed", "declined", "expired", "cancelled")


def file_settings(downloads: Path, **changes: Any) -> TransferSettings:
    return replace(TransferSettings(downloads=downloads, accept_files=True, min_free_after=0),
                   **changes)


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
    raise AssertionError(f"transfer {transfer_id} not finished in {timeout} s: "
                         f"{[v for v in await node.transfers() if v.id == transfer_id]}")


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
    return [e.transfer for e in events
            if isinstance(e, TransferUpdated) and e.transfer.id == transfer_id]


@pytest.fixture
async def pair(make_node: NodeFactory, tmp_path: Path) -> AsyncIterator[Pair]:
    downloads = tmp_path / "downloads"
    alice = await make_node("alice", config=loopback_config(files=file_settings(tmp_path / "a")))
    bob = await make_node("bob", config=loopback_config(files=file_settings(downloads)))
    await connect(alice, bob)
    yield Pair(alice, bob, downloads, make_node)




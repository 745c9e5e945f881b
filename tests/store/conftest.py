"""Fixtures for the store tests: a real SQLite file in tmp_path, real keys."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from p2pmsg.store import Store


@pytest.fixture
def data_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "p2pmsg.db"


@pytest.fixture
def store(db_path: Path, data_key: bytes) -> Iterator[Store]:
    s = Store.open(db_path, data_key)
    yield s
    s.close()


PeerFactory = Callable[..., str]


@pytest.fixture
def make_peer(store: Store) -> PeerFactory:
    """Pin a fresh identity through the handshake path; returns its fingerprint."""

    def make(
        name: str = "alice", address: tuple[str, int] | None = None, now: float = 1000.0
    ) -> str:
        key = os.urandom(32)
        outcome = store.record_handshake(key, name, now, address)
        assert outcome.verdict == "new"
        assert outcome.peer.fingerprint == hashlib.sha256(key).hexdigest()
        return outcome.peer.fingerprint

    return make


def raw_bytes(db_path: Path) -> bytes:
    """Everything SQLite has on disk for this database: main file, WAL, shared memory."""
    return b"".join(
        p.read_bytes()
        for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"))
        if p.exists()
    )

"""A running node's store sees what another process commits (`p2pmsg trust` and friends
write beside a running node). Real processes, real SQLite files, real locks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from p2pmsg.store import AsyncStore, Store

_WRITER = """
import sys
from p2pmsg.store import Store
with Store.open(sys.argv[1], bytes.fromhex(sys.argv[2])) as store:
    getattr(store, sys.argv[3])(sys.argv[4], *([2.0] if sys.argv[3] == "block" else []))
"""


def _other_process(db: Path, key: bytes, action: str, fingerprint: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-c",
            _WRITER,
            str(db),
            key.hex(),
            action,
            fingerprint,
        ],
        check=True,
        timeout=60,
    )


async def test_commits_of_another_process_stay_visible(tmp_path: Path) -> None:
    """The checkpoint thread opens a second connection; it once re-opened the file with
    os.open/os.close, which dropped the node connection's POSIX locks. The next process
    to close its connection then deleted the WAL under the node, which saw no commit of
    any other process from then on (and wrote into a deleted file)."""
    db, key = tmp_path / "p2pmsg.db", os.urandom(32)
    store = await AsyncStore.open(db, key)
    try:
        pinned = await store.run(Store.record_handshake, os.urandom(32), "alice", 1.0)
        fp = pinned.peer.fingerprint
        wal = os.stat(f"{db}-wal").st_ino
        for round_ in range(4):
            action = "block" if round_ % 2 == 0 else "unblock"
            _other_process(db, key, action, fp)
            peer = await store.run(Store.get_peer, fp)
            assert peer is not None
            assert peer.trust == ("blocked" if action == "block" else "ok"), round_
            assert await store.run(Store.trust_generation) == round_ + 1
        assert os.stat(f"{db}-wal").st_ino == wal  # the WAL we write is still the file's
    finally:
        await store.close()

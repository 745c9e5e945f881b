"""Background checkpoints keep the WAL bounded while the writer never checkpoints itself."""

from __future__ import annotations

import os
import time
from pathlib import Path

from p2pmsg.store import AsyncStore, Store
from p2pmsg.store.checkpointer import Checkpointer
from tests.store.conftest import PeerFactory


def _write(store: Store, fp: str, seconds: float, pause: float) -> int:
    """Single-message transactions for `seconds`, `pause` apart (0: back to back)."""
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        store.enqueue_outgoing(fp, f"m{count}", 1.0)
        count += 1
        if pause:
            time.sleep(pause)
    return count


def _wal_growth(
    store: Store,
    db_path: Path,
    fp: str,
    seconds: float,
    pause: float,
    checkpointer: Checkpointer | None,
) -> int:
    wal = Path(f"{db_path}-wal")
    store.checkpoint()  # start from an empty WAL
    if checkpointer is not None:
        checkpointer.start()
    try:
        _write(store, fp, seconds, pause)
    finally:
        if checkpointer is not None:
            checkpointer.stop()
    return wal.stat().st_size


def test_the_wal_stays_bounded_without_the_writer_ever_checkpointing(
    store: Store, make_peer: PeerFactory, db_path: Path
) -> None:
    fp = make_peer()
    store.set_automatic_checkpoints(False)
    checkpointer = Checkpointer(db_path, interval=0.02, max_wal_frames=128)
    # Chat pace: a single-message transaction about every half millisecond.
    with_it = _wal_growth(store, db_path, fp, 0.5, 0.0005, checkpointer)
    without = _wal_growth(store, db_path, fp, 0.5, 0.0005, None)
    assert checkpointer.rounds >= 5 and checkpointer.restarts > 0
    assert without > 3 * with_it, (without, with_it)
    assert len(store.conversation(fp, limit=1_000_000)) > 0


async def test_async_store_checkpoints_in_the_background_and_folds_the_wal_at_close(
    db_path: Path, data_key: bytes
) -> None:
    astore = await AsyncStore.open(db_path, data_key)
    fp = (await astore.run(Store.record_handshake, os.urandom(32), "alice", 1.0)).peer.fingerprint
    pages = await astore.run(lambda s: s._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    assert pages == 0  # the store thread never pays for a checkpoint
    for i in range(20):
        await astore.run(Store.enqueue_outgoing, fp, f"m{i}", 2.0)
    await astore.close()
    assert not Path(f"{db_path}-wal").exists()  # the last connection folded and removed it
    with Store.open(db_path, data_key) as store:
        assert [m.text for m in store.outbox(fp)] == [f"m{i}" for i in range(20)]

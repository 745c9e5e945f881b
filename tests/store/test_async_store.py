"""AsyncStore: every call runs on one dedicated thread, in submission order."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from p2pmsg.errors import StoreError, StoreKeyError, UnknownPeerError
from p2pmsg.store import AsyncStore, Store


async def test_calls_run_off_the_loop_on_one_thread_in_order(
    db_path: Path, data_key: bytes
) -> None:
    async with await AsyncStore.open(db_path, data_key) as astore:
        outcome = await astore.run(Store.record_handshake, os.urandom(32), "alice", 1.0)
        fp = outcome.peer.fingerprint
        threads: set[str] = set()

        def whoami(store: Store) -> str:
            return threading.current_thread().name

        # Fire many calls at once; they must complete in submission order.
        results = await asyncio.gather(
            *(astore.run(Store.enqueue_outgoing, fp, f"m{i}", 2.0) for i in range(50))
        )
        threads.update(await asyncio.gather(*(astore.run(whoami) for _ in range(5))))
        assert [m.seq for m in results] == sorted(m.seq for m in results)
        outbox = await astore.run(Store.outbox, fp)
        assert [m.text for m in outbox] == [f"m{i}" for i in range(50)]
        (store_thread,) = threads
        assert store_thread.startswith("p2pmsg-store")
        assert store_thread != threading.current_thread().name
        with pytest.raises(UnknownPeerError):  # errors cross the thread unchanged
            await astore.run(Store.enqueue_outgoing, "ab" * 32, "to nobody", 3.0)
    with pytest.raises(StoreError, match="closed"):
        await astore.run(Store.list_peers)


async def test_open_errors_surface_to_the_caller(db_path: Path, data_key: bytes) -> None:
    first = await AsyncStore.open(db_path, data_key)
    await first.close()
    with pytest.raises(StoreKeyError):
        await AsyncStore.open(db_path, os.urandom(32))


async def test_a_cancelled_call_is_skipped_unless_run_to_completion(
    db_path: Path, data_key: bytes
) -> None:
    async with await AsyncStore.open(db_path, data_key) as astore:
        outcome = await astore.run(Store.record_handshake, os.urandom(32), "alice", 1.0)
        fp = outcome.peer.fingerprint
        gate = threading.Event()
        blocker = asyncio.ensure_future(astore.run(lambda store: gate.wait(5)))  # holds the thread
        skipped = asyncio.ensure_future(astore.run(Store.enqueue_outgoing, fp, "skipped", 2.0))
        kept = asyncio.ensure_future(
            astore.run_to_completion(Store.enqueue_outgoing, fp, "kept", 2.0)
        )
        await asyncio.sleep(0.01)  # both queued behind the blocker
        skipped.cancel()
        kept.cancel()
        gate.set()
        assert await blocker is True
        assert [m.text for m in await astore.run(Store.outbox, fp)] == ["kept"]
        assert skipped.cancelled() and kept.cancelled()

"""WriteBatcher: calls made together commit in one transaction, each failing on its own."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from p2pmsg.errors import UnknownPeerError
from p2pmsg.store import AsyncStore, Store
from p2pmsg.store.batching import WriteBatcher


async def test_calls_made_together_share_one_transaction(db_path: Path, data_key: bytes) -> None:
    async with await AsyncStore.open(db_path, data_key) as astore:
        outcome = await astore.run(Store.record_handshake, os.urandom(32), "alice", 1.0)
        fp = outcome.peer.fingerprint
        batcher = WriteBatcher(astore)
        ids = [os.urandom(16) for _ in range(20)]
        transactions: list[bool] = []

        def in_transaction(store: Store) -> bool:
            return store._in_transaction  # what the batch runs inside

        results = await asyncio.gather(
            *(
                batcher.run(
                    Store.insert_transfer,
                    fp,
                    transfer_id=tid,
                    direction="in",
                    name=f"f{i}.bin",
                    size=i,
                    chunk_size=65536,
                    now=2.0,
                    state="transferring",
                )
                for i, tid in enumerate(ids)
            ),
            batcher.run(Store.enqueue_outgoing, "ab" * 32, "to nobody", 3.0),  # fails alone
            batcher.run(in_transaction),
            return_exceptions=True,
        )
        assert results[:20] == [None] * 20
        assert isinstance(results[20], UnknownPeerError)
        transactions.append(bool(results[21]))
        assert transactions == [True]
        records = [await astore.run(Store.get_transfer, tid) for tid in ids]
        assert [(r.name, r.size, r.state) for r in records if r is not None] == [
            (f"f{i}.bin", i, "transferring") for i in range(20)
        ]
        # A call on its own, later, still runs (and a failure reaches its caller).
        with pytest.raises(UnknownPeerError):
            await batcher.run(Store.enqueue_outgoing, "cd" * 32, "x", 4.0)
        await batcher.run(Store.finish_transfer, ids[0], "completed", 5.0, sha256=b"\1" * 32)
        done = await astore.run(Store.get_transfer, ids[0])
        assert done is not None and done.state == "completed" and done.bytes_done == 0

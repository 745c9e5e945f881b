"""`AsyncStore`: the store for asyncio code, every call off the event loop.

Why one dedicated thread rather than `asyncio.to_thread`: a sqlite3
connection belongs to the thread that made it, and the default executor
hands calls to whichever of its threads is free. A single-thread executor
owns the connection for its whole life, so calls run one after another in
submission order (a message is enqueued before its "sent" mark, always)
and no lock is needed. One writer is also what SQLite prefers.

WAL checkpoints run on a second thread with a connection of its own
(checkpointer.py), so no call here waits for a checkpoint's fsyncs.

Calls are typed: `await astore.run(Store.enqueue_outgoing, fp, "hi", now)`
is checked by mypy against `Store.enqueue_outgoing`'s signature, with no
hand-written mirror of each method to keep in sync.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from p2pmsg.errors import StoreError
from p2pmsg.store.checkpointer import Checkpointer
from p2pmsg.store.store import Store

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """Open with `await AsyncStore.open(path, data_key)`; close with `await close()`."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor,
                 checkpointer: Checkpointer | None = None) -> None:
        self._store = store
        self._executor = executor
        self._checkpointer = checkpointer
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, data_key: bytes, **options: Any) -> AsyncStore:
        """Open the store on a new worker thread (see `Store.open` for options and errors)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="p2pmsg-store")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(
                executor, functools.partial(Store.open, path, data_key, **options))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        checkpointer = Checkpointer(store.path)
        try:
            await loop.run_in_executor(executor, store.set_automatic_checkpoints, False)
        except BaseException:
            await loop.run_in_executor(executor, store.close)
            executor.shutdown(wait=False)
            raise
        checkpointer.start()
        return cls(store, executor, checkpointer)

    async def run(self, method: Callable[Concatenate[Store, P], T], *args: P.args,
                  **kwargs: P.kwargs) -> T:
        """Run `method(store, *args, **kwargs)` on the store's thread and await the result.

        Cancelling the awaiting task does not cancel the call once it started:
        it still completes on the store thread (an enqueue may have happened).
        """
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        call = functools.partial(method, self._store, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    async def close(self) -> None:
        """Finish the queued calls, close the connection, stop the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            if self._checkpointer is not None:
                # First: the writer's connection, closed last, folds the WAL and removes it.
                await asyncio.to_thread(self._checkpointer.stop)
            await loop.run_in_executor(self._executor, self._store.close)
        finally:
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

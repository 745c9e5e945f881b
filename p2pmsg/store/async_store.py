"""`AsyncStore`: the store for asyncio code, every call off the event loop.

Why one dedicated thread rather than `asyncio.to_thread`: a sqlite3
connection belongs to the thread that made it, and the default executor
hands calls to whichever of its threads is free. One thread owns the
connection for its whole life, so calls run one after another in submission
order (a message is enqueued before its "sent" mark, always) and no lock is
needed. One writer is also what SQLite prefers.

The thread takes calls from a queue and hands each result back with one
`call_soon_threadsafe`: the least a hop between the loop and a thread can
cost. (`run_in_executor` adds a concurrent future, a work item and a chained
asyncio future per call; at one message per round trip that was measurable.)

WAL checkpoints run on a second thread with a connection of its own
(checkpointer.py), so no call here waits for a checkpoint's fsyncs.

Calls are typed: `await astore.run(Store.enqueue_outgoing, fp, "hi", now)`
is checked by mypy against `Store.enqueue_outgoing`'s signature, with no
hand-written mirror of each method to keep in sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from p2pmsg.errors import StoreError
from p2pmsg.store.checkpointer import Checkpointer
from p2pmsg.store.store import Store

P = ParamSpec("P")
T = TypeVar("T")

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any], bool]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the loop: deliver a call's outcome unless its awaiter gave up (cancelled)."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class StoreThread:
    """One thread that runs calls in submission order and answers on their loop."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="p2pmsg-store", daemon=True)
        self._thread.start()

    def submit(
        self, call: Callable[[], T], *, even_if_cancelled: bool = False
    ) -> asyncio.Future[T]:
        """Queue `call`; the future has its outcome. Cancelling the future before the call
        started skips it, unless `even_if_cancelled`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, call, even_if_cancelled))
        return future

    def stop(self) -> None:
        """Finish the calls already queued, then end the thread (blocks until it has)."""
        self._calls.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            loop, future, call, even_if_cancelled = item
            if future.cancelled() and not even_if_cancelled:  # given up before it started
                continue
            result: Any = None
            error: BaseException | None = None
            try:
                result = call()
            except BaseException as exc:  # handed to the awaiter, whatever it is
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, result, error)
            del item, future, call, result, error  # no reference outlives the call


class AsyncStore:
    """Open with `await AsyncStore.open(path, data_key)`; close with `await close()`."""

    def __init__(
        self, store: Store, thread: StoreThread, checkpointer: Checkpointer | None = None
    ) -> None:
        self._store = store
        self._thread = thread
        self._checkpointer = checkpointer
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, data_key: bytes, **options: Any) -> AsyncStore:
        """Open the store on a new worker thread (see `Store.open` for options and errors)."""
        thread = StoreThread()
        try:
            store = await thread.submit(functools.partial(Store.open, path, data_key, **options))
        except BaseException:
            await asyncio.to_thread(thread.stop)
            raise
        try:
            await thread.submit(functools.partial(store.set_automatic_checkpoints, False))
        except BaseException:
            await thread.submit(store.close)
            await asyncio.to_thread(thread.stop)
            raise
        checkpointer = Checkpointer(store.path)
        checkpointer.start()
        return cls(store, thread, checkpointer)

    async def run(
        self, method: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `method(store, *args, **kwargs)` on the store's thread and await the result.

        Cancelling the awaiting task does not cancel the call once it started:
        it still completes on the store thread (an enqueue may have happened).
        """
        if self._closed:
            raise StoreError("the store is closed")
        return await self._thread.submit(functools.partial(method, self._store, *args, **kwargs))

    async def run_to_completion(
        self, method: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`run`, except that the call happens even if the awaiting task is cancelled
        before it started: what `asyncio.shield(run(...))` gives, one loop turn sooner."""
        if self._closed:
            raise StoreError("the store is closed")
        return await self._thread.submit(
            functools.partial(method, self._store, *args, **kwargs), even_if_cancelled=True
        )

    async def close(self) -> None:
        """Finish the queued calls, close the connection, stop the threads (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._checkpointer is not None:
                # First: the writer's connection, closed last, folds the WAL and removes it.
                await asyncio.to_thread(self._checkpointer.stop)
            await self._thread.submit(self._store.close)
        finally:
            await asyncio.to_thread(self._thread.stop)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

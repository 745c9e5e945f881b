"""`WriteBatcher`: many small store calls from one event loop, one transaction for all.

Why: the files of a folder offer each make a few store writes (a record when
the file starts, its outcome when it ends), and a folder of small files makes
them by the hundred per second. Each call on its own is a hand-off to the
store thread and back and a commit of its own (a WAL append). Calls made
while an earlier batch is on the store thread, or in the same turn of the
loop, wait and go together: one hand-off, one `Store.transaction()`, one
commit. Nobody waits longer than for the batch before theirs.

Each call keeps its own all-or-nothing behaviour (a savepoint inside the
transaction, `StoreBase.transaction`): one that fails raises to its own
caller only, and the others still commit. A caller's `await` returns once
its call is committed, so what it does next (answering a peer) may rely on
the record being there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from p2pmsg.store.async_store import AsyncStore
from p2pmsg.store.store import Store

P = ParamSpec("P")
T = TypeVar("T")

_Pending = tuple[Callable[[Store], Any], "asyncio.Future[Any]"]
#: Most calls in one transaction (a bound on how long one batch holds the store thread).
MAX_BATCH = 256


def _run_batch(store: Store, calls: list[Callable[[Store], Any]]) -> list[tuple[bool, Any]]:
    """On the store thread: every call in one transaction, each outcome kept apart."""
    outcomes: list[tuple[bool, Any]] = []
    with store.transaction():
        for call in calls:
            try:
                outcomes.append((True, call(store)))
            except Exception as exc:  # handed to that call's awaiter alone
                outcomes.append((False, exc))
    return outcomes


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class WriteBatcher:
    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._pending: list[_Pending] = []
        self._flushing = False

    async def run(
        self, method: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`AsyncStore.run_to_completion(method, ...)`, committed together with the other
        calls of this batch. The call happens even if the awaiting task is cancelled."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # an awaiter that gave up leaves no warning
        self._pending.append((lambda store: method(store, *args, **kwargs), future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await asyncio.shield(future)

    def _flush(self) -> None:
        task = asyncio.ensure_future(self._drain())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    outcomes = await self._store.run_to_completion(
                        _run_batch, [call for call, _ in batch]
                    )
                except BaseException as exc:  # the transaction as a whole failed
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._flushing = False
            if self._pending:  # added while cancelled: never left waiting
                self._flushing = True
                asyncio.get_running_loop().call_soon(self._flush)

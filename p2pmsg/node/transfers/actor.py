"""The skeleton both transfer directions share: one task per transfer, fed by an inbox.

Why an actor per transfer: everything that happens to a transfer (a message
from the peer, a click on "accept", a session going away, a timer) is put in
its inbox and handled in order by its own task. Disk work (reading chunks,
writing and hashing them, verifying) runs in worker threads, and while
it runs the next items simply wait in the inbox, so nothing races: a resume
can never overtake the chunks written before it, and a cancel never lands in
the middle of a write. Several transfers run side by side, one task each.

The session is held as a `Channel` (the slice of a live session the node
hands out). `send_messages` seals and queues; `drained` waits only when the
kernel's socket buffer is full, which is how a fast disk is slowed to the
network's pace without buffering in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pmsg.errors import P2PMsgError, TransferError
from p2pmsg.node.api import TransferState, TransferUpdated
from p2pmsg.node.bus import EventBus
from p2pmsg.node.channel import Channel
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.node.transfers.progress import Progress
from p2pmsg.protocol.events import UserMessage
from p2pmsg.protocol.limits import MAX_REASON_BYTES
from p2pmsg.protocol.messages import FileCancel
from p2pmsg.store import AsyncStore, Store
from p2pmsg.store.batching import WriteBatcher

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The node's parts a transfer talks to."""

    store: AsyncStore
    bus: EventBus
    security: SecurityLog
    clock: Callable[[], float]  # wall clock: store timestamps, offer expiry


Item = tuple[Any, ...]
#: Inbox items that are the user's decision to end a transfer.
_USER_ENDINGS = ("local_cancel", "decline_local")


class TransferActor:
    """Inbox, task and the bookkeeping common to both directions."""

    def __init__(
        self, services: Services, progress: Progress, on_finished: Callable[[TransferActor], None]
    ) -> None:
        self.services = services
        self.progress = progress
        self.channel: Channel | None = None
        self.inbox: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_finished = on_finished
        self._ending = False  # end() has begun: stop() lets it finish
        #: a folder offer's files write their records through their offer's batcher
        #: (one transaction for the files that reach a state together), not one by one
        self.batcher: WriteBatcher | None = None

    @property
    def transfer_id(self) -> bytes:
        return self.progress.transfer_id

    @property
    def peer(self) -> str:
        return self.progress.peer

    # --- life -------------------------------------------------------------------------------

    def start(self) -> None:
        name = f"p2pmsg-transfer-{self.transfer_id.hex()[:8]}"
        self._task = asyncio.create_task(self._main(), name=name)

    async def stop(self) -> None:
        """Stop the task; the transfer stays resumable (its state is in the store).

        What the user already decided is not dropped on the way out: an ending being
        written is let finish (its disk and store work is short and bounded), and a
        cancel or decline still waiting in the inbox is carried out here, so a transfer
        cancelled just before quitting does not come back on the next start.
        """
        if self._task is not None:
            if not self._ending:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        decision = next((item for item in self.inbox if item[0] in _USER_ENDINGS), None)
        if decision is not None and not self.progress.final:
            await self._handle(decision)
        self.release()

    def push(self, *item: Any) -> None:
        self.inbox.append(item)
        self._wake.set()

    async def wait(self) -> None:
        """Sleep until something is pushed (or `nudge` is called)."""
        if not self.inbox:
            self._wake.clear()
            await self._wake.wait()

    def nudge(self) -> None:
        self._wake.set()

    async def _main(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except TransferError as exc:
            await self.fail(str(exc))
        except Exception:
            log.exception("transfer %s failed unexpectedly", self.transfer_id.hex())
            await self.fail("internal error on this side")

    async def run(self) -> None:
        raise NotImplementedError

    async def _handle(self, item: Item) -> None:
        """Carry out one inbox item (each direction has its own)."""
        raise NotImplementedError

    def release(self) -> None:
        """Close files (keep partial data): the session or the node is going away."""

    def discard(self) -> None:
        """Remove what a failed transfer left behind (blocking; runs in a thread)."""

    # --- talking ----------------------------------------------------------------------------

    def send(self, *messages: UserMessage) -> bool:
        channel = self.channel
        if channel is None or not channel.is_open:
            return False
        channel.send_messages(messages)
        return True

    def publish(self, *, force: bool = False) -> None:
        if self.progress.bundle_id is not None and not self.progress.final:
            # A folder offer's file: its offer's events carry the progress (bundles.py);
            # the UI and the command line show no line of a file's own. Only its end
            # is published, not each step of hundreds of small files a second.
            return
        if force or self.progress.due_publish():
            self.services.bus.publish(TransferUpdated(self.progress.view()))

    async def store_call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A store write whose failure must not kill the transfer (it is a record, a hint).

        The write happens even if the node stops this transfer's task while it is queued:
        a transfer the user cancelled just before quitting must not come back as "offered"
        on the next start (and be re-offered, and completed) because its ending was skipped.
        """
        try:
            if self.batcher is not None:
                await self.batcher.run(method, *args, **kwargs)
            else:
                await self.services.store.run_to_completion(method, *args, **kwargs)
        except P2PMsgError as exc:
            log.warning("transfer %s: could not update the store: %s", self.transfer_id.hex(), exc)

    async def set_state(self, state: TransferState, **fields: Any) -> None:
        self.progress.state = state
        if state == "verifying" and not fields and self.progress.bundle_id is not None:
            # A folder offer's file: "verifying" lasts a round trip or an fsync, and a
            # record left "transferring" resumes the same way after a restart. A store
            # write (a hand-off to the store thread and back) per file and side was a
            # tenth of the time of a folder of small files.
            self.publish(force=True)
            return
        await self.store_call(
            Store.update_transfer, self.transfer_id, self.services.clock(), state=state, **fields
        )
        self.publish(force=True)

    async def persist_progress(self) -> None:
        if self.progress.due_persist():
            await self.store_call(
                Store.update_transfer,
                self.transfer_id,
                self.services.clock(),
                bytes_done=self.progress.bytes_done,
            )

    async def end(
        self,
        state: TransferState,
        *,
        error: str | None = None,
        final_path: str | None = None,
        tell: UserMessage | None = None,
        sha256: bytes | None = None,
    ) -> None:
        """Finish for good: tell the peer, keep only the record, publish, forget.
        `sha256`: the whole file's digest, for the record (known only at the end)."""
        if self.progress.final:
            return
        self._ending = True
        # A success is told once it is recorded: a receiver that says "verified and
        # saved" has the file on disk (fsynced, renamed) and its record committed.
        tell_now, tell = (tell, None) if state != "completed" else (None, tell)
        if tell_now is not None:
            self.send(tell_now)
        self.release()
        if state != "completed":
            await asyncio.to_thread(self.discard)
        self.progress.state = state
        self.progress.error = error
        if final_path is not None:
            self.progress.path = final_path
        if state == "completed":
            self.progress.bytes_done = self.progress.size
        if sha256 is not None:
            self.progress.sha256 = sha256
        await self.store_call(
            Store.finish_transfer,
            self.transfer_id,
            state,
            self.services.clock(),
            final_path=final_path,
            error=error,
            sha256=sha256,
        )
        if tell is not None:
            self.send(tell)
        self.publish(force=True)
        self._on_finished(self)

    async def fail(self, reason: str) -> None:
        """End as failed and tell the peer why (our messages never hold local paths)."""
        await self.end(
            "failed", error=reason, tell=FileCancel(self.transfer_id, wire_reason(reason))
        )

    def log_event(self, event: str, nbytes: int, **detail: Any) -> None:
        """A security event; the detail carries ids and counts, never names (user content)."""
        self.services.security.record(
            event,
            peer=self.peer,
            nbytes=nbytes,
            detail={"transfer": self.transfer_id.hex(), **detail},
        )


def wire_reason(text: str) -> str:
    """A reason that passes the protocol's rules: one line, at most 256 UTF-8 bytes."""
    line = "".join(ch if ch.isprintable() else " " for ch in text)
    line = " ".join(line.split())
    return line.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", errors="ignore") or "failed"

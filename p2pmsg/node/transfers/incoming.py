"""The receiving actor: wait for the user's answer, write chunks, verify, move into place.

Inbox items (handled in order):
    ("session", channel | None)   a session to the peer became ready / went away
    ("offer", channel)            the sender (re-)offered this transfer
    ("accept_local",)             our user (or --accept-files) accepted
    ("decline_local", reason)     our user declined
    ("chunk", offset, data)       FileChunk (consecutive chunks are written as one batch)
    ("done", sha256)              the sender's FileDone and its whole-file digest: verify now
    ("cancel", reason)            the sender's FileCancel
    ("local_cancel",)             our user cancelled
    ("fail", reason)              the manager caught the sender breaking the rules
    ("expire",)                   the offer was not answered in time
    ("abandon", how_long)         paused for longer than we wait (a week; hours for a stranger)

Acks are sent after the bytes are written (the write is the durability point a
resume relies on), at most one per written batch and fewer when batches are
small: one per `ACK_EVERY` bytes, and always once nothing more is queued or
waiting to be written, so the sender never waits on bytes we already have.

Writing and hashing run on a thread of the transfer's own, fed without waiting:
while a batch is on its way to disk the event loop goes on receiving, and the
next batch is queued behind it (at most `MAX_QUEUED_WRITES`). Awaiting a worker
thread per batch instead cost a thread hop each way in series, a third of a
256 MiB transfer's time. Anything other than a chunk (done, cancel, a session
change) waits until the writes queued before it are finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from p2pmsg.errors import DiskFullError, TransferError, TransferIntegrityError
from p2pmsg.node.transfers.actor import Services, TransferActor, wire_reason
from p2pmsg.node.transfers.progress import Progress
from p2pmsg.node.transfers.receiver import IncomingTransfer, ReceivePolicy, discard_partial
from p2pmsg.protocol.messages import FileAccept, FileAck, FileCancel, FileDecline, FileDone
from p2pmsg.store import Store

log = logging.getLogger(__name__)

#: Most chunk bytes handed to one write call (and so acknowledged at once): half the
#: sender's default window, so an ack arrives while the other half is in flight.
MAX_WRITE_BATCH = 1024 * 1024
#: Batches handed to the writer thread and not yet written: one being written, one
#: waiting, so the thread never idles while chunks arrive; the rest gather in the
#: inbox into the next (larger) batch.
MAX_QUEUED_WRITES = 2
#: Written bytes worth an ack of their own: a quarter of the default window (2 MiB),
#: so the sender has room while the ack travels. Fewer acks, fewer wake-ups of both
#: sides (each ~0.1 ms of CPU per side, and on a loaded machine the sender's wake-up
#: up to a few ms); the last written byte is always acked once nothing else is
#: pending, so a sender with any window makes progress (but not the file's end:
#: file_done answers that). Per write batch (~430 KiB on
#: average) was slower, and so was 1 MiB (the sender then idled for half its window).
ACK_EVERY = 512 * 1024
#: Written bytes after which their writeback is started (`IncomingTransfer.start_writeback`),
#: each time covering the step before too (clean by then: dropped from the cache).
WRITEBACK_EVERY = 8 * 1024 * 1024
#: A folder offer's file at most this large is opened on the loop (a few syscalls, and
#: a re-hash of at most this much if a crash left a partial file): the hand-off to a
#: worker thread and back cost more than the open, per small file.
INLINE_OPEN_MAX = 1024 * 1024
_RESUMABLE = ("accepted", "transferring", "paused", "verifying")


class IncomingActor(TransferActor):
    def __init__(
        self,
        services: Services,
        progress: Progress,
        rx: IncomingTransfer,
        policy: ReceivePolicy | None,
        on_finished: Callable[[TransferActor], None],
    ) -> None:
        super().__init__(services, progress, on_finished)
        self.rx = rx
        self.policy = policy  # None: no downloads folder yet, the offer can only wait
        self.buffered = 0  # chunk bytes in the inbox or being written (the manager caps it)
        self.reserved = False  # accepted: its size counts against the free space of others
        self.paused_since: float | None = None  # wall clock; abandoned after a while
        self.resumed_from = 0
        self._opened = False
        #: one thread per incoming transfer writes and hashes, in order; the loop keeps
        #: receiving while it does (a thread hop per batch, waited for in series,
        #: was a third of the time of a 256 MiB transfer)
        self._writer: ThreadPoolExecutor | None = None
        #: a folder offer's files share one writer thread (bundles.py): starting a thread
        #: per small file cost the event loop ~0.4 ms each, and they are written in turn
        self.shared_writer: ThreadPoolExecutor | None = None
        self._writes: deque[tuple[asyncio.Future[int], int]] = deque()
        self._acked = 0  # the offset of our last FileAck
        self._writeback: asyncio.Future[None] | None = None  # at most one at a time
        self._writeback_from = self._writeback_previous = 0

    async def run(self) -> None:
        try:
            while not self.progress.final:
                if self._writes and self._writes[0][0].done():
                    await self._written(*self._writes.popleft())
                elif not self.inbox:
                    await self.wait()  # a push, or a write finishing (it nudges)
                elif self.inbox[0][0] != "chunk":
                    if self._writes:
                        await self._wait_write()  # nothing overtakes the writes before it
                    elif self._writeback is not None and not self._writeback.done():
                        await asyncio.wait([self._writeback])
                    else:
                        await self._handle(self.inbox.popleft())
                elif not self._writes and (whole := self._rest_and_done()) is not None:
                    await self._write_and_verify(*whole)
                elif len(self._writes) < MAX_QUEUED_WRITES:
                    self._queue_write()
                else:
                    await self._wait_write()
        finally:
            await self._settle_writes()
            self._stop_writer()

    def _stop_writer(self) -> None:
        """End the writer thread (made again by the next write, if any)."""
        if self._writer is not None:
            if self._writer is not self.shared_writer:
                self._writer.shutdown(wait=False)
            self._writer = None

    def _queue_write(self) -> None:
        """Hand the chunks at the head of the inbox to the writer thread, without waiting."""
        if self.progress.state != "transferring" or not self._opened:
            raise TransferError("the sender sent file data before the offer was accepted")
        batch: list[tuple[int, bytes]] = []
        size = 0
        while self.inbox and self.inbox[0][0] == "chunk" and size < MAX_WRITE_BATCH:
            _, offset, data = self.inbox.popleft()
            batch.append((offset, data))
            size += len(data)
        if self._writer is None:
            self._writer = self.shared_writer or ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"p2pmsg-rx-{self.transfer_id.hex()[:8]}"
            )
        future = asyncio.wrap_future(self._writer.submit(self.rx.write, batch))
        future.add_done_callback(lambda _: self.nudge())
        self._writes.append((future, size))

    async def _wait_write(self) -> None:
        await asyncio.wait([self._writes[0][0]])

    async def _written(self, future: asyncio.Future[int], size: int) -> None:
        """A batch is on disk (or failed): acknowledge it, in order."""
        self.buffered -= size
        try:
            done = future.result()
        except DiskFullError as exc:
            await self._settle_writes()
            await self.fail(str(exc))
            return
        except TransferError:
            await self._settle_writes()
            raise
        # The last byte is never acked on its own: the sender needs no window to end
        # (it sends file_done once everything is sent), and our file_done after the
        # verification says more. One message fewer per file on each side; on a folder
        # of small files that was a third of the receiver's messages.
        if done < self.rx.size and (
            done - self._acked >= ACK_EVERY
            or not (self._writes or (self.inbox and self.inbox[0][0] == "chunk"))
        ):
            self._acked = done
            self.send(FileAck(self.transfer_id, done))
        if done - self._writeback_from >= WRITEBACK_EVERY and (
            self._writeback is None or self._writeback.done()
        ):
            self._writeback = asyncio.get_running_loop().run_in_executor(
                None, self.rx.start_writeback, self._writeback_previous, done
            )
            self._writeback_previous, self._writeback_from = self._writeback_from, done
        self.progress.advance(done)
        self.publish()
        await self.persist_progress()

    async def _settle_writes(self) -> None:
        """Let queued writes finish before anything closes or removes the partial file.

        Their outcome no longer matters (after a failure they fail too: the file is
        closed), but a write must never run against a descriptor being closed."""
        if self._writeback is not None:
            await asyncio.wait([self._writeback])
            self._writeback = None
        if self._writes:
            await asyncio.wait([future for future, _ in self._writes])
            for future, _ in self._writes:
                if not future.cancelled():
                    future.exception()  # retrieved: no "never retrieved" warning
            self._writes.clear()

    async def _handle(self, item: tuple[object, ...]) -> None:
        kind = item[0]
        state = self.progress.state
        if kind == "session":
            self.channel = item[1]  # type: ignore[assignment]
            if item[1] is None and state in ("accepted", "transferring"):
                await self._settle_writes()
                self.release()
                self._stop_writer()  # a paused transfer holds no thread
                self.paused_since = self.services.clock()
                await self.set_state("paused")
        elif kind == "offer":
            self.channel = item[1]  # type: ignore[assignment]
            if state in _RESUMABLE:
                await self._open_and_answer()
        elif kind == "accept_local":
            if state == "offered":
                await self._open_and_answer()
        elif kind == "open_entry":
            if state == "offered":
                await self._open_entry()
        elif kind == "decline_local":
            if state == "offered":
                reason = wire_reason(str(item[1]))
                await self.end("declined", error=reason, tell=FileDecline(self.transfer_id, reason))
        elif kind == "done":
            await self._verify(bytes(item[1]))  # type: ignore[call-overload]
        elif kind == "cancel":
            if state == "offered":
                await self.end("cancelled", error=f"the sender withdrew the offer: {item[1]}")
            else:
                await self.end("failed", error=f"the sender stopped the transfer: {item[1]}")
        elif kind == "local_cancel":
            await self.end(
                "cancelled",
                error="cancelled by the receiver",
                tell=FileCancel(self.transfer_id, "cancelled by the receiver"),
            )
        elif kind == "fail":
            await self.fail(str(item[1]))
        elif kind == "expire" and state == "offered":
            await self.end(
                "expired",
                error="the offer was not answered in time",
                tell=FileDecline(self.transfer_id, "the offer was not answered in time"),
            )
        elif kind == "abandon" and state == "paused":
            await self.end(
                "failed",
                error=f"given up: the sender did not resume it for {item[1]}",
                tell=FileCancel(self.transfer_id, "the receiver gave it up"),
            )

    async def _open_and_answer(self) -> None:
        """Accept or resume: open the partial file (re-hashing it) and name the offset."""
        if self.policy is None:
            raise TransferError("the receiver has no downloads folder configured")
        self.release()
        offset = await asyncio.to_thread(self.rx.open, self.policy)
        self._opened = True
        self.resumed_from = self._acked = offset
        self._writeback_from = self._writeback_previous = offset
        self.progress.advance(offset)
        self.progress.meter.reset(offset)
        partial = str(self.rx.partial_path) if self.rx.partial_path else None
        await self.set_state("transferring", bytes_done=offset, partial_path=partial)
        self.send(FileAccept(self.transfer_id, offset))

    async def _open_entry(self) -> None:
        """A file of an accepted folder offer, offered for the first time (bundles.py
        `take_entry`): its chunks may already wait in the inbox. Open the partial file
        (the offer was checked as a whole), record the file as transferring (one write,
        batched with the other files'), then answer with the offset."""
        if self.policy is None:
            raise TransferError("the receiver has no downloads folder configured")
        if self.rx.size <= INLINE_OPEN_MAX:
            offset = self.rx.open(self.policy, checked=True)
        else:
            offset = await asyncio.to_thread(self.rx.open, self.policy, checked=True)
        self._opened = True
        self.resumed_from = self._acked = offset
        self._writeback_from = self._writeback_previous = offset
        self.progress.advance(offset)
        self.progress.meter.reset(offset)
        self.progress.state = "transferring"
        self.progress.persisted_now()
        rx = self.rx
        await self.store_call(
            Store.insert_transfer,
            self.peer,
            transfer_id=rx.transfer_id,
            direction="in",
            name=rx.name,
            size=rx.size,
            chunk_size=rx.chunk_size,
            now=self.progress.created,
            state="transferring",
            bundle_id=self.progress.bundle_id,
            partial_path=str(rx.partial_path),
            bytes_done=offset,
        )
        self.send(FileAccept(self.transfer_id, offset))

    def _rest_and_done(self) -> tuple[list[tuple[int, bytes]], bytes] | None:
        """The rest of a small file and the sender's file_done, when all of it waits in
        the inbox (a small file of a folder offer arrives in one write): taken from
        the inbox, to be written and verified in one hand-off to a thread."""
        rest = self.rx.size - self.rx.bytes_done
        if rest > INLINE_OPEN_MAX or not self._opened:
            return None
        got = 0
        for count, item in enumerate(self.inbox):
            if item[0] != "chunk":
                if item[0] != "done" or got != rest:
                    return None
                chunks = [self.inbox.popleft()[1:] for _ in range(count)]
                sha256 = bytes(self.inbox.popleft()[1])
                return chunks, sha256
            got += len(item[2])
        return None

    async def _write_and_verify(self, chunks: list[tuple[int, bytes]], sha256: bytes) -> None:
        """`_queue_write`, `_written` and `_verify` for a whole (small) rest at once."""
        if self.progress.state != "transferring":
            raise TransferError("the sender sent file data before the offer was accepted")
        size = sum(len(data) for _, data in chunks)
        self.buffered -= size
        await self._verify(sha256, chunks)

    def _write_and_finish(
        self, chunks: list[tuple[int, bytes]], downloads: Path, sha256: bytes
    ) -> Path:
        self.rx.write(chunks)
        return self.rx.finish(downloads, sha256)

    async def _verify(self, sha256: bytes, rest: list[tuple[int, bytes]] | None = None) -> None:
        """Compare our hash of what we wrote with the sender's of what it read; only
        when they agree is the file moved into place (else the partial is removed).
        `rest`: chunks not written yet, written first in the same thread call."""
        if self.progress.state not in ("transferring",) or not self._opened:
            raise TransferError("the sender finished a transfer that was not running")
        assert self.policy is not None
        await self.set_state("verifying")
        try:
            if rest:
                final = await asyncio.to_thread(
                    self._write_and_finish, rest, self.policy.downloads, sha256
                )
            else:
                final = await asyncio.to_thread(self.rx.finish, self.policy.downloads, sha256)
        except DiskFullError as exc:
            await self.fail(str(exc))
            return
        except TransferIntegrityError as exc:
            self.log_event("file_integrity_fail", self.progress.size, received=self.rx.bytes_done)
            await self.end(
                "failed", error=str(exc), tell=FileCancel(self.transfer_id, wire_reason(str(exc)))
            )
            return
        self.progress.name = final.name
        self.log_event("file_recv", self.progress.size, resumed_from=self.resumed_from)
        await self.end(
            "completed",
            final_path=str(final),
            tell=FileDone(self.transfer_id, sha256),
            sha256=sha256,
        )

    def release(self) -> None:
        self.rx.close()
        self._opened = False

    def discard(self) -> None:
        self.rx.discard()
        if self.policy is not None:  # a partial left by an earlier run of the node
            discard_partial(self.policy.downloads, self.transfer_id)


def downloads_of(partial_path: str | None) -> Path | None:
    """The downloads folder a stored partial path lives in (<downloads>/.partial/<id>.part)."""
    return Path(partial_path).parent.parent if partial_path else None

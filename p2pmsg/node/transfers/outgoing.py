"""The sending actor: offer, wait for an answer, pump chunks under the window, await verification.

Inbox items (handled in order):
    ("session", channel | None)   a session to the peer became ready / went away
    ("accept", offset)            FileAccept from the receiver
    ("ack", offset)               FileAck
    ("done", sha256)              the receiver's FileDone: verified and saved (its digest)
    ("decline", reason)           FileDecline
    ("cancel", reason)            the receiver's FileCancel
    ("local_cancel",)             our user cancelled
    ("expire",)                   the offer timed out unanswered

Resume is the receiver's decision: every new session re-sends the offer with
the same transfer id, and the receiver answers with the offset its partial
file reached (or FileDone if it already has the file).

Hashing (the whole-file SHA-256 that ends the stream in FileDone) runs on a
thread of the transfer's own, fed without waiting: the event loop reads a
batch (from the page cache when it can), hands its data to the hasher and
seals and sends it while the hasher works; hashlib releases the GIL, so the
two overlap. Only the last batch is waited for, to put the digest in FileDone.
Before the file is reopened for a resume (which hashes the prefix afresh) the
hashing queued before it is let finish.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from p2pmsg.errors import TransferError
from p2pmsg.node.api import TransferState
from p2pmsg.node.transfers.actor import Services, TransferActor, wire_reason
from p2pmsg.node.transfers.progress import Progress
from p2pmsg.node.transfers.sender import CHUNK_SIZE, DEFAULT_WINDOW, OutgoingTransfer
from p2pmsg.protocol.messages import FileCancel, FileChunk, FileDone, FileOffer
from p2pmsg.store import Store

#: Chunks read and sealed per turn of the loop. Each one is briefly three chunk-sized
#: objects (read, plaintext, ciphertext) and a share of the joined write, and glibc
#: returns freed memory at the top of its heap to the kernel once more than its trim
#: threshold (2 MiB here after the first large free) is free: with 64 KiB chunks,
#: 8-chunk turns crossed it in some runs, and every turn then faulted its memory in
#: anew (238k page faults and 0.83 s of sender CPU per 256 MiB, against 0.9k and
#: 0.38 s with 4). With 192 KiB chunks (and freed memory kept, node/memory.py), 4:
#: 768 KiB a turn, two records for each of Twofish's two sealing threads. Measured
#: interleaved per 256 MiB: Twofish 111-137 MB/s with 4 against 98-104 with 2 (and
#: ~80 with 1, which leaves the second thread idle), receiver CPU 1.07-1.11 s against
#: 1.18-1.23; aes-256-gcm alike. A chat message waits behind at most these four
#: (Twofish seals them in ~2 ms on two threads).
CHUNKS_PER_READ = 4
_ACTIVE = ("accepted", "transferring", "verifying")
#: Bytes read before they are handed to the hasher thread in one go (16 read batches).
HASH_BATCH = 1024 * 1024
#: A file whose unhashed rest is at most this when its last chunk is read is hashed on
#: the loop (~0.15 ms), so its chunks and file_done leave in one write: the hand-off
#: to the hasher thread and back, and a write of its own for file_done (and a wake-up
#: of the receiver for it), cost more than that per small file of a folder offer.
INLINE_HASH_MAX = 256 * 1024


class OutgoingActor(TransferActor):
    def __init__(
        self,
        services: Services,
        progress: Progress,
        source: Path,
        on_finished: Callable[[TransferActor], None],
        *,
        sender: OutgoingTransfer | None = None,
        window: int = DEFAULT_WINDOW,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        super().__init__(services, progress, on_finished)
        self.source = source
        self.sender = sender  # None after a restart, until the file is checked again
        self.window = window
        #: the chunk size the offer named (after a restart: the stored one, so that the
        #: re-offer matches what the receiver recorded even if our default changed)
        self.chunk_size = chunk_size if sender is None else sender.chunk_size
        self.resumed_from = 0
        #: one thread hashes what the loop read, in order (made when first needed, gone
        #: while the transfer is paused); `_hashing` is the last batch handed to it
        self._hasher: ThreadPoolExecutor | None = None
        self._hashing: Future[None] | None = None
        #: a folder offer's files share one hasher thread (bundles.py), not one each
        self.shared_hasher: ThreadPoolExecutor | None = None
        #: the offer went out with its chunks behind it (a file of an accepted folder
        #: offer, section 7.2): the receiver's answer can only confirm offset 0
        self.eager = False
        #: an eager start's offer waits to go out in one write with the first chunks
        #: (the offer first: the receiver takes the file from it)
        self._offer_with_chunks = False
        #: an accept was acted on in this session: the receiver answers every offer, and
        #: the user's accept and the answer to a re-offer can both arrive in one session;
        #: only the first moves the stream (a second would restart it under the receiver)
        self.answered = False
        #: whether the peer is a verified contact, for `file_sent` (a folder offer reads
        #: it once for its files, not once per file); None: read it at the end
        self.peer_verified: bool | None = None
        self._to_hash: list[bytes] = []  # read, gathered into one hand-off per HASH_BATCH
        self._to_hash_bytes = 0

    async def run(self) -> None:
        while not self.progress.final:
            if self.inbox:
                await self._handle(self.inbox.popleft())
            elif self._can_pump():
                await self._pump()
            else:
                await self.wait()

    def _can_pump(self) -> bool:
        sender, channel = self.sender, self.channel
        if self.progress.state != "transferring" or sender is None or channel is None:
            return False
        if not channel.is_open:
            return False
        return sender.window_free > 0 or (sender.all_sent and not sender.done_sent)

    async def _pump(self) -> None:
        sender, channel = self.sender, self.channel
        assert sender is not None and channel is not None
        # From the page cache on the loop when it can (no thread hop), else from the disk
        # in a worker thread. Either way the hashing goes to the hasher thread.
        batch = sender.read_batch(CHUNKS_PER_READ, wait=False)
        if batch is None:
            batch = await asyncio.to_thread(sender.read_batch, CHUNKS_PER_READ, wait=True)
            assert batch is not None
        self._hash_later(sender.take_unhashed())
        if not channel.is_open:
            return  # the session went away while we read; its "session" item is queued
        messages: list[FileOffer | FileChunk | FileDone] = list(batch)
        if self._offer_with_chunks:
            self._offer_with_chunks = False
            messages.insert(0, sender.offer())
        if sender.all_sent and not sender.done_sent:
            if self._hash_inline():
                pass  # the digest is ready: file_done goes out with the chunks
            elif messages:  # sealed and sent while the hasher finishes the last batch
                channel.send_messages(messages)
                messages = []
            await self._settle_hashing()
            if not channel.is_open:
                return
            messages.append(sender.done_message())
        channel.send_messages(messages)
        if messages and isinstance(messages[-1], FileDone):
            await self.set_state("verifying")
        await channel.drained()
        # drained() returns at once while the socket keeps up: give acks, chat and other
        # transfers their turn between batches all the same.
        await asyncio.sleep(0)

    async def _handle(self, item: tuple[object, ...]) -> None:
        kind = item[0]
        state = self.progress.state
        if kind == "session":
            channel = item[1]
            self.channel = channel  # type: ignore[assignment]
            self.answered = False
            self._offer_with_chunks = False
            if channel is None:
                self.eager = False  # the next session re-offers and waits for the offset
                if state in _ACTIVE:
                    self.release()
                    await self.set_state("paused")
            elif state in ("offered", "paused", *_ACTIVE):
                await self._ensure_sender()
                assert self.sender is not None
                if self.eager and state == "transferring" and self.sender.next_offset == 0:
                    self._offer_with_chunks = True  # sent by `_pump`, before any chunk
                else:
                    self.send(self.sender.offer())
        elif kind == "accept":
            if state not in ("offered", "paused", *_ACTIVE) or self.sender is None:
                return  # a late duplicate; the offer it answers is gone
            offset = int(item[1])  # type: ignore[call-overload]
            if self.eager:  # the answer to an offer we did not wait for
                self.eager = False
                self.answered = True
                if offset != 0:
                    raise TransferError("the receiver asked to resume a file it never received")
                return
            if self.answered and state in _ACTIVE:
                return  # a second answer in this session: the stream already moves
            self.answered = True
            await self._settle_hashing()  # open_at starts the hash afresh
            await asyncio.to_thread(self.sender.open_at, offset)
            self.resumed_from = offset
            self.progress.advance(offset)
            self.progress.meter.reset(offset)
            await self.set_state("transferring", bytes_done=offset)
        elif kind == "ack":
            if self.sender is None or state not in ("transferring", "verifying"):
                return
            if self.sender.on_ack(int(item[1])):  # type: ignore[call-overload]
                self.progress.advance(self.sender.acked)
                self.publish()
                await self.persist_progress()
        elif kind == "done":
            if state in ("transferring", "verifying", "paused", "offered"):
                digest = bytes(item[1])  # type: ignore[call-overload]
                ours = self.sender.sha256 if self.sender is not None else None
                if ours is not None and not hmac.compare_digest(ours, digest):
                    # The receiver says it saved other bytes than we read: not a success.
                    await self.fail("the receiver saved a file whose SHA-256 differs from ours")
                    return
                # Whether the receiver is a verified contact: the monitor judges volume
                # to a verified contact differently from volume to a first-seen key.
                verified = self.peer_verified
                if verified is None:
                    record = await self.services.store.run(Store.get_peer, self.peer)
                    verified = bool(record is not None and record.verified)
                self.log_event(
                    "file_sent",
                    self.progress.size,
                    resumed_from=self.resumed_from,
                    verified=verified,
                )
                await self.end("completed", final_path=str(self.source), sha256=digest)
        elif kind == "decline":
            await self.end("declined", error=decline_text(str(item[1])))
        elif kind == "cancel":
            await self.end("failed", error=f"the receiver stopped the transfer: {item[1]}")
        elif kind == "local_cancel":
            await self.end(
                "cancelled",
                error="cancelled by the sender",
                tell=FileCancel(self.transfer_id, "cancelled by the sender"),
            )
        elif kind == "expire" and state == "offered":
            await self.end(
                "expired",
                error="the receiver did not answer the offer in time",
                tell=FileCancel(self.transfer_id, "the offer expired"),
            )

    def _hash_later(self, datas: list[bytes], *, flush: bool = False) -> None:
        """Hand data just read to the hasher thread, without waiting (order is kept:
        one thread, first in first out), in hand-offs of `HASH_BATCH` bytes: a
        hand-off per read batch cost the sender a sixth more CPU (thread wake-ups).
        The future is not wrapped for the loop: nothing waits for it but the end."""
        self._to_hash.extend(datas)
        self._to_hash_bytes += sum(len(d) for d in datas)
        sender = self.sender
        if sender is None or not self._to_hash:
            return
        if not flush and self._to_hash_bytes < HASH_BATCH:
            return
        if self._hasher is None:
            self._hasher = self.shared_hasher or ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"p2pmsg-tx-{self.transfer_id.hex()[:8]}"
            )
        batch, self._to_hash, self._to_hash_bytes = self._to_hash, [], 0
        self._hashing = self._hasher.submit(sender.absorb, batch)

    def _hash_inline(self) -> bool:
        """At the end of a file: hash a small unhashed rest right here, if the hasher
        holds nothing of it (order is kept); whether everything read is now hashed."""
        if self._to_hash_bytes > INLINE_HASH_MAX or self.sender is None:
            return False
        if self._hashing is not None and not self._hashing.done():
            return False
        batch, self._to_hash, self._to_hash_bytes = self._to_hash, [], 0
        self.sender.absorb(batch)
        return True

    async def _settle_hashing(self) -> None:
        """Wait until everything read is hashed."""
        self._hash_later([], flush=True)
        hashing, self._hashing = self._hashing, None
        if hashing is not None:
            await asyncio.wrap_future(hashing)

    async def _ensure_sender(self) -> None:
        """After a restart the file is checked again: one of another size is not sent as
        the old one (a changed prefix fails the receiver's check of the whole file)."""
        if self.sender is not None:
            return
        try:
            self.sender = await asyncio.to_thread(
                OutgoingTransfer.prepare,
                self.transfer_id,
                self.peer,
                self.source,
                name=self.progress.name,
                chunk_size=self.chunk_size,
                window=self.window,
                expected_size=self.progress.size,
            )
        except TransferError as exc:
            raise TransferError(
                wire_reason(
                    str(exc)
                    if "changed" in str(exc)
                    else f"the sender can no longer read {self.progress.name}"
                )
            ) from None

    def release(self) -> None:
        if self.sender is not None:
            self.sender.close()
        if self._hasher is not None:  # a paused transfer holds no thread; what it was
            if self._hasher is not self.shared_hasher:  # given still runs, `_hashing`
                self._hasher.shutdown(wait=False)  # waits for it
            self._hasher = None


def store_new_outgoing(
    store: Store, sender: OutgoingTransfer, now: float, state: TransferState = "offered"
) -> None:
    """Record a file we send (runs on the store thread): a new offer, or a folder offer's
    file as it starts ("transferring"). No digest yet: it is made while the file is sent
    (protocol version 2), and recorded when the transfer ends."""
    store.insert_transfer(
        sender.peer,
        transfer_id=sender.transfer_id,
        direction="out",
        name=sender.name,
        size=sender.size,
        chunk_size=sender.chunk_size,
        now=now,
        state=state,
        source_path=str(sender.path),
        bundle_id=sender.bundle_id,
    )


#: Reasons that only say "declined" (what receivers send when the user gave none).
_PLAIN_DECLINES = frozenset(("", "declined", "declined by the receiver", "declined by the user"))


def decline_text(reason: str) -> str:
    """'declined by the receiver', with the receiver's reason when it says more than that
    (once said twice: 'declined by the receiver: declined by the receiver')."""
    if " ".join(reason.split()).lower() in _PLAIN_DECLINES:
        return "declined by the receiver"
    return f"declined by the receiver: {reason}"

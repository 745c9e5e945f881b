"""Folder and multi-file offers: one offer, a manifest, then one ordinary transfer per file.

The wire (docs/PROTOCOL.md section 7.2): the sender sends the manifest as
`bundle_offer` parts (relative path and size per file; the receiver buffers at
most `MAX_BUNDLE_MANIFEST_BYTES` of paths per offer, `MAX_INCOMING_BUNDLES_PER_PEER`
offers per peer). Once it holds every part the receiver judges the manifest
as a whole (manifest.py: refused with the reason and a security event, or
neutralised) and shows the offer: name, number of files, total size. The
answer is `file_accept` / `file_decline` naming the offer's id; either side
ends it with `file_cancel` naming it. After the accept each file moves as
today's transfer (file_offer / chunks / file_done) under the id
`bundle_entry_id(offer id, index)`: the receiver takes it without asking,
into the offer's NEW folder at the file's safe path (folder.py). So a file
resumes as any transfer does (per file, from its partial file), and the offer
resumes as a whole: it is stored (schema v9) with its manifest, and after a
restart of either side the sender goes on with the files not yet verified.

A file's first start costs no round trip: the sender records a group of files
(one transaction), then sends each one's offer followed at once by its chunks;
the receiver, which accepted the whole offer, takes it at offset 0 (`take_entry`,
on the loop as the offer is routed, so its chunks always find it). A file started
before (a lost session, a restart) is re-offered and waits for the receiver's
offset, as any transfer resumes. The files' records on both sides go through one
`WriteBatcher` (store/batching.py): the files that start or end together are one
commit. The receiver says a file is verified once it is fsynced, in place and
recorded (actor.py `end`).

The sender moves `ENTRY_CONCURRENCY` files at once (small files are latency-bound:
a few store writes, an fsync and a rename each), re-sends the manifest on every
new session until it is answered, and stops the whole offer at the first file
that fails (the files verified so far stay in the receiver's folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from p2pmsg.errors import ConfigError, P2PMsgError, TransferError, TransferRejectedError
from p2pmsg.node.api import Direction, TransferState, TransferUpdated, TransferView
from p2pmsg.node.channel import Channel
from p2pmsg.node.transfers.actor import TransferActor, wire_reason
from p2pmsg.node.transfers.folder import collect, make_fresh_folder
from p2pmsg.node.transfers.incoming import IncomingActor
from p2pmsg.node.transfers.manifest import ManifestError, check_manifest
from p2pmsg.node.transfers.outgoing import OutgoingActor, decline_text, store_new_outgoing
from p2pmsg.node.transfers.progress import FINAL_STATES, PUBLISH_INTERVAL, Progress
from p2pmsg.node.transfers.receiver import (
    IncomingTransfer,
    ReceivePolicy,
    free_bytes,
    human_size,
)
from p2pmsg.node.transfers.safe_name import extension_allowed, safe_name
from p2pmsg.node.transfers.sender import OutgoingTransfer
from p2pmsg.protocol.limits import MAX_BUNDLE_MANIFEST_BYTES, MAX_BUNDLE_PART_ENTRIES
from p2pmsg.protocol.messages import (
    AppMessage,
    BundleOffer,
    FileAccept,
    FileCancel,
    FileDecline,
    FileOffer,
    bundle_entry_id,
    new_id,
)
from p2pmsg.store import BundleRecord, Store, TransferRecord
from p2pmsg.store.batching import WriteBatcher

if TYPE_CHECKING:
    from p2pmsg.node.transfers.manager import TransferManager

log = logging.getLogger(__name__)

#: Files of one offer the sender moves at once. Small files are latency-bound (a
#: store write, an fsync and a rename each): 4 at once moved ~240 files/s of 4-256
#: KiB, 16 ~320 with a round trip per file (bench files, folder; ~430-500 without).
ENTRY_CONCURRENCY = 16
#: Files of one offer a receiver holds open at once; more is a broken sender, and
#: the file is refused (which fails the offer). Twice the sender's concurrency: the
#: receiver forgets a file a little after the sender has its answer.
MAX_LIVE_ENTRIES = 2 * ENTRY_CONCURRENCY
#: Folder offers one peer may have being assembled or waiting for our answer.
MAX_INCOMING_BUNDLES_PER_PEER = 4
_RUNNING = ("accepted", "transferring", "paused", "verifying")
#: Ended offers whose file ids are still recognised (and their files refused).
KEEP_ENDED = 16


@dataclass
class _Assembly:
    """A manifest arriving in parts, charged to its peer."""

    peer: str
    name: str
    count: int
    total_size: int
    entries: list[tuple[str, int]] = field(default_factory=list)
    path_bytes: int = 0


@dataclass
class Bundle:
    """One folder offer in memory (either direction) while it is not final."""

    id: bytes
    peer: str
    direction: Direction
    name: str
    entries: list[tuple[str, int, str | None]]  # relpath (receiver: safe), size, source
    progress: Progress
    folder: Path | None = None
    done: set[int] = field(default_factory=set)  # indices verified
    started: set[int] = field(default_factory=set)  # indices with a transfer record
    live: dict[int, TransferActor] = field(default_factory=dict)
    ids: dict[bytes, int] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    paused_since: float | None = None  # wall clock: an offer nobody resumes is given up
    done_bytes: int = 0  # the sizes of the files in `done`
    next_index: int = 0  # the sender looks for files to start from here on
    pumping: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: the one thread its files write (receiver) or hash (sender) on, in turn: a thread
    #: each cost the event loop ~0.4 ms to start, per file
    worker: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.ids = {bundle_entry_id(self.id, i): i for i in range(len(self.entries))}

    def thread(self) -> ThreadPoolExecutor:
        if self.worker is None:
            self.worker = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"p2pmsg-bundle-{self.id.hex()[:8]}"
            )
        return self.worker

    def stop_thread(self) -> None:
        """Once no file of it runs (a file would queue work on it); what was queued still
        runs. A paused offer keeps its thread, idle: its files hold it."""
        if self.worker is not None:
            self.worker.shutdown(wait=False)
            self.worker = None

    def mark_done(self, index: int) -> None:
        if index not in self.done:
            self.done.add(index)
            self.done_bytes += self.entries[index][1]

    @property
    def state(self) -> TransferState:
        return self.progress.state

    def parts(self) -> list[BundleOffer]:
        count = len(self.entries)
        total = sum(size for _, size, _ in self.entries)
        return [
            BundleOffer(
                self.id,
                self.name,
                count,
                total,
                first,
                tuple((p, s) for p, s, _ in self.entries[first : first + MAX_BUNDLE_PART_ENTRIES]),
            )
            for first in range(0, count, MAX_BUNDLE_PART_ENTRIES)
        ]

    def bytes_done(self) -> int:
        return self.done_bytes + sum(
            a.progress.bytes_done for i, a in self.live.items() if i not in self.done
        )


class Bundles:
    """The folder offers of one TransferManager (which routes to it and owns the actors)."""

    def __init__(self, manager: TransferManager) -> None:
        self._m = manager
        self._services = manager._services
        self.live: dict[bytes, Bundle] = {}
        self.entry_of: dict[bytes, tuple[Bundle, int]] = {}
        self._assembling: dict[bytes, _Assembly] = {}
        self._refused: Counter[str] = Counter()
        self._ticker: asyncio.Task[None] | None = None
        self._ended: list[Bundle] = []  # the latest ended offers (see `_forget`)
        #: the records of files starting and ending together go in one transaction
        self.batcher = WriteBatcher(self._services.store)

    # --- life -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Offers a previous run left unfinished (before the transfers: files need them)."""
        records = await self._services.store.run(Store.incomplete_bundles)
        for record in records:
            bundle = self._from_record(record)
            files = await self._services.store.run(Store.bundle_transfers, record.id)
            for rec in files:
                index = bundle.ids.get(rec.id)
                if index is None:
                    continue
                bundle.started.add(index)
                if rec.state == "completed":
                    bundle.mark_done(index)
            bundle.progress.files_done = len(bundle.done)
            if bundle.state != "offered":
                bundle.progress.state = "paused"
                bundle.paused_since = record.updated
            self._add(bundle)
            if bundle.state == "offered":
                self._schedule_expiry(bundle, record.created)
        # The latest ended offers, as `_forget` keeps them in a run: a file of one (an
        # offer that ended before the restart, maybe before any file started) is then
        # refused as a file of an ended offer, not taken as an ordinary offer.
        for record in reversed(await self._services.store.run(Store.ended_bundles, KEEP_ENDED)):
            ended = self._summary(record)
            for entry_id, index in ended.ids.items():
                self.entry_of[entry_id] = (ended, index)
            self._ended.append(ended)
        self._ticker = asyncio.create_task(self._tick(), name="p2pmsg-bundle-progress")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for bundle in self.live.values():
            if bundle.timer is not None:
                bundle.timer.cancel()
            bundle.stop_thread()

    def _from_record(self, record: BundleRecord) -> Bundle:
        progress = self._progress(
            record.id,
            record.peer,
            record.direction,
            record.name,
            list(record.entries),
            state=record.state,
            created=record.created,
            path=record.folder,
        )
        progress.error = record.error
        progress.files_done = record.files_done
        if record.state == "completed":
            progress.bytes_done = record.total_size
        return Bundle(
            record.id,
            record.peer,
            record.direction,
            record.name,
            list(record.entries),
            progress,
            folder=Path(record.folder) if record.folder else None,
        )

    def _summary(self, record: BundleRecord) -> Bundle:
        """An ended offer from a record read without its manifest (`entries` holds only
        the right number of placeholders): its files' ids are known again."""
        entries: list[tuple[str, int, str | None]] = [("", 0, None)] * record.count
        progress = self._summary_progress(record)
        return Bundle(record.id, record.peer, record.direction, record.name, entries, progress)

    @staticmethod
    def _summary_progress(record: BundleRecord) -> Progress:
        """An offer as its list row shows it (count and total size, from the record)."""
        progress = Progress(
            record.id,
            record.peer,
            record.direction,
            record.name,
            record.total_size,
            None,
            time.monotonic,
            state=record.state,
            created=record.created,
            path=record.folder,
            files=record.count,
        )
        progress.error = record.error
        progress.files_done = record.files_done
        if record.state == "completed":
            progress.bytes_done = record.total_size
        return progress

    @staticmethod
    def _progress(
        bundle_id: bytes,
        peer: str,
        direction: Direction,
        name: str,
        entries: list[tuple[str, int, str | None]],
        *,
        state: TransferState = "offered",
        created: float = 0.0,
        path: str | None = None,
    ) -> Progress:
        return Progress(
            bundle_id,
            peer,
            direction,
            name,
            sum(size for _, size, _ in entries),
            None,
            time.monotonic,
            state=state,
            created=created,
            path=path,
            files=len(entries),
        )

    def _add(self, bundle: Bundle) -> None:
        self.live[bundle.id] = bundle
        for entry_id, index in bundle.ids.items():
            self.entry_of[entry_id] = (bundle, index)

    def _forget(self, bundle: Bundle) -> None:
        """Out of the live offers. Its file ids stay known a while (the last
        `KEEP_ENDED` offers): a file the sender started just before the end is then
        refused as a file of an ended offer, not taken as an ordinary offer."""
        self.live.pop(bundle.id, None)
        self._ended.append(bundle)
        while len(self._ended) > KEEP_ENDED:
            old = self._ended.pop(0)
            for entry_id in old.ids:
                if self.entry_of.get(entry_id, (None, 0))[0] is old:
                    del self.entry_of[entry_id]
        if bundle.timer is not None:
            bundle.timer.cancel()
            bundle.timer = None
        if not bundle.live:  # else the last of its files to end stops it
            bundle.stop_thread()

    def _schedule_expiry(self, bundle: Bundle, created: float) -> None:
        delay = max(0.0, created + self._m._offer_timeout - self._services.clock())
        bundle.timer = asyncio.get_running_loop().call_later(
            delay, lambda: self._spawn(self._expire(bundle))
        )

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._m._tasks.add(task)
        task.add_done_callback(self._m._tasks.discard)
        task.add_done_callback(_log_failure)

    def publish(self, bundle: Bundle, *, force: bool = False) -> None:
        progress = bundle.progress
        if not progress.final:
            progress.advance(bundle.bytes_done())
        if force or progress.due_publish():
            self._services.bus.publish(TransferUpdated(progress.view()))

    async def _tick(self) -> None:
        """Overall progress of the offers that move, a few times a second."""
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL)
            for bundle in list(self.live.values()):
                if bundle.state == "transferring" and bundle.live:
                    before = bundle.progress.bytes_done
                    bundle.progress.advance(bundle.bytes_done())
                    if bundle.progress.bytes_done != before:
                        self.publish(bundle, force=True)

    async def _set_state(self, bundle: Bundle, state: TransferState, **fields: object) -> None:
        bundle.progress.state = state
        try:
            await self._services.store.run_to_completion(
                Store.update_bundle,
                bundle.id,
                self._services.clock(),
                state=state,
                **fields,  # type: ignore[arg-type]
            )
        except P2PMsgError as exc:
            log.warning("folder offer %s: could not update the store: %s", bundle.id.hex(), exc)
        self.publish(bundle, force=True)

    async def _end(
        self,
        bundle: Bundle,
        state: TransferState,
        error: str | None = None,
        tell: AppMessage | None = None,
    ) -> None:
        """Finish an offer: stop its moving files, tell the peer, keep the record."""
        if bundle.progress.final:
            return
        if tell is not None:
            self._send(bundle.peer, tell)
        for actor in list(bundle.live.values()):
            if not actor.progress.final:
                actor.push("local_cancel")
        bundle.progress.error = error
        bundle.progress.files_done = len(bundle.done)
        if state == "completed":
            bundle.progress.bytes_done = bundle.progress.size
        self._forget(bundle)
        await self._set_state(bundle, state, error=error, files_done=len(bundle.done))

    def _send(self, peer: str, *messages: AppMessage) -> None:
        channel = self._m._channels.get(peer)
        if channel is not None and channel.is_open:
            channel.send_messages(messages)  # type: ignore[arg-type]

    # --- sessions ---------------------------------------------------------------------------

    def session_ready(self, channel: Channel) -> None:
        for bundle in list(self.live.values()):
            if bundle.peer != channel.peer:
                continue
            if bundle.direction == "out" and bundle.state == "offered":
                channel.send_messages(bundle.parts())
            elif bundle.state == "paused":
                bundle.progress.state = "transferring"
                bundle.paused_since = None
                if bundle.direction == "out":
                    self._spawn(self._pump(bundle))
                self.publish(bundle, force=True)
        self._spawn(self._retell_ended(channel))

    async def _retell_ended(self, channel: Channel) -> None:
        """Cancel again the offers we sent this peer and ended (failed, cancelled, expired)
        within `RETELL_ENDED_FOR`: the first cancel may have been lost, and a receiver
        with no file of the offer under way would otherwise wait for it (as the manager
        does for single files)."""
        from p2pmsg.node.transfers.manager import RETELL_SCAN, cancels_to_retell

        try:
            records = await self._services.store.run(
                Store.list_bundles, channel.peer, RETELL_SCAN, manifests=False
            )
        except P2PMsgError as exc:
            log.warning("could not list the folder offers to %s: %s", channel.peer[:16], exc)
            return
        cancels = cancels_to_retell(records, self._services.clock(), self.live)
        if cancels and channel.is_open:
            channel.send_messages(cancels)

    def session_closed(self, peer: str) -> None:
        for bundle in self.live.values():
            if bundle.peer == peer and bundle.state == "transferring":
                bundle.progress.state = "paused"
                bundle.paused_since = self._services.clock()
                self.publish(bundle, force=True)
        for bundle_id in [k for k, a in self._assembling.items() if a.peer == peer]:
            del self._assembling[bundle_id]

    # --- the sender -------------------------------------------------------------------------

    async def send(self, peer: str, paths: list[Path]) -> TransferView:
        collected = await asyncio.to_thread(collect, paths)
        bundle_id = new_id(self._m._rng)
        entries: list[tuple[str, int, str | None]] = [
            (rel, size, str(source)) for rel, size, source in collected.entries
        ]
        now = self._services.clock()
        await self._services.store.run(
            Store.create_bundle,
            peer,
            bundle_id=bundle_id,
            direction="out",
            name=collected.name,
            entries=entries,
            now=now,
        )
        progress = self._progress(bundle_id, peer, "out", collected.name, entries, created=now)
        bundle = Bundle(bundle_id, peer, "out", collected.name, entries, progress)
        self._add(bundle)
        self._schedule_expiry(bundle, now)
        channel = self._m._channels.get(peer)
        if channel is not None and channel.is_open:
            channel.send_messages(bundle.parts())
        self.publish(bundle, force=True)
        view = progress.view()
        if collected.skipped:
            shown = ", ".join(collected.skipped[:5])
            more = f" and {len(collected.skipped) - 5} more" if len(collected.skipped) > 5 else ""
            view = _with_error(view, f"skipped (symlinks or special files): {shown}{more}")
        return view

    async def _pump(self, bundle: Bundle) -> None:
        """Start the next files, up to ENTRY_CONCURRENCY moving at once."""
        if bundle.direction != "out" or bundle.state not in ("transferring",):
            return
        async with bundle.pumping:  # one at a time: the concurrency count stays exact
            await self._pump_locked(bundle)
        if not bundle.live and len(bundle.done) == len(bundle.entries):
            await self._end(bundle, "completed")

    async def _pump_locked(self, bundle: Bundle) -> None:
        """Start files until `ENTRY_CONCURRENCY` move, a group at a time: the group's
        records are written in one transaction, and only then does a byte of them leave
        (a file this side has no record of is one the receiver holds nothing of, which
        is what lets it be sent without waiting for the receiver's offset)."""
        while bundle.next_index < len(bundle.entries) and not bundle.progress.final:
            free = ENTRY_CONCURRENCY - len(bundle.live)
            if free <= 0:
                return
            group: list[tuple[int, OutgoingTransfer]] = []
            while bundle.next_index < len(bundle.entries) and len(group) < free:
                index = bundle.next_index
                bundle.next_index += 1
                if index in bundle.started:
                    continue  # started before: its own actor resumes it
                bundle.started.add(index)
                relpath, size, source = bundle.entries[index]
                try:
                    if source is None:
                        raise TransferError(f"the source of {relpath} is unknown")
                    sender = OutgoingTransfer.open_fresh(
                        bundle_entry_id(bundle.id, index),
                        bundle.peer,
                        Path(source),
                        relpath.rsplit("/", 1)[-1],
                        size,
                        window=self._m._window,
                    )
                except TransferError as exc:
                    for _, opened in group:
                        opened.close()
                    reason = wire_reason(f"{relpath}: {exc}")
                    await self._end(bundle, "failed", reason, FileCancel(bundle.id, reason))
                    return
                sender.bundle_id = bundle.id
                group.append((index, sender))
            if group:
                await self._start_group(bundle, group)

    async def _start_group(self, bundle: Bundle, group: list[tuple[int, OutgoingTransfer]]) -> None:
        now = self._services.clock()
        senders = [sender for _, sender in group]
        try:
            verified = await self.batcher.run(_record_started, bundle.peer, senders, now)
        except BaseException:
            for sender in senders:
                sender.close()
            raise
        channel = self._m._channels.get(bundle.peer)
        eager = channel is not None and channel.is_open and bundle.state == "transferring"
        for index, sender in group:
            progress = Progress(
                sender.transfer_id,
                bundle.peer,
                "out",
                sender.name,
                sender.size,
                None,
                time.monotonic,
                state="transferring" if eager else "paused",
                created=now,
                path=str(sender.path),
                bundle_id=bundle.id,
            )
            progress.persisted_now()
            if not eager:
                sender.close()  # re-offered when a session is back, from the receiver's offset
            actor = OutgoingActor(
                self._services,
                progress,
                sender.path,
                self._m._finished,
                sender=sender,
                window=self._m._window,
            )
            actor.eager = eager
            actor.peer_verified = verified
            actor.shared_hasher = bundle.thread()
            actor.batcher = self.batcher
            bundle.live[index] = actor
            self._m._adopt(actor)

    # --- the receiver -----------------------------------------------------------------------

    def offer_received(self, channel: Channel, part: BundleOffer) -> None:
        """One part of a manifest (never raises for what a peer sends)."""
        peer, bid = channel.peer, part.bundle_id
        bundle = self.live.get(bid)
        if bundle is not None:
            if bundle.peer != peer or bundle.direction != "in":
                self._services.security.record(
                    "frame_rejected",
                    peer=peer,
                    detail={"reason": "folder offer with another transfer's id"},
                )
            elif part.first == 0 and bundle.state in _RUNNING:
                channel.send_messages([FileAccept(bid, 0)])  # our accept was lost
            return
        assembly = self._assembling.get(bid)
        if assembly is not None and assembly.peer != peer:
            return
        if part.first == 0:
            if assembly is None and self._open_for(peer) >= MAX_INCOMING_BUNDLES_PER_PEER:
                self._refuse(channel, bid)
                return
            assembly = self._assembling[bid] = _Assembly(
                peer, part.name, part.count, part.total_size
            )
        if assembly is None:
            return  # a later part of an offer we already refused or forgot
        if part.first != len(assembly.entries) or (part.name, part.count, part.total_size) != (
            assembly.name,
            assembly.count,
            assembly.total_size,
        ):
            del self._assembling[bid]
            self._hostile(channel, bid, "the parts of its manifest do not fit together")
            return
        assembly.entries.extend(part.entries)
        assembly.path_bytes += sum(len(p.encode("utf-8", "surrogatepass")) for p, _ in part.entries)
        if assembly.path_bytes > MAX_BUNDLE_MANIFEST_BYTES:
            del self._assembling[bid]
            self._hostile(
                channel, bid, f"its paths exceed {MAX_BUNDLE_MANIFEST_BYTES} bytes together"
            )
            return
        if len(assembly.entries) == assembly.count:
            del self._assembling[bid]
            self._spawn(self._record_offer(channel, bid, assembly))

    def _open_for(self, peer: str) -> int:
        waiting = sum(
            1
            for b in self.live.values()
            if b.peer == peer and b.direction == "in" and b.state == "offered"
        )
        return waiting + sum(1 for a in self._assembling.values() if a.peer == peer)

    def _refuse(self, channel: Channel, bid: bytes) -> None:
        channel.send_messages(
            [FileDecline(bid, "too many folder offers at once from this peer; offer it later")]
        )
        refused = self._refused[channel.peer] = self._refused[channel.peer] + 1
        if refused == 1 or refused % 256 == 0:
            self._services.security.record(
                "rate_limited",
                peer=channel.peer,
                detail={
                    "reason": "too many folder offers at once",
                    "limit": MAX_INCOMING_BUNDLES_PER_PEER,
                    "refused": refused,
                },
            )

    def _hostile(self, channel: Channel, bid: bytes, why: str) -> None:
        """Refuse a whole offer whose manifest breaks the rules; a security event says so."""
        reason = wire_reason(f"folder offer refused: {why}")
        self._services.security.record(
            "frame_rejected",
            peer=channel.peer,
            detail={"reason": reason, "bundle": bid.hex()},
        )
        channel.send_messages([FileDecline(bid, reason)])

    async def _record_offer(self, channel: Channel, bid: bytes, assembly: _Assembly) -> None:
        services = self._services
        record = await services.store.run(Store.get_bundle, bid)
        if record is not None:  # an offer we answered before (a re-offer after a restart)
            if record.peer != channel.peer or record.direction != "in":
                channel.send_messages([FileCancel(bid, "transfer id already in use")])
            elif record.state == "completed":
                channel.send_messages([FileAccept(bid, 0)])  # each file answers FileDone
            elif record.state == "declined":
                channel.send_messages([FileDecline(bid, wire_reason(record.error or "declined"))])
            else:
                channel.send_messages([FileCancel(bid, wire_reason(record.error or record.state))])
            return
        if bid in self.live:
            return
        try:
            safe = check_manifest(assembly.entries, assembly.total_size)
        except ManifestError as exc:
            self._hostile(channel, bid, str(exc))
            return
        entries: list[tuple[str, int, str | None]] = [
            ("/".join(parts), size, None)
            for parts, (_, size) in zip(safe, assembly.entries, strict=True)
        ]
        now = services.clock()
        name = safe_name(assembly.name)
        await services.store.run(
            Store.create_bundle,
            channel.peer,
            bundle_id=bid,
            direction="in",
            name=name,
            entries=entries,
            now=now,
        )
        progress = self._progress(bid, channel.peer, "in", name, entries, created=now)
        bundle = Bundle(bid, channel.peer, "in", name, entries, progress)
        self._add(bundle)
        self._schedule_expiry(bundle, now)
        self.publish(bundle, force=True)
        if self._m.auto_accept:
            try:
                await self.accept(bundle)
            except (TransferRejectedError, ConfigError) as exc:
                await self.decline(bundle, str(exc))

    async def accept(self, bundle: Bundle) -> None:
        """The user accepts the whole offer: check it against the policy and the free
        space, make its new folder, answer. Raises `TransferRejectedError`."""
        if bundle.direction != "in" or bundle.state != "offered":
            raise TransferError("only a pending incoming offer can be accepted")
        policy = self._m.policy
        if policy is None:
            raise ConfigError("no downloads folder is configured")
        async with self._m._accepting:
            reserved = self._m._reserved_bytes(exclude=None)
            folder = await asyncio.to_thread(_check_and_make_folder, bundle, policy, reserved)
        bundle.folder = folder
        bundle.progress.path = str(folder)
        if bundle.timer is not None:
            bundle.timer.cancel()
            bundle.timer = None
        await self._set_state(bundle, "transferring", folder=str(folder))
        self._send(bundle.peer, FileAccept(bundle.id, 0))

    async def decline(self, bundle: Bundle, reason: str = "declined by the receiver") -> None:
        if bundle.direction != "in" or bundle.state != "offered":
            raise TransferError("only a pending incoming offer can be declined")
        reason = wire_reason(reason)
        await self._end(bundle, "declined", reason, FileDecline(bundle.id, reason))

    async def cancel(self, bundle: Bundle) -> None:
        who = "receiver" if bundle.direction == "in" else "sender"
        reason = f"cancelled by the {who}"
        await self._end(bundle, "cancelled", reason, FileCancel(bundle.id, reason))

    async def entry_offer(self, channel: Channel, offer: FileOffer) -> bool:
        """A file of a folder offer that reached the manager's recorded path (a file of
        an ended offer, or one whose id the offer knows but did not start): refused or
        taken as `take_entry` does. False: `offer` belongs to no offer of ours."""
        if offer.transfer_id not in self.entry_of:
            return False
        self.take_entry(channel, offer)
        return True

    def take_entry(self, channel: Channel, offer: FileOffer) -> None:
        """A file of an accepted folder offer, offered for the first time: taken into the
        offer's folder without asking, at once (section 7.2): its sender does not wait
        for our answer and its chunks follow, queued behind the opening of its partial
        file in the new actor's inbox. Called on the loop as the offer is routed, so no
        chunk of it ever finds no transfer."""
        bundle, index = self.entry_of[offer.transfer_id]
        tid = offer.transfer_id
        size = bundle.entries[index][1]
        policy = self.entry_policy(bundle)
        if (
            bundle.direction != "in"
            or bundle.peer != channel.peer
            or bundle.state not in _RUNNING
            or bundle.folder is None
            or policy is None
            or offer.size != size
            or index in bundle.done
            or tid in self._m._actors
        ):
            channel.send_messages([FileCancel(tid, "this file does not match the folder offer")])
            return
        if len(bundle.live) >= MAX_LIVE_ENTRIES:
            channel.send_messages(
                [FileCancel(tid, f"more than {MAX_LIVE_ENTRIES} files of the offer at once")]
            )
            return
        services = self._services
        rx = self.entry_rx(bundle, index, tid, offer.chunk_size)
        bundle.started.add(index)
        progress = Progress(
            tid, channel.peer, "in", rx.name, size, None, time.monotonic, created=services.clock()
        )
        progress.bundle_id = bundle.id
        actor = IncomingActor(services, progress, rx, policy, self._m._finished)
        actor.shared_writer = bundle.thread()
        actor.batcher = self.batcher
        bundle.live[index] = actor
        self._m._adopt(actor)
        actor.push("open_entry")

    def is_entry(self, peer: str, transfer_id: bytes) -> bool:
        """Whether `transfer_id` is a file of a folder offer `peer` made us."""
        found = self.entry_of.get(transfer_id)
        return found is not None and found[0].peer == peer and found[0].direction == "in"

    def unstarted_entry(self, peer: str, transfer_id: bytes) -> bool:
        """A file of a running offer from `peer` that has not started: it has no record
        (`started` holds exactly the files that have one, loaded at start)."""
        found = self.entry_of.get(transfer_id)
        if found is None:
            return False
        bundle, index = found
        return (
            bundle.peer == peer
            and bundle.direction == "in"
            and bundle.state in _RUNNING
            and index not in bundle.started
            and transfer_id not in self._m._actors
        )

    def entry_rx(self, bundle: Bundle, index: int, tid: bytes, chunk_size: int) -> IncomingTransfer:
        relpath, size, _ = bundle.entries[index]
        parts = tuple(relpath.split("/"))
        rx = IncomingTransfer(tid, bundle.peer, parts[-1], size, chunk_size)
        assert bundle.folder is not None
        rx.dest = (bundle.folder, parts)
        return rx

    def entry_policy(self, bundle: Bundle) -> ReceivePolicy | None:
        """The policy a file of `bundle` is written under: its partial file beside the
        offer's folder, no type check (the offer as a whole passed it)."""
        policy = self._m.policy
        if bundle.folder is None:
            return None
        if policy is None:
            return ReceivePolicy(bundle.folder.parent)
        return ReceivePolicy(bundle.folder.parent, policy.max_size, policy.min_free_after, None)

    def adopt_restored(self, record: TransferRecord, actor: TransferActor) -> None:
        """A file's transfer restored at start belongs to its offer again."""
        found = self.entry_of.get(record.id)
        if found is not None:
            bundle, index = found
            bundle.live[index] = actor
            actor.progress.bundle_id = bundle.id
            if isinstance(actor, IncomingActor):
                actor.shared_writer = bundle.thread()
            elif isinstance(actor, OutgoingActor):
                actor.shared_hasher = bundle.thread()
            if isinstance(actor, IncomingActor) and actor.progress.state == "offered":
                actor.push("accept_local")  # recorded, not yet answered: taken without asking

    # --- both -------------------------------------------------------------------------------

    def route(self, channel: Channel, message: AppMessage) -> bool:
        """file_accept / file_decline / file_cancel naming an offer (not one of its files)."""
        tid = getattr(message, "transfer_id", None)
        bundle = self.live.get(tid) if isinstance(tid, bytes) else None
        if bundle is None:
            return False
        if bundle.peer != channel.peer:
            self._services.security.record(
                "frame_rejected",
                peer=channel.peer,
                detail={"reason": "file message for another peer's folder offer"},
            )
            return True
        if isinstance(message, FileAccept) and bundle.direction == "out":
            if bundle.state in ("offered", "paused", "transferring"):
                self._spawn(self._accepted(bundle))
        elif isinstance(message, FileDecline) and bundle.direction == "out":
            self._spawn(self._end(bundle, "declined", decline_text(message.reason)))
        elif isinstance(message, FileCancel):
            if bundle.state == "offered":
                error = f"the {_other(bundle)} withdrew the offer: {message.reason}"
                self._spawn(self._end(bundle, "cancelled", error))
            else:
                error = f"the {_other(bundle)} stopped the transfer: {message.reason}"
                self._spawn(self._end(bundle, "failed", error))
        return True

    async def _accepted(self, bundle: Bundle) -> None:
        if bundle.timer is not None:
            bundle.timer.cancel()
            bundle.timer = None
        if bundle.state != "transferring":
            await self._set_state(bundle, "transferring")
        await self._pump(bundle)

    async def _expire(self, bundle: Bundle) -> None:
        bundle.timer = None
        if bundle.state != "offered":
            return
        if bundle.direction == "in":
            reason = "the offer was not answered in time"
            await self._end(bundle, "expired", reason, FileDecline(bundle.id, reason))
        else:
            await self._end(
                bundle,
                "expired",
                "the receiver did not answer the offer in time",
                FileCancel(bundle.id, "the offer expired"),
            )

    def entry_finished(self, actor: TransferActor) -> None:
        found = self.entry_of.get(actor.transfer_id)
        if found is None:
            return
        bundle, index = found
        bundle.live.pop(index, None)
        if bundle.progress.final and not bundle.live:
            bundle.stop_thread()
        state = actor.progress.state
        if state == "completed":
            bundle.mark_done(index)
            bundle.progress.files_done = len(bundle.done)
            self._spawn(self._entry_done(bundle))
        elif state in FINAL_STATES and not bundle.progress.final:
            relpath = bundle.entries[index][0]
            error = wire_reason(f"{relpath}: {actor.progress.error or state}")
            self._spawn(self._end(bundle, "failed", error, FileCancel(bundle.id, error)))

    async def _entry_done(self, bundle: Bundle) -> None:
        if bundle.progress.final:
            return
        if len(bundle.done) == len(bundle.entries):
            await self._end(bundle, "completed")
            return
        # No store write per file: the count is the offer's files completed in
        # `transfers`, which `load` counts again; it is written when the offer ends.
        self.publish(bundle)
        await self._pump(bundle)

    def give_up_abandoned(self, now: float, limit_for: Callable[[str], float]) -> None:
        """An accepted incoming offer whose sender did not resume it in time (the same
        limits as a paused file: a week for a contact, hours for a stranger) is given
        up; its paused files are given up by the manager's own sweep."""
        for bundle in list(self.live.values()):
            if (
                bundle.direction == "in"
                and bundle.state == "paused"
                and not bundle.live
                and bundle.paused_since is not None
                and bundle.paused_since < now - limit_for(bundle.peer)
            ):
                error = "given up: the sender did not resume it in time"
                self._spawn(self._end(bundle, "failed", error, FileCancel(bundle.id, "given up")))

    def reserved(self) -> int:
        """Bytes accepted incoming offers still have to write (checked with new offers)."""
        return sum(
            b.progress.size - b.bytes_done()
            for b in self.live.values()
            if b.direction == "in" and b.state in _RUNNING
        )

    def find(self, bundle_id: str) -> Bundle | None:
        try:
            return self.live.get(bytes.fromhex(bundle_id))
        except ValueError:
            return None

    async def views(self, peer: str | None, limit: int) -> list[TransferView]:
        """Newest first. The records are read without their manifests (up to 10,000 sealed
        paths each, once read for every row on every call): a row needs only the count
        and the total size, which the record holds."""
        records = await self._services.store.run(Store.list_bundles, peer, limit, manifests=False)
        views = []
        for record in records:
            bundle = self.live.get(record.id)
            if bundle is not None:
                bundle.progress.advance(bundle.bytes_done())
                views.append(bundle.progress.view())
            else:
                views.append(self._summary_progress(record).view())
        return views


def _other(bundle: Bundle) -> str:
    return "sender" if bundle.direction == "in" else "receiver"


def _with_error(view: TransferView, note: str) -> TransferView:
    return dataclasses.replace(view, error=note)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("folder offer task failed: %s", task.exception())


def _record_started(store: Store, peer: str, senders: list[OutgoingTransfer], now: float) -> bool:
    """On the store thread: record a group of files as started (transferring), and read
    whether the peer is a verified contact (for their `file_sent` events)."""
    for sender in senders:
        store_new_outgoing(store, sender, now, "transferring")
    record = store.get_peer(peer)
    return bool(record is not None and record.verified)


def _check_and_make_folder(bundle: Bundle, policy: ReceivePolicy, reserved: int) -> Path:
    """The receiver's checks of a whole offer, then its new folder (blocking)."""
    for relpath, size, _ in bundle.entries:
        leaf = relpath.rsplit("/", 1)[-1]
        if size > policy.max_size:
            raise TransferRejectedError(
                f"{leaf} is {human_size(size)}, over the receiver's limit of "
                f"{human_size(policy.max_size)}"
            )
        if not extension_allowed(leaf, policy.allowed_extensions):
            raise TransferRejectedError(f"the receiver does not accept this type of file ({leaf})")
    try:
        policy.downloads.mkdir(parents=True, exist_ok=True)
        available = free_bytes(policy.downloads) - reserved
    except OSError as exc:
        raise TransferRejectedError(
            f"the receiver's downloads folder is unusable: {exc.strerror}"
        ) from None
    needed = bundle.progress.size + policy.min_free_after
    if available < needed:
        raise TransferRejectedError(
            f"not enough free space on the receiver for {bundle.name}: needs "
            f"{human_size(needed)} including a reserve, {human_size(max(0, available))} free"
        )
    try:
        return make_fresh_folder(policy.downloads, bundle.name)
    except (OSError, TransferError) as exc:
        raise TransferRejectedError(f"cannot create the folder for {bundle.name}: {exc}") from None

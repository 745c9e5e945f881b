"""TransferManager: the node's file-transfer engine, and the only thing the node talks to.

The node wires it with four calls (the same shape as delivery's `Delivery`):

    manager.session_ready(channel)            an authenticated session to a peer is up
    manager.session_closed(channel)           ... is gone
    manager.messages_received(channel, msgs)  the file_* messages of one read batch
    await manager.start() / await manager.stop()

and NodeAPI's `send_file`, `accept_file`, `decline_file` and `transfers`
delegate to the methods of the same names.

The transfer sub-protocol (messages in p2pmsg.protocol.messages):

- The sender offers (FileOffer: id, name, size, chunk size; no hash, which
  would cost a read of the whole file before the first byte moves). It
  re-sends the same offer on every new session until the transfer ends: that
  is how both a new offer and a resume reach the receiver.
- The receiver answers FileAccept(offset), FileDecline(reason), or nothing
  (both sides expire the offer after `offer_timeout`). To a re-offer of a
  transfer it accepted earlier it answers FileAccept(its partial file's length)
  by itself; to one it already completed, FileDone; to one that ended
  otherwise, FileCancel with the reason.
- The sender streams FileChunk(offset, data) in order, never more than
  `MAX_UNACKED_BYTES` beyond the receiver's last FileAck (cumulative offset of
  bytes written), hashing what it reads, then FileDone(sha256 of the whole
  file as it read it; after a resume its prefix is re-read from the file).
- The receiver compares that with its own hash of what it wrote (its partial
  file's prefix re-read after a resume) and answers FileDone(sha256: verified
  and saved) or FileCancel(reason). Either side may FileCancel at any time.
- A sender repeats the FileCancel of an outgoing transfer it ended (failed,
  cancelled, expired) on each new session with the peer for `RETELL_ENDED_FOR`:
  the first may have been lost while the peer was away, and the peer would wait
  for a re-offer forever. A cancel for a transfer we do not hold is ignored.
  A receiver gives up a transfer paused for longer than that when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from p2pmsg.errors import ConfigError, P2PMsgError, TransferError, TransferRejectedError
from p2pmsg.node.api import TransferView
from p2pmsg.node.bus import EventBus
from p2pmsg.node.channel import Channel
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.node.transfers.actor import Services, TransferActor, wire_reason
from p2pmsg.node.transfers.bundles import Bundles
from p2pmsg.node.transfers.incoming import IncomingActor, downloads_of
from p2pmsg.node.transfers.outgoing import OutgoingActor, store_new_outgoing
from p2pmsg.node.transfers.progress import Progress
from p2pmsg.node.transfers.receiver import IncomingTransfer, ReceivePolicy
from p2pmsg.node.transfers.sender import CHUNK_SIZE, DEFAULT_WINDOW, OutgoingTransfer
from p2pmsg.node.transfers.settings import DEFAULT_OFFER_TIMEOUT, TransferSettings
from p2pmsg.protocol.limits import MAX_UNACKED_BYTES
from p2pmsg.protocol.messages import (
    AppMessage,
    BundleOffer,
    FileAccept,
    FileAck,
    FileCancel,
    FileChunk,
    FileDecline,
    FileDone,
    FileOffer,
    new_id,
)
from p2pmsg.store import AsyncStore, Store, TransferRecord

log = logging.getLogger(__name__)

FILE_MESSAGES = (FileOffer, FileAccept, FileDecline, FileChunk, FileAck, FileDone, FileCancel)
#: Incoming transfers one peer may have open (offered, running or paused) at once. Each
#: holds a store record and, once accepted, a partial file's descriptor: an endless stream
#: of offers must cost the peer declines, not cost us records and descriptors.
MAX_INCOMING_PER_PEER = 32
#: How long after we ended an outgoing transfer we repeat its FileCancel on every new
#: session with its peer, and how many of the peer's latest transfers we look through.
#: The first cancel may never have arrived (the peer was away, or the session died with
#: it in flight), and a receiver resumes only when we re-offer, which an ended transfer
#: never does: without the repeat it would keep its partial file paused forever. A
#: receiver that already knows ignores a cancel for a transfer it has ended.
RETELL_ENDED_FOR = 7 * 24 * 3600.0
RETELL_SCAN = 256
_UNTOLD_ENDINGS = ("failed", "cancelled", "expired")


class EndedRecord(Protocol):
    """What `cancels_to_retell` reads of a stored transfer or folder offer."""

    @property
    def id(self) -> bytes: ...
    @property
    def direction(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def finished(self) -> float | None: ...
    @property
    def updated(self) -> float: ...


def cancels_to_retell(
    records: Iterable[EndedRecord], now: float, live: Container[bytes]
) -> list[FileCancel]:
    """The cancels to send again to a peer back in touch: what we offered it and ended
    (failed, cancelled, expired) within `RETELL_ENDED_FOR` and no longer run here. The
    first cancel may have been lost, and the receiver would wait for the rest. Single
    files and folder offers follow this one rule."""
    since = now - RETELL_ENDED_FOR
    return [
        FileCancel(r.id, wire_reason(r.error or r.state))
        for r in records
        if r.direction == "out"
        and r.state in _UNTOLD_ENDINGS
        and (r.finished or r.updated) >= since
        and r.id not in live
    ]


#: A paused incoming transfer from a contact not resumed for this long is given up
#: (record kept as failed, partial file removed). Past `RETELL_ENDED_FOR` a sender that
#: ended it no longer says so, and one that lost its record (a wiped profile) never will:
#: without this the partial file would wait for a re-offer forever.
ABANDON_PAUSED_AFTER = RETELL_ENDED_FOR
#: The same for a stranger's transfer (node/net/trust.py `is_contact`): its partial file is
#: disk a stranger holds, so hours, not a week. Checked at start and every sweep.
ABANDON_STRANGERS_AFTER = 6 * 3600.0
ABANDON_SWEEP_INTERVAL = 600.0


class TransferManager:
    def __init__(
        self,
        store: AsyncStore,
        bus: EventBus,
        security: SecurityLog,
        *,
        rng: Callable[[int], bytes],
        clock: Callable[[], float] = time.time,
        policy: ReceivePolicy | None = None,
        auto_accept: bool = False,
        window: int = DEFAULT_WINDOW,
        offer_timeout: float = DEFAULT_OFFER_TIMEOUT,
        is_contact: Callable[[str], bool] = lambda _peer: True,
    ) -> None:
        if window * CHUNK_SIZE > MAX_UNACKED_BYTES:
            raise ConfigError(f"a window of {window} chunks exceeds the protocol's limit")
        self._services = Services(store, bus, security, clock)
        self._rng = rng
        self.policy = policy
        self.auto_accept = auto_accept
        self._window = window
        self._offer_timeout = offer_timeout
        self._actors: dict[bytes, TransferActor] = {}
        self._channels: dict[str, Channel] = {}
        self._answered_unknown: set[bytes] = set()
        self._timers: dict[bytes, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._offers_in_flight: Counter[str] = Counter()  # offers being recorded, per peer
        self._refused_offers: Counter[str] = Counter()
        self._accepting = asyncio.Lock()  # offers are checked against free space one by one
        self._is_contact = is_contact
        self._sweeper: asyncio.Task[None] | None = None
        self.bundles = Bundles(self)  # folder and multi-file offers (bundles.py)

    @classmethod
    def from_settings(
        cls,
        store: AsyncStore,
        bus: EventBus,
        security: SecurityLog,
        settings: TransferSettings,
        *,
        rng: Callable[[int], bytes],
        clock: Callable[[], float] = time.time,
        is_contact: Callable[[str], bool] = lambda _peer: True,
    ) -> TransferManager:
        return cls(
            store,
            bus,
            security,
            rng=rng,
            clock=clock,
            is_contact=is_contact,
            policy=settings.policy(),
            auto_accept=settings.accept_files,
            window=settings.window,
            offer_timeout=settings.offer_timeout,
        )

    # --- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load transfers a previous run left unfinished; they resume with the next session."""
        await self.bundles.load()  # before the files: a file of an offer needs it
        records = await self._services.store.run(Store.incomplete_transfers)
        for record in records:
            if record.direction == "out":
                if record.source_path is None:
                    continue
                actor: TransferActor = OutgoingActor(
                    self._services,
                    self._progress(record),
                    Path(record.source_path),
                    self._finished,
                    window=self._window,
                    chunk_size=record.chunk_size,
                )
            else:
                rx = IncomingTransfer(
                    record.id, record.peer, record.name, record.size, record.chunk_size
                )
                policy = self.policy
                downloads = downloads_of(record.partial_path)
                if policy is not None and downloads is not None:
                    policy = ReceivePolicy(
                        downloads, policy.max_size, policy.min_free_after, policy.allowed_extensions
                    )
                found = self.bundles.entry_of.get(record.id)
                if found is not None:
                    rx = self.bundles.entry_rx(found[0], found[1], record.id, record.chunk_size)
                    policy = self.bundles.entry_policy(found[0])
                actor = IncomingActor(
                    self._services, self._progress(record), rx, policy, self._finished
                )
                # accepted before the restart (a folder offer's file counts in its offer)
                actor.reserved = record.state != "offered" and found is None
            if actor.progress.state != "offered":
                actor.progress.state = "paused"
                if isinstance(actor, IncomingActor):
                    actor.paused_since = record.updated
            else:
                self._schedule_expiry(record.id, record.created)
            self.bundles.adopt_restored(record, actor)
            self._adopt(actor)
        self._give_up_abandoned()
        self._sweeper = asyncio.create_task(self._sweep(), name="p2pmsg-transfer-sweep")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(ABANDON_SWEEP_INTERVAL)
            self._give_up_abandoned()

    def _give_up_abandoned(self) -> None:
        """End paused incoming transfers their sender did not resume in time: a week
        for a contact's, hours for a stranger's (its partial file is our disk)."""
        now = self._services.clock()
        self.bundles.give_up_abandoned(
            now,
            lambda peer: (
                ABANDON_PAUSED_AFTER if self._is_contact(peer) else ABANDON_STRANGERS_AFTER
            ),
        )
        for actor in list(self._actors.values()):
            if not isinstance(actor, IncomingActor) or actor.progress.state != "paused":
                continue
            contact = self._is_contact(actor.peer)
            limit = ABANDON_PAUSED_AFTER if contact else ABANDON_STRANGERS_AFTER
            if actor.paused_since is not None and actor.paused_since < now - limit:
                actor.push("abandon", "a week" if contact else f"{limit / 3600:g} hours")

    async def stop(self) -> None:
        await self.bundles.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(
            *(a.stop() for a in list(self._actors.values())), *self._tasks, return_exceptions=True
        )
        self._actors.clear()

    def _progress(self, record: TransferRecord) -> Progress:
        return Progress(
            record.id,
            record.peer,
            record.direction,
            record.name,
            record.size,
            record.sha256,
            time.monotonic,
            state=record.state,
            bytes_done=record.bytes_done,
            error=record.error,
            created=record.created,
            path=record.final_path or record.source_path,
            bundle_id=record.bundle_id,
        )

    def _adopt(self, actor: TransferActor) -> None:
        self._actors[actor.transfer_id] = actor
        channel = self._channels.get(actor.peer)
        if channel is not None:
            actor.push("session", channel)
        actor.start()

    def _finished(self, actor: TransferActor) -> None:
        self._actors.pop(actor.transfer_id, None)
        timer = self._timers.pop(actor.transfer_id, None)
        if timer is not None:
            timer.cancel()
        if isinstance(actor, IncomingActor):
            self._answer_late_offers(actor)
        self.bundles.entry_finished(actor)

    def _answer_late_offers(self, actor: IncomingActor) -> None:
        """A re-offer queued behind the end of its transfer (the sender restarted while we
        were still writing and verifying) is answered from the record, as any re-offer of
        an ended transfer: our answer at the end may have gone to the session that died,
        and the sender waits for one (seen with many small files of a folder offer)."""
        channels = [item[1] for item in actor.inbox if item[0] == "offer"]
        if not channels:
            return
        rx = actor.rx
        offer = FileOffer(rx.transfer_id, rx.name, rx.size, rx.chunk_size)
        task = asyncio.create_task(self._new_offer(channels[-1], offer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule_expiry(self, transfer_id: bytes, created: float) -> None:
        delay = max(0.0, created + self._offer_timeout - self._services.clock())

        def expire() -> None:
            self._timers.pop(transfer_id, None)
            actor = self._actors.get(transfer_id)
            if actor is not None:
                actor.push("expire")

        self._timers[transfer_id] = asyncio.get_running_loop().call_later(delay, expire)

    # --- sessions ---------------------------------------------------------------------------

    def session_ready(self, channel: Channel) -> None:
        self._channels[channel.peer] = channel
        for actor in self._actors.values():
            if actor.peer == channel.peer:
                actor.push("session", channel)
        task = asyncio.create_task(self._retell_ended(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.bundles.session_ready(channel)

    async def _retell_ended(self, channel: Channel) -> None:
        """Cancel again, to a peer back in touch, what we sent it and ended since."""
        try:
            records = await self._services.store.run(
                Store.list_transfers, channel.peer, RETELL_SCAN
            )
        except P2PMsgError as exc:
            log.warning("could not list the transfers to %s: %s", channel.peer[:16], exc)
            return
        cancels = cancels_to_retell(records, self._services.clock(), self._actors)
        if cancels and channel.is_open and self._channels.get(channel.peer) is channel:
            channel.send_messages(cancels)

    def session_closed(self, channel: Channel) -> None:
        if self._channels.get(channel.peer) is channel:
            del self._channels[channel.peer]
            self.bundles.session_closed(channel.peer)
        for actor in self._actors.values():
            if actor.peer == channel.peer and actor.channel in (channel, None):
                actor.push("session", None)

    def messages_received(self, channel: Channel, messages: Sequence[AppMessage]) -> None:
        """Route file_* messages to their transfers. Never raises for what a peer sends."""
        for message in messages:
            if type(message) is BundleOffer:
                self.bundles.offer_received(channel, message)
            elif isinstance(message, FILE_MESSAGES) and not self.bundles.route(channel, message):
                self._route(channel, message)

    def _route(self, channel: Channel, message: AppMessage) -> None:
        tid: bytes = message.transfer_id  # type: ignore[union-attr]
        actor = self._actors.get(tid)
        if actor is not None and actor.peer != channel.peer:
            # Another peer naming our transfer: it learns nothing and changes nothing.
            self._services.security.record(
                "frame_rejected",
                peer=channel.peer,
                detail={"reason": "file message for another peer's transfer"},
            )
            return
        if isinstance(message, FileOffer):
            if actor is None and self.bundles.unstarted_entry(channel.peer, tid):
                # A file of an accepted folder offer: no record can exist, and its chunks
                # follow without waiting for us (section 7.2), so it is taken right here.
                self.bundles.take_entry(channel, message)
                return
            if actor is None:
                # A file of an accepted folder offer is bounded by its offer (bundles.py
                # `MAX_LIVE_ENTRIES`), not by this limit: its sender runs several at once.
                if (
                    not self.bundles.is_entry(channel.peer, tid)
                    and self._incoming_open(channel.peer) >= MAX_INCOMING_PER_PEER
                ):
                    self._refuse_offer(channel, tid)
                    return
                self._offers_in_flight[channel.peer] += 1
                task = asyncio.create_task(self._new_offer(channel, message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(self._offer_recorded_for(channel.peer))
            elif isinstance(actor, IncomingActor) and _same_offer(actor.rx, message):
                actor.push("offer", channel)
            else:
                channel.send_messages([FileCancel(tid, "transfer id already in use")])
            return
        if actor is None:
            self._answer_unknown(channel, message)
        elif isinstance(actor, OutgoingActor):
            self._to_sender(actor, message)
        elif isinstance(actor, IncomingActor):
            self._to_receiver(actor, channel, message)

    def _incoming_open(self, peer: str) -> int:
        return self._offers_in_flight[peer] + sum(
            1
            for a in self._actors.values()
            if a.peer == peer and isinstance(a, IncomingActor) and a.progress.bundle_id is None
        )

    def _offer_recorded_for(self, peer: str) -> Callable[[asyncio.Task[None]], None]:
        def recorded(_: asyncio.Task[None]) -> None:
            self._offers_in_flight[peer] -= 1
            if self._offers_in_flight[peer] <= 0:
                del self._offers_in_flight[peer]

        return recorded

    def _refuse_offer(self, channel: Channel, transfer_id: bytes) -> None:
        """Decline past the limit; one security event per burst, not one per offer."""
        channel.send_messages(
            [
                FileDecline(
                    transfer_id, "too many transfers at once from this peer; offer it again later"
                )
            ]
        )
        refused = self._refused_offers[channel.peer] = self._refused_offers[channel.peer] + 1
        if refused == 1 or refused % 256 == 0:
            self._services.security.record(
                "rate_limited",
                peer=channel.peer,
                detail={
                    "reason": "too many incoming file transfers at once",
                    "limit": MAX_INCOMING_PER_PEER,
                    "refused": refused,
                },
            )

    def _to_sender(self, actor: OutgoingActor, message: AppMessage) -> None:
        if isinstance(message, FileAccept):
            actor.push("accept", message.offset)
        elif isinstance(message, FileAck):
            actor.push("ack", message.offset)
        elif isinstance(message, FileDone):
            actor.push("done", message.sha256)
        elif isinstance(message, FileDecline):
            actor.push("decline", message.reason)
        elif isinstance(message, FileCancel):
            actor.push("cancel", message.reason)
        # a FileChunk for a transfer we send is nonsense: ignored

    def _to_receiver(self, actor: IncomingActor, channel: Channel, message: AppMessage) -> None:
        if isinstance(message, FileChunk):
            try:
                actor.rx.expect(message.offset, len(message.data))
            except TransferError as exc:
                self._services.security.record(
                    "frame_rejected",
                    peer=channel.peer,
                    detail={
                        "reason": "file data past the offered size",
                        "transfer": message.transfer_id.hex(),
                    },
                )
                actor.inbox.clear()
                actor.buffered = 0
                actor.push("fail", str(exc))
                return
            actor.buffered += len(message.data)
            if actor.buffered > MAX_UNACKED_BYTES:
                self._services.security.record(
                    "frame_rejected",
                    peer=channel.peer,
                    detail={
                        "reason": "file sender ignored flow control",
                        "transfer": message.transfer_id.hex(),
                    },
                )
                actor.inbox.clear()
                actor.buffered = 0
                actor.push("fail", "the sender ignored flow control (too much unacknowledged data)")
                return
            actor.push("chunk", message.offset, message.data)
        elif isinstance(message, FileDone):
            actor.push("done", message.sha256)
        elif isinstance(message, FileCancel):
            actor.push("cancel", message.reason)

    def _answer_unknown(self, channel: Channel, message: AppMessage) -> None:
        """Say once that we do not know a transfer, so a stale peer stops waiting."""
        if isinstance(message, (FileCancel, FileDecline, FileAck)):
            return  # never answer these: two confused peers must not ping-pong
        tid: bytes = message.transfer_id  # type: ignore[union-attr]
        if tid in self._answered_unknown:
            return
        if len(self._answered_unknown) > 4096:
            self._answered_unknown.clear()
        self._answered_unknown.add(tid)
        channel.send_messages([FileCancel(tid, "unknown transfer")])

    async def _new_offer(self, channel: Channel, offer: FileOffer) -> None:
        try:
            await self._record_offer(channel, offer)
        except P2PMsgError as exc:
            log.warning("could not record a file offer from %s: %s", channel.peer[:16], exc)
            channel.send_messages(
                [FileCancel(offer.transfer_id, "the receiver could not record the offer")]
            )

    async def _record_offer(self, channel: Channel, offer: FileOffer) -> None:
        services = self._services
        if self.bundles.unstarted_entry(channel.peer, offer.transfer_id):
            # no record can exist (a file of a running offer gets one when it starts)
            await self.bundles.entry_offer(channel, offer)
            return
        record = await services.store.run(Store.get_transfer, offer.transfer_id)
        if record is not None:
            self._answer_finished(channel, record, offer)
            return
        if offer.transfer_id in self._actors:  # a duplicate offer raced us here
            return
        if await self.bundles.entry_offer(channel, offer):  # a file of a folder offer
            return
        rx = IncomingTransfer(
            offer.transfer_id, channel.peer, offer.name, offer.size, offer.chunk_size
        )
        now = services.clock()
        await services.store.run(
            Store.create_transfer,
            channel.peer,
            transfer_id=offer.transfer_id,
            direction="in",
            name=rx.name,
            size=rx.size,
            chunk_size=rx.chunk_size,
            now=now,
            state="offered",
        )
        progress = Progress(
            rx.transfer_id,
            channel.peer,
            "in",
            rx.name,
            rx.size,
            None,
            time.monotonic,
            created=now,
        )
        actor = IncomingActor(services, progress, rx, self.policy, self._finished)
        self._adopt(actor)
        self._schedule_expiry(rx.transfer_id, now)
        actor.publish(force=True)
        if self.auto_accept:
            await self._auto_answer(actor)

    async def _auto_answer(self, actor: IncomingActor) -> None:
        """Headless mode: accept what the policy allows, decline the rest with the reason."""
        if actor.policy is None:
            actor.push("decline_local", "the receiver has no downloads folder")
            return
        try:
            await self._check_and_reserve(actor)
        except TransferRejectedError as exc:
            actor.push("decline_local", str(exc))
            return
        actor.push("accept_local")

    async def _check_and_reserve(self, actor: IncomingActor) -> None:
        """Check an offer against the policy and the space other accepted transfers
        still need, and reserve its own; one offer at a time, so two checks never both
        count the same free bytes. Raises `TransferRejectedError`."""
        policy = actor.policy
        if policy is None:
            raise TransferRejectedError("the receiver has no downloads folder")
        async with self._accepting:
            reserved = self._reserved_bytes(exclude=actor)
            await asyncio.to_thread(actor.rx.check, policy, reserved)
            actor.reserved = True

    def _reserved_bytes(self, exclude: TransferActor | None) -> int:
        """What accepted incoming transfers and folder offers still have to write."""
        return self.bundles.reserved() + sum(
            other.rx.size - other.rx.bytes_done
            for other in self._actors.values()
            if isinstance(other, IncomingActor) and other.reserved and other is not exclude
        )

    def _answer_finished(self, channel: Channel, record: TransferRecord, offer: FileOffer) -> None:
        if (
            record.peer != channel.peer
            or record.direction != "in"
            or record.size != offer.size
            or record.chunk_size != offer.chunk_size
        ):
            channel.send_messages([FileCancel(offer.transfer_id, "transfer id already in use")])
        elif record.state == "completed" and record.sha256 is not None:
            # our earlier FileDone was lost: say it again, with the digest we verified
            channel.send_messages([FileDone(offer.transfer_id, record.sha256)])
        elif record.state == "declined":
            channel.send_messages(
                [FileDecline(offer.transfer_id, wire_reason(record.error or "declined"))]
            )
        else:
            channel.send_messages(
                [FileCancel(offer.transfer_id, wire_reason(record.error or record.state))]
            )

    # --- the API ----------------------------------------------------------------------------

    async def send_file(self, peer: str, path: str | Path) -> TransferView:
        """Check the file, record the offer and send it now or when the peer next connects
        (the file is hashed while it is sent, not before)."""
        transfer_id = new_id(self._rng)
        sender = await asyncio.to_thread(
            OutgoingTransfer.prepare, transfer_id, peer, Path(path), window=self._window
        )
        return await self.launch(sender)

    async def send_files(self, peer: str, paths: Sequence[str | Path]) -> TransferView:
        """Offer files and folders as one folder offer (bundles.py). Symlinks inside a
        folder are skipped, never followed; the view's `error` lists what was skipped."""
        return await self.bundles.send(peer, [Path(p) for p in paths])

    async def launch(self, sender: OutgoingTransfer) -> TransferView:
        """Record and start a prepared transfer (tests use it to launch a lying sender)."""
        transfer_id, peer = sender.transfer_id, sender.peer
        now = self._services.clock()
        await self._services.store.run(store_new_outgoing, sender, now)
        progress = Progress(
            transfer_id,
            peer,
            "out",
            sender.name,
            sender.size,
            None,
            time.monotonic,
            created=now,
            path=str(sender.path),
            bundle_id=sender.bundle_id,
        )
        actor = OutgoingActor(
            self._services,
            progress,
            sender.path,
            self._finished,
            sender=sender,
            window=self._window,
        )
        self._adopt(actor)
        self._schedule_expiry(transfer_id, now)
        actor.publish(force=True)
        return progress.view()

    def set_policy(self, policy: ReceivePolicy | None) -> None:
        """A new downloads folder or limits (the user saved Settings): for new offers and
        for those still waiting for an answer; accepted ones keep their partial's folder."""
        self.policy = policy
        for actor in self._actors.values():
            if isinstance(actor, IncomingActor) and actor.progress.state == "offered":
                actor.policy = policy

    def _actor(self, transfer_id: str) -> TransferActor:
        try:
            actor = self._actors.get(bytes.fromhex(transfer_id))
        except ValueError:
            actor = None
        if actor is None:
            raise TransferError(f"no transfer in progress with id {transfer_id}")
        return actor

    async def accept_file(self, transfer_id: str) -> None:
        bundle = self.bundles.find(transfer_id)
        if bundle is not None:
            await self.bundles.accept(bundle)
            return
        actor = self._actor(transfer_id)
        if not isinstance(actor, IncomingActor) or actor.progress.state != "offered":
            raise TransferError("only a pending incoming offer can be accepted")
        if actor.policy is None:
            raise ConfigError("no downloads folder is configured")
        await self._check_and_reserve(actor)  # refuse now, with the reason
        actor.push("accept_local")

    async def decline_file(
        self, transfer_id: str, reason: str = "declined by the receiver"
    ) -> None:
        bundle = self.bundles.find(transfer_id)
        if bundle is not None:
            await self.bundles.decline(bundle, reason)
            return
        actor = self._actor(transfer_id)
        if not isinstance(actor, IncomingActor) or actor.progress.state != "offered":
            raise TransferError("only a pending incoming offer can be declined")
        actor.push("decline_local", reason)

    async def cancel_file(self, transfer_id: str) -> None:
        bundle = self.bundles.find(transfer_id)
        if bundle is not None:
            await self.bundles.cancel(bundle)
            return
        self._actor(transfer_id).push("local_cancel")

    async def transfers(self, peer: str | None = None, limit: int = 100) -> list[TransferView]:
        """Newest first; live transfers show their in-memory progress and rate. A folder
        offer is one view (`files` > 0); its files are listed by `bundle_files`."""
        records = await self._services.store.run(Store.list_transfers, peer, limit, entries=False)
        views = [self._view(record) for record in records]
        views += await self.bundles.views(peer, limit)
        views.sort(key=lambda v: v.created, reverse=True)
        return views[:limit]

    async def bundle_files(self, bundle_id: str) -> list[TransferView]:
        """The per-file progress of a folder offer: the files started so far, in order."""
        try:
            bid = bytes.fromhex(bundle_id)
        except ValueError:
            raise TransferError(f"no folder offer with id {bundle_id}") from None
        records = await self._services.store.run(Store.bundle_transfers, bid)
        return [self._view(record) for record in records]

    def _view(self, record: TransferRecord) -> TransferView:
        actor = self._actors.get(record.id)
        return actor.progress.view() if actor is not None else self._progress(record).view()


def _same_offer(rx: IncomingTransfer, offer: FileOffer) -> bool:
    return (rx.size, rx.chunk_size) == (offer.size, offer.chunk_size)

"""`Node`: the running messenger that the TUI and the headless commands share.

A thin orchestrator. It owns the parts and wires their outputs to each other;
each part has one job and lives in its own module:

    router.py     SessionRouter: makes sessions and routes what they deliver
    peers.py      merged peer view                  bus.py        NodeEvent fan-out
    net/          what faces the network:
      listener.py   accept, admission limits        dialer.py     outbound, backoff
      session.py    one PeerConnection per socket   trust.py      TOFU, impostors
      discovery.py  mDNS browse and announce        advert.py     what an advert may say
    services/     what runs once the network has done its part:
      delivery/     store-first delivery, receipts  pairing.py    pairing by a short code
      groups.py     group replicas, anti-entropy
      security_log  batched event log               monitor_link  events -> alerts
    transfers/    file transfers

Clock and randomness are injected (`clock`, `rng`) so tests can drive them.
The public methods are the `NodeAPI` contract (api.py). The network half
(listener, dialer, discovery, the sessions and what they deliver) is a
`SessionRouter` (router.py) that the node owns; `__init__` is the one place
where the parts are built and wired to each other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.safety_number import format_safety_number, safety_number
from p2pmsg.errors import (
    ConfigError,
    LocalProtocolError,
    NotConnectedError,
    P2PMsgError,
    PeerBlockedError,
    UnknownPeerError,
)
from p2pmsg.node.api import (
    AlertCounts,
    AlertState,
    AlertStateChanged,
    AlertView,
    GroupMessageView,
    GroupReceiptView,
    GroupView,
    MessageStatus,
    MessageStatusChanged,
    MessageView,
    MonitorStatus,
    NodeEvent,
    PairingCode,
    PairingOutcome,
    PeerUpdated,
    PeerView,
    SessionStatusView,
    TransferView,
)
from p2pmsg.node.bus import EventBus
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.memory import keep_freed_memory
from p2pmsg.node.net.trust import is_contact, unsendable_reason
from p2pmsg.node.peers import PeerDirectory
from p2pmsg.node.router import SessionRouter
from p2pmsg.node.services.delivery.driver import Delivery
from p2pmsg.node.services.delivery.views import message_view, wire_ttl
from p2pmsg.node.services.expiry import ExpiryTimer
from p2pmsg.node.services.groups import Groups
from p2pmsg.node.services.monitor_link import MonitorLink, alert_view
from p2pmsg.node.services.pairing import Pairing
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.node.services.unlock_events import UnlockEventFollower
from p2pmsg.node.tasks import cancel_and_wait
from p2pmsg.node.transfers.manager import TransferManager
from p2pmsg.node.transfers.settings import default_downloads, profile_policy
from p2pmsg.protocol.groups import MemberInfo
from p2pmsg.protocol.messages import check_chat_body
from p2pmsg.security_events import Alert
from p2pmsg.store import AsyncStore, PeerRecord, Store

log = logging.getLogger(__name__)

#: How often the node looks for trust decisions and alert states written by another
#: process (seconds).
STORE_WATCH_INTERVAL = 1.0
#: How often strangers that never said anything are looked for and forgotten (seconds).
FORGET_STRANGERS_INTERVAL = 600.0
#: Saved settings that change how files are received (`TransferSettings.from_profile`).
_RECEIVE_SETTINGS = frozenset({"downloads_dir", "max_file_size", "accepted_extensions"})


class Node:
    """One identity's node. `async with Node.open(...)`, or `start()` / `stop()`."""

    def __init__(
        self,
        identity: Identity,
        display_name: str,
        store: AsyncStore,
        config: NodeConfig | None = None,
        *,
        owns_store: bool = False,
        clock: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.identity = identity
        self._name = display_name
        self._store = store
        self._owns_store = owns_store
        self.config = config or NodeConfig()
        self._clock = clock
        self.bus = EventBus()
        self._fingerprint = identity.fingerprint.hex()
        self.security = SecurityLog(store, self.bus, clock)
        self.monitor_link = MonitorLink(
            store,
            self.bus,
            clock,
            enabled=self.config.monitor,
            load_models=self.config.monitor_models,
            interval=self.config.monitor_interval,
        )
        self.security.add_observer(self.monitor_link)
        self.directory = PeerDirectory(self._fingerprint)
        self.delivery = Delivery(store, self.bus, self.security, clock)
        self.expiry = ExpiryTimer(store, self.bus, clock)
        self.delivery.on_deadlines_changed = self.expiry.wake
        # file transfers (p2pmsg.node.transfers): sessions and file_* messages are routed there
        self.files = TransferManager.from_settings(
            store,
            self.bus,
            self.security,
            self.config.files,
            rng=rng,
            clock=clock,
            is_contact=self._is_contact,
        )
        # pairing by a short code (node/services/pairing.py): pair_* messages are routed there
        self.pairing = Pairing(
            self._fingerprint,
            store,
            self.bus,
            self.security,
            self.directory,
            self.want_connection,
            self._publish_peer,
            clock,
            rng,
        )
        # groups (node/services/groups.py): group_* messages are routed there
        self.groups_service = Groups(
            identity,
            display_name,
            store,
            self.bus,
            self.security,
            self._local_name,
            self.want_connection,
            clock,
            rng,
            trust=self._trust,
            known=self._met,
        )
        # Disappearing group posts share the chats' expiry task.
        self.groups_service.on_deadlines_changed = self.expiry.wake
        self.expiry.on_group_texts_gone = self.groups_service.texts_gone
        self.router = SessionRouter(
            identity=identity,
            name=display_name,
            config=self.config,
            store=store,
            bus=self.bus,
            security=self.security,
            directory=self.directory,
            delivery=self.delivery,
            files=self.files,
            pairing=self.pairing,
            groups=self.groups_service,
            clock=clock,
            rng=rng,
            uniform=uniform,
        )
        self.unlock_events = (
            None
            if self.config.profile_events is None
            else UnlockEventFollower(self.config.profile_events, self.security, store)
        )
        self._started = False
        self._store_watch: asyncio.Task[None] | None = None
        self._alert_generation = 0  # the alert states this node has published up to
        self._stranger_sweep: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        identity: Identity,
        display_name: str,
        db_path: str | Path,
        data_key: bytes,
        config: NodeConfig | None = None,
        **kwargs: Any,
    ) -> Node:
        """A node with its own store (opened here, closed by `stop`)."""
        store = await AsyncStore.open(db_path, data_key)
        return cls(identity, display_name, store, config, owns_store=True, **kwargs)

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- identity ----------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def display_name(self) -> str:
        return self._name

    @property
    def listen_port(self) -> int:
        return self.router.listener.port

    @property
    def discovery(self) -> Any:
        """The running mDNS `Discovery`, or None (off, or not started)."""
        return self.router.discovery

    def _local_name(self, fingerprint: str) -> str | None:
        """The user's own name for a key, if any (group views put it first)."""
        record = self.directory.record(fingerprint)
        return record.local_name or None if record is not None else None

    def _is_contact(self, fingerprint: str) -> bool:
        record = self.directory.record(fingerprint)
        return record is not None and is_contact(record, self._clock())

    def _met(self, fingerprint: str) -> bool:
        """A key pinned here (met in a handshake): a group introduces it no more."""
        record = self.directory.record(fingerprint)
        return record is not None and record.pinned

    def _trust(self, fingerprint: str) -> str:
        """For group invitations: "contact", "stranger" (unknown or first-seen) or
        "refused" (blocked, flagged or retired: it may put us in no group)."""
        record = self.directory.record(fingerprint)
        if record is None:
            return "stranger"
        if not record.sendable:
            return "refused"
        return "contact" if is_contact(record, self._clock()) else "stranger"

    def want_connection(self, fingerprint: str) -> None:
        """Reach this peer now (something waits for it), whatever auto_connect says."""
        self.router.want_connection(fingerprint)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        # File data is allocated and freed in chunk-sized pieces: keep the freed memory.
        keep_freed_memory()
        self.security.start()
        # The monitor first, so it sees the first connections and the imported unlocks,
        # with the user's false alarms (they quiet what they cover: monitor/quieting.py).
        await self.monitor_link.start()
        self._alert_generation = await self._store.run(Store.alert_generation)
        await self._load_false_alarms()
        if self.unlock_events is not None:
            await self.unlock_events.start()
        self.delivery.start()
        self.expiry.start()
        if self.config.files.from_profile:
            await self._apply_receive_settings()
        forgotten = await self._store.run(Store.forget_unproven)
        if forgotten:
            log.info("forgot %d peers that only adverts had made", forgotten)
        await self.forget_strangers()
        # Who is a contact is known before transfers start (a stranger's paused
        # transfer is given up sooner than a contact's).
        self.directory.set_records(await self._store.run(Store.list_peers))
        await self.files.start()
        await self.groups_service.start()  # before sessions: each one that comes up gets summaries
        await self.router.start()
        self.groups_service.dial_members()
        self._store_watch = asyncio.create_task(self._watch_store())
        self._stranger_sweep = asyncio.create_task(self._forget_strangers_periodically())

    async def stop(self) -> None:
        """Orderly shutdown: bye to every peer, flush queued work, close the store."""
        if not self._started:
            return
        self._started = False
        await cancel_and_wait(self._store_watch)
        await cancel_and_wait(self._stranger_sweep)
        if self.unlock_events is not None:
            await self.unlock_events.stop()
        await self.monitor_link.stop()
        await self.pairing.stop()  # before the sessions close: a pairing in flight says so
        await self.router.stop()
        await self.groups_service.stop()
        await self.files.stop()
        await self.delivery.stop()
        await self.expiry.stop()
        await self.security.stop()
        self.bus.close()
        if self._owns_store:
            await self._store.close()

    def subscribe(self) -> AsyncIterator[NodeEvent]:
        return self.bus.subscribe()

    # --- peers ---------------------------------------------------------------------------

    async def refresh_peers(self) -> list[PeerRecord]:
        records = await self._store.run(Store.list_peers)
        self.directory.set_records(records)
        return records

    async def peers(self) -> list[PeerView]:
        await self.refresh_peers()
        return self.directory.views()

    async def resolve_peer(self, query: str) -> PeerView:
        record = await self._resolve(query)
        view = self.directory.view(record.fingerprint)
        assert view is not None
        return view

    async def _resolve(self, query: str) -> PeerRecord:
        # The hot path (send_text in a loop) must not cost a store round trip per call:
        # a unique match among the cached records is the answer; anything else (unknown,
        # ambiguous, stale cache) goes to the store, which raises the precise error.
        cached = self.directory.lookup(query, adverts=True)
        if cached is not None:
            if self.directory.stored(cached.fingerprint):
                return cached
            return await self._store_advertised(cached.fingerprint)
        record = await self._store.run(Store.resolve_peer, query)
        self.directory.update_record(record)
        return record

    async def _store_advertised(self, fingerprint: str) -> PeerRecord:
        """A key only discovery knows, which the user now acts on (opens, writes to,
        names): from now on it has a row, with its advertised name and addresses.
        Adverts alone never make rows (router.py), so strangers cannot fill the store."""
        advert = self.directory.advert(fingerprint)
        if advert is None:
            raise UnknownPeerError(f"{fingerprint[:16]} stopped advertising")
        record: PeerRecord | None = None
        for host in advert.addresses:
            record = await self._store.run(
                Store.upsert_discovered, fingerprint, advert.name, host, advert.port, self._clock()
            )
        if record is None:
            raise UnknownPeerError(f"{fingerprint[:16]} advertises no address")
        self.directory.update_record(record)
        return record

    async def add_peer(self, host: str, port: int) -> None:
        try:
            await self._store.run(Store.add_manual_address, host, port, self._clock())
        except ValueError as exc:
            raise ConfigError(f"cannot add {host}:{port}: {exc}") from None
        self.router.dial_manual(host, port)

    # --- messages ------------------------------------------------------------------------

    async def conversation(self, peer: str, limit: int = 200) -> list[MessageView]:
        record = await self._resolve(peer)
        messages = await self._store.run(Store.conversation, record.fingerprint, limit)
        views = [message_view(m) for m in messages]
        # A receipt announced on the loop may not be written yet (it rides with the next
        # store batch): show what the node already announced, not the older row.
        for i, m in enumerate(messages):
            if m.status in ("queued", "sent"):
                recent = self.delivery.recent_status(m.id)
                if recent is not None:
                    views[i] = dataclasses.replace(views[i], status=recent)
        return views

    async def send_text(self, peer: str, text: str, ttl: float | None = None) -> MessageView:
        # The hot path of a chatty script or TUI (thousands of calls in flight): a cached
        # peer costs no coroutine of its own, the checks build no Chat, and the call
        # awaits the delivery future directly (one suspension per message, no more).
        record = self.directory.lookup(peer)
        if record is None:
            record = await self._resolve(peer)
        self._check_sendable(record, (text,), ttl)
        stored = await self.delivery.submit(record.fingerprint, text, ttl)
        self.want_connection(record.fingerprint)
        return stored

    async def send_texts(
        self, peer: str, texts: list[str], ttl: float | None = None
    ) -> list[MessageView]:
        """Many messages to one peer, in order (bulk form of `send_text`; additive API)."""
        record = await self._resolve(peer)
        self._check_sendable(record, texts, ttl)
        stored = await self.delivery.submit_many(record.fingerprint, texts, ttl)
        self.want_connection(record.fingerprint)
        return stored

    def _check_sendable(self, record: PeerRecord, texts: Iterable[str], ttl: float | None) -> None:
        """Refuse what must not be stored for sending: a blocked peer, or a message the
        peer would refuse (its text and timer; the id and time are ours to get right)."""
        reason = unsendable_reason(record)
        if reason is not None:
            raise PeerBlockedError(reason)
        if ttl is not None and not math.isfinite(ttl):  # inf means "off" only for a conversation
            raise ConfigError(
                f"a message's disappearing timer must be a number of seconds, not {ttl!r}"
            )
        seconds = wire_ttl(ttl)
        try:
            for text in texts:
                check_chat_body(text, seconds)
        except LocalProtocolError as exc:
            raise ConfigError(str(exc)) from None

    async def wait_delivered(self, message_id: str, timeout: float) -> MessageStatus:
        try:
            raw = bytes.fromhex(message_id)
        except ValueError:
            raise ConfigError(f"not a message id: {message_id!r}") from None
        return await self.delivery.wait_status(raw, timeout)

    async def mark_read(self, peer: str) -> None:
        record = await self._resolve(peer)
        ids = await self._store.run(Store.mark_conversation_read, record.fingerprint, self._clock())
        if not ids:
            return
        self.delivery.read_locally(record.fingerprint, ids)
        self.bus.publish(
            MessageStatusChanged(record.fingerprint, tuple(i.hex() for i in ids), "read")
        )
        self.expiry.wake()
        await self._publish_peer(record.fingerprint)

    async def set_conversation_ttl(self, peer: str, ttl: float | None) -> None:
        record = await self._resolve(peer)
        try:
            await self._store.run(Store.set_disappearing_ttl, record.fingerprint, ttl)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        await self._publish_peer(record.fingerprint)

    async def conversation_ttl(self, peer: str) -> float | None:
        record = await self._resolve(peer)
        stored = await self._store.run(Store.get_peer, record.fingerprint)  # not the cache
        return None if stored is None else stored.disappearing_ttl

    # --- sessions and keys ---------------------------------------------------------------

    def _live(self, fingerprint: str) -> Any:
        session = self.directory.session(fingerprint)
        if session is None:
            raise NotConnectedError(f"not connected to {fingerprint[:16]}")
        return session

    async def session_status(self, peer: str) -> SessionStatusView | None:
        record = await self._resolve(peer)
        session = self.directory.session(record.fingerprint)
        return None if session is None else session.status_view(record.verified)

    async def set_suite(self, peer: str, suite: str) -> None:
        record = await self._resolve(peer)
        self._control(record.fingerprint, lambda conn: conn.switch_suite(suite))

    async def rotate(self, peer: str) -> None:
        record = await self._resolve(peer)
        self._control(record.fingerprint, lambda conn: conn.rotate_keys())

    async def rekey(self, peer: str) -> None:
        record = await self._resolve(peer)
        self._control(record.fingerprint, lambda conn: conn.request_rekey())

    def _control(self, fingerprint: str, action: Callable[[Any], bytes]) -> None:
        try:
            self._live(fingerprint).control(action)
        except LocalProtocolError as exc:
            raise ConfigError(str(exc)) from None

    async def safety_number(self, peer: str) -> str:
        record = await self._resolve(peer)
        if record.identity_key is None:
            raise UnknownPeerError(
                f"no key is pinned for {record.name or record.fingerprint} yet: connect to it first"
            )
        digits = await asyncio.to_thread(
            safety_number, self.identity.public_key, record.identity_key
        )
        return format_safety_number(digits)

    async def set_verified(self, peer: str, verified: bool) -> None:
        record = await self._resolve(peer)
        try:
            await self._store.run(Store.set_verified, record.fingerprint, verified)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        await self._publish_peer(record.fingerprint)

    # --- trust decisions by the user (each applies to live sessions at once) -------------

    async def rename_peer(self, peer: str, local_name: str | None) -> PeerView:
        record = await self._resolve(peer)
        if record.trust == "flagged" and local_name:
            return await self.keep_apart(record.fingerprint, local_name)
        return await self._decide(Store.set_local_name, record.fingerprint, local_name)

    async def change_key(self, contact: str, new_key: str) -> PeerView:
        old = await self._resolve(contact)
        new = await self._resolve(new_key)
        view = await self._decide(Store.change_key, old.fingerprint, new.fingerprint, self._clock())
        log.warning(
            "key change by the user: %s moved from key %s to %s",
            view.name,
            old.fingerprint[:16],
            new.fingerprint[:16],
        )
        return view

    async def keep_apart(self, peer: str, local_name: str) -> PeerView:
        record = await self._resolve(peer)
        return await self._decide(Store.keep_apart, record.fingerprint, local_name)

    async def block_peer(self, peer: str) -> PeerView:
        record = await self._resolve(peer)
        return await self._decide(Store.block, record.fingerprint, self._clock())

    async def unblock_peer(self, peer: str) -> PeerView:
        record = await self._resolve(peer)
        return await self._decide(Store.unblock, record.fingerprint)

    async def forget_strangers(self) -> int:
        """Forget the strangers that never said anything and are idle (or too many),
        except those connected now (`Store.forget_strangers`). Returns how many."""
        connected = self.router.connected_peers()
        try:
            forgotten = await self._store.run(
                Store.forget_strangers, self._clock(), connected=connected
            )
        except P2PMsgError as exc:  # a busy or broken store: try again next time
            log.warning("forgetting silent strangers failed: %s", exc)
            return 0
        if forgotten:
            log.info("forgot %d strangers that never said anything", forgotten)
            self.directory.set_records(await self._store.run(Store.list_peers))
        return forgotten

    async def _forget_strangers_periodically(self) -> None:
        while True:
            await asyncio.sleep(FORGET_STRANGERS_INTERVAL)
            await self.forget_strangers()

    async def _watch_store(self) -> None:
        """Pick up trust decisions and alert states another process wrote (`p2pmsg
        trust`, `rename`, `block`, `alerts --ack` on this profile while the node runs):
        each moves a generation counter in the store, so a poll costs one small read on
        the store thread."""
        seen = await self._store.run(Store.trust_generation)
        while True:
            await asyncio.sleep(STORE_WATCH_INTERVAL)
            try:
                now, alerts = await self._store.run(_generations)
                if now != seen:
                    seen = now
                    await self.router.trust_changed()
                if alerts != self._alert_generation:
                    since, self._alert_generation = self._alert_generation, alerts
                    await self._alerts_changed(
                        await self._store.run(Store.alerts_changed_since, since)
                    )
            except P2PMsgError as exc:  # a busy or broken store: say so, try again later
                log.warning("cannot pick up changes made by another process: %s", exc)

    async def _decide(self, method: Callable[..., PeerRecord], *args: Any) -> PeerView:
        """Run one trust decision in the store, then make the live node agree with it."""
        try:
            record = await self._store.run(method, *args)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        await self.router.trust_changed()
        view = self.directory.view(record.fingerprint)
        assert view is not None
        return view

    # --- files (the file-transfer module plugs in here) ----------------------------------

    async def send_file(self, peer: str, path: str) -> TransferView:
        record = await self._resolve(peer)
        reason = unsendable_reason(record)
        if reason is not None:
            raise PeerBlockedError(reason)
        view = await self.files.send_file(record.fingerprint, path)
        self.want_connection(record.fingerprint)
        return view

    async def send_files(self, peer: str, paths: Sequence[str]) -> TransferView:
        record = await self._resolve(peer)
        reason = unsendable_reason(record)
        if reason is not None:
            raise PeerBlockedError(reason)
        view = await self.files.send_files(record.fingerprint, paths)
        self.want_connection(record.fingerprint)
        return view

    async def bundle_files(self, bundle_id: str) -> list[TransferView]:
        return await self.files.bundle_files(bundle_id)

    async def accept_file(self, transfer_id: str) -> None:
        await self.files.accept_file(transfer_id)

    async def decline_file(self, transfer_id: str) -> None:
        await self.files.decline_file(transfer_id)

    async def cancel_file(self, transfer_id: str) -> None:
        await self.files.cancel_file(transfer_id)

    async def transfers(self, peer: str | None = None) -> list[TransferView]:
        fingerprint = None if peer is None else (await self._resolve(peer)).fingerprint
        return await self.files.transfers(fingerprint)

    # --- groups (node/services/groups.py) ------------------------------------------------

    async def groups(self) -> list[GroupView]:
        return self.groups_service.all()

    async def create_group(self, name: str, members: Sequence[str]) -> GroupView:
        infos = [await self._member_info(peer) for peer in members]
        if len({i.public_key for i in infos}) != len(infos):
            raise ConfigError("a member is named twice")
        return await self.groups_service.create(name, infos)

    async def add_member(self, group: str, peer: str) -> GroupView:
        replica = self.groups_service.find(group)
        return await self.groups_service.add(replica, await self._member_info(peer))

    async def remove_member(self, group: str, peer: str) -> GroupView:
        replica = self.groups_service.find(group)
        member = await self._group_member(replica, peer)
        return await self.groups_service.remove(replica, member)

    async def leave_group(self, group: str) -> GroupView:
        return await self.groups_service.leave(self.groups_service.find(group))

    async def rename_group(self, group: str, name: str) -> GroupView:
        return await self.groups_service.rename(self.groups_service.find(group), name)

    async def send_group(self, group: str, text: str, ttl: float | None = None) -> GroupMessageView:
        replica = self.groups_service.find(group)
        if ttl is not None and not math.isfinite(ttl):
            raise ConfigError(
                f"a message's disappearing timer must be a number of seconds, not {ttl!r}"
            )
        if ttl is None:  # the group's own timer, as a chat's (math.inf: off)
            own = await self._store.run(Store.group_ttl, replica.group_id)
            ttl = None if own is None or math.isinf(own) else own
        return await self.groups_service.post(replica, text, wire_ttl(ttl))

    async def set_group_ttl(self, group: str, ttl: float | None) -> None:
        replica = self.groups_service.find(group)
        try:
            await self._store.run(Store.set_group_ttl, replica.group_id, ttl)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    async def group_ttl(self, group: str) -> float | None:
        replica = self.groups_service.find(group)
        return await self._store.run(Store.group_ttl, replica.group_id)

    async def group_messages(self, group: str, limit: int = 200) -> list[GroupMessageView]:
        return await self.groups_service.messages(self.groups_service.find(group), limit)

    async def wait_group_delivered(
        self, group: str, message_id: str, timeout: float
    ) -> GroupMessageView:
        replica = self.groups_service.find(group)
        return await self.groups_service.wait_delivered(replica, message_id, timeout)

    async def mark_group_read(self, group: str) -> None:
        await self.groups_service.mark_read(self.groups_service.find(group))

    async def group_receipts(
        self, group: str, message_id: str | None = None
    ) -> tuple[GroupMessageView, tuple[GroupReceiptView, ...]]:
        return self.groups_service.receipts(self.groups_service.find(group), message_id)

    async def _member_info(self, peer: str) -> MemberInfo:
        """A peer to name in a group: its pinned key (a group names keys, not names),
        refused for a flagged, blocked or retired key as any sending is."""
        record = await self._resolve(peer)
        reason = unsendable_reason(record)
        if reason is not None:
            raise PeerBlockedError(reason)
        if record.identity_key is None:
            raise UnknownPeerError(
                f"no key is pinned for {record.name or record.fingerprint} yet: connect to it first"
            )
        return MemberInfo(record.identity_key, record.name or record.fingerprint[:16])

    async def _group_member(self, replica: Any, peer: str) -> bytes:
        """A current member by the user's name for it, its name in the group, or a
        fingerprint prefix."""
        wanted = peer.strip().casefold()
        found = [
            fp
            for fp, info in replica.state.members.items()
            if info.name.casefold() == wanted
            or (self._local_name(fp.hex()) or "").casefold() == wanted
            or (len(wanted) >= 4 and fp.hex().startswith(wanted))
        ]
        if len(found) == 1:
            return bytes(found[0])
        if not found:
            raise ConfigError(f"{peer!r} is not a member of {replica.state.name!r}")
        raise ConfigError(f"{peer!r} names several members; use a fingerprint prefix")

    # --- pairing by a short code (node/services/pairing.py) ------------------------------

    async def pairing_code(self, peer: str) -> PairingCode:
        record = await self._resolve(peer)
        code = self.pairing.show_code(record.fingerprint)
        self.want_connection(record.fingerprint)  # the typer's node may be reachable first
        return code

    async def wait_pairing(self, peer: str, timeout: float) -> PairingOutcome:
        record = await self._resolve(peer)
        return await self.pairing.wait(record.fingerprint, timeout)

    async def enter_pairing_code(self, peer: str, code: str, timeout: float) -> PairingOutcome:
        record = await self._resolve(peer)
        return await self.pairing.enter_code(record.fingerprint, code, timeout)

    # --- monitor, events, settings -------------------------------------------------------

    async def alerts(
        self, limit: int = 100, states: Collection[AlertState] | None = None
    ) -> list[AlertView]:
        stored = await self._store.run(Store.list_alerts, limit, states=states)
        return [alert_view(a) for a in stored]

    async def alert_counts(self) -> AlertCounts:
        return AlertCounts(**await self._store.run(Store.alert_counts))

    async def acknowledge_alerts(self, ids: Sequence[int] | None = None) -> list[AlertView]:
        return await self._set_alert_state(ids, "acknowledged")

    async def dismiss_alerts(self, ids: Sequence[int]) -> list[AlertView]:
        return await self._set_alert_state(ids, "dismissed")

    async def mark_false_alarms(self, ids: Sequence[int]) -> list[AlertView]:
        return await self._set_alert_state(ids, "false_alarm")

    async def _set_alert_state(self, ids: Sequence[int] | None, state: str) -> list[AlertView]:
        try:
            change = await self._store.run(
                Store.set_alert_state, None if ids is None else list(ids), state, self._clock()
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        # Our own change is published here; the store watch publishes what it has not
        # seen yet (another process's changes in between, and then ours again: harmless).
        if change.changed and change.generation == self._alert_generation + 1:
            self._alert_generation = change.generation
        await self._alerts_changed(change.changed)
        return [alert_view(a) for a in change.changed]

    async def _alerts_changed(self, changed: list[Alert]) -> None:
        """Tell the UI, and give the monitor the new false alarms when there are any."""
        if not changed:
            return
        if any(a.state == "false_alarm" for a in changed):
            await self._load_false_alarms()
        counts = await self.alert_counts()
        self.bus.publish(AlertStateChanged(tuple(alert_view(a) for a in changed), counts))

    async def _load_false_alarms(self) -> None:
        from p2pmsg.monitor.quieting import QUIET_FOR

        marks = await self._store.run(Store.false_alarms, self._clock() - QUIET_FOR)
        self.monitor_link.set_false_alarms(marks)

    async def security_events(self, limit: int = 500) -> list[dict[str, Any]]:
        await self.security.flush()
        events = await self._store.run(Store.recent_events, limit)
        return [e.to_dict() for e in events]

    async def monitor_status(self) -> MonitorStatus:
        return self.monitor_link.status()

    async def get_settings(self) -> dict[str, Any]:
        """The profile's settings, plus `default_downloads_dir` (read-only): where files
        land while `downloads_dir` is unset, so a screen can say which folder that is."""
        settings = await self._store.run(Store.load_settings)
        return {**asdict(settings), "default_downloads_dir": str(default_downloads())}

    async def update_settings(self, **values: Any) -> None:
        await self._store.run(lambda store: store.update_settings(**values))
        if self.config.files.from_profile and _RECEIVE_SETTINGS & values.keys():
            await self._apply_receive_settings()

    async def _apply_receive_settings(self) -> None:
        """Downloads folder and limits from the profile's saved settings (the app's F4)."""
        settings = await self._store.run(Store.load_settings)
        self.files.set_policy(
            profile_policy(
                settings.downloads_dir, settings.max_file_size, settings.accepted_extensions
            )
        )

    # --- helpers -------------------------------------------------------------------------

    async def _publish_peer(self, fingerprint: str) -> None:
        record = await self._store.run(Store.get_peer, fingerprint)
        if record is None:
            return
        self.directory.update_record(record)
        view = self.directory.view(fingerprint)
        if view is not None:
            self.bus.publish(PeerUpdated(view))

    async def flushed(self) -> None:
        """Wait until queued deliveries and security events are written (tests, shutdown)."""
        await self.delivery.flushed()
        await self.security.flush()


def _generations(store: Store) -> tuple[int, int]:
    """The trust and alert generations, in one trip to the store thread."""
    return store.trust_generation(), store.alert_generation()


__all__ = ["Node", "NodeConfig"]

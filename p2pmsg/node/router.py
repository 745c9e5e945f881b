"""`SessionRouter`: the node's network half, owned by `Node`.

It makes sessions (listener, dialer, discovery) and decides, for each
authenticated connection, whether to keep it (net/trust.py) and which of two
duplicates survives (peers.py); for each discovery event, whom to dial and
when (net/dialer.py). It is every session's `SessionHandler`: what a session
delivers is routed from here to the part that owns it (chats and receipts to
delivery, file_* to transfers, pair_* to pairing, group_* to groups), and those parts hear when a
session becomes usable or closes. `Node` builds those parts and hands them
in; the router never reaches back into `Node`. Every decision that matters for
security leaves a security event behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import ConfigError, DiscoveryError, P2PMsgError
from p2pmsg.node.api import (
    AddressDialed,
    NameClashed,
    PeerConnected,
    PeerDisconnected,
    PeerDiscovered,
    PeerLost,
    PeerUpdated,
    SessionChanged,
)
from p2pmsg.node.bus import EventBus
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.net.admission import Admission, AdmissionControl
from p2pmsg.node.net.advert import DiscoveryEvent, PeerAdvertised
from p2pmsg.node.net.dialer import Dialer, DialTarget
from p2pmsg.node.net.listener import Listener
from p2pmsg.node.net.session import Session
from p2pmsg.node.net.trust import Expectation, clash_detail, expectation_policy, is_contact
from p2pmsg.node.peers import PeerDirectory
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.protocol.connection import PeerConnection, Role
from p2pmsg.protocol.events import (
    CipherChanged,
    Event,
    KeysRotated,
    RekeyCompleted,
    SecurityEventRaised,
    UserMessage,
)
from p2pmsg.protocol.handshake import HandshakePolicy, PeerInfo
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.protocol.messages import GROUP_MESSAGES, PAIR_MESSAGES, Chat, GroupMessage, Receipt
from p2pmsg.protocol.names import name_key
from p2pmsg.store import AsyncStore, PeerRecord, Store

if TYPE_CHECKING:
    from p2pmsg.node.services.delivery.driver import Delivery
    from p2pmsg.node.services.groups import Groups
    from p2pmsg.node.services.pairing import Pairing
    from p2pmsg.node.transfers.manager import TransferManager

log = logging.getLogger(__name__)

#: After a session drops, the first reconnect waits this long (plus jitter).
RECONNECT_DELAY = 0.2
SHUTDOWN_GRACE = 2.0
#: Hosts remembered with the keys met there (see `_contact_address`).
MAX_MET_HOSTS = 4096
MAX_KEYS_PER_HOST = 8

#: Repeated refusals of one (address, reason) within this many seconds are one event.
REFUSALS_WINDOW = 1.0
#: Most (address, reason) tallies kept at once (a spoofed-address flood cannot grow it).
MAX_REFUSAL_KEYS = 4096


class SessionRouter:
    def __init__(
        self,
        *,
        identity: Identity,
        name: str,
        config: NodeConfig,
        store: AsyncStore,
        bus: EventBus,
        security: SecurityLog,
        directory: PeerDirectory,
        delivery: Delivery,
        files: TransferManager,
        pairing: Pairing,
        groups: Groups,
        clock: Callable[[], float],
        rng: Callable[[int], bytes],
        uniform: Callable[[float, float], float],
    ) -> None:
        self.identity = identity
        self.config = config
        self.bus = bus
        self.security = security
        self.directory = directory
        self.delivery = delivery
        self.files = files
        self.pairing = pairing
        self.groups = groups
        self._name = name
        self._fingerprint = identity.fingerprint.hex()
        self._store = store
        self._clock = clock
        self._rng = rng
        self._uniform = uniform
        self.admission = AdmissionControl(config.limits)
        self.listener = Listener(
            self.admission,
            self._on_accept,
            self._on_refuse,
            clock,
            contact_address=self._contact_address,
        )
        self.dialer = Dialer(self._dial, self._wanted, clock, uniform, policy=config.backoff)
        self.discovery: Any = None
        self.protocol_config = self.config.protocol or ProtocolConfig()
        self._sessions: set[Session] = set()
        self._refusals: dict[tuple[str, str], int] = {}  # (address, reason) -> repeats
        self._session_tasks: set[asyncio.Task[None]] = set()
        # A dial's handshake outcome: None once the peer is connected, else why not.
        self._dial_waiters: dict[Session, asyncio.Future[str | None]] = {}
        self._want: set[str] = set()  # peers we must reach whatever auto_connect says
        self._refuted: set[tuple[str, str, int]] = set()  # (advertised fp, host, port) that lied
        self._discovery_queue: asyncio.Queue[DiscoveryEvent] = asyncio.Queue(maxsize=4096)
        # host -> keys that proved themselves there (or that the user gave the address
        # of): a connection from a host where a contact was met may use the slots kept
        # for contacts. Never hosts from adverts, which anyone can send. Bounded: the
        # least recently met hosts go first, and a few keys per host.
        self._met_at: OrderedDict[str, set[str]] = OrderedDict()
        self._discovery_task: asyncio.Task[None] | None = None
        self._running = False

    # --- start / stop --------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.protocol is None:
            self.protocol_config = await self._protocol_from_settings()
        self._running = True
        await self.listener.start(self.config.interfaces, self.config.port)
        self.dialer.start()
        self._discovery_task = asyncio.create_task(
            self._discovery_loop(), name="p2pmsg-discovery-events"
        )
        records = await self._store.run(Store.list_peers)
        self.directory.set_records(records)
        for record in records:  # the user gave these addresses; adverts are only claims
            for address in record.addresses:
                if address.manual:
                    self._met(address.host, record.fingerprint)
        outbox_peers = set(await self._store.run(Store.peers_with_outbox))
        self._want |= outbox_peers
        for record in records:
            for address in record.addresses:
                if address.manual or record.fingerprint in outbox_peers:
                    self.dialer.request(
                        self._target_for(
                            record.fingerprint, address.host, address.port, address.manual
                        )
                    )
        for fp, address in await self._store.run(Store.dial_candidates):
            if fp is None and address.manual:
                self.dialer.request(DialTarget(address.host, address.port, None, "manual"))
        if self.config.discovery:
            await self._start_discovery()

    async def _protocol_from_settings(self) -> ProtocolConfig:
        settings = await self._store.run(Store.load_settings)
        base = ProtocolConfig()
        suites = tuple(dict.fromkeys((settings.preferred_suite, *base.suites)))
        try:
            return ProtocolConfig(
                suites=tuple(s for s in suites if s in base.suites),
                max_messages_per_key=settings.max_messages_per_key,
                key_rotation_interval=settings.key_rotation_interval,
            )
        except ConfigError as exc:
            log.warning(
                "profile settings give an invalid session policy (%s); using the defaults", exc
            )
            return base

    async def _start_discovery(self) -> None:
        from p2pmsg.node.net.discovery import Discovery

        self.discovery = Discovery(
            fingerprint_hex=self._fingerprint,
            name=self._name,
            port=self.listener.port,
            interfaces=self.config.interfaces,
            on_event=self.on_discovery_event,
        )
        try:
            await self.discovery.start()
        except DiscoveryError:
            self.discovery = None
            raise

    async def stop(self) -> None:
        self._running = False
        if self.discovery is not None:
            with contextlib.suppress(Exception):
                await self.discovery.stop()
            self.discovery = None
        await self.dialer.stop()
        await self.listener.stop()
        for key in list(self._refusals):  # repeats still being counted are logged now
            self._log_refusals(key)
        for session in list(self._sessions):
            session.close("shutdown")
        if self._session_tasks:
            await asyncio.wait(list(self._session_tasks), timeout=SHUTDOWN_GRACE)
        for task in list(self._session_tasks):
            task.cancel()
        if self._discovery_task is not None:
            self._discovery_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._discovery_task

    # --- making sessions -----------------------------------------------------------------

    def _new_session(
        self,
        role: Role,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
        admission: Admission | None,
        policy: HandshakePolicy | None,
    ) -> Session:
        conn = PeerConnection(
            role,
            self.identity,
            self._name,
            self._rng,
            self._clock,
            config=self.protocol_config,
            policy=self._refusing(policy),
        )
        session = Session(
            conn,
            reader,
            writer,
            self,
            remote_address=address,
            admission=admission,
            wall_clock=self._clock,
        )
        self._sessions.add(session)
        task = asyncio.create_task(session.run(), name=f"p2pmsg-session-{address}")
        self._session_tasks.add(task)
        task.add_done_callback(self._session_tasks.discard)
        return session

    def connected_peers(self) -> set[str]:
        """Fingerprints with an authenticated session now."""
        return {session.peer for session in self._sessions if session.peer}

    def _refusing(self, policy: HandshakePolicy | None) -> HandshakePolicy:
        """`policy`, after refusing keys the user blocked or retired *inside* the
        handshake: the other side sees a failed handshake (and backs off, as after
        any failure), not a session that closes the moment it opens and is redialled
        at once."""

        def refuse(peer: PeerInfo, suites: tuple[str, ...]) -> str | None:
            if self._refused(peer.fingerprint.hex()):
                return "this key is not accepted here"
            return policy(peer, suites) if policy is not None else None

        return refuse

    def _on_accept(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
        admission: Admission,
    ) -> None:
        self.security.record("conn_open", addr=address, detail={"direction": "in"})
        holder: list[Session] = []
        session = self._new_session(
            "responder", reader, writer, address, admission, self._inbound_policy(address, holder)
        )
        holder.append(session)

    def _inbound_policy(self, address: str, holder: list[Session]) -> HandshakePolicy:
        """Refuse a caller that claims, by name, an identity advertised from its own address.

        We cannot know who should be calling, but if the host at `address` advertises
        fingerprint X under the name N, and a connection from there proves a different
        key while calling itself N, it is an impostor (the honest peer's own connection
        proves X). Someone else sharing the host under another name passes.
        """

        def policy(peer: PeerInfo, suites: tuple[str, ...]) -> str | None:
            proved = peer.fingerprint.hex()
            for fp in self.directory.advertised_at(address):
                advert = self.directory.advert(fp)
                if (
                    advert is not None
                    and fp != proved
                    and name_key(advert.name) == name_key(peer.name)
                ):
                    if holder:
                        holder[0].expectation = Expectation(fp, "advert", mismatch=proved)
                    return "the peer did not prove the fingerprint advertised for its name"
            return None

        return policy

    def _contact_address(self, host: str) -> bool:
        now = self._clock()
        for fingerprint in self._met_at.get(host, ()):
            record = self.directory.record(fingerprint)
            if record is not None and is_contact(record, now):
                return True
        return False

    def _met(self, host: str, fingerprint: str) -> None:
        keys = self._met_at.setdefault(host, set())
        self._met_at.move_to_end(host)
        if fingerprint not in keys and len(keys) >= MAX_KEYS_PER_HOST:
            keys.pop()
        keys.add(fingerprint)
        while len(self._met_at) > MAX_MET_HOSTS:
            self._met_at.popitem(last=False)

    def _admit_as(self, session: Session, peer: PeerRecord) -> bool:
        """Charge an authenticated inbound session to the contacts' or the strangers'
        share (limits.py). False: a stranger that came in on a contact's address has
        no stranger's slot left; it is closed, the contact's slots stay free."""
        self._met(session.remote_address, session.peer)
        if is_contact(peer, self._clock()):
            if session.admission is not None:
                session.admission.promote()
            return True
        if session.admission is None or not self.admission.strangers_over_cap():
            return True
        self.security.record(
            "rate_limited",
            peer=session.peer,
            addr=session.remote_address,
            detail={"reason": "stranger_cap"},
        )
        session.close("stranger_cap")
        return False

    def _on_refuse(self, address: str, reason: str) -> None:
        """Log a refused connection: the first of an (address, reason) at once, the
        repeats within REFUSALS_WINDOW as one event with `dropped` (31,800 refusals in
        8 s from one address were 31,800 rows). Past MAX_REFUSAL_KEYS tallies, each
        refusal is logged on its own: nothing is lost, only not aggregated."""
        key = (address, reason)
        tally = self._refusals.get(key)
        if tally is not None:
            self._refusals[key] = tally + 1
            return
        self.security.record("rate_limited", addr=address, detail={"reason": reason})
        if len(self._refusals) < MAX_REFUSAL_KEYS:
            self._refusals[key] = 0
            asyncio.get_running_loop().call_later(REFUSALS_WINDOW, self._log_refusals, key)

    def _log_refusals(self, key: tuple[str, str]) -> None:
        dropped = self._refusals.pop(key, 0)
        if dropped:
            address, reason = key
            detail = {"reason": reason, "dropped": dropped}
            self.security.record("rate_limited", addr=address, detail=detail)

    async def _dial(self, target: DialTarget) -> bool:
        fingerprint, problem = await self._dial_once(target)
        if target.source == "manual":  # the user asked for this address: say how it went
            peer = self.directory.view(fingerprint) if fingerprint else None
            self.bus.publish(AddressDialed(target.host, target.port, peer, problem))
        return problem is None

    async def _dial_once(self, target: DialTarget) -> tuple[str | None, str | None]:
        """One attempt: (the peer's fingerprint, None) once a trusted session is up,
        else (None, what went wrong)."""
        local = (self.config.outbound_address, 0) if self.config.outbound_address else None
        log.debug(
            "dialling %s:%s (%s, expecting %s)",
            target.host,
            target.port,
            target.source,
            (target.expected_fingerprint or "anyone")[:16],
        )
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port, local_addr=local),
                self.config.connect_timeout,
            )
        except TimeoutError:
            log.debug("dial %s:%s timed out", target.host, target.port)
            return None, f"no answer within {self.config.connect_timeout:g} s"
        except OSError as exc:
            log.debug("dial %s:%s failed: %r", target.host, target.port, exc)
            # asyncio words it "Connect call failed (host, port)"; the errno says why.
            return None, (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        if not self._running:
            writer.transport.abort()
            return None, "the node is stopping"
        self.security.record(
            "conn_open", addr=target.host, detail={"direction": "out", "port": target.port}
        )
        expectation = target.expectation()
        session = self._new_session(
            "initiator", reader, writer, target.host, None, expectation_policy(expectation)
        )
        session.dial_target = target
        session.expectation = expectation
        waiter: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._dial_waiters[session] = waiter
        try:
            problem = await asyncio.wait_for(
                waiter, self.protocol_config.handshake_timeout + self.config.connect_timeout
            )
        except TimeoutError:
            session.close("handshake timeout")
            return None, "the handshake timed out"
        finally:
            self._dial_waiters.pop(session, None)
        return (session.peer, None) if problem is None else (None, problem)

    def _resolve_dial(self, session: Session, problem: str | None) -> None:
        waiter = self._dial_waiters.get(session)
        if waiter is not None and not waiter.done():
            waiter.set_result(problem)

    # --- what to dial --------------------------------------------------------------------

    def _target_for(self, fingerprint: str, host: str, port: int, manual: bool) -> DialTarget:
        return DialTarget(host, port, fingerprint, "manual" if manual else "address")

    def _wanted(self, target: DialTarget) -> bool:
        if not self._running:
            return False
        fp = target.expected_fingerprint
        if fp is not None and self.directory.session(fp) is not None:
            return False
        wanted_peer = self.config.auto_connect or fp is None or fp in self._want
        if target.source == "advert":
            advert = self.directory.advert(fp) if fp else None
            return (
                advert is not None
                and target.host in advert.addresses
                and target.port == advert.port
                and wanted_peer
                and (fp, target.host, target.port) not in self._refuted
            )
        if target.source == "manual":
            return wanted_peer
        return fp in self._want

    def want_connection(self, fingerprint: str) -> None:
        """Reach this peer now (a message is waiting for it), whatever auto_connect says."""
        self._want.add(fingerprint)
        if self.directory.session(fingerprint) is None:
            self._request_dials(fingerprint, delay=0.0)

    def dial_manual(self, host: str, port: int) -> None:
        record = next(
            (
                r
                for r in self.directory.records()
                if any((a.host, a.port) == (host, port) for a in r.addresses)
            ),
            None,
        )
        self.dialer.request(
            DialTarget(host, port, record.fingerprint if record else None, "manual")
        )

    def _refused(self, fingerprint: str) -> bool:
        """A key the user blocked or retired: never dialled (it would be refused anyway)."""
        record = self.directory.record(fingerprint)
        return record is not None and record.trust in ("blocked", "retired")

    def _request_dials(self, fingerprint: str, delay: float) -> None:
        if self._refused(fingerprint):
            return
        advert = self.directory.advert(fingerprint)
        if advert is not None:
            for host in advert.addresses:
                self.dialer.request(
                    DialTarget(host, advert.port, fingerprint, "advert"), delay=delay
                )
        record = self.directory.record(fingerprint)
        if record is not None:
            for address in record.addresses:
                self.dialer.request(
                    self._target_for(fingerprint, address.host, address.port, address.manual),
                    delay=delay,
                )

    # --- discovery -----------------------------------------------------------------------

    def on_discovery_event(self, event: DiscoveryEvent) -> None:
        """Discovery's callback (also how tests inject adverts). Never blocks."""
        try:
            self._discovery_queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("discovery events are arriving faster than they are handled")

    async def _discovery_loop(self) -> None:
        while True:
            event = await self._discovery_queue.get()
            try:
                await self._handle_discovery(event)
            except Exception:
                log.exception("handling a discovery event failed")

    async def _handle_discovery(self, event: DiscoveryEvent) -> None:
        fp = event.fingerprint_hex
        if fp == self._fingerprint:
            return  # our own record (or someone advertising our identity: the handshake decides)
        if not isinstance(event, PeerAdvertised):
            if self.directory.withdrawn(fp):
                self._refuted = {r for r in self._refuted if r[0] != fp}
                self.security.record("peer_lost", peer=fp)
                self.bus.publish(PeerLost(fp))
            return
        is_new = self.directory.advertised(event)
        now = self._clock()
        record: PeerRecord | None = None
        # A key we have a row for learns its advertised addresses; a key never met
        # stays an in-memory advert (bounded and withdrawn by discovery): strangers'
        # adverts make no rows. The row comes when the user acts on it (node.py).
        for host in event.addresses if self.directory.stored(fp) else ():
            try:
                record = await self._store.run(
                    Store.upsert_discovered, fp, event.name, host, event.port, now
                )
            except (P2PMsgError, ValueError) as exc:
                log.debug("not remembering advertised address %s: %s", host, exc)
        if record is not None:
            self.directory.update_record(record)
        view = self.directory.view(fp)
        if is_new:
            self.security.record(
                "peer_discovered", peer=fp, addr=event.addresses[0], detail={"port": event.port}
            )
        if view is not None:
            self.bus.publish(PeerDiscovered(view) if is_new else PeerUpdated(view))
        # The lower fingerprint dials at once; the other waits a moment for that call.
        if self._refused(fp):
            return
        delay = 0.0 if (self._fingerprint < fp or fp in self._want) else self.config.dial_grace
        for host in event.addresses:
            self.dialer.request(DialTarget(host, event.port, fp, "advert"), delay=delay)
            if not is_new:
                self.dialer.reset(host, event.port)  # re-announced: worth trying again now

    # --- SessionHandler ------------------------------------------------------------------

    def read_allowed(self, session: Session) -> Any:
        return self.delivery.inbound_room(session.peer)

    async def authenticated(self, session: Session) -> bool:
        peer = session.conn.peer
        assert peer is not None
        target = session.dial_target
        address = (target.host, target.port) if target is not None else None
        try:
            outcome = await self._store.run(
                Store.record_handshake, peer.public_key, peer.name, self._clock(), address
            )
        except (P2PMsgError, ValueError) as exc:
            log.warning("cannot record the handshake with %s: %s", session.peer[:16], exc)
            self._resolve_dial(session, f"the handshake could not be stored: {exc}")
            return False
        self.security.record(
            "handshake_ok",
            peer=session.peer,
            addr=session.remote_address,
            detail={
                "initiator": session.initiator,
                "suites": list(session.conn.negotiated_suites),
                "trust": outcome.verdict,
            },
        )
        self.directory.update_record(outcome.peer)
        if outcome.verdict == "refused":
            # A blocked or retired key: the user said no. It costs that connection only.
            log.info("refusing %s key %s", outcome.peer.trust, session.peer[:16])
            session.close(f"key {outcome.peer.trust}")
            self._resolve_dial(session, f"the key there is one you {outcome.peer.trust}")
            return False
        if not self._admit_as(session, outcome.peer):
            return False
        clash = outcome.clash_with
        if clash is not None:
            self.security.record(
                "identity_changed",
                peer=session.peer,
                addr=session.remote_address,
                detail={"reason": "name_clash", "claims": clash.fingerprint},
            )
            self.bus.publish(
                NameClashed(
                    session.peer,
                    outcome.peer.claimed_name,
                    clash.fingerprint,
                    clash.name,
                    clash_detail(outcome.peer, clash),
                )
            )
        if not session.is_open:
            self._resolve_dial(session, "the connection closed during the handshake")
            return False
        loser = self.directory.add_session(session)
        log.debug(
            "authenticated %s at %s (initiator=%s); duplicate closed: %s",
            session.peer[:16],
            session.remote_address,
            session.initiator,
            "the new one" if loser is session else ("the old one" if loser else "none"),
        )
        if loser is session:
            session.close("duplicate connection")
            self._resolve_dial(session, None)  # the peer is connected, just not by this one
            return False
        if loser is not None:
            loser.close("duplicate connection")
        if outcome.peer.sendable:
            self.delivery.session_ready(session)
            self.files.session_ready(session)
            self.groups.session_ready(session)
        view = self.directory.view(session.peer)
        status = session.status_view(outcome.peer.verified)
        if view is not None and status is not None:
            self.bus.publish(PeerConnected(view, status))
        self._resolve_dial(session, None)
        return True

    def received(self, session: Session, messages: list[UserMessage]) -> None:
        chats: list[Chat] = []
        group: list[GroupMessage] = []
        for message in messages:
            kind = type(message)
            if kind is Chat:
                chats.append(message)  # type: ignore[arg-type]
            elif kind is Receipt:
                self.delivery.receipt_received(session.peer, message)  # type: ignore[arg-type]
            elif kind in PAIR_MESSAGES:
                self.pairing.received(session, message)  # type: ignore[arg-type]
            elif kind in GROUP_MESSAGES:
                group.append(message)  # type: ignore[arg-type]
            else:
                self.file_message(session, message)
        if chats:
            self.delivery.chats_received(session, chats)
        if group:
            self.groups.received(session, group)

    def file_message(self, session: Session, message: UserMessage) -> None:
        """file_* messages belong to the transfer engine (p2pmsg.node.transfers)."""
        self.files.messages_received(session, [message])

    def protocol_event(self, session: Session, event: Event) -> None:
        peer = session.peer or None
        if type(event) is SecurityEventRaised:
            self.security.record(
                event.event, peer=peer, addr=session.remote_address, detail=dict(event.detail)
            )
            return
        what = None
        if type(event) is KeysRotated:
            what = "rotated"
            self.security.record(
                "key_rotated",
                peer=peer,
                addr=session.remote_address,
                detail={
                    "direction": event.direction,
                    "epoch": event.epoch,
                    "suite": event.suite,
                    "reason": event.reason,
                },
            )
        elif type(event) is CipherChanged:
            what = "cipher_changed"
            self.security.record(
                "cipher_changed",
                peer=peer,
                addr=session.remote_address,
                detail={
                    "direction": event.direction,
                    "suite": event.suite,
                    "previous": event.previous,
                },
            )
        elif type(event) is RekeyCompleted:
            what = "rekeyed"
        if what is not None and session.trusted and self.bus.has_subscribers:
            record = self.directory.record(session.peer)
            status = session.status_view(bool(record and record.verified))
            if status is not None:
                self.bus.publish(SessionChanged(status, what))  # type: ignore[arg-type]

    def closed(self, session: Session, reason: str, detail: str) -> None:
        log.debug(
            "session with %s (%s) closed: %s %s",
            session.peer[:16] or "?",
            session.remote_address,
            reason,
            detail,
        )
        self._sessions.discard(session)
        was_current = self.directory.remove_session(session)
        self.delivery.session_closed(session)
        self.files.session_closed(session)
        self.pairing.session_closed(session)
        self.groups.session_closed(session)
        self.security.record(
            "conn_close",
            peer=session.peer or None,
            addr=session.remote_address,
            nbytes=session.bytes_in + session.bytes_out,
            detail={"reason": reason},
        )
        expectation = session.expectation
        if expectation is not None and expectation.mismatch is not None:
            self.security.record(
                "identity_changed",
                peer=expectation.mismatch,
                addr=session.remote_address,
                detail={
                    "reason": "advertised_fingerprint_not_proven",
                    "claimed": expectation.fingerprint,
                },
            )
            target = session.dial_target
            if target is not None and expectation.fingerprint is not None:
                self._refuted.add((expectation.fingerprint, target.host, target.port))
        self._resolve_dial(session, f"closed: {reason}")
        if was_current:
            self.bus.publish(PeerDisconnected(session.peer, reason))
            if self._running:
                self._request_dials(
                    session.peer, delay=RECONNECT_DELAY + self._uniform(0.0, RECONNECT_DELAY)
                )

    # --- trust decisions -----------------------------------------------------------------

    async def trust_changed(self) -> None:
        """Make the live node agree with the store's trust decisions: the user's, made
        here or by another process (`p2pmsg trust/rename/block` while this node runs).

        A blocked or retired key loses its session at once; a key that became
        sendable (kept apart under a name, unblocked, or the contact's new key) gets
        its held messages; every changed peer is published.
        """
        before = {r.fingerprint: r for r in self.directory.records()}
        records = await self._store.run(Store.list_peers)
        self.directory.set_records(records)
        for record in records:
            old = before.get(record.fingerprint)
            if old == record:
                continue
            view = self.directory.view(record.fingerprint)
            if view is not None:
                self.bus.publish(PeerUpdated(view))
            session = self.directory.session(record.fingerprint)
            if session is not None and record.trust in ("blocked", "retired"):
                session.close(f"key {record.trust}")
            elif session is not None and record.sendable and (old is None or not old.sendable):
                self.delivery.session_ready(session)
                self.files.session_ready(session)
                self.groups.session_ready(session)

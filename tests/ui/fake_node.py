"""An in-memory NodeAPI for UI tests: no sockets, no disk, deterministic.

It behaves like the contract says (events on `subscribe()`, errors from
`p2pmsg.errors`) so the UI can be tested one layer at a time. Test helpers
(`receive`, `raise_alert`, `impostor`, ...) play the remote side.
The two-real-nodes test covers the real thing end to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import replace
from typing import Any

from p2pmsg.errors import ConfigError, P2PMsgError, UnknownAlertError
from p2pmsg.node.api import (
    AlertCounts,
    AlertRaised,
    AlertState,
    AlertStateChanged,
    AlertView,
    DirectionStatus,
    Evidence,
    GroupChanged,
    GroupMemberView,
    GroupMessageReceived,
    GroupMessageView,
    GroupReceiptsChanged,
    GroupReceiptView,
    GroupView,
    MessageReceived,
    MessageStatusChanged,
    MessageView,
    MonitorChanged,
    MonitorStatus,
    NameClashed,
    NodeEvent,
    PairingCode,
    PairingFinished,
    PairingOutcome,
    PeerConnected,
    PeerDiscovered,
    PeerUpdated,
    PeerView,
    SecurityEventLogged,
    SessionChanged,
    SessionStatusView,
    TransferUpdated,
    TransferView,
)

T0 = 1_763_800_000.0  # Sat 22 Nov 2025, 08:26:40 UTC


def fp_for(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def short(fp: str) -> str:
    return " ".join(fp[i : i + 4] for i in range(0, 16, 4))


class FakeNode:
    def __init__(
        self, name: str = "alice", *, clock: Callable[[], float] = lambda: T0, port: int = 47001
    ) -> None:
        self._name = name
        self._fp = fp_for(name)
        self._port = port
        self.clock = clock
        self.started = False
        self.stopped = False
        self.calls: list[tuple[Any, ...]] = []
        self.peer_views: dict[str, PeerView] = {}
        self.messages: dict[str, list[MessageView]] = {}
        self.transfer_views: dict[str, TransferView] = {}
        self.sessions: dict[str, SessionStatusView] = {}
        self.ttls: dict[str, float | None] = {}  # each conversation's stored timer
        self.alert_views: list[AlertView] = []
        self.event_records: list[dict[str, Any]] = []
        self.status = MonitorStatus(mode="models", recent_scores=(0.1, 0.2, 0.15, 0.7, 0.3))
        self.settings: dict[str, Any] = {
            "key_rotation_interval": 3600.0,
            "max_messages_per_key": 1000,
            "preferred_suite": "chacha20-poly1305",
            "downloads_dir": "/home/alice/Downloads",
            "default_disappearing_ttl": None,
        }
        self._queues: list[asyncio.Queue[NodeEvent]] = []
        self._seq = 0
        self.group_views: dict[str, GroupView] = {}
        self.group_posts: dict[str, list[GroupMessageView]] = {}
        self.group_ttls: dict[str, float | None] = {}  # each group's stored timer

    # --- identity ---------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return self._fp

    @property
    def display_name(self) -> str:
        return self._name

    @property
    def listen_port(self) -> int:
        return self._port

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def subscribe(self) -> AsyncIterator[NodeEvent]:
        queue: asyncio.Queue[NodeEvent] = asyncio.Queue()
        self._queues.append(queue)

        async def stream() -> AsyncIterator[NodeEvent]:
            while True:
                yield await queue.get()

        return stream()

    def emit(self, event: NodeEvent) -> None:
        for queue in self._queues:
            queue.put_nowait(event)

    def _id(self) -> str:
        self._seq += 1
        return f"{self._seq:032x}"

    # --- test helpers (the remote side) -------------------------------------------------
    def make_peer(
        self,
        name: str,
        *,
        online: bool = True,
        verified: bool = False,
        session: bool = True,
        emit: bool = False,
    ) -> PeerView:
        fp = fp_for(name)
        peer = PeerView(
            fingerprint=fp,
            name=name,
            short_fingerprint=short(fp),
            online=online,
            verified=verified,
            unread=0,
            state="pinned",
            claimed_name=name,
            addresses=("127.0.0.1:47002",),
            first_seen=self.clock() - 86400,
            last_seen=self.clock(),
        )
        self.peer_views[fp] = peer
        self.messages.setdefault(fp, [])
        if session:
            self.sessions[fp] = self._session(fp, verified)
        if emit:
            self.emit(PeerDiscovered(peer))
        return peer

    def _session(self, fp: str, verified: bool) -> SessionStatusView:
        now = self.clock()
        send = DirectionStatus("chacha20-poly1305", 3, 412, 1000, now - 1200, now + 2400)
        recv = DirectionStatus("aes-256-gcm", 2, 210, 1000, now - 2900, now + 700)
        return SessionStatusView(
            peer=fp,
            send=send,
            recv=recv,
            negotiated_suites=("aes-256-gcm", "chacha20-poly1305", "twofish-cbc-hmac-sha256"),
            session_started=now - 3720,
            last_key_agreement=now - 720,
            handshake_hash="3f2a91bc0d4e77aa" * 4,
            verified=verified,
        )

    def history(
        self,
        peer: str,
        text: str,
        *,
        direction: str = "in",
        created: float,
        status: str = "read",
        ttl: float | None = None,
    ) -> MessageView:
        message = MessageView(
            id=self._id(),
            peer=peer,
            direction=direction,  # type: ignore[arg-type]
            text=text,
            created=created,
            status=status,  # type: ignore[arg-type]
            ttl=ttl,
        )
        self.messages.setdefault(peer, []).append(message)
        return message

    def past_transfer(
        self, peer: str, name: str, *, created: float, state: str = "completed"
    ) -> TransferView:
        """A finished transfer already in the history (no event)."""
        transfer = TransferView(
            id=self._id(),
            peer=peer,
            direction="in",
            name=name,
            size=4096,
            sha256="ef" * 32,
            state=state,
            bytes_done=4096,  # type: ignore[arg-type]
            path=f"/home/alice/Downloads/{name}",
            created=created,
        )
        self.transfer_views[transfer.id] = transfer
        return transfer

    def receive(self, peer: str, text: str, *, ttl: float | None = None) -> MessageView:
        message = MessageView(
            id=self._id(),
            peer=peer,
            direction="in",
            text=text,
            created=self.clock(),
            status="delivered",
            ttl=ttl,
        )
        self.messages.setdefault(peer, []).append(message)
        self.emit(MessageReceived(message))
        return message

    def offer_file(
        self, peer: str, name: str, size: int = 2_500_000, files: int = 0
    ) -> TransferView:
        """An incoming offer; `files` > 0: a folder offer of that many files."""
        transfer = TransferView(
            id=self._id(),
            peer=peer,
            direction="in",
            name=name,
            size=size,
            sha256="",  # a real offer has no digest: it comes at the end (protocol 2)
            state="offered",
            bytes_done=0,
            created=self.clock(),
            files=files,
        )
        self.transfer_views[transfer.id] = transfer
        self.emit(TransferUpdated(transfer))
        return transfer

    def raise_alert(
        self,
        kind: str,
        severity: str,
        peer: str | None,
        message: str,
        *,
        ts: float | None = None,
        evidence: tuple[Evidence, ...] = (),
        addr: str | None = "127.0.0.1",
    ) -> AlertView:
        alert = AlertView(
            ts=self.clock() if ts is None else ts,
            kind=kind,
            severity=severity,
            peer=peer,  # type: ignore[arg-type]
            addr=addr,
            source="rule:test",
            score=0.93,
            message=message,
            id=len(self.alert_views) + 1,
            evidence=evidence,
        )
        self.alert_views.append(alert)
        self.emit(AlertRaised(alert))
        return alert

    def log_event(self, event: str, peer: str | None = None, **detail: Any) -> None:
        record = {
            "ts": self.clock(),
            "event": event,
            "peer": peer,
            "addr": "127.0.0.1",
            "bytes": 0,
            "detail": detail,
        }
        self.event_records.append(record)
        self.emit(SecurityEventLogged(record))

    def impostor(
        self, contact: str, claimed: str | None = None, key_name: str = "impostor"
    ) -> PeerView:
        """A new key claiming the contact's name shows up: a flagged entry of its own, and
        the contact untouched (what the real node does; see Store.record_handshake)."""
        known = self.peer_views[contact]
        fp = fp_for(key_name)
        name = known.claimed_name if claimed is None else claimed
        view = PeerView(
            fingerprint=fp,
            name=name,
            short_fingerprint=short(fp),
            online=True,
            verified=False,
            unread=0,
            state="flagged",
            claimed_name=name,
            clash_with=contact,
            clash_with_name=known.name,
            first_seen=self.clock(),
            last_seen=self.clock(),
        )
        self.peer_views[fp] = view
        self.messages.setdefault(fp, [])
        self.emit(PeerDiscovered(view))
        self.emit(
            NameClashed(
                fingerprint=fp,
                claimed_name=name,
                contact=contact,
                contact_name=known.name,
                detail=f"a new key claims to be {name!r}",
            )
        )
        return view

    def connect(self, peer: str) -> None:
        self.sessions[peer] = self._session(peer, self.peer_views[peer].verified)
        self.peer_views[peer] = replace(self.peer_views[peer], online=True)
        self.emit(PeerConnected(self.peer_views[peer], self.sessions[peer]))

    def set_monitor(self, status: MonitorStatus) -> None:
        self.status = status
        self.emit(MonitorChanged(status))

    # --- groups (test helpers: the other members' side) -----------------------------------
    def make_group(
        self, name: str, members: Sequence[str], *, admin: bool = True, emit: bool = False
    ) -> GroupView:
        """A group of this node and `members` (peer names; a name not made a peer is a
        member this node never met). `admin`: this node created it."""
        gid = hashlib.sha256(b"group:" + name.encode()).hexdigest()[:32]
        me = GroupMemberView(self._fp, self._name, admin=admin, me=True)
        others = tuple(GroupMemberView(fp_for(m), m, admin=False, me=False) for m in members)
        view = GroupView(gid, name, tuple(sorted((me, *others), key=lambda m: m.name)), True, admin)
        self.group_views[gid] = view
        self.group_posts.setdefault(gid, [])
        if emit:
            self.emit(GroupChanged(view))
        return view

    def group_history(
        self,
        group: str,
        author: str,
        text: str,
        *,
        created: float,
        delivered: int = 0,
    ) -> GroupMessageView:
        """A post already held (no event); `author` a member's name, or this node's."""
        view = self.group_views[group]
        mine = author == self._name
        post = GroupMessageView(
            id=f"{fp_for(author)}:{len(self.group_posts[group]) + 1}",
            group=group,
            group_name=view.name,
            author=fp_for(author),
            author_name=author,
            direction="out" if mine else "in",
            text=text,
            created=created,
            delivered=delivered if mine else 0,
            recipients=len(view.members) - 1 if mine else 0,
        )
        self.group_posts[group].append(post)
        return post

    def group_receive(
        self, group: str, author: str, text: str, *, ttl: int | None = None
    ) -> GroupMessageView:
        post = self.group_history(group, author, text, created=self.clock())
        if ttl is not None:
            post = replace(post, ttl=ttl)
            self.group_posts[group][-1] = post
        self.emit(GroupMessageReceived(group, post))
        return post

    def group_deliver(self, group: str, delivered: int, read: int = 0) -> None:
        """Members' summaries acknowledged our posts: the first `delivered` other members
        hold them, the first `read` have read them (`GroupReceiptsChanged`, as the node)."""
        before = self.group_posts[group]
        self.group_posts[group] = [
            replace(p, delivered=min(delivered, p.recipients), read=min(read, p.recipients))
            if p.direction == "out"
            else p
            for p in before
        ]
        now = self.group_posts[group]
        changed = tuple(p for p, was in zip(now, before, strict=True) if p != was)
        if changed:
            self.emit(GroupReceiptsChanged(group, changed))

    def _group(self, group: str) -> GroupView:
        hits = [g for g in self.group_views.values() if group in (g.id, g.name)]
        if len(hits) != 1:
            raise ConfigError(f"no group named {group!r}")
        return hits[0]

    def _set_group(self, view: GroupView) -> GroupView:
        self.group_views[view.id] = view
        self.emit(GroupChanged(view))
        return view

    # --- NodeAPI --------------------------------------------------------------------------
    def _peer(self, peer: str) -> PeerView:
        try:
            return self.peer_views[peer]
        except KeyError:
            raise ConfigError(f"unknown peer {peer[:16]}") from None

    async def peers(self) -> list[PeerView]:
        return list(self.peer_views.values())

    async def resolve_peer(self, query: str) -> PeerView:
        hits = [
            p
            for p in self.peer_views.values()
            if p.name == query or p.fingerprint.startswith(query)
        ]
        if len(hits) != 1:
            raise ConfigError(f"peer {query!r} not found or ambiguous")
        return hits[0]

    async def conversation(self, peer: str, limit: int = 200) -> list[MessageView]:
        return self.messages.get(peer, [])[-limit:]

    async def send_text(self, peer: str, text: str, ttl: float | None = None) -> MessageView:
        self.calls.append(("send_text", peer, text, ttl))
        view = self._peer(peer)
        if not view.sendable:
            raise P2PMsgError(f"sending blocked: the key is {view.state}")
        message = MessageView(
            id=self._id(),
            peer=peer,
            direction="out",
            text=text,
            created=self.clock(),
            status="sent",
            ttl=ttl,
        )
        self.messages[peer].append(message)
        return message

    def deliver(self, peer: str, status: str = "delivered") -> None:
        ids = tuple(m.id for m in self.messages[peer] if m.direction == "out")
        self.emit(MessageStatusChanged(peer=peer, ids=ids, status=status))  # type: ignore[arg-type]

    async def wait_delivered(self, message_id: str, timeout: float) -> str:  # type: ignore[override]
        return "delivered"

    async def mark_read(self, peer: str) -> None:
        self.calls.append(("mark_read", peer))
        if peer in self.peer_views:
            self.peer_views[peer] = replace(self.peer_views[peer], unread=0)

    async def set_conversation_ttl(self, peer: str, ttl: float | None) -> None:
        self.calls.append(("set_conversation_ttl", peer, ttl))
        self._peer(peer)
        if ttl is not None and not ttl > 0:  # the node's rule (math.inf: explicitly off)
            raise ConfigError("a disappearing timer must be positive")
        self.ttls[peer] = ttl

    async def conversation_ttl(self, peer: str) -> float | None:
        self._peer(peer)
        return self.ttls.get(peer)

    async def session_status(self, peer: str) -> SessionStatusView | None:
        return self.sessions.get(peer)

    async def set_suite(self, peer: str, suite: str) -> None:
        self.calls.append(("set_suite", peer, suite))
        session = self.sessions[peer]
        send = replace(
            session.send,
            suite=suite,
            epoch=session.send.epoch + 1,
            messages_under_key=0,
            last_rotation=self.clock(),
        )
        self.sessions[peer] = replace(session, send=send)
        self.emit(SessionChanged(self.sessions[peer], "cipher_changed"))

    async def rotate(self, peer: str) -> None:
        self.calls.append(("rotate", peer))
        session = self.sessions[peer]
        send = replace(
            session.send,
            epoch=session.send.epoch + 1,
            messages_under_key=0,
            last_rotation=self.clock(),
            next_rotation=self.clock() + 3600,
        )
        self.sessions[peer] = replace(session, send=send)
        self.emit(SessionChanged(self.sessions[peer], "rotated"))

    async def rekey(self, peer: str) -> None:
        self.calls.append(("rekey", peer))
        session = replace(self.sessions[peer], last_key_agreement=self.clock())
        self.sessions[peer] = session
        self.emit(SessionChanged(session, "rekeyed"))

    async def safety_number(self, peer: str) -> str:
        pair = "".join(sorted((self._fp, peer)))
        digits = "".join(str(b % 10) for b in hashlib.sha512(pair.encode()).digest())
        return digits[:60]

    async def set_verified(self, peer: str, verified: bool) -> None:
        self.calls.append(("set_verified", peer, verified))
        self.peer_views[peer] = replace(self.peer_views[peer], verified=verified)
        if peer in self.sessions:
            self.sessions[peer] = replace(self.sessions[peer], verified=verified)
        self.emit(PeerUpdated(self.peer_views[peer]))

    # --- trust decisions (the store's rules, in miniature) ----------------------------------
    def _update(self, peer: str, **changes: Any) -> PeerView:
        view = replace(self._peer(peer), **changes)
        self.peer_views[peer] = view
        self.emit(PeerUpdated(view))
        return view

    def _check_name(self, peer: str, name: str) -> None:
        for other in self.peer_views.values():
            if other.fingerprint != peer and other.name.casefold() == name.casefold():
                raise ConfigError(
                    f"{name!r} reads like the name of {other.name}; choose a "
                    "name that tells them apart"
                )

    async def rename_peer(self, peer: str, local_name: str | None) -> PeerView:
        self.calls.append(("rename_peer", peer, local_name))
        view = self._peer(peer)
        if view.state == "flagged" and local_name:
            return await self.keep_apart(peer, local_name)
        if local_name:
            self._check_name(peer, local_name)
        return self._update(peer, local_name=local_name or "", name=local_name or view.claimed_name)

    async def keep_apart(self, peer: str, local_name: str) -> PeerView:
        self.calls.append(("keep_apart", peer, local_name))
        if self._peer(peer).state != "flagged":
            raise ConfigError("this key is not flagged")
        if not local_name.strip():
            raise ConfigError("give this contact a name of its own")
        self._check_name(peer, local_name)
        return self._update(
            peer,
            state="pinned",
            local_name=local_name,
            name=local_name,
            clash_with=None,
            clash_with_name="",
        )

    async def change_key(self, contact: str, new_key: str) -> PeerView:
        self.calls.append(("change_key", contact, new_key))
        old = self._peer(contact)
        self._peer(new_key)  # must exist, as in the node
        if old.state != "pinned":
            raise ConfigError(f"{old.name} is not a contact whose key can change")
        self.messages[new_key] = self.messages.pop(contact, []) + self.messages.get(new_key, [])
        self._update(contact, state="retired", successor=new_key)
        return self._update(
            new_key,
            state="pinned",
            verified=False,
            name=old.name,
            local_name=old.local_name,
            clash_with=None,
            clash_with_name="",
        )

    async def block_peer(self, peer: str) -> PeerView:
        self.calls.append(("block_peer", peer))
        return self._update(peer, state="blocked")

    async def unblock_peer(self, peer: str) -> PeerView:
        self.calls.append(("unblock_peer", peer))
        view = self._peer(peer)
        if view.state != "blocked":
            raise ConfigError("this key is not blocked")
        return self._update(peer, state="flagged" if view.clash_with else "pinned")

    # --- pairing: the other side answers with `pairing_answer` -----------------------------
    pairing_answer: str = "123-456"  # the code "they" show; typing anything else is wrong

    async def pairing_code(self, peer: str) -> PairingCode:
        self.calls.append(("pairing_code", peer))
        return PairingCode(peer=peer, code="654-321", expires_at=self.clock() + 120)

    async def wait_pairing(self, peer: str, timeout: float) -> PairingOutcome:
        await asyncio.sleep(0)
        return await self._paired(peer, self.pairing_shown_ok)

    pairing_shown_ok: bool = True  # whether "they" type our shown code right

    async def enter_pairing_code(self, peer: str, code: str, timeout: float) -> PairingOutcome:
        self.calls.append(("enter_pairing_code", peer, code))
        digits = "".join(ch for ch in code if ch.isdigit())
        return await self._paired(peer, digits == self.pairing_answer.replace("-", ""))

    async def _paired(self, peer: str, ok: bool) -> PairingOutcome:
        if ok:
            await self.set_verified(peer, True)
        outcome = PairingOutcome(peer=peer, ok=ok, reason="verified" if ok else "wrong_code")
        self.emit(PairingFinished(peer, ok, outcome.reason))
        return outcome

    async def add_peer(self, host: str, port: int) -> None:
        self.calls.append(("add_peer", host, port))

    async def send_file(self, peer: str, path: str) -> TransferView:
        self.calls.append(("send_file", peer, path))
        if not path.startswith("/"):
            raise ConfigError(f"no such file: {path}")
        transfer = TransferView(
            id=self._id(),
            peer=peer,
            direction="out",
            name=path.rsplit("/", 1)[-1],
            size=1000,
            sha256="",
            state="offered",
            bytes_done=0,
            path=path,
            created=self.clock(),
        )
        self.transfer_views[transfer.id] = transfer
        return transfer

    async def send_files(self, peer: str, paths: Sequence[str]) -> TransferView:
        self.calls.append(("send_files", peer, tuple(paths)))
        transfer = TransferView(
            id=self._id(),
            peer=peer,
            direction="out",
            name="files",
            size=1000 * len(paths),
            sha256="",
            state="offered",
            bytes_done=0,
            created=self.clock(),
            files=len(paths),
        )
        self.transfer_views[transfer.id] = transfer
        return transfer

    async def bundle_files(self, bundle_id: str) -> list[TransferView]:
        return [t for t in self.transfer_views.values() if t.bundle_id == bundle_id]

    async def accept_file(self, transfer_id: str) -> None:
        self.calls.append(("accept_file", transfer_id))
        transfer = self.transfer_views[transfer_id]
        for state, done in (("transferring", transfer.size // 2), ("completed", transfer.size)):
            transfer = replace(
                transfer,
                state=state,
                bytes_done=done,
                rate_bps=1_048_576.0,  # type: ignore[arg-type]
                path=f"/home/alice/Downloads/{transfer.name}" if state == "completed" else None,
            )
            self.transfer_views[transfer_id] = transfer
            self.emit(TransferUpdated(transfer))

    async def decline_file(self, transfer_id: str) -> None:
        self.calls.append(("decline_file", transfer_id))
        transfer = replace(self.transfer_views[transfer_id], state="declined")
        self.transfer_views[transfer_id] = transfer
        self.emit(TransferUpdated(transfer))

    async def transfers(self, peer: str | None = None) -> list[TransferView]:
        return [t for t in self.transfer_views.values() if peer is None or t.peer == peer]

    async def alerts(
        self, limit: int = 100, states: Collection[AlertState] | None = None
    ) -> list[AlertView]:
        shown = [a for a in self.alert_views if states is None or a.state in states]
        return shown[-limit:]

    async def alert_counts(self) -> AlertCounts:
        states = [a.state for a in self.alert_views]
        return AlertCounts(
            states.count("unread"),
            states.count("acknowledged"),
            states.count("dismissed"),
            states.count("false_alarm"),
        )

    async def acknowledge_alerts(self, ids: Sequence[int] | None = None) -> list[AlertView]:
        return await self._move(ids, "acknowledged", ("unread",))

    async def dismiss_alerts(self, ids: Sequence[int]) -> list[AlertView]:
        return await self._move(ids, "dismissed", ("unread", "acknowledged"))

    async def mark_false_alarms(self, ids: Sequence[int]) -> list[AlertView]:
        return await self._move(ids, "false_alarm", ("unread", "acknowledged", "dismissed"))

    async def _move(
        self, ids: Sequence[int] | None, state: AlertState, moves_from: tuple[str, ...]
    ) -> list[AlertView]:
        """As the node does: forward only, all or nothing, then `AlertStateChanged`."""
        self.calls.append(("alert_state", state, None if ids is None else tuple(ids)))
        known = {a.id for a in self.alert_views}
        missing = [i for i in ids or () if i not in known]
        if missing:
            raise UnknownAlertError(f"no alert with id {missing[0]}")
        changed = []
        for index, alert in enumerate(self.alert_views):
            if (ids is None or alert.id in ids) and alert.state in moves_from:
                alert = replace(alert, state=state, state_at=self.clock())
                self.alert_views[index] = alert
                changed.append(alert)
        if changed:
            self.emit(AlertStateChanged(tuple(changed), await self.alert_counts()))
        return changed

    async def security_events(self, limit: int = 500) -> list[dict[str, Any]]:
        return list(reversed(self.event_records[-limit:]))

    async def monitor_status(self) -> MonitorStatus:
        return self.status

    async def get_settings(self) -> dict[str, Any]:
        return dict(self.settings)

    async def update_settings(self, **values: Any) -> None:
        self.calls.append(("update_settings", values))
        self.settings.update(values)

    # --- groups --------------------------------------------------------------------------
    async def groups(self) -> list[GroupView]:
        return list(self.group_views.values())

    async def create_group(self, name: str, members: Sequence[str]) -> GroupView:
        self.calls.append(("create_group", name, tuple(members)))
        if not name.strip():
            raise ConfigError("a group needs a name")
        names = [self._peer(fp).name for fp in members]
        view = self.make_group(name, names)
        self.emit(GroupChanged(view))
        return view

    async def add_member(self, group: str, peer: str) -> GroupView:
        self.calls.append(("add_member", group, peer))
        view = self._group(group)
        added = self._peer(peer) if peer in self.peer_views else await self.resolve_peer(peer)
        if any(m.fingerprint == added.fingerprint for m in view.members):
            raise ConfigError(f"{added.name} is a member already")
        member = GroupMemberView(added.fingerprint, added.name, admin=view.admin, me=False)
        return self._set_group(replace(view, members=(*view.members, member)))

    async def remove_member(self, group: str, peer: str) -> GroupView:
        self.calls.append(("remove_member", group, peer))
        view = self._group(group)
        if not view.admin:
            raise ConfigError("only an admin may remove a member")
        kept = tuple(m for m in view.members if m.me or peer not in (m.fingerprint, m.name))
        if len(kept) == len(view.members):
            raise ConfigError(f"{peer!r} is not a member of {view.name!r}")
        return self._set_group(replace(view, members=kept))

    async def leave_group(self, group: str) -> GroupView:
        self.calls.append(("leave_group", group))
        view = self._group(group)
        kept = tuple(m for m in view.members if not m.me)
        return self._set_group(replace(view, members=kept, member=False, admin=False))

    async def rename_group(self, group: str, name: str) -> GroupView:
        self.calls.append(("rename_group", group, name))
        view = self._group(group)
        if not view.admin:
            raise ConfigError("not allowed: only an admin may rename the group")
        return self._set_group(replace(view, name=name))

    async def send_group(self, group: str, text: str, ttl: float | None = None) -> GroupMessageView:
        self.calls.append(("send_group", group, text, ttl))
        view = self._group(group)
        if not view.member:
            raise ConfigError("not a member of this group")
        post = self.group_history(view.id, self._name, text, created=self.clock())
        if ttl is not None:
            post = replace(post, ttl=max(1, math.ceil(ttl)))
            self.group_posts[view.id][-1] = post
        return post

    async def set_group_ttl(self, group: str, ttl: float | None) -> None:
        self.calls.append(("set_group_ttl", group, ttl))
        if ttl is not None and not ttl > 0:  # the node's rule (math.inf: explicitly off)
            raise ConfigError("a disappearing timer must be positive")
        self.group_ttls[self._group(group).id] = ttl

    async def group_ttl(self, group: str) -> float | None:
        return self.group_ttls.get(self._group(group).id)

    async def group_messages(self, group: str, limit: int = 200) -> list[GroupMessageView]:
        """As the node: handing posts out shows them, which starts a disappearing one's
        timer (deadline = now + ttl), once."""
        gid = self._group(group).id
        self.group_posts[gid] = [
            replace(p, deadline=self.clock() + p.ttl)
            if p.ttl is not None and p.deadline is None and p.text is not None
            else p
            for p in self.group_posts[gid]
        ]
        return self.group_posts[gid][-limit:]

    async def wait_group_delivered(
        self, group: str, message_id: str, timeout: float
    ) -> GroupMessageView:
        return next(p for p in self.group_posts[self._group(group).id] if p.id == message_id)

    async def mark_group_read(self, group: str) -> None:
        self.calls.append(("mark_group_read", self._group(group).id))

    async def group_receipts(
        self, group: str, message_id: str | None = None
    ) -> tuple[GroupMessageView, tuple[GroupReceiptView, ...]]:
        view = self._group(group)
        own = [p for p in self.group_posts[view.id] if p.direction == "out"]
        post = own[-1] if message_id is None and own else None
        post = next((p for p in own if p.id == message_id), post)
        if post is None:
            raise ConfigError(f"no post of yours in {view.name!r}")
        others = [m for m in view.members if not m.me]
        return post, tuple(
            GroupReceiptView(m.fingerprint, m.name, i < post.delivered, i < post.read)
            for i, m in enumerate(others)
        )

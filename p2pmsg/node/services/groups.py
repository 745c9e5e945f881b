"""`Groups`: the node's side of group conversations (docs/PROTOCOL.md, "Groups").

It owns one `GroupReplica` (protocol/groups, sans-I/O) per group this profile is
in, rebuilt from the store at start (every item verified again), and does the
I/O around them:

* Authoring (`create`, `add`, `remove`, `leave`, `rename`, `post`): the replica signs the
  item, the store keeps it (store first: it is our outbox), then it goes to every
  current member with a live session, and the others are dialled.
* Delivery without a per-item outbox: a signed item is stored once, whoever it is
  for, and anti-entropy is the retry. When a session with a member comes up both
  sides send a summary for each group they share; each answers a summary with
  what the other lacks (`missing_for`, at most 512 items per answer). So a member
  who was offline gets a post from *any* member it meets, also when the author is
  away. Exactly once: the replica refuses an item it holds (`GroupDuplicateError`,
  logged as nothing) and shows each post once. A per-(item, member) outbox would
  store 64 rows per post for what a summary says in one message.
* Receipts: after a batch of items from a peer, we send that peer our summary
  for the groups it touched (only when it changed, so two members never
  ping-pong). The summaries a member sends are its acknowledgements: a post is
  delivered to a member once that member's summary covers its seq, and read once
  its read marks do (group_receipts.py keeps them, in the store, only raised;
  `GroupReceiptsChanged` tells the UI). Our own read marks (`mark_read`: the user
  has the conversation open) go out in our summaries to the connected members.
* Joining: a member that adds us sends the group's history, create first. An
  unknown group's create is held as a *candidate* (at most 16, 2 per peer who
  brought one, timed out), fed the items that follow, and joined (stored,
  announced) once its replayed state makes us a member and the peer who brought it
  is one too, and the *inviter* (the author of the create or add that made us a
  member) may put us there: never a blocked, flagged or retired key; a contact in
  at most 32 of our groups, a stranger (first-seen, not named, not verified) in
  one, and strangers in 4 in all (`_may_join`). No consent is asked: what a
  stranger can do is bounded, and leaving is one command. A refused invitation is
  a security event; the inviter's next summary (another session) offers it again,
  so naming or verifying the inviter is how a user accepts one refused by the
  stranger caps. A summary for a group we do not hold is answered once per
  session with an empty summary, which asks the member for everything.
* Bad input: a `GroupError` from the core is logged as the security event the
  error names (`exc.event`; an honest duplicate names none) and the item is
  dropped; the session goes on (a relayed item may be a third member's fault).
  Group traffic is taken only from sessions the router made ready (sendable
  keys): a flagged name clash or a blocked key gets none and sends none. Group
  membership changes nothing about trust: a member who is not a contact is met
  as a first-seen stranger like anyone else.
* Introductions: a member we have not met (no pinned key) is noted as
  "introduced by X in 'group'" (X: who put it in the group, by the signed
  history), shown with the key from its first session on (`_introduce`); a note
  is a hint and changes no trust state.

* Disappearing posts (the chat's rules): a post with a `ttl` gets a deadline on
  this member when it is first shown (`messages`, the history handed to the
  user) or, for our own post, when it is sent; the node's expiry task deletes the
  text at the deadline (`texts_gone`) and keeps the signed body, so what we relay
  afterwards is a stub, which stands in for the post in every group rule. A copy
  with the text fills a stub we hold, unless ours disappeared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import (
    ConfigError,
    GroupError,
    GroupFloodError,
    GroupNotMemberError,
    LocalProtocolError,
    P2PMsgError,
    UnknownGroupError,
)
from p2pmsg.node.api import (
    GroupChanged,
    GroupMessageReceived,
    GroupMessagesExpired,
    GroupMessageView,
    GroupReceiptsChanged,
    GroupReceiptView,
    GroupView,
)
from p2pmsg.node.bus import EventBus
from p2pmsg.node.channel import Channel
from p2pmsg.node.services.group_receipts import GroupReceipts
from p2pmsg.node.services.group_views import (
    author_name,
    group_view,
    message_view,
    parse_post_id,
)
from p2pmsg.node.services.security_log import SecurityLog
from p2pmsg.node.tasks import cancel_and_wait
from p2pmsg.protocol.groups import (
    Add,
    Create,
    GroupOp,
    GroupPost,
    GroupReplica,
    GroupSummary,
    ItemRefused,
    MemberInfo,
    MembershipChanged,
    PostFilled,
    PostHidden,
    PostShown,
    parse_op,
    parse_post,
)
from p2pmsg.protocol.groups.limits import MAX_TTL_SECONDS
from p2pmsg.protocol.messages import (
    GroupMessage,
    GroupOpMessage,
    GroupPostMessage,
    GroupSummaryMessage,
)
from p2pmsg.store import (
    AsyncStore,
    GroupStoreFullError,
    Introduction,
    Store,
    StoredGroupItem,
)
from p2pmsg.store.groups import MAX_GROUPS

log = logging.getLogger(__name__)

#: Groups not joined yet (a create received, waiting for the history that adds us).
MAX_CANDIDATES = 16
#: Of those, brought by one peer.
MAX_CANDIDATES_PER_PEER = 2
#: Groups one inviter may put us in: a contact, a stranger, and all strangers together.
MAX_GROUPS_PER_CONTACT = 32
MAX_GROUPS_PER_STRANGER = 1
MAX_STRANGER_GROUPS = 4
CANDIDATE_TIMEOUT = 60.0
#: Batches of group messages waiting for the worker; past it a batch is dropped (and
#: logged): anti-entropy asks for its items again at the next summary.
MAX_QUEUED_BATCHES = 1024
#: How often waiting items are checked against the gap timeout (seconds).
TIMER_INTERVAL = 5.0
#: Own posts one `GroupReceiptsChanged` carries at most (the newest: what a UI shows).
MAX_RECEIPT_EVENT_POSTS = 200

Key = tuple[str, bytes, int]  # (kind, author, seq)
#: What the user's directory says of a key: "contact", "stranger" or "refused"
#: (blocked, flagged or retired: nothing from it is taken).
Trust = Callable[[str], str]
T = TypeVar("T")


@dataclass
class _Candidate:
    replica: GroupReplica
    introducer: str  # fingerprint (hex) of the peer who sent the create
    since: float


def _key(item: GroupOp | GroupPost) -> Key:
    return ("op" if type(item) is GroupOp else "post", item.author, item.seq)


def _held(replica: GroupReplica) -> list[GroupOp | GroupPost]:
    items: list[GroupOp | GroupPost] = list(replica.held_ops())
    items.extend(replica.held_posts())
    return items


def _inviter(replica: GroupReplica, me: bytes) -> str:
    """Who put us in the group: the author of the last valid create or add naming us."""
    history = replica.state.history_of(me)
    return (history[-1].author if history else replica.create_op.author).hex()


def _row(item: GroupOp | GroupPost, deadline: float | None) -> StoredGroupItem:
    kind, author, seq = _key(item)
    if isinstance(item, GroupOp):
        return StoredGroupItem(kind, author, seq, item.body, item.signature)
    ttl = None if item.ttl is None else float(item.ttl)
    return StoredGroupItem(
        kind, author, seq, item.body, item.signature, item.content, ttl, deadline
    )


def _wire(item: GroupOp | GroupPost) -> GroupMessage:
    if isinstance(item, GroupOp):
        return GroupOpMessage(item.body, item.signature)
    # A post whose text disappeared here travels as a stub (text nil).
    return GroupPostMessage(item.body, item.signature, item.content)


def _summary_message(summary: GroupSummary) -> GroupSummaryMessage:
    return GroupSummaryMessage(summary.group_id, summary.ops, summary.posts, summary.read)


class Groups:
    def __init__(
        self,
        identity: Identity,
        display_name: str,
        store: AsyncStore,
        bus: EventBus,
        security: SecurityLog,
        local_name: Callable[[str], str | None],
        want_connection: Callable[[str], None],
        clock: Callable[[], float],
        rng: Callable[[int], bytes],
        trust: Trust = lambda _fp: "stranger",
        known: Callable[[str], bool] = lambda _fp: False,
    ) -> None:
        self._identity = identity
        self._me = identity.fingerprint
        self._name = display_name
        self._store = store
        self._bus = bus
        self._security = security
        self._local_name = local_name
        self._want = want_connection
        self._clock = clock
        self._rng = rng
        self._trust = trust
        self._known = known
        # group -> the members already looked at for introductions (`_introduce`).
        self._introduced: dict[bytes, frozenset[bytes]] = {}
        # group -> the inviter (fp hex) whose create or add made us a member.
        self._inviters: dict[bytes, str] = {}
        self._replicas: dict[bytes, GroupReplica] = {}
        # group -> the items stored, and whether a post's row holds its text.
        self._stored: dict[bytes, dict[Key, bool]] = {}
        # group -> (author, seq) -> when that post's text is deleted here.
        self._deadlines: dict[bytes, dict[tuple[bytes, int], float]] = {}
        # Texts the expiry task deleted in a group still loading (its rows may have been
        # read before the purge): applied when it is registered.
        self._gone_early: dict[bytes, list[tuple[bytes, int]]] = {}
        #: Called when a new disappearing deadline is set (the node wakes its expiry task).
        self.on_deadlines_changed: Callable[[], None] = lambda: None
        self._candidates: dict[bytes, _Candidate] = {}
        self._channels: dict[str, Channel] = {}
        # Members' receipts for our posts, and our read marks (both in the store).
        self._receipts = GroupReceipts(self._me, store)
        # (peer, group) -> the summary we last sent it in this session.
        self._told: dict[tuple[str, bytes], GroupSummary] = {}
        self._queue: asyncio.Queue[tuple[Channel, Sequence[GroupMessage]]] = asyncio.Queue(
            MAX_QUEUED_BATCHES
        )
        self._worker: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        for group_id in await self._store.run(Store.group_ids):
            try:
                await self._load(group_id)
            except P2PMsgError as exc:  # one broken group must not keep the node down
                log.warning("cannot load group %s: %s", group_id.hex()[:16], exc)
        for replica in list(self._replicas.values()):
            await self._introduce(replica)
        self._worker = asyncio.create_task(self._work(), name="p2pmsg-groups")
        self._timer = asyncio.create_task(self._tick(), name="p2pmsg-groups-timer")

    def dial_members(self) -> None:
        """Once the router runs: reach every member of our groups (one of them may hold
        what we missed, or miss what we hold)."""
        for replica in self._replicas.values():
            self._want_members(replica)

    async def stop(self) -> None:
        await cancel_and_wait(self._worker)
        await cancel_and_wait(self._timer)

    async def _load(self, group_id: bytes) -> None:
        stored = await self._store.run(Store.load_group, group_id)
        if stored is None:
            return
        replica = GroupReplica.restore(
            (stored.create.body, stored.create.signature),
            [(i.kind, i.body, i.signature, i.text) for i in stored.items],
            [(i.author, i.seq) for i in stored.items if i.kind == "post" and i.gone],
        )
        while (event := replica.next_event()) is not None:
            if type(event) is ItemRefused:  # a stored row that no longer passes
                log.warning("group %s: a stored item was refused: %s", group_id.hex()[:16], event)
        for author, seq in self._gone_early.pop(group_id, []):
            replica.forget_text(author, seq)
        self._replicas[group_id] = replica
        self._stored[group_id] = {
            _key(i): type(i) is GroupPost and i.text is not None for i in _held(replica)
        }
        self._deadlines[group_id] = {
            (i.author, i.seq): i.deadline
            for i in stored.items
            if i.kind == "post" and i.deadline is not None
        }
        self._note_inviter(replica)
        await self._receipts.load(group_id)

    # --- sessions --------------------------------------------------------------------

    def session_ready(self, channel: Channel) -> None:
        """A sendable peer is connected: a summary for each group we share with it."""
        if self._channels.get(channel.peer) is not channel:
            # A new session (e.g. the winner of two simultaneous dials replacing the
            # loser): what we told the old one may never have been read, so tell again.
            for key in [k for k in self._told if k[0] == channel.peer]:
                del self._told[key]
        self._channels[channel.peer] = channel
        for replica in self._replicas.values():
            if self._shares(replica, channel.peer):
                self._tell(channel, replica)

    def session_closed(self, channel: Channel) -> None:
        if self._channels.get(channel.peer) is channel:
            del self._channels[channel.peer]
            for key in [k for k in self._told if k[0] == channel.peer]:
                del self._told[key]

    def received(self, channel: Channel, messages: Sequence[GroupMessage]) -> None:
        """Group messages from a session (router.py); judged in order on the worker."""
        if self._channels.get(channel.peer) is not channel:
            return  # not a sendable session (flagged, blocked): no group traffic
        try:
            self._queue.put_nowait((channel, messages))
        except asyncio.QueueFull:
            self._security.record(
                "rate_limited",
                peer=channel.peer,
                detail={"reason": "group_backlog", "dropped": len(messages)},
            )

    def _shares(self, replica: GroupReplica, peer: str) -> bool:
        state = replica.state
        return state.is_member(self._me) and state.is_member(bytes.fromhex(peer))

    def _tell(self, channel: Channel, replica: GroupReplica) -> None:
        """Send our summary for `replica` unless this session already has this one."""
        summary = self._summary(replica)
        key = (channel.peer, replica.group_id)
        if self._told.get(key) == summary or not channel.is_open:
            return
        self._told[key] = summary
        channel.send_messages([_summary_message(summary)])

    # --- the receive path --------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            channel, messages = await self._queue.get()
            try:
                await self._handle(channel, messages)
            except Exception:  # a bug of ours: the next batch still gets its turn
                log.exception("handling group messages from %s failed", channel.peer[:16])

    async def _handle(self, channel: Channel, messages: Sequence[GroupMessage]) -> None:
        touched: set[bytes] = set()
        answers: list[GroupMessage] = []
        now = self._clock()
        for message in messages:
            if type(message) is GroupSummaryMessage:
                answers.extend(await self._on_summary(channel, message))
                continue
            try:
                item: GroupOp | GroupPost = (
                    parse_op(message.body, message.signature)
                    if type(message) is GroupOpMessage
                    else parse_post(message.body, message.signature, message.text)  # type: ignore[union-attr]
                )
            except GroupError as exc:
                self._refused(channel.peer, exc, None)
                continue
            try:
                self._receive(channel.peer, item, now)
            except GroupError as exc:
                self._refused(channel.peer, exc, item.group_id)
            if item.group_id in self._replicas or item.group_id in self._candidates:
                # Also after a refusal: a post kept unseen, or items it released, are new.
                touched.add(item.group_id)
        for group_id in touched:
            await self._settle(group_id, channel)
        if answers and channel.is_open:
            channel.send_messages(answers)

    def _receive(self, peer: str, item: GroupOp | GroupPost, now: float) -> None:
        """Hand a verified item to its replica (or a candidate); raises its `GroupError`."""
        group_id = item.group_id
        replica = self._replicas.get(group_id)
        if replica is not None:
            if not replica.state.is_member(bytes.fromhex(peer)):
                raise GroupNotMemberError("group item relayed by a peer who is not a member")
            replica.receive(item, now)
            return
        candidate = self._candidates.get(group_id)
        if candidate is None:
            if type(item) is not GroupOp or type(item.payload) is not Create:
                raise UnknownGroupError("group item for a group this node does not hold")
            if len(self._candidates) >= MAX_CANDIDATES or len(self._replicas) >= MAX_GROUPS:
                raise GroupFloodError("too many groups waiting to be joined")
            if (
                sum(1 for c in self._candidates.values() if c.introducer == peer)
                >= MAX_CANDIDATES_PER_PEER
            ):
                raise GroupFloodError("too many groups from this peer waiting to be joined")
            self._candidates[group_id] = _Candidate(GroupReplica(item), peer, now)
            return
        candidate.replica.receive(item, now)

    async def _on_summary(
        self, channel: Channel, message: GroupSummaryMessage
    ) -> list[GroupMessage]:
        summary = GroupSummary(message.group_id, message.ops, message.posts, message.read)
        replica = self._replicas.get(summary.group_id)
        peer = channel.peer
        if replica is None:
            # A member who added us and finds us without the group: ask for everything
            # (once per session and group; a stranger learns nothing from it).
            key = (peer, summary.group_id)
            if key not in self._told and summary.group_id not in self._candidates:
                self._told[key] = GroupSummary.empty(summary.group_id)
                return [_summary_message(self._told[key])]
            return []
        fp = bytes.fromhex(peer)
        if not replica.state.is_member(fp):
            # Posts are for members only; a former member gets the operations it lacks,
            # so it learns that it was removed (and stops posting into the void).
            if not replica.state.history_of(fp):
                return []
            return [_wire(i) for i in replica.missing_for(summary) if type(i) is GroupOp]
        await self._acknowledged(replica, fp, summary)
        missing = [_wire(item) for item in replica.missing_for(summary)]
        if self._shares(replica, peer) and self._ahead_of_us(replica, summary):
            self._tell(channel, replica)
        return missing

    @staticmethod
    def _ahead_of_us(replica: GroupReplica, summary: GroupSummary) -> bool:
        ours = replica.summary()
        mine_ops, mine_posts = dict(ours.ops), dict(ours.posts)
        return any(s > mine_ops.get(a, 0) for a, s in summary.ops) or any(
            s > mine_posts.get(a, 0) for a, s in summary.posts
        )

    async def _settle(self, group_id: bytes, channel: Channel) -> None:
        """After a batch: join a candidate that now counts us in, store what is new, then
        publish (store first), then acknowledge to the sender."""
        candidate = self._candidates.get(group_id)
        if candidate is not None:
            state = candidate.replica.state
            if not (
                state.is_member(self._me) and state.is_member(bytes.fromhex(candidate.introducer))
            ):
                return
            del self._candidates[group_id]
            inviter = _inviter(candidate.replica, self._me)
            refusal = self._may_join(inviter)
            if refusal is not None:
                event, reason = refusal
                self._security.record(
                    event,
                    peer=inviter,
                    detail={"reason": reason, "group": group_id.hex(), "via": candidate.introducer},
                )
                return
            self._replicas[group_id] = candidate.replica
            self._stored[group_id] = {}
            self._deadlines[group_id] = {}
            self._inviters[group_id] = inviter
        replica = self._replicas[group_id]
        if not await self._persist(replica):
            return
        self._publish(replica)
        await self._introduce(replica)
        if channel.is_open and self._shares(replica, channel.peer):
            self._tell(channel, replica)

    def _may_join(self, inviter: str) -> tuple[str, str] | None:
        """None if the inviter may put us in one more group, else (event, reason)."""
        trust = self._trust(inviter)
        if trust == "refused":
            return ("frame_rejected", "group_invite_refused")
        joined = {
            g: fp
            for g, fp in self._inviters.items()
            if g in self._replicas and self._replicas[g].state.is_member(self._me)
        }
        mine = sum(1 for fp in joined.values() if fp == inviter)
        if trust == "contact":
            return None if mine < MAX_GROUPS_PER_CONTACT else ("rate_limited", "group_invite_cap")
        from_strangers = sum(1 for fp in joined.values() if self._trust(fp) != "contact")
        if mine >= MAX_GROUPS_PER_STRANGER or from_strangers >= MAX_STRANGER_GROUPS:
            return ("rate_limited", "group_invite_cap")
        return None

    def _note_inviter(self, replica: GroupReplica) -> None:
        if replica.state.is_member(self._me) and replica.create_op.author != self._me:
            self._inviters[replica.group_id] = _inviter(replica, self._me)

    async def _persist(self, replica: GroupReplica) -> bool:
        """Store the items not stored yet, and the texts that filled stored stubs."""
        stored = self._stored[replica.group_id]
        deadlines = self._deadlines.setdefault(replica.group_id, {})
        new = [
            i
            for i in _held(replica)
            if _key(i) not in stored
            or (type(i) is GroupPost and i.text is not None and not stored[_key(i)])
        ]
        if not new:
            return True
        now = self._clock()
        own: dict[tuple[bytes, int], float] = {}
        for item in new:
            # Our own disappearing post: its timer runs from when it was sent.
            if (
                type(item) is GroupPost
                and item.author == self._me
                and item.ttl is not None
                and item.text is not None
                and _key(item) not in stored
            ):
                own[item.key] = now + item.ttl
        try:
            await self._store.run(
                Store.save_group_items,
                replica.group_id,
                replica.create_op.author,
                [_row(i, own.get(i.key) if type(i) is GroupPost else None) for i in new],
                now,
            )
        except GroupStoreFullError as exc:
            self._security.record(
                "rate_limited", detail={"reason": "group_store_full", "detail": str(exc)}
            )
            return False
        stored.update((_key(i), type(i) is GroupPost and i.text is not None) for i in new)
        if own:
            deadlines.update(own)
            self.on_deadlines_changed()
        return True

    def _publish(self, replica: GroupReplica) -> None:
        changed = False
        while (event := replica.next_event()) is not None:
            if type(event) in (PostShown, PostFilled):
                post = event.post  # type: ignore[union-attr]
                # A stub has nothing to show (its text disappeared where it came from):
                # it takes its place in the history, and is announced if its text comes.
                if post.author != self._me and post.text is not None:
                    view = message_view(replica, post, self._me, self._local_name)
                    self._bus.publish(GroupMessageReceived(view.group, view))
            elif type(event) is MembershipChanged:
                changed = True
            elif type(event) is ItemRefused:
                self._refused(event.author.hex() or None, event.error, replica.group_id)
            elif type(event) is PostHidden:
                log.info(
                    "group %s: a post of %s no longer counts (%s)",
                    replica.group_id.hex()[:16],
                    event.post.author.hex()[:16],
                    event.error.reason,
                )
        if changed:
            self._bus.publish(GroupChanged(self.view(replica)))

    async def _introduce(self, replica: GroupReplica) -> None:
        """Note "introduced by X in 'group'" for members we have not met (no pinned key):
        the first session with one shows it (PeerView.introduced_by). Only a note: the
        key is pinned first-seen at that session like any other, and a flagged or
        blocked key stays so (nothing here touches trust)."""
        state = replica.state
        if not state.is_member(self._me):
            return
        members = frozenset(state.members)
        looked = self._introduced.get(replica.group_id, frozenset())
        self._introduced[replica.group_id] = members
        notes: list[Introduction] = []
        for fp in members - looked:
            history = state.history_of(fp)
            introducer = history[-1].author if history else replica.create_op.author
            if fp == self._me or introducer in (self._me, fp) or self._known(fp.hex()):
                continue  # ours, self-made (the creator), or met already
            notes.append(
                Introduction(
                    fingerprint=fp.hex(),
                    introducer=introducer.hex(),
                    introducer_name=author_name(replica, introducer, self._local_name),
                    group_id=replica.group_id,
                    group_name=state.name,
                    at=self._clock(),
                )
            )
        if not notes:
            return
        try:
            await self._store.run(Store.add_introductions, notes)
        except P2PMsgError as exc:  # a hint lost, nothing more: the group goes on
            log.warning("cannot note introductions in %s: %s", replica.group_id.hex()[:16], exc)

    def _refused(self, peer: str | None, exc: GroupError, group_id: bytes | None) -> None:
        if exc.event is None:
            return  # an honest duplicate (two members relayed the same item)
        detail: dict[str, object] = {"reason": exc.reason, "detail": str(exc)[:200]}
        if group_id is not None:
            detail["group"] = group_id.hex()
        self._security.record(exc.event, peer=peer, detail=detail)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TIMER_INTERVAL)
            now = self._clock()
            for group_id, candidate in list(self._candidates.items()):
                if now - candidate.since > CANDIDATE_TIMEOUT:
                    del self._candidates[group_id]
            for replica in list(self._replicas.values()):
                deadline = replica.deadline
                if deadline is not None and deadline <= now:
                    replica.handle_timer(now)
                    self._publish(replica)

    # --- authoring -------------------------------------------------------------------

    async def create(self, name: str, members: Iterable[MemberInfo]) -> GroupView:
        if len(self._replicas) >= MAX_GROUPS:
            raise ConfigError(f"this profile is in {MAX_GROUPS} groups already")
        try:
            replica = GroupReplica.create(
                self._identity, self._rng, self._clock(), name, self._name, list(members)
            )
        except LocalProtocolError as exc:
            raise ConfigError(str(exc)) from None
        self._replicas[replica.group_id] = replica
        self._stored[replica.group_id] = {}
        self._deadlines[replica.group_id] = {}
        await self._authored(replica, replica.create_op, replica.state.members)
        return self.view(replica)

    async def add(self, replica: GroupReplica, member: MemberInfo) -> GroupView:
        op = self._sign(lambda now: replica.add(self._identity, now, member))
        await self._authored(replica, op, replica.state.members)
        return self.view(replica)

    async def remove(self, replica: GroupReplica, member: bytes) -> GroupView:
        before = dict(replica.state.members)
        op = self._sign(lambda now: replica.remove(self._identity, now, member))
        await self._authored(replica, op, before)  # the removed member learns it too
        return self.view(replica)

    async def leave(self, replica: GroupReplica) -> GroupView:
        before = dict(replica.state.members)
        op = self._sign(lambda now: replica.leave(self._identity, now))
        await self._authored(replica, op, before)
        return self.view(replica)

    async def rename(self, replica: GroupReplica, name: str) -> GroupView:
        """Admins only (docs/PROTOCOL.md, "Groups"): the replica refuses it otherwise,
        judged as every member will judge it."""
        op = self._sign(lambda now: replica.rename(self._identity, now, name))
        await self._authored(replica, op, replica.state.members)
        return self.view(replica)

    async def post(
        self, replica: GroupReplica, text: str, ttl: int | None = None
    ) -> GroupMessageView:
        if ttl is not None and not 1 <= ttl <= MAX_TTL_SECONDS:
            raise ConfigError(
                f"a disappearing timer is 1..{MAX_TTL_SECONDS} seconds (30 days), not {ttl}"
            )
        post = self._sign(lambda now: replica.post(self._identity, now, text, ttl, rng=self._rng))
        await self._authored(replica, post, replica.state.members)
        return self.message(replica, post)

    def _sign(self, author: Callable[[float], T]) -> T:
        try:
            return author(self._clock())
        except LocalProtocolError as exc:
            raise ConfigError(str(exc)) from None

    async def _authored(
        self, replica: GroupReplica, item: GroupOp | GroupPost, to: Iterable[bytes]
    ) -> None:
        """Store first, then tell the UI, then fan out to every member we reach now."""
        if not await self._persist(replica):
            raise ConfigError("the group is full: no more posts are stored for it")
        self._publish(replica)
        message = [_wire(item)]
        added = (
            item.payload.member.fingerprint
            if type(item) is GroupOp and type(item.payload) is Add
            else None
        )
        for fp in to:
            if fp == self._me:
                continue
            peer = fp.hex()
            channel = self._channels.get(peer)
            if channel is None or not channel.is_open:
                self._want(peer)  # anti-entropy gives it everything when we meet
            elif fp == added:  # a new member needs the history, create first
                history = replica.missing_for(GroupSummary.empty(replica.group_id))
                channel.send_messages([_wire(i) for i in history])
            else:
                channel.send_messages(message)

    def _want_members(self, replica: GroupReplica) -> None:
        if not replica.state.is_member(self._me):
            return
        for fp in replica.state.members:
            if fp != self._me:
                self._want(fp.hex())

    # --- views and receipts ------------------------------------------------------------

    def _summary(self, replica: GroupReplica) -> GroupSummary:
        """The replica's summary with our read marks (what we send)."""
        return replace(replica.summary(), read=self._receipts.read_marks(replica))

    async def _acknowledged(
        self, replica: GroupReplica, member: bytes, summary: GroupSummary
    ) -> None:
        """A member's summary as its receipt: tell the UI which of our posts it moved."""
        grown = await self._receipts.acknowledge(replica, member, summary)
        if grown is None:
            return
        (was_delivered, was_read), (delivered, read) = grown
        # Only the posts whose marks moved: newly held (was_delivered, delivered] and
        # newly read (was_read, read]. (Everything above the read mark, every time,
        # was up to 200 views per summary: with 19 members answering each post, an
        # author of 1,000 posts spent 68 ms per post on it in `bench groups`.)
        seqs = sorted({*range(was_delivered + 1, delivered + 1), *range(was_read + 1, read + 1)})
        posts = (replica.shown_post(self._me, seq) for seq in seqs[-MAX_RECEIPT_EVENT_POSTS:])
        moved = [p for p in posts if p is not None]
        if moved:
            views = tuple(self.message(replica, p) for p in moved)
            self._bus.publish(GroupReceiptsChanged(replica.group_id.hex(), views))

    async def mark_read(self, replica: GroupReplica) -> None:
        """The user sees the group's posts: raise our read marks, tell connected members."""
        if not await self._receipts.mark_read(replica):
            return
        for peer, channel in list(self._channels.items()):
            if self._shares(replica, peer):
                self._tell(channel, replica)

    def receipts(
        self, replica: GroupReplica, message_id: str | None
    ) -> tuple[GroupMessageView, tuple[GroupReceiptView, ...]]:
        """Our post (the last, without an id) and each other current member's receipt."""
        post: GroupPost | None = None
        if message_id is None:  # our newest post that counts
            for seq in range(dict(replica.summary().posts).get(self._me, 0), 0, -1):
                if (post := replica.shown_post(self._me, seq)) is not None:
                    break
        elif (key := parse_post_id(message_id)) is not None and key[0] == self._me:
            post = replica.shown_post(*key)
        if post is None:
            what = "no post of yours" if message_id is None else f"no post of yours {message_id!r}"
            raise ConfigError(f"{what} in {replica.state.name!r}")
        members = self.view(replica).members
        rows = []
        for member in members:
            if member.me:
                continue
            delivered, read = self._receipts.of(replica.group_id, bytes.fromhex(member.fingerprint))
            rows.append(
                GroupReceiptView(
                    member.fingerprint, member.name, delivered >= post.seq, read >= post.seq
                )
            )
        return self.message(replica, post), tuple(rows)

    def find(self, query: str) -> GroupReplica:
        """A group by its name (case-insensitive) or an id prefix of at least 4 hex digits."""
        wanted = query.strip().casefold()
        by_name = [r for r in self._replicas.values() if r.state.name.casefold() == wanted]
        if not by_name and len(wanted) >= 4:
            by_name = [r for r in self._replicas.values() if r.group_id.hex().startswith(wanted)]
        if len(by_name) == 1:
            return by_name[0]
        if not by_name:
            raise ConfigError(f"no group named {query!r}")
        ids = ", ".join(f"{r.state.name} ({r.group_id.hex()[:8]})" for r in by_name)
        raise ConfigError(f"group {query!r} is ambiguous: {ids}; use an id prefix")

    def all(self) -> list[GroupView]:
        return [self.view(r) for r in self._replicas.values()]

    def view(self, replica: GroupReplica) -> GroupView:
        return group_view(replica, self._me, self._local_name)

    async def texts_gone(self, expired: dict[bytes, list[tuple[bytes, int]]]) -> None:
        """The expiry task deleted these posts' texts from the store: hold them as stubs
        (what we relay from now on) and tell the UI."""
        for group_id, posts in expired.items():
            replica = self._replicas.get(group_id)
            if replica is None:  # not loaded yet (the node is starting): when it is
                self._gone_early.setdefault(group_id, []).extend(posts)
                continue
            stored = self._stored.get(group_id, {})
            for author, seq in posts:
                replica.forget_text(author, seq)
                if ("post", author, seq) in stored:
                    stored[("post", author, seq)] = False
            ids = tuple(f"{author.hex()}:{seq}" for author, seq in posts)
            self._bus.publish(GroupMessagesExpired(group_id.hex(), ids))

    def message(self, replica: GroupReplica, post: GroupPost) -> GroupMessageView:
        recipients = [fp for fp in replica.state.members if fp != self._me]
        delivered = read = 0
        if post.author == self._me:
            for fp in recipients:
                has, seen = self._receipts.of(replica.group_id, fp)
                delivered += has >= post.seq
                read += seen >= post.seq
        deadline = self._deadlines.get(replica.group_id, {}).get(post.key)
        view = message_view(
            replica, post, self._me, self._local_name, delivered, len(recipients), deadline
        )
        return replace(view, read=read) if read else view

    def reachable(self, replica: GroupReplica) -> tuple[int, int]:
        """(other current members with a live session now, other current members)."""
        others = [fp.hex() for fp in replica.state.members if fp != self._me]
        live = sum(1 for fp in others if (c := self._channels.get(fp)) is not None and c.is_open)
        return live, len(others)

    async def messages(self, replica: GroupReplica, limit: int) -> list[GroupMessageView]:
        """The latest posts, as shown to the user: the disappearing timer of a post shown
        for the first time starts now (the chat's rule starts it when read)."""
        posts = replica.timeline()[-limit:]
        deadlines = self._deadlines.setdefault(replica.group_id, {})
        start = [
            p.key
            for p in posts
            if p.ttl is not None and p.text is not None and p.key not in deadlines
        ]
        if start:
            try:
                started = await self._store.run(
                    Store.start_group_deadlines, replica.group_id, start, self._clock()
                )
            except P2PMsgError as exc:  # shown anyway; the timer starts next time
                log.warning("cannot start disappearing timers: %s", exc)
            else:
                deadlines.update(started)
                if started:
                    self.on_deadlines_changed()
        return [self.message(replica, p) for p in posts]

    async def wait_delivered(
        self, replica: GroupReplica, message_id: str, timeout: float
    ) -> GroupMessageView:
        key = parse_post_id(message_id)
        post = (
            None
            if key is None
            else next((p for p in replica.held_posts() if (p.author, p.seq) == key), None)
        )
        if post is None:
            raise ConfigError(f"no message {message_id!r} in {replica.state.name!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            view = self.message(replica, post)
            left = deadline - loop.time()
            if view.delivered >= view.recipients or left <= 0:
                return view
            self._receipts.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._receipts.changed.wait(), left)

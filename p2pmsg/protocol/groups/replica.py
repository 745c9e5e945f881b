"""`GroupReplica`: one member's copy of one group, as a sans-I/O state machine.

Inputs are method calls, with `now` (seconds, any monotonic clock the caller
keeps) where time matters; outputs are pulled: `next_event()` (posts to show
or hide, membership changes, items refused after waiting), `deadline` /
`handle_timer(now)` for the gap timeout, `summary()` and `missing_for()` for
anti-entropy. The node stores what `held_ops()`/`held_posts()` hold and
rebuilds a replica from them with `GroupReplica.restore` (every item verified
again on the way in).

The receive path (`receive`) judges each verified item in two steps. First
what needs nothing but the item and its causal past, and so comes out the
same on every member: the gap rules (an item waits, bounded, until its
author's previous item and every operation in its `deps` are handled), the
floods, duplicates and equivocation, the Lamport rule (later than everything
in its past), `deps` closed under the past, and "the author was made a member
somewhere in this past". An item failing these is refused and not held.
Second, what depends on the whole set of operations: state.py's replay for
operations (all held ones count towards convergence; the invalid ones are
ignored there), `post_verdict` for posts. A post that does not count when it
arrives raises its reason but is kept, unseen, because an operation still on
its way may overrule the one that rules it out; at most
`MAX_UNSEEN_PER_AUTHOR` per author, so a removed member cannot fill our memory.

Stubs (disappearing posts): a post may arrive without its text (a member whose
copy disappeared relays the signed body alone). A stub is judged, held, counted
and ordered exactly like the post; it only has nothing to show. A later copy
with the text fills a held or waiting stub (`PostFilled` when it was shown),
unless this member's own copy disappeared (`forget_text`): what disappeared
here stays gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from p2pmsg.crypto.identity import Identity
from p2pmsg.errors import (
    GroupDuplicateError,
    GroupEquivocationError,
    GroupError,
    GroupFloodError,
    GroupGapError,
    GroupMalformedError,
    GroupNotMemberError,
    LocalProtocolError,
    UnknownGroupError,
)
from p2pmsg.protocol.groups.buffer import PendingItems, Slot, slot_of
from p2pmsg.protocol.groups.events import (
    GroupEvent,
    ItemRefused,
    MembershipChanged,
    PostFilled,
    PostHidden,
    PostShown,
)
from p2pmsg.protocol.groups.items import (
    Add,
    Create,
    Deps,
    GroupOp,
    GroupPost,
    Item,
    Leave,
    MemberInfo,
    Payload,
    Remove,
    Rename,
    group_id_for,
    new_nonce,
    parse_op,
    parse_post,
    sign_op,
    sign_post,
)
from p2pmsg.protocol.groups.limits import (
    GAP_TIMEOUT,
    MAX_GROUP_OPS,
    MAX_OPS_PER_AUTHOR,
    MAX_PENDING,
    MAX_PENDING_PER_AUTHOR,
    MAX_SEQ,
    MAX_SYNC_ITEMS,
    MAX_UNSEEN_PER_AUTHOR,
)
from p2pmsg.protocol.groups.state import GroupState, post_verdict, resolve
from p2pmsg.protocol.groups.sync import GroupSummary, marks, missing_for
from p2pmsg.protocol.wire import describe

Rng = Callable[[int], bytes]


class GroupReplica:
    """One member's copy of one group (see the module docstring)."""

    def __init__(
        self,
        create: GroupOp,
        *,
        max_pending_per_author: int = MAX_PENDING_PER_AUTHOR,
        max_pending: int = MAX_PENDING,
        gap_timeout: float = GAP_TIMEOUT,
        max_unseen_per_author: int = MAX_UNSEEN_PER_AUTHOR,
        max_group_ops: int = MAX_GROUP_OPS,
    ) -> None:
        if type(create.payload) is not Create:
            raise GroupMalformedError("a group starts from its create operation")
        self.group_id = create.group_id
        self._create = create
        self._ops: dict[tuple[bytes, int], GroupOp] = {create.key: create}
        self._posts: dict[tuple[bytes, int], GroupPost] = {}
        # Per (kind, author): the highest seq handled without a gap (held or refused),
        # and, for operations, the highest held without a gap (what `deps` may name).
        self._handled: dict[tuple[str, bytes], int] = {("op", create.author): 1}
        self._held_ops: dict[bytes, int] = {create.author: 1}
        self._ops_by_author: dict[bytes, int] = {create.author: 1}
        self._pending = PendingItems(
            per_author=max_pending_per_author, total=max_pending, timeout=gap_timeout
        )
        self._clock = create.lamport
        self._events: list[GroupEvent] = []
        self._shown: set[tuple[bytes, int]] = set()
        # Posts whose text disappeared here (`forget_text`): never filled again.
        self._gone: set[tuple[bytes, int]] = set()
        # Held posts that do not count (yet), per author; see `_deliver`.
        self._unseen: dict[bytes, int] = {}
        self._max_unseen = max_unseen_per_author
        self._max_group_ops = max_group_ops  # the protocol's; smaller only in tests
        self._state = resolve(create, ())
        self._events.append(MembershipChanged(self._state))

    # --- making a group ------------------------------------------------------------

    @classmethod
    def create(
        cls,
        identity: Identity,
        rng: Rng,
        now: float,
        name: str,
        my_name: str,
        members: Iterable[MemberInfo],
    ) -> GroupReplica:
        """A new group: a fresh random id (from `rng(16)`), its creator and `members`."""
        nonce = new_nonce(rng)
        group_id = group_id_for(identity.public_key, nonce)
        payload = Create(nonce, name, my_name, tuple(members))
        return cls(sign_op(identity, group_id, 1, 1, now, (), payload))

    @classmethod
    def restore(
        cls,
        create: tuple[bytes, bytes],
        items: Iterable[tuple[str, bytes, bytes, tuple[bytes, str] | None]],
        gone: Iterable[tuple[bytes, int]] = (),
    ) -> GroupReplica:
        """Rebuild from stored (kind, body, signature, (salt, text) or None) rows,
        verifying each again; `gone`: the (author, seq) of posts whose text disappeared
        here. Refusals while restoring are events like any other."""
        replica = cls(parse_op(*create))
        replica._gone.update(gone)
        for kind, body, signature, content in items:
            try:
                item: Item = (
                    parse_op(body, signature)
                    if kind == "op"
                    else parse_post(body, signature, content)
                )
                replica.receive(item, 0.0)
            except GroupDuplicateError:
                continue
            except GroupError as exc:  # a stored row that no longer passes: report it
                replica._events.append(ItemRefused(kind, b"", 0, exc))
        return replica

    # --- outputs -------------------------------------------------------------------

    @property
    def state(self) -> GroupState:
        return self._state

    @property
    def create_op(self) -> GroupOp:
        return self._create

    def next_event(self) -> GroupEvent | None:
        return self._events.pop(0) if self._events else None

    @property
    def deadline(self) -> float | None:
        return self._pending.deadline

    def timeline(self) -> list[GroupPost]:
        """The posts that count, in display order: Lamport time, then author, then seq
        (causal, since a reply's Lamport time exceeds what it answers; stable, since
        the key of a post never changes)."""
        return sorted((self._posts[k] for k in self._shown), key=lambda p: p.order)

    def shown_post(self, author: bytes, seq: int) -> GroupPost | None:
        """One post of the timeline by its key, without sorting it."""
        key = (author, seq)
        return self._posts[key] if key in self._shown else None

    def held_ops(self) -> list[GroupOp]:
        return sorted(self._ops.values(), key=lambda op: op.order)

    def held_posts(self) -> list[GroupPost]:
        return sorted(self._posts.values(), key=lambda p: p.order)

    def summary(self) -> GroupSummary:
        ops = {a: n for (k, a), n in self._handled.items() if k == "op"}
        posts = {a: n for (k, a), n in self._handled.items() if k == "post"}
        return GroupSummary(self.group_id, marks(ops), marks(posts))

    def missing_for(self, summary: GroupSummary, limit: int = MAX_SYNC_ITEMS) -> list[Item]:
        """What the member that sent `summary` lacks of what this one holds."""
        if summary.group_id != self.group_id:
            raise UnknownGroupError("group_summary: for another group")
        return missing_for(summary, self._ops.values(), self._posts.values(), limit)

    # --- inputs --------------------------------------------------------------------

    def receive(self, item: Item, now: float) -> None:
        """Take a verified item (items.parse_op / parse_post) from any member.

        Raises a `GroupError` when this item is refused; items it lets through
        that had waited for it are reported as events, refusals included."""
        if item.group_id != self.group_id:
            raise UnknownGroupError(f"group item for another group ({describe(item.group_id)})")
        slot = slot_of(item)
        kind, author, seq = slot
        held = (self._ops if kind == "op" else self._posts).get((author, seq))
        if held is not None:
            if held.body == item.body:
                if type(item) is GroupPost and self._fill(cast(GroupPost, held), item):
                    return
                raise GroupDuplicateError(f"group_{kind}: already held")
            raise GroupEquivocationError(f"group_{kind}: a second body for a held seq")
        handled = self._handled.get((kind, author), 0)
        if seq <= handled:
            raise GroupDuplicateError(f"group_{kind}: seq {seq} was handled already")
        if type(item) is GroupOp:
            self._check_flood(item)
        if type(item) is GroupPost and item.key in self._gone:
            item = item.stub()  # disappeared here: a copy with its text does not revive it
        if self._ready(item):
            self._deliver(item)
            self._drain()
        elif not self._pending.add(item, handled, now):
            raise GroupDuplicateError(f"group_{kind}: already waiting")

    def forget_text(self, author: bytes, seq: int) -> bool:
        """This member's copy of a post disappeared (its deadline passed): hold the
        stub from now on, and never take the text back. False if no text was held."""
        key = (author, seq)
        self._gone.add(key)
        post = self._posts.get(key)
        if post is None or post.text is None:
            return False
        self._posts[key] = post.stub()
        return True

    def _fill(self, held: GroupPost, item: GroupPost) -> bool:
        """A copy with the text for a held stub (the same signed body): take the text,
        unless it disappeared here."""
        if held.text is not None or item.text is None or held.key in self._gone:
            return False
        self._posts[held.key] = item
        if held.key in self._shown:
            self._events.append(PostFilled(item))
        return True

    def handle_timer(self, now: float) -> None:
        for item in self._pending.expired(now):
            kind, author, seq = slot_of(item)
            error = GroupGapError(f"group_{kind}: an earlier item never arrived")
            self._events.append(ItemRefused(kind, author, seq, error))

    # --- authoring -----------------------------------------------------------------

    def post(
        self,
        identity: Identity,
        now: float,
        text: str,
        ttl: int | None = None,
        *,
        rng: Rng,
    ) -> GroupPost:
        """Sign, hold and show our own post; the caller fans it out to the members.
        `rng(16)` gives the post's fresh salt (items.text_hash)."""
        me = identity.fingerprint
        if not self._state.is_member(me):
            raise LocalProtocolError("not a member of this group")
        post = sign_post(
            identity,
            self.group_id,
            self._handled.get(("post", me), 0) + 1,
            self._next_lamport(),
            now,
            self._deps(),
            text,
            ttl,
            salt=new_nonce(rng),
        )
        self._local(post, now)
        return post

    def add(self, identity: Identity, now: float, member: MemberInfo) -> GroupOp:
        return self._op(identity, now, Add(member))

    def remove(self, identity: Identity, now: float, member: bytes) -> GroupOp:
        cutoffs = Remove(
            member,
            self._held_ops.get(member, 0),
            self._handled.get(("post", member), 0),
        )
        return self._op(identity, now, cutoffs)

    def leave(self, identity: Identity, now: float) -> GroupOp:
        return self._op(identity, now, Leave(self._handled.get(("post", identity.fingerprint), 0)))

    def rename(self, identity: Identity, now: float, name: str) -> GroupOp:
        return self._op(identity, now, Rename(name))

    def _op(self, identity: Identity, now: float, payload: Payload) -> GroupOp:
        me = identity.fingerprint
        op = sign_op(
            identity,
            self.group_id,
            self._handled.get(("op", me), 0) + 1,
            self._next_lamport(),
            now,
            self._deps(),
            payload,
        )
        # Judge it as every member will: the op is our latest, so it replays last.
        after = resolve(self._create, [*self._ops.values(), op])
        if op.key in after.ignored:
            raise LocalProtocolError(f"not allowed: {after.ignored[op.key]}")
        self._local(op, now)
        return op

    def _local(self, item: Item, now: float) -> None:
        try:
            self.receive(item, now)
        except GroupError as exc:  # our own item: a bug, not a peer's fault
            raise LocalProtocolError(f"own group item refused: {exc}") from None

    def _next_lamport(self) -> int:
        if self._clock >= MAX_SEQ:
            raise LocalProtocolError("the group's Lamport clock is exhausted")
        return self._clock + 1

    def _deps(self) -> Deps:
        return tuple(sorted(self._held_ops.items()))

    # --- the receive path ----------------------------------------------------------

    def _check_flood(self, op: GroupOp) -> None:
        if op.seq > MAX_OPS_PER_AUTHOR or self._ops_by_author.get(op.author, 0) >= (
            MAX_OPS_PER_AUTHOR
        ):
            raise GroupFloodError(f"group_op: more than {MAX_OPS_PER_AUTHOR} from one author")
        if len(self._ops) + self._pending.ops >= self._max_group_ops:
            raise GroupFloodError(f"group_op: the group holds {self._max_group_ops} operations")

    def _ready(self, item: Item) -> bool:
        kind, author, seq = slot_of(item)
        if self._handled.get((kind, author), 0) != seq - 1:
            return False
        return all(self._handled.get(("op", fp), 0) >= s for fp, s in item.deps)

    def _drain(self) -> None:
        progress = True
        while progress:
            progress = False
            for item in list(self._pending.heads(self._handled)):
                if not self._ready(item):
                    continue
                slot: Slot = slot_of(item)
                self._pending.pop(slot)
                progress = True
                try:
                    self._deliver(item)
                except GroupError as exc:
                    self._events.append(ItemRefused(slot[0], slot[1], slot[2], exc))

    def _deliver(self, item: Item) -> None:
        """Judge a ready item; hold it, or mark its seq handled and raise."""
        kind, author, seq = slot_of(item)
        self._handled[(kind, author)] = seq
        self._check_past(item)
        if type(item) is GroupOp:
            self._ops[item.key] = item
            self._ops_by_author[author] = self._ops_by_author.get(author, 0) + 1
            if self._held_ops.get(author, 0) == seq - 1:
                self._held_ops[author] = seq
            self._clock = max(self._clock, item.lamport)
            self._replay()
            return
        post = cast(GroupPost, item)
        error = post_verdict(self._state, post)
        if error is not None and self._unseen.get(author, 0) >= self._max_unseen:
            raise GroupFloodError(f"group_post: {self._max_unseen} unseen posts from one author")
        self._posts[post.key] = post
        self._clock = max(self._clock, post.lamport)
        if error is not None:
            # Kept, unseen: the operation that rules it out may itself be overruled by
            # one still on its way (a concurrent removal of the remover), and then this
            # post counts on every member that holds it. Bounded per author.
            self._unseen[author] = self._unseen.get(author, 0) + 1
            raise error
        self._shown.add(post.key)
        self._events.append(PostShown(post))

    def _check_past(self, item: Item) -> None:
        """The rules that need only the item's causal past (same on every member)."""
        deps = dict(item.deps)
        where = "group_op" if type(item) is GroupOp else "group_post"
        if item.key != self._create.key and deps.get(self._create.author, 0) < 1:
            raise GroupMalformedError(f"{where}: deps must include the group's create")
        for fp, s in item.deps:
            dep = self._ops.get((fp, s))
            if dep is None:
                raise GroupMalformedError(f"{where}: depends on a refused operation")
            if item.lamport <= dep.lamport:
                raise GroupMalformedError(f"{where}: Lamport time not after its past")
            if any(deps.get(f2, 0) < s2 for f2, s2 in dep.deps):
                raise GroupMalformedError(f"{where}: deps are not closed under its past")
        if type(item) is GroupPost and item.seq > 1:
            prev = self._posts.get((item.author, item.seq - 1))
            if prev is not None and (
                item.lamport <= prev.lamport or any(deps.get(f, 0) < s for f, s in prev.deps)
            ):
                raise GroupMalformedError(f"{where}: goes back behind the author's previous post")
        if item.author != self._create.author and not any(
            deps.get(op.author, 0) >= op.seq for op in self._ops.values() if _names(op, item.author)
        ):
            raise GroupNotMemberError(f"{where}: its author was never made a member")

    def _replay(self) -> None:
        before = self._state
        self._state = resolve(self._create, self._ops.values())
        if (before.members, before.admins, before.name) != (
            self._state.members,
            self._state.admins,
            self._state.name,
        ):
            self._events.append(MembershipChanged(self._state))
        unseen: dict[bytes, int] = {}
        for key, post in sorted(self._posts.items(), key=lambda kv: kv[1].order):
            error = post_verdict(self._state, post)
            if error is None and key not in self._shown:
                self._shown.add(key)
                self._events.append(PostShown(post))
            elif error is not None:
                unseen[post.author] = unseen.get(post.author, 0) + 1
                if key in self._shown:
                    self._shown.discard(key)
                    self._events.append(PostHidden(post, error))
        self._unseen = unseen


def _names(op: GroupOp, fp: bytes) -> bool:
    """Whether `op` makes `fp` a member (a create listing it, or an add of it)."""
    payload = op.payload
    if type(payload) is Create:
        return any(m.fingerprint == fp for m in payload.members)
    return type(payload) is Add and payload.member.fingerprint == fp

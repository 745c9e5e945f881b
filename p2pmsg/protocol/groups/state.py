"""Group state by replay: the permission rules, and the removal rule.

Every member holds the same set of operations once anti-entropy has run, so
every member computes the same state from it, whatever order the operations
arrived in: sort them by (Lamport time, author fingerprint, author seq) and
apply them one by one; an operation that is not allowed at its point in that
order is ignored (and the reason kept, for the security log). An operation's
Lamport time exceeds those of its `deps` (the replica checks), so the order
respects causality.

The permission rules (docs/PROTOCOL.md, "Groups"):

* The creator is a member from the start, with the members the create names.
* Admins are the creator and every member the creator itself added (in the
  create, or by a later add); admin status ends with membership.
* Any member may add a key that is not a member (up to 64 members).
* Only an admin may remove, only a current member, never the creator and
  never itself (that is a leave).
* Any member may leave, the creator too.
* Only an admin may rename the group.

The removal rule ("removal wins"): a remove carries the removed member's
highest operation and post seq the remover held (its cut-offs). An item of
the removed member with a higher seq, that does not have the removal in its
causal past, does not count, even where its Lamport time would put it before
the removal: a removed member cannot backdate its way back in. An operation
cut off by a removal that the order puts after it makes the replay start over
without it (the cut-off set only grows, so this ends); posts are judged by
`post_verdict` against the valid removals. The outcome is a function of the
set of operations alone, which is what convergence needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from p2pmsg.errors import GroupError, GroupNotMemberError, GroupRemovedError
from p2pmsg.protocol.groups.items import (
    Add,
    Create,
    GroupOp,
    GroupPost,
    Leave,
    MemberInfo,
    Remove,
    Rename,
)
from p2pmsg.protocol.groups.limits import MAX_AUTHORS, MAX_GROUP_MEMBERS

Key = tuple[bytes, int]


def in_past(op: GroupOp, deps: Mapping[bytes, int]) -> bool:
    """Whether `op` is in the causal past of an item with operation vector `deps`."""
    return deps.get(op.author, 0) >= op.seq


@dataclass
class _Replay:
    creator: bytes
    name: str = ""
    members: dict[bytes, MemberInfo] = field(default_factory=dict)
    by_creator: set[bytes] = field(default_factory=set)
    ever: set[bytes] = field(default_factory=set)

    def admin(self, fp: bytes) -> bool:
        return fp in self.members and (fp == self.creator or fp in self.by_creator)


@dataclass(frozen=True)
class GroupState:
    """The state every member converges on. `members` maps fingerprint -> (key, name);
    `valid` is the applied operations in order; `ignored` why the others were not."""

    group_id: bytes
    creator: bytes
    name: str
    members: Mapping[bytes, MemberInfo]
    admins: frozenset[bytes]
    valid: tuple[GroupOp, ...]
    ignored: Mapping[Key, str]

    def is_member(self, fp: bytes) -> bool:
        return fp in self.members

    def history_of(self, fp: bytes) -> tuple[GroupOp, ...]:
        """The valid operations that made `fp` a member or ended that, in order."""
        return tuple(op for op in self.valid if _concerns(op, fp))


def _concerns(op: GroupOp, fp: bytes) -> bool:
    payload = op.payload
    if type(payload) is Create:
        return op.author == fp or any(m.fingerprint == fp for m in payload.members)
    if type(payload) is Add:
        return payload.member.fingerprint == fp
    if type(payload) is Remove:
        return payload.member == fp
    return type(payload) is Leave and op.author == fp


def _refusal(s: _Replay, op: GroupOp) -> str | None:
    """Why `op` may not apply to state `s`, or None. The permission rules."""
    payload = op.payload
    if type(payload) is Create:
        return None if not s.ever and op.author == s.creator else "a second create"
    if op.author not in s.members:
        return "author is not a member"
    if type(payload) is Add:
        target = payload.member.fingerprint
        if target in s.members:
            return "already a member"
        if len(s.members) >= MAX_GROUP_MEMBERS:
            return f"the group has {MAX_GROUP_MEMBERS} members"
        if target not in s.ever and len(s.ever) >= MAX_AUTHORS:
            return f"{MAX_AUTHORS} keys were members already"
        return None
    if type(payload) is Remove:
        if not s.admin(op.author):
            return "only an admin may remove"
        if payload.member not in s.members:
            return "not a member"
        if payload.member == s.creator:
            return "the creator cannot be removed"
        if payload.member == op.author:
            return "removing oneself is a leave"
        return None
    if type(payload) is Rename and not s.admin(op.author):
        return "only an admin may rename"
    return None  # a leave, or an admin's rename


def _apply(s: _Replay, op: GroupOp) -> None:
    payload = op.payload
    if type(payload) is Create:
        s.name = payload.group_name
        s.members[op.author] = MemberInfo(op.author_key, payload.creator_name)
        s.ever.add(op.author)
        for m in payload.members:
            s.members[m.fingerprint] = m
            s.by_creator.add(m.fingerprint)
            s.ever.add(m.fingerprint)
    elif type(payload) is Add:
        fp = payload.member.fingerprint
        s.members[fp] = payload.member
        s.ever.add(fp)
        if op.author == s.creator:
            s.by_creator.add(fp)
        else:
            s.by_creator.discard(fp)
    elif type(payload) is Remove:
        s.members.pop(payload.member, None)
        s.by_creator.discard(payload.member)
    elif type(payload) is Leave:
        s.members.pop(op.author, None)
        s.by_creator.discard(op.author)
    elif type(payload) is Rename:
        s.name = payload.name


def _replay(
    create: GroupOp, ordered: list[GroupOp], cut: Mapping[Key, str]
) -> tuple[_Replay, list[GroupOp], dict[Key, str], dict[Key, str]]:
    """One pass in order. Returns the state, the valid and ignored operations, and the
    operations a removal applied in this pass cut off although they came before it
    (empty when the pass stands)."""
    s = _Replay(create.author)
    valid: list[GroupOp] = []
    ignored: dict[Key, str] = {}
    removals: dict[bytes, list[GroupOp]] = {}
    for op in ordered:
        reason = cut.get(op.key)
        if reason is None and any(_cut_by(removal, op) for removal in removals.get(op.author, ())):
            reason = AFTER_REMOVAL
        if reason is None:
            reason = _refusal(s, op)
        if reason is not None:
            ignored[op.key] = reason
            continue
        _apply(s, op)
        valid.append(op)
        if type(op.payload) is Remove:
            removals.setdefault(op.payload.member, []).append(op)
            late = {v.key: AFTER_REMOVAL for v in valid if _cut_by(op, v)}
            if late:
                return s, valid, ignored, late
    return s, valid, ignored, {}


AFTER_REMOVAL = "written after its author's removal"


def _cut_by(removal: GroupOp, op: GroupOp) -> bool:
    """Whether `removal` cuts `op` off: by the removed member, beyond the cut-off the
    remover saw, and not written in the knowledge of the removal."""
    payload = removal.payload
    return (
        type(payload) is Remove
        and op.author == payload.member
        and op.seq > payload.op_cutoff
        and not in_past(removal, dict(op.deps))
    )


def resolve(create: GroupOp, ops: Iterable[GroupOp]) -> GroupState:
    """The state `create` and `ops` converge on (ops may include `create`, any order).

    A removal may cut off operations of the removed member that the order put
    before it (concurrent ones, or backdated ones): then the replay starts over
    without them. The set of cut-off operations only grows, so this ends (at most
    one pass per operation)."""
    ordered = sorted({op.key: op for op in (create, *ops)}.values(), key=lambda op: op.order)
    cut: dict[Key, str] = {}
    while True:
        s, valid, ignored, late = _replay(create, ordered, cut)
        if not late:
            break
        cut.update(late)
    return GroupState(
        create.group_id,
        create.author,
        s.name,
        dict(sorted(s.members.items())),
        frozenset(fp for fp in s.members if s.admin(fp)),
        tuple(valid),
        ignored,
    )


def post_verdict(state: GroupState, post: GroupPost) -> GroupError | None:
    """Why `post` does not count in `state`, or None when it does.

    The author must be a member as of the post's causal past (the last valid
    operation about it there is the create or an add), and no valid removal or
    leave outside that past may have cut it off before this seq."""
    deps = dict(post.deps)
    last: GroupOp | None = None
    for op in state.history_of(post.author):
        if in_past(op, deps):
            last = op
            continue
        payload = op.payload
        if type(payload) is Remove and post.seq > payload.post_cutoff:
            return GroupRemovedError("group_post: written after its author was removed")
        if type(payload) is Leave and post.seq > payload.post_cutoff:
            return GroupRemovedError("group_post: written after its author left")
    if last is None:
        return GroupNotMemberError("group_post: its author was not a member")
    if type(last.payload) is Remove:
        return GroupRemovedError("group_post: written after its author was removed")
    if type(last.payload) is Leave:
        return GroupRemovedError("group_post: written after its author left")
    return None

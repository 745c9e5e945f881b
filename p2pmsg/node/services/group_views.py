"""Group views for the API: what a `GroupReplica` holds, as `GroupView` / `GroupMessageView`.

Names: the user's petname for a member's key first (local names win, as in one-to-one
chats), else the name the group's signed history gives it; both stay raw here and
are sanitised where they are printed.
"""

from __future__ import annotations

from collections.abc import Callable

from p2pmsg.node.api import GroupMemberView, GroupMessageView, GroupView
from p2pmsg.protocol.groups import GroupPost, GroupReplica

#: fingerprint (hex) -> the user's own name for it, or None.
LocalName = Callable[[str], str | None]


def group_view(replica: GroupReplica, me: bytes, local_name: LocalName) -> GroupView:
    state = replica.state
    members = tuple(
        GroupMemberView(
            fingerprint=fp.hex(),
            name=local_name(fp.hex()) or info.name,
            admin=fp in state.admins,
            me=fp == me,
        )
        for fp, info in sorted(state.members.items(), key=lambda kv: kv[1].name)
    )
    return GroupView(
        id=replica.group_id.hex(),
        name=state.name,
        members=members,
        member=state.is_member(me),
        admin=me in state.admins,
    )


def author_name(replica: GroupReplica, author: bytes, local_name: LocalName) -> str:
    named = local_name(author.hex())
    if named:
        return named
    info = replica.state.members.get(author)
    if info is not None:
        return info.name
    for op in replica.state.history_of(author):  # a former member: the name it was given
        payload = op.payload
        member = getattr(payload, "member", None)
        if member is not None and getattr(member, "fingerprint", None) == author:
            return str(member.name)
    return author.hex()[:16]


def message_view(
    replica: GroupReplica,
    post: GroupPost,
    me: bytes,
    local_name: LocalName,
    delivered: int = 0,
    recipients: int = 0,
    deadline: float | None = None,
) -> GroupMessageView:
    return GroupMessageView(
        id=post_id(post),
        group=replica.group_id.hex(),
        group_name=replica.state.name,
        author=post.author.hex(),
        author_name=author_name(replica, post.author, local_name),
        direction="out" if post.author == me else "in",
        text=post.text,
        created=post.ts,
        ttl=post.ttl,
        delivered=delivered,
        recipients=recipients,
        deadline=deadline if post.text is not None else None,
    )


def post_id(post: GroupPost) -> str:
    return f"{post.author.hex()}:{post.seq}"


def parse_post_id(message_id: str) -> tuple[bytes, int] | None:
    author, _, seq = message_id.partition(":")
    try:
        raw = bytes.fromhex(author)
        number = int(seq)
    except ValueError:
        return None
    return (raw, number) if len(raw) == 32 and number > 0 else None

"""What a group replica reports (past tense, frozen), pulled with `next_event()`."""

from __future__ import annotations

from dataclasses import dataclass

from p2pmsg.errors import GroupError
from p2pmsg.protocol.groups.items import GroupPost
from p2pmsg.protocol.groups.state import GroupState


@dataclass(frozen=True, slots=True)
class PostShown:
    """A post now counts: show it, at its place in `GroupReplica.timeline()` order.
    Reported once per post (unless it was hidden in between); a stub (`post.text`
    None) counts like the post and has nothing to show but its place."""

    post: GroupPost


@dataclass(frozen=True, slots=True)
class PostFilled:
    """A post shown as a stub (its text had disappeared where it came from) got its
    text from another member's copy: show the text now."""

    post: GroupPost


@dataclass(frozen=True, slots=True)
class PostHidden:
    """A post shown before no longer counts: an operation that arrived later (its
    author's removal, concurrent with the post) rules it out."""

    post: GroupPost
    error: GroupError


@dataclass(frozen=True, slots=True)
class MembershipChanged:
    """The converged state changed (members, admins or name)."""

    state: GroupState


@dataclass(frozen=True, slots=True)
class ItemRefused:
    """An item that had waited for an earlier one was refused when it could finally
    be judged, or dropped because the gap never filled. The node logs
    `error.event` for it; the item that was handed to `receive` raises instead."""

    kind: str  # "op" or "post"
    author: bytes
    seq: int
    error: GroupError


GroupEvent = PostShown | PostFilled | PostHidden | MembershipChanged | ItemRefused

"""Anti-entropy: the summary two members exchange, and what one owes the other.

A summary says, per author, the highest seq up to which a member has handled
that author's operations and posts without a gap. Whoever receives a summary
answers with the items it holds above those marks (`missing_for`), operations
first and in replay order, so the receiver can deliver them without waiting;
then posts in display order. An answer carries at most `limit` items: the
receiver's next summary asks for the rest. Nothing here trusts the peer's
summary beyond its shape: a summary claiming more than it holds only means
it is sent less.

A summary also carries the sender's read marks (`read`): per author, the highest
post seq the member's user has read. With its `posts` marks it is the author's
receipt: `receipt_of` reads, for one author, how far a member holds and has read
that author's posts, clamped to what the member holds and the author wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from p2pmsg.protocol.groups.items import GroupOp, GroupPost, Item
from p2pmsg.protocol.groups.limits import MAX_SYNC_ITEMS

Marks = tuple[tuple[bytes, int], ...]


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """Per author fingerprint, the highest contiguous seq handled, sorted by fingerprint;
    authors with nothing handled are left out."""

    group_id: bytes
    ops: Marks
    posts: Marks
    #: Per author, the highest post seq the member's user has read (a claim, shown
    #: to nobody but that author; `receipt_of` clamps it).
    read: Marks = ()

    @classmethod
    def empty(cls, group_id: bytes) -> GroupSummary:
        """What a member that holds nothing yet (a new member) would send."""
        return cls(group_id, (), ())


def marks(upto: Mapping[bytes, int]) -> Marks:
    return tuple(sorted((fp, seq) for fp, seq in upto.items() if seq > 0))


def receipt_of(summary: GroupSummary, author: bytes, written: int) -> tuple[int, int]:
    """(delivered, read): how far the sending member holds and has read `author`'s posts,
    `author` having written `written` of them. A claim above what the member holds (its
    `posts` mark), or above what was written, counts only up to that."""
    delivered = min(dict(summary.posts).get(author, 0), written)
    return delivered, min(dict(summary.read).get(author, 0), delivered)


def missing_for(
    summary: GroupSummary,
    ops: Iterable[GroupOp],
    posts: Iterable[GroupPost],
    limit: int = MAX_SYNC_ITEMS,
) -> list[Item]:
    """The items among `ops` and `posts` above the summary's marks, at most `limit`."""
    have_ops, have_posts = dict(summary.ops), dict(summary.posts)
    out: list[Item] = sorted(
        (op for op in ops if op.seq > have_ops.get(op.author, 0)), key=lambda op: op.order
    )
    if len(out) >= limit:
        return out[:limit]
    wanted = sorted(
        (p for p in posts if p.seq > have_posts.get(p.author, 0)), key=lambda p: p.order
    )
    return out + wanted[: limit - len(out)]

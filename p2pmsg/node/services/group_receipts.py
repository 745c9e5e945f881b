"""Group receipts: who holds and who has read our posts (docs/PROTOCOL.md, "Groups",
Receipts), and the read marks we tell the others.

Two kinds of marks, both kept in the store (store/group_receipts.py) so they survive
a restart, both only ever raised:

* Theirs, for our posts: each member's summary says how far it holds our posts
  (`posts`) and how far its user has read them (`read`); `receipt_of` clamps the
  claim to what it holds and what we wrote.
* Ours, for everyone's posts: when the user has the group's conversation open (the
  rule of chat read receipts), every post shown then is read; our summaries carry
  these marks to the other members.
"""

from __future__ import annotations

import asyncio
import logging

from p2pmsg.errors import P2PMsgError
from p2pmsg.protocol.groups import GroupReplica, GroupSummary
from p2pmsg.protocol.groups.sync import Marks, marks, receipt_of
from p2pmsg.store import AsyncStore, GroupMark, Store

log = logging.getLogger(__name__)

Mark = tuple[int, int]  # (delivered, read), post seqs


class GroupReceipts:
    def __init__(self, me: bytes, store: AsyncStore) -> None:
        self._me = me
        self._store = store
        # group -> member -> (delivered, read) of our posts.
        self._theirs: dict[bytes, dict[bytes, Mark]] = {}
        # group -> author -> the highest of its post seqs our user has read.
        self._ours: dict[bytes, dict[bytes, int]] = {}
        #: Set whenever a member's receipt grows (`Groups.wait_delivered` waits on it).
        self.changed = asyncio.Event()

    async def load(self, group_id: bytes) -> None:
        theirs: dict[bytes, Mark] = {}
        ours: dict[bytes, int] = {}
        for mark in await self._store.run(Store.group_marks, group_id):
            if mark.author == self._me and mark.member != self._me:
                theirs[mark.member] = (mark.delivered, mark.read)
            elif mark.member == self._me and mark.author != self._me:
                ours[mark.author] = mark.read
        self._theirs[group_id] = theirs
        self._ours[group_id] = ours

    def of(self, group_id: bytes, member: bytes) -> Mark:
        return self._theirs.get(group_id, {}).get(member, (0, 0))

    def read_marks(self, replica: GroupReplica) -> Marks:
        """Our read marks as a summary carries them: never above what we hold."""
        held = dict(replica.summary().posts)
        ours = self._ours.get(replica.group_id, {})
        return marks({a: min(seq, held.get(a, 0)) for a, seq in ours.items()})

    async def acknowledge(
        self, replica: GroupReplica, member: bytes, summary: GroupSummary
    ) -> tuple[Mark, Mark] | None:
        """Take a member's summary as its receipt for our posts: (before, after) if it
        grew, else None."""
        group_id = replica.group_id
        written = dict(replica.summary().posts).get(self._me, 0)
        claim = receipt_of(summary, self._me, written)
        before = self.of(group_id, member)
        after = (max(before[0], claim[0]), max(before[1], claim[1]))
        if after == before:
            return None
        if not await self._save(group_id, GroupMark(member, self._me, *after)):
            return None
        self._theirs.setdefault(group_id, {})[member] = after
        self.changed.set()
        return before, after

    async def mark_read(self, replica: GroupReplica) -> bool:
        """Every post shown now is read: True if our marks grew (tell the members)."""
        group_id = replica.group_id
        shown: dict[bytes, int] = {}
        for post in replica.timeline():
            if post.author != self._me and post.seq > shown.get(post.author, 0):
                shown[post.author] = post.seq
        ours = self._ours.setdefault(group_id, {})
        grown = {a: seq for a, seq in shown.items() if seq > ours.get(a, 0)}
        if not grown:
            return False
        rows = [GroupMark(self._me, a, 0, seq) for a, seq in grown.items()]
        if not await self._save(group_id, *rows):
            return False
        ours.update(grown)
        return True

    async def _save(self, group_id: bytes, *rows: GroupMark) -> bool:
        try:
            await self._store.run(Store.raise_group_marks, group_id, list(rows))
        except P2PMsgError as exc:  # a receipt lost, nothing more: the next summary retells it
            log.warning("cannot store receipts of group %s: %s", group_id.hex()[:16], exc)
            return False
        return True

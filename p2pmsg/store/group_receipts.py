"""Group receipts (schema v12): how far a member holds and has read an author's posts.

A mark is (group, member, author) -> (delivered, read), both post seqs of `author`:
`member` holds that author's posts up to `delivered` and its user has read them up to
`read` (docs/PROTOCOL.md, "Groups", Receipts). Marks only grow: `raise_group_marks`
keeps the higher of the stored and the given value of each, so a stale or replayed
summary changes nothing. The node stores the other members' marks for its own posts
(their receipts to us) and its own read marks for everyone's posts (what it tells the
others), so a group has at most two rows per key it ever had (256, the group core's
cap); rows go with their group (`delete_group`, by the foreign key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from p2pmsg.store.base import StoreBase

_KEY_LEN = 32


@dataclass(frozen=True, slots=True)
class GroupMark:
    member: bytes  # fingerprint, 32 bytes
    author: bytes  # fingerprint, 32 bytes
    delivered: int
    read: int


class GroupReceiptsMixin(StoreBase):
    def raise_group_marks(self, group_id: bytes, marks: Sequence[GroupMark]) -> list[GroupMark]:
        """Raise the marks of a group we hold (never lower them), in one transaction.
        Returns the marks that grew, as they now stand."""
        for mark in marks:
            if len(mark.member) != _KEY_LEN or len(mark.author) != _KEY_LEN:
                raise ValueError("a group mark names two 32-byte fingerprints")
            if mark.delivered < 0 or mark.read < 0:
                raise ValueError("a group mark is a post seq, not negative")
        grown: list[GroupMark] = []
        with self._write() as conn:
            for mark in marks:
                row = conn.execute(
                    "SELECT delivered, read FROM group_receipts "
                    "WHERE group_id = ? AND member = ? AND author = ?",
                    (group_id, mark.member, mark.author),
                ).fetchone()
                delivered, read = (int(row[0]), int(row[1])) if row else (0, 0)
                new = GroupMark(
                    mark.member, mark.author, max(delivered, mark.delivered), max(read, mark.read)
                )
                if row is not None and (new.delivered, new.read) == (delivered, read):
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO group_receipts "
                    "(group_id, member, author, delivered, read) VALUES (?, ?, ?, ?, ?)",
                    (group_id, new.member, new.author, new.delivered, new.read),
                )
                if (new.delivered, new.read) != (delivered, read):
                    grown.append(new)
        return grown

    def group_marks(self, group_id: bytes) -> list[GroupMark]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT member, author, delivered, read FROM group_receipts "
                "WHERE group_id = ? ORDER BY member, author",
                (group_id,),
            ).fetchall()
        return [GroupMark(bytes(m), bytes(a), int(d), int(r)) for m, a, d, r in rows]

"""Groups (schema v10): the groups this profile is in and the signed items it holds.

The store keeps items exactly as their authors signed them, as (kind, body,
signature) rows; what a group *is* (name, members, timeline) is never stored
but replayed from them by `GroupReplica.restore`, which verifies every item
again, so a row edited on disk is refused on load rather than believed. Bodies
hold names and text: they are sealed, bound to (group, kind, author, seq), so a
body moved to another row fails authentication.

Limits (a peer decides what arrives here, so each table is bounded):

* `MAX_GROUPS` groups per profile; the node refuses to join more.
* Operations: at most 1024 per group (the group core's own cap, enforced on
  the receive path before anything reaches the store).
* `MAX_POSTS_PER_GROUP` posts per group: past it, new posts of that group are
  not stored (`GroupStoreFullError`); the node logs `rate_limited`. Anti-entropy
  names items by contiguous seq, so old posts cannot be dropped to make room
  without members sending them again; a full group is a visible, bounded stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from p2pmsg.errors import StoreError
from p2pmsg.store.base import StoreBase

#: Groups one profile may be in at once.
MAX_GROUPS = 256
#: Posts stored per group (see the module docstring).
MAX_POSTS_PER_GROUP = 100_000
GROUP_ID_LEN = 16
AUTHOR_LEN = 32


class GroupStoreFullError(StoreError):
    """A group cap of this module was reached; nothing of the batch was stored."""


@dataclass(frozen=True, slots=True)
class StoredGroupItem:
    """One signed item as the store keeps it (the author's bytes, untouched)."""

    kind: str  # "op" or "post"
    author: bytes  # fingerprint, 32 bytes
    seq: int
    body: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class StoredGroup:
    id: bytes
    creator: bytes
    joined: float
    create: StoredGroupItem
    items: tuple[StoredGroupItem, ...]  # every other item, operations first


def _row_key(group_id: bytes, kind: str, author: bytes, seq: int) -> bytes:
    return group_id + kind.encode("ascii") + author + seq.to_bytes(8, "big")


class GroupsMixin(StoreBase):
    def save_group_items(
        self,
        group_id: bytes,
        creator: bytes,
        items: Sequence[StoredGroupItem],
        now: float,
    ) -> int:
        """Store items of a group (making its row on first use), in one transaction.

        Items already held (same group, kind, author and seq) are left as they are:
        the group core never holds two bodies under one key. Returns how many rows
        were new. Raises `GroupStoreFullError` at `MAX_GROUPS` or `MAX_POSTS_PER_GROUP`."""
        if len(group_id) != GROUP_ID_LEN or len(creator) != AUTHOR_LEN:
            raise ValueError("a group id is 16 bytes and its creator's fingerprint 32")
        for item in items:
            if item.kind not in ("op", "post") or len(item.author) != AUTHOR_LEN:
                raise ValueError(f"not a group item row: {item.kind!r}")
        keys = [_row_key(group_id, i.kind, i.author, i.seq) for i in items]
        sealed = self._sealer.seal_many(
            [i.body for i in items], table="group_items", column="body", rows=keys
        )
        with self._write() as conn:
            row = conn.execute("SELECT posts FROM groups WHERE id = ?", (group_id,)).fetchone()
            if row is None:
                (count,) = conn.execute("SELECT count(*) FROM groups").fetchone()
                if count >= MAX_GROUPS:
                    raise GroupStoreFullError(f"this profile is in {MAX_GROUPS} groups already")
                conn.execute(
                    "INSERT INTO groups (id, creator, joined) VALUES (?, ?, ?)",
                    (group_id, creator, now),
                )
                posts = 0
            else:
                posts = int(row[0])
            new = new_posts = 0
            for item, body in zip(items, sealed, strict=True):
                cur = conn.execute(
                    "INSERT OR IGNORE INTO group_items "
                    "(group_id, kind, author, seq, body, signature, received) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (group_id, item.kind, item.author, item.seq, body, item.signature, now),
                )
                new += cur.rowcount
                if item.kind == "post":
                    new_posts += cur.rowcount
            if posts + new_posts > MAX_POSTS_PER_GROUP:
                raise GroupStoreFullError(
                    f"the group holds {MAX_POSTS_PER_GROUP} posts, the most stored per group"
                )
            if new_posts:
                conn.execute(
                    "UPDATE groups SET posts = posts + ? WHERE id = ?", (new_posts, group_id)
                )
        return new

    def group_ids(self) -> list[bytes]:
        with self._read() as conn:
            return [bytes(r[0]) for r in conn.execute("SELECT id FROM groups ORDER BY joined")]

    def load_group(self, group_id: bytes) -> StoredGroup | None:
        """The group's create and its other items (operations first, then posts, each in
        author seq order: the replica orders them itself; this only saves it waiting)."""
        with self._read() as conn:
            head = conn.execute(
                "SELECT creator, joined FROM groups WHERE id = ?", (group_id,)
            ).fetchone()
            if head is None:
                return None
            rows = conn.execute(
                "SELECT kind, author, seq, body, signature FROM group_items "
                "WHERE group_id = ? ORDER BY kind, seq, author",
                (group_id,),
            ).fetchall()
        creator = bytes(head[0])
        create: StoredGroupItem | None = None
        items: list[StoredGroupItem] = []
        for kind, author, seq, body, signature in rows:
            author = bytes(author)
            plain = self._sealer.open(
                body, table="group_items", column="body", row=_row_key(group_id, kind, author, seq)
            )
            item = StoredGroupItem(kind, author, int(seq), plain, bytes(signature))
            if kind == "op" and author == creator and seq == 1:
                create = item
            else:
                items.append(item)
        if create is None:
            raise StoreError(f"group {group_id.hex()[:16]} has lost its create operation")
        return StoredGroup(group_id, creator, float(head[1]), create, tuple(items))

    def delete_group(self, group_id: bytes) -> bool:
        with self._write() as conn:
            conn.execute("DELETE FROM group_items WHERE group_id = ?", (group_id,))
            return conn.execute("DELETE FROM groups WHERE id = ?", (group_id,)).rowcount > 0

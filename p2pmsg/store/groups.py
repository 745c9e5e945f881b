"""Groups (schema v10, post texts v12): the groups this profile is in and the signed
items it holds.

The store keeps items exactly as their authors signed them, as (kind, body,
signature) rows; what a group *is* (name, members, timeline) is never stored
but replayed from them by `GroupReplica.restore`, which verifies every item
again, so a row edited on disk is refused on load rather than believed. Bodies
hold names and text: they are sealed, bound to (group, kind, author, seq), so a
body moved to another row fails authentication.

A post's text is kept apart from its signed body (v12), sealed the same way
(msgpack [salt, text], bound to its row): NULL is a *stub*, whose text never
came or disappeared here. Disappearing posts follow the chat's rules: a post
with a `ttl` gets `deadline = shown + ttl` when this member first shows it
(`start_group_deadlines`; the author's own post when it is sent), and
`purge_group_texts` deletes the text at the deadline and keeps the body. A
post whose text is NULL with a deadline disappeared here: `save_group_items`
never fills it again.

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

import contextlib
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import msgpack

from p2pmsg.errors import StoreCorruptError, StoreError
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
    text: tuple[bytes, str] | None = None  # a post's (salt, text); None: a stub
    ttl: float | None = None  # a post's disappearing timer
    deadline: float | None = None  # when its text is deleted (set once shown or sent)

    @property
    def gone(self) -> bool:
        """The text disappeared here (deleted at its deadline): it stays deleted."""
        return self.text is None and self.deadline is not None


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
        with_text = [n for n, i in enumerate(items) if i.text is not None]
        sealed_texts = dict(
            zip(
                with_text,
                self._sealer.seal_many(
                    [_pack_text(items[n].text) for n in with_text],  # type: ignore[arg-type]
                    table="group_items",
                    column="text",
                    rows=[keys[n] for n in with_text],
                ),
                strict=True,
            )
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
            for n, (item, body) in enumerate(zip(items, sealed, strict=True)):
                text = sealed_texts.get(n)
                cur = conn.execute(
                    "INSERT OR IGNORE INTO group_items "
                    "(group_id, kind, author, seq, body, signature, received, text, ttl, "
                    "deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        group_id,
                        item.kind,
                        item.author,
                        item.seq,
                        body,
                        item.signature,
                        now,
                        text,
                        item.ttl,
                        item.deadline if text is not None else None,
                    ),
                )
                new += cur.rowcount
                if item.kind == "post":
                    new_posts += cur.rowcount
                if not cur.rowcount and text is not None:
                    # A stub held here gets its text, unless the text disappeared here.
                    conn.execute(
                        "UPDATE group_items SET text = ? WHERE group_id = ? AND kind = ? "
                        "AND author = ? AND seq = ? AND text IS NULL AND deadline IS NULL",
                        (text, group_id, item.kind, item.author, item.seq),
                    )
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
                "SELECT kind, author, seq, body, signature, text, ttl, deadline FROM group_items "
                "WHERE group_id = ? ORDER BY kind, seq, author",
                (group_id,),
            ).fetchall()
        creator = bytes(head[0])
        create: StoredGroupItem | None = None
        items: list[StoredGroupItem] = []
        for kind, author, seq, body, signature, text, ttl, deadline in rows:
            author = bytes(author)
            key = _row_key(group_id, kind, author, seq)
            plain = self._sealer.open(body, table="group_items", column="body", row=key)
            item = StoredGroupItem(
                kind,
                author,
                int(seq),
                plain,
                bytes(signature),
                None
                if text is None
                else _unpack_text(
                    self._sealer.open(text, table="group_items", column="text", row=key)
                ),
                None if ttl is None else float(ttl),
                None if deadline is None else float(deadline),
            )
            if kind == "op" and author == creator and seq == 1:
                create = item
            else:
                items.append(item)
        if create is None:
            raise StoreError(f"group {group_id.hex()[:16]} has lost its create operation")
        return StoredGroup(group_id, creator, float(head[1]), create, tuple(items))

    # --- disappearing posts --------------------------------------------------------

    def start_group_deadlines(
        self, group_id: bytes, posts: Sequence[tuple[bytes, int]], now: float
    ) -> dict[tuple[bytes, int], float]:
        """The posts (author, seq) were shown: those with a timer, a text and no deadline
        yet get `now + ttl`. Returns the deadlines set (post -> deadline)."""
        started: dict[tuple[bytes, int], float] = {}
        with self._write() as conn:
            for author, seq in posts:
                where = (
                    "WHERE group_id = ? AND kind = 'post' AND author = ? AND seq = ? "
                    "AND ttl IS NOT NULL AND deadline IS NULL AND text IS NOT NULL"
                )
                row = conn.execute(
                    "SELECT ttl FROM group_items " + where,  # noqa: S608 - constant SQL
                    (group_id, author, seq),
                ).fetchone()
                if row is None:
                    continue
                deadline = now + float(row[0])
                conn.execute(
                    "UPDATE group_items SET deadline = ? " + where,  # noqa: S608 - constant SQL
                    (deadline, group_id, author, seq),
                )
                started[(author, seq)] = deadline
        return started

    def purge_group_texts(self, now: float) -> dict[bytes, list[tuple[bytes, int]]]:
        """Delete the texts whose deadline has passed (the signed bodies stay: a member's
        gap rule and a later member's history need them); returns them per group."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT group_id, author, seq FROM group_items WHERE kind = 'post' "
                "AND deadline IS NOT NULL AND text IS NOT NULL AND deadline <= ? "
                "ORDER BY group_id, author, seq",
                (now,),
            ).fetchall()
            conn.executemany(
                "UPDATE group_items SET text = NULL WHERE group_id = ? AND kind = 'post' "
                "AND author = ? AND seq = ?",
                rows,
            )
        if rows:
            # As for chats: push the overwritten pages out of the WAL too (best effort).
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        gone: dict[bytes, list[tuple[bytes, int]]] = defaultdict(list)
        for group_id, author, seq in rows:
            gone[bytes(group_id)].append((bytes(author), int(seq)))
        return dict(gone)

    def next_group_expiry(self) -> float | None:
        """The earliest deadline of a group post's text still held."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT min(deadline) FROM group_items "
                "WHERE deadline IS NOT NULL AND text IS NOT NULL"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def set_group_ttl(self, group_id: bytes, ttl: float | None) -> None:
        """The group's own disappearing timer for new posts (as `set_disappearing_ttl` is
        a chat's): seconds, `math.inf` for "off here", None for none of its own."""
        if ttl is not None and not ttl > 0:  # `not >`: NaN is refused too
            raise ValueError("a disappearing timer must be positive")
        with self._write() as conn:
            if not conn.execute(
                "UPDATE groups SET disappearing_ttl = ? WHERE id = ?", (ttl, group_id)
            ).rowcount:
                raise StoreError(f"no group {group_id.hex()[:16]}")

    def group_ttl(self, group_id: bytes) -> float | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT disappearing_ttl FROM groups WHERE id = ?", (group_id,)
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def delete_group(self, group_id: bytes) -> bool:
        with self._write() as conn:
            conn.execute("DELETE FROM group_items WHERE group_id = ?", (group_id,))
            return conn.execute("DELETE FROM groups WHERE id = ?", (group_id,)).rowcount > 0


def _pack_text(text: tuple[bytes, str]) -> bytes:
    return msgpack.packb([text[0], text[1]], use_bin_type=True)  # type: ignore[no-any-return]


def _unpack_text(data: bytes) -> tuple[bytes, str]:
    try:
        salt, text = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.ExtraData) as exc:
        raise StoreCorruptError(f"stored group post text is malformed: {exc}") from None
    if type(salt) is not bytes or type(text) is not str:
        raise StoreCorruptError("stored group post text is malformed")
    return salt, text

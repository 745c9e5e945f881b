"""Messages: the outbox, receipts, de-duplication, history and disappearing bodies.

Delivery rests on three facts kept here. A message is committed (status
`queued`) before anyone tries to send it, so a crash can only cause a resend,
never a loss. The outbox (`queued` and `sent`, not yet acknowledged) is read
back in `seq` order, so a reconnect resends in the order the user wrote.
Incoming ids are unique across the whole table, so a resent message is
recognised and stored once (`insert_incoming_many` says which were new).

Receipts are scoped to the peer that sends them: one peer cannot mark
messages to another peer delivered or read, even if it learnt their ids.
The hot path (tens of thousands of messages with receipts) uses the batch
methods: one transaction per batch, and inside it one statement per chunk of
up to 256 rows (multi-row `VALUES`, `IN (...)`, with `RETURNING` saying which
rows changed), not one per message. Chunk sizes are powers of two, so a few
prepared statements serve every batch size from the connection's cache.

Message ids start with the writer's clock in milliseconds (48 bits) followed
by 80 random bits. Random-only ids land on random pages of the unique index,
so every batch dirtied (and wrote to the WAL) a page per message; ids that
grow with time append at the right edge and halve the CPU of an insert. The
prefix tells nothing new: the creation time travels with the message and is
stored in the clear anyway. The random part keeps ids unguessable, so no peer
can pre-empt (and so suppress, by de-duplication) a message someone else will
send. Peers treat ids as opaque 16 bytes; fully random ones work as before.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from p2pmsg.store.base import StoreBase, normalize_fingerprint
from p2pmsg.store.records import (
    MESSAGE_ID_LEN,
    EnqueuedBatch,
    IncomingMessage,
    MessageRecord,
)

_COLUMNS = (
    "m.seq, m.id, p.fingerprint, m.direction, m.created, m.status, m.sent_at, "
    "m.delivered_at, m.read_at, m.ttl, m.deadline, m.body"
)
_FROM = "FROM messages m JOIN peers p ON p.id = m.peer_id"
_TIME_PREFIX_LEN = 6
_RANDOM_LEN = MESSAGE_ID_LEN - _TIME_PREFIX_LEN
#: Largest chunk of rows per statement: 256 rows of 5 parameters stay far below
#: SQLite's 32,766 bound parameters, and bigger chunks gain nothing measurable.
MAX_CHUNK = 256


def new_message_ids(count: int, now: float) -> list[bytes]:
    """`count` fresh ids: `now` in milliseconds (48 bits, big-endian), then 80 random bits."""
    millis = min(max(int(now * 1000), 0), (1 << 48) - 1)
    prefix = millis.to_bytes(_TIME_PREFIX_LEN, "big")
    noise = os.urandom(_RANDOM_LEN * count)
    return [prefix + noise[i : i + _RANDOM_LEN] for i in range(0, len(noise), _RANDOM_LEN)]


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    """(start, size) pieces of `count` rows, every size a power of two <= MAX_CHUNK:
    at most nine statement shapes per kind, each prepared once and then cached."""
    start = 0
    size = MAX_CHUNK
    while start < count:
        while size > count - start:
            size //= 2
        yield start, size
        start += size


def _placeholders(size: int, row: str) -> str:
    return ", ".join([row] * size)


def _check_ids(ids: Iterable[bytes]) -> list[bytes]:
    checked = list(ids)
    for message_id in checked:
        if len(message_id) != MESSAGE_ID_LEN:
            raise ValueError(f"a message id is {MESSAGE_ID_LEN} bytes")
    return checked


class MessagesMixin(StoreBase):
    def _message_from_row(self, row: tuple[Any, ...]) -> MessageRecord:
        (
            seq,
            message_id,
            fp,
            direction,
            created,
            status,
            sent_at,
            delivered_at,
            read_at,
            ttl,
            deadline,
            body,
        ) = row
        text = self._sealer.open_optional_text(
            body, table="messages", column="body", row=message_id
        )
        return MessageRecord(
            id=message_id,
            peer=fp,
            direction=direction,
            text=text,
            created=created,
            status=status,
            seq=seq,
            sent_at=sent_at,
            delivered_at=delivered_at,
            read_at=read_at,
            ttl=ttl,
            deadline=deadline,
        )

    def _seal_bodies(self, ids: Sequence[bytes], texts: Sequence[str]) -> list[bytes]:
        return self._sealer.seal_many(
            [t.encode("utf-8") for t in texts], table="messages", column="body", rows=ids
        )

    def _conversation_ttl(self, conn: sqlite3.Connection, peer_id: int) -> float | None:
        ttl = conn.execute(
            "SELECT disappearing_ttl FROM peers WHERE id = ?", (peer_id,)
        ).fetchone()[0]
        # None: no timer of its own; inf: explicitly never. No timer on the message either way.
        return None if ttl is None or math.isinf(ttl) else float(ttl)

    # --- outgoing ----------------------------------------------------------------------

    def enqueue_outgoing(
        self, peer: str | bytes, text: str, now: float, ttl: float | None = None
    ) -> MessageRecord:
        """Commit one message for sending (status `queued`) and return it."""
        return self.enqueue_outgoing_many(peer, [text], now, ttl)[0]

    def enqueue_outgoing_many(
        self, peer: str | bytes, texts: Sequence[str], now: float, ttl: float | None = None
    ) -> list[MessageRecord]:
        """Commit several messages, in this order, in one transaction.

        `ttl` None means the conversation's disappearing timer (if any).
        """
        return self.enqueue_outgoing_batch(peer, texts, now, ttl).records(texts)

    def enqueue_outgoing_batch(
        self, peer: str | bytes, texts: Sequence[str], now: float, ttl: float | None = None
    ) -> EnqueuedBatch:
        """`enqueue_outgoing_many` that returns ids and order only (the chat hot path)."""
        if ttl is not None and ttl <= 0:
            raise ValueError("a disappearing timer must be positive")
        fp = normalize_fingerprint(peer)
        ids = new_message_ids(len(texts), now)
        bodies = self._seal_bodies(ids, texts)
        with self._write() as conn:
            peer_id = self._peer_id(conn, fp)
            effective_ttl = ttl if ttl is not None else self._conversation_ttl(conn, peer_id)
            before = _last_seq(conn)
            for start, size in _chunks(len(ids)):
                params: list[Any] = []
                for i in range(start, start + size):
                    params += (ids[i], peer_id, now, effective_ttl, bodies[i])
                conn.execute(_enqueue_sql(size), params)
            new = _new_seqs(conn, before, ids)
        return EnqueuedBatch(fp, tuple(ids), tuple(new[mid] for mid in ids), now, effective_ttl)

    def _update_outgoing(
        self,
        peer: str | bytes,
        ids: Iterable[bytes],
        transition: tuple[str, str],
        args: tuple[Any, ...],
    ) -> list[bytes]:
        set_clause, allowed_from = transition
        fp = normalize_fingerprint(peer)
        # In the caller's order, each id once (a repeated id changes only the first time).
        unique = list(dict.fromkeys(_check_ids(ids)))
        with self._write() as conn:
            peer_id = self._peer_id(conn, fp)
            # Usually every id changes (a receipt for messages in flight). Try that without
            # RETURNING: reading rows back costs a GIL release and re-acquire per row,
            # and while the event loop is busy each re-acquire waits for it (so a batch
            # of receipts took ~50 times as long). Only when some id did not change is
            # the step undone and redone, saying which did.
            conn.execute("SAVEPOINT every_id")
            count = 0
            for start, size in _chunks(len(unique)):
                count += conn.execute(
                    _update_sql(set_clause, allowed_from, size, returning=False),
                    (*args, *unique[start : start + size], peer_id),
                ).rowcount
            if count == len(unique):
                conn.execute("RELEASE every_id")
                return unique
            conn.execute("ROLLBACK TO every_id")
            conn.execute("RELEASE every_id")
            changed: set[bytes] = set()
            for start, size in _chunks(len(unique)):
                changed.update(
                    row[0]
                    for row in conn.execute(
                        _update_sql(set_clause, allowed_from, size, returning=True),
                        (*args, *unique[start : start + size], peer_id),
                    )
                )
        return [i for i in unique if i in changed]

    def mark_sent_many(self, peer: str | bytes, ids: Iterable[bytes], now: float) -> list[bytes]:
        """queued -> sent (handed to the session). Returns the ids that changed."""
        return self._update_outgoing(peer, ids, _MARK_SENT, (now,))

    def mark_delivered_many(
        self, peer: str | bytes, ids: Iterable[bytes], now: float
    ) -> list[bytes]:
        """The peer's delivery receipt: queued/sent -> delivered. Returns the ids that changed."""
        return self._update_outgoing(peer, ids, _MARK_DELIVERED, (now, now))

    def mark_read_many(self, peer: str | bytes, ids: Iterable[bytes], now: float) -> list[bytes]:
        """The peer's read receipt: -> read, and the disappearing deadline starts now."""
        return self._update_outgoing(peer, ids, _MARK_READ, (now, now, now, now))

    def mark_failed_many(self, peer: str | bytes, ids: Iterable[bytes]) -> list[bytes]:
        """Give up on unacknowledged messages (e.g. the user discarded them)."""
        return self._update_outgoing(peer, ids, _MARK_FAILED, ())

    def outbox(self, peer: str | bytes) -> list[MessageRecord]:
        """Outgoing messages not yet acknowledged (queued or sent), in sending order."""
        fp = normalize_fingerprint(peer)
        with self._read() as conn:
            peer_id = self._peer_id(conn, fp)
            rows = conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE m.peer_id = ? AND "
                "m.direction = 'out' AND m.status IN ('queued', 'sent') "
                "ORDER BY m.seq",
                (peer_id,),
            ).fetchall()
        return [self._message_from_row(row) for row in rows]

    def peers_with_outbox(self) -> list[str]:
        """Fingerprints that have messages waiting: whom to dial first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT p.fingerprint " + _FROM + " WHERE "
                "m.direction = 'out' AND m.status IN ('queued', 'sent') "
                "ORDER BY p.fingerprint"
            ).fetchall()
        return [row[0] for row in rows]

    # --- incoming ----------------------------------------------------------------------

    def insert_incoming(
        self, peer: str | bytes, message: IncomingMessage, now: float
    ) -> MessageRecord | None:
        """Store one received message; None if its id was already known (a resend)."""
        stored = self.insert_incoming_many(peer, [message], now)
        return stored[0] if stored else None

    def insert_incoming_many(
        self, peer: str | bytes, messages: Sequence[IncomingMessage], now: float
    ) -> list[MessageRecord]:
        """Store received messages in one transaction; returns only the new ones, in order.

        Every id, new or not, should still be acknowledged to the sender: a
        duplicate means our earlier receipt was lost.
        """
        fp = normalize_fingerprint(peer)
        new: list[MessageRecord] = []
        for position, seq in self.insert_incoming_positions(fp, messages, now):
            m = messages[position]
            new.append(
                MessageRecord(
                    id=m.id,
                    peer=fp,
                    direction="in",
                    text=m.text,
                    created=m.created,
                    status="delivered",
                    seq=seq,
                    sent_at=None,
                    delivered_at=now,
                    read_at=None,
                    ttl=None if m.ttl is None else float(m.ttl),
                    deadline=None,
                )
            )
        return new

    def insert_incoming_positions(
        self, peer: str | bytes, messages: Sequence[IncomingMessage], now: float
    ) -> list[tuple[int, int]]:
        """`insert_incoming_many` without a record per message (the chat hot path):
        (position in `messages`, seq) of each new one, in order."""
        fp = normalize_fingerprint(peer)
        ids = _check_ids(m.id for m in messages)
        ttls: list[float | None] = []
        for m in messages:
            if m.ttl is not None and m.ttl <= 0:
                raise ValueError("a disappearing timer must be positive")
            ttls.append(None if m.ttl is None else float(m.ttl))
        bodies = self._seal_bodies(ids, [m.text for m in messages])
        with self._write() as conn:
            peer_id = self._peer_id(conn, fp)
            before = _last_seq(conn)
            for start, size in _chunks(len(ids)):
                params: list[Any] = []
                for i in range(start, start + size):
                    params += (ids[i], peer_id, messages[i].created, now, ttls[i], bodies[i])
                # ON CONFLICT(id) skips only a known id (it gets no seq, so the new rows
                # are exactly those after `before`); any other violation raises.
                conn.execute(_incoming_sql(size), params)
            seqs = _new_seqs(conn, before, ids)
        new: list[tuple[int, int]] = []
        for position, message_id in enumerate(ids):
            seq = seqs.pop(message_id, None)  # pop: an id twice in one batch is new only once
            if seq is not None:
                new.append((position, seq))
        return new

    def mark_conversation_read(self, peer: str | bytes, now: float) -> list[bytes]:
        """Mark every unread incoming message read; returns their ids (send read receipts).

        Disappearing messages get their deadline (now + ttl) here.
        """
        fp = normalize_fingerprint(peer)
        with self._write() as conn:
            peer_id = self._peer_id(conn, fp)
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM messages WHERE peer_id = ? AND direction = 'in' "
                    "AND read_at IS NULL ORDER BY seq",
                    (peer_id,),
                )
            ]
            conn.execute(
                "UPDATE messages SET status = 'read', read_at = ?, "
                "deadline = CASE WHEN ttl IS NULL THEN NULL ELSE ? + ttl END, "
                "read_receipt_due = 1 "
                "WHERE peer_id = ? AND direction = 'in' AND read_at IS NULL",
                (now, now, peer_id),
            )
        return ids

    def read_receipts_due(self, peer: str | bytes, limit: int = 4096) -> list[bytes]:
        """Incoming messages read here whose read receipt no session has taken yet,
        oldest first (what `mark_conversation_read` marked, until `read_receipts_told`)."""
        fp = normalize_fingerprint(peer)
        with self._read() as conn:
            peer_id = self._peer_id(conn, fp)
            return [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM messages WHERE peer_id = ? AND read_receipt_due = 1 "
                    "ORDER BY seq LIMIT ?",
                    (peer_id, limit),
                )
            ]

    def read_receipts_told(self, peer: str | bytes, ids: Iterable[bytes]) -> None:
        """These read receipts were handed to a live session: no longer owed."""
        fp = normalize_fingerprint(peer)
        checked = _check_ids(ids)
        with self._write() as conn:
            peer_id = self._peer_id(conn, fp)
            for start, size in _chunks(len(checked)):
                conn.execute(
                    f"UPDATE messages SET read_receipt_due = 0 "  # noqa: S608
                    f"WHERE id IN ({_placeholders(size, '?')}) AND +peer_id = ?",
                    (*checked[start : start + size], peer_id),
                )

    # --- reading -----------------------------------------------------------------------

    def last_seq(self) -> int:
        """The newest message's sequence number (0 for an empty store)."""
        with self._read() as conn:
            return _last_seq(conn)

    def unread_incoming_among(
        self, peer: str | bytes, ids: Sequence[bytes], at_most_seq: int
    ) -> list[MessageRecord]:
        """The unread incoming messages from `peer` among `ids` stored with a seq of at
        most `at_most_seq`, in seq order. A resend of one of them after a crash means
        the crash came between storing it and acknowledging it, so it may never have
        been shown: the node shows it again (the id lets a reader tell)."""
        fp = normalize_fingerprint(peer)
        ids = list(dict.fromkeys(ids))
        rows: list[Any] = []
        with self._read() as conn:
            peer_id = self._peer_id(conn, fp)
            for start, size in _chunks(len(ids)):
                marks = ",".join("?" * size)
                rows += conn.execute(
                    f"SELECT {_COLUMNS} {_FROM} WHERE m.id IN ({marks}) AND m.peer_id = ? "
                    "AND m.direction = 'in' AND m.read_at IS NULL AND m.seq <= ?",
                    (*ids[start : start + size], peer_id, at_most_seq),
                ).fetchall()
        records = [self._message_from_row(row) for row in rows]
        return sorted(records, key=lambda r: r.seq)

    def get_message(self, message_id: bytes) -> MessageRecord | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE m.id = ?", (message_id,)
            ).fetchone()
        return self._message_from_row(row) if row else None

    def conversation(
        self, peer: str | bytes, limit: int = 200, before_seq: int | None = None
    ) -> list[MessageRecord]:
        """A page of history, oldest first: the `limit` messages before `before_seq`
        (None: the newest). Pass the first record's `seq` to page further back."""
        fp = normalize_fingerprint(peer)
        with self._read() as conn:
            peer_id = self._peer_id(conn, fp)
            rows = conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE m.peer_id = ? AND m.seq < ? "
                "ORDER BY m.seq DESC LIMIT ?",
                (peer_id, before_seq if before_seq is not None else 2**63 - 1, limit),
            ).fetchall()
        return [self._message_from_row(row) for row in reversed(rows)]

    def unread_counts(self) -> dict[str, int]:
        """Unread incoming messages per peer fingerprint (peers with none are absent)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT p.fingerprint, count(*) " + _FROM + " WHERE "
                "m.direction = 'in' AND m.read_at IS NULL "
                "GROUP BY p.fingerprint"
            ).fetchall()
        return {fp: int(n) for fp, n in rows}

    # --- disappearing messages ---------------------------------------------------------

    def purge_expired(self, now: float) -> dict[str, list[bytes]]:
        """Delete the bodies whose deadline has passed; returns their ids per peer.

        The rows stay (without bodies) so a late resend of the same id is still
        recognised as a duplicate instead of bringing the message back.
        """
        with self._write() as conn:
            rows = conn.execute(
                "SELECT m.id, p.fingerprint " + _FROM + " WHERE "
                "m.deadline IS NOT NULL AND m.body IS NOT NULL AND "
                "m.deadline <= ? ORDER BY m.seq",
                (now,),
            ).fetchall()
            conn.executemany(
                "UPDATE messages SET body = NULL WHERE id = ?", [(row[0],) for row in rows]
            )
        if rows:
            # Push the overwritten pages out of the WAL too (secure_delete covers the
            # main file); best effort, a busy checkpoint simply happens later.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        expired: dict[str, list[bytes]] = defaultdict(list)
        for message_id, fp in rows:
            expired[fp].append(message_id)
        return dict(expired)

    def next_expiry(self) -> float | None:
        """The earliest pending deadline, so the node can sleep until then."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT min(deadline) FROM messages WHERE deadline IS NOT NULL AND body IS NOT NULL"
            ).fetchone()
        return None if row[0] is None else float(row[0])


def _last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0])


def _new_seqs(conn: sqlite3.Connection, before: int, ids: Sequence[bytes]) -> dict[bytes, int]:
    """id -> seq of the rows this write transaction just inserted (all with seq > `before`).

    Not read back with RETURNING: that costs a GIL release and re-acquire per row,
    and while the event loop is busy each re-acquire waits for it (a batch took ~50
    times as long). SQLite gives each new row max(seq) + 1 (documented, autoinc.html;
    in VALUES order), unless the largest rowid is taken and it picks at random; so
    when every id went in (none skipped as a duplicate) and the largest seq grew by
    exactly their number, the seqs are before + 1, before + 2, ... Otherwise they are
    asked for."""
    last = _last_seq(conn)
    if last - before == len(ids) and len(set(ids)) == len(ids):
        return {mid: before + 1 + i for i, mid in enumerate(ids)}
    return {
        mid: seq
        for seq, mid in conn.execute("SELECT seq, id FROM messages WHERE seq > ?", (before,))
    }


def _update_sql(set_clause: str, allowed_from: str, size: int, *, returning: bool) -> str:
    # Both clauses are module constants; the values go through parameters. The unary
    # `+` keeps the planner on the unique id index: without statistics it would rather
    # walk the peer's history (or whole outbox) for every receipt.
    return (
        f"UPDATE messages SET {set_clause} "  # noqa: S608
        f"WHERE id IN ({_placeholders(size, '?')}) AND +peer_id = ? "
        f"AND direction = 'out' AND status IN ({allowed_from})"
        + (" RETURNING id" if returning else "")
    )


def _enqueue_sql(size: int) -> str:
    rows = _placeholders(size, "(?, ?, 'out', ?, 'queued', ?, ?)")
    return (
        "INSERT INTO messages (id, peer_id, direction, created, status, ttl, body) "  # noqa: S608
        f"VALUES {rows}"
    )


def _incoming_sql(size: int) -> str:
    rows = _placeholders(size, "(?, ?, 'in', ?, 'delivered', ?, ?, ?)")
    return (
        "INSERT INTO messages (id, peer_id, direction, created, status, delivered_at, "  # noqa: S608
        f"ttl, body) VALUES {rows} ON CONFLICT(id) DO NOTHING"
    )


# Status transitions (SET clause, statuses allowed before) only move forward:
# a late "sent" never undoes "delivered", a receipt never revives "failed".
_MARK_SENT = ("status = 'sent', sent_at = ?", "'queued'")
_MARK_DELIVERED = (
    "status = 'delivered', delivered_at = ?, sent_at = coalesce(sent_at, ?)",
    "'queued', 'sent'",
)
_MARK_READ = (
    "status = 'read', read_at = ?, delivered_at = coalesce(delivered_at, ?), "
    "sent_at = coalesce(sent_at, ?), "
    "deadline = CASE WHEN ttl IS NULL THEN NULL ELSE ? + ttl END",
    "'queued', 'sent', 'delivered'",
)
_MARK_FAILED = ("status = 'failed'", "'queued', 'sent'")

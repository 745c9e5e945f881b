"""What strangers may leave in the store, and when they are forgotten.

Anyone on the LAN can make a new key for free, complete a handshake and start
writing chats into our store. So, for storage, a *stranger* is a key the user
has not acted on: not verified, not named, no timer set for it, not blocked or
retired, never written to (no message or file sent to it), no address added by
hand. What strangers may store is bounded, per key and for all of them together
(`StrangerQuota`). Past the bound a chat is *refused*, not dropped: it gets no
receipt, so its sender keeps it and sends it again on its next connection; once
the user answers (or names or verifies the key) the key is no longer a stranger
and the chats arrive. Refusing rather than evicting the oldest stranger's chats
keeps a flood of fresh keys from erasing an honest stranger's first message.

Strangers that never said anything (no message either way, no file) are
forgotten once idle for a day, and the oldest of them go first beyond a count:
a key that only completed a handshake is a row anyone can make by the thousand.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from p2pmsg.store.base import StoreBase, normalize_fingerprint
from p2pmsg.store.records import IncomingMessage
from p2pmsg.store.sealing import SEALED_OVERHEAD

#: A key the user has not acted on (see the module docstring); `p` is the peer row.
_UNANSWERED = (
    "p.verified = 0 AND p.local_name IS NULL AND p.disappearing_ttl IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.peer_id = p.id AND o.direction = 'out') "
    "AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.peer_id = p.id AND t.direction = 'out') "
    "AND NOT EXISTS (SELECT 1 FROM addresses a WHERE a.peer_id = p.id AND a.manual = 1)"
)
_STRANGER = f"p.trust IN ('ok', 'flagged') AND {_UNANSWERED}"
#: A stranger that never said anything: forgettable once idle (flagged keys are evidence).
_SILENT = (
    f"p.trust = 'ok' AND {_UNANSWERED} "  # noqa: S608
    "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer_id = p.id) "
    "AND NOT EXISTS (SELECT 1 FROM transfers f WHERE f.peer_id = p.id)"
)
_USAGE = "SELECT count(*), coalesce(sum(length(m.body)), 0) FROM messages m "

#: How long the all-strangers total is trusted before it is counted again (seconds):
#: counting walks the peers table, so a flood pays for it once a second, not per batch.
TOTAL_RECOUNT_AFTER = 1.0
#: Silent strangers are forgotten after this long without a connection (seconds) ...
FORGET_SILENT_AFTER = 24 * 3600.0
#: ... and, beyond this many, the longest unseen go first.
MAX_SILENT_STRANGERS = 1000


@dataclass(frozen=True)
class StrangerQuota:
    """What strangers may store: each key, and all of them together. Bytes are
    stored (sealed) bytes, about the text's UTF-8 length."""

    per_peer_messages: int = 200
    per_peer_bytes: int = 1 << 20
    all_messages: int = 4000
    all_bytes: int = 32 << 20

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class IncomingAdmission:
    """Which of a batch of incoming chats may be stored (positions in the batch).
    `refused` get no receipt: their sender keeps them and sends them again."""

    admitted: list[int]
    refused: list[int]
    why: str = ""


class StrangersMixin(StoreBase):
    _stranger_quota: StrangerQuota = StrangerQuota()
    # (counted at, messages, bytes): all strangers' stored chats, plus what was admitted since.
    _stranger_total: tuple[float, int, int] | None = None

    def admit_incoming(
        self, peer: str | bytes, messages: Sequence[IncomingMessage], now: float
    ) -> IncomingAdmission:
        """Which of `messages` from `peer` may be stored now. A contact's all may; a
        stranger's new ones only within the quota (ids already stored are resends:
        always admitted, they cost nothing and their receipt was lost)."""
        everything = list(range(len(messages)))
        fp = normalize_fingerprint(peer)
        quota = self._stranger_quota
        with self._read() as conn:
            row = conn.execute(
                f"SELECT p.id FROM peers p WHERE p.fingerprint = ? AND {_STRANGER}",  # noqa: S608
                (fp,),
            ).fetchone()
            if row is None:
                return IncomingAdmission(everything, [])
            count, size = conn.execute(
                _USAGE + "WHERE m.peer_id = ? AND m.direction = 'in'", (row[0],)
            ).fetchone()
            known = _known_ids(conn, [m.id for m in messages])
            all_count, all_size = self._strangers_total(conn, now)
        room = (quota.per_peer_messages - count, quota.per_peer_bytes - size)
        room_all = (quota.all_messages - all_count, quota.all_bytes - all_size)
        admitted: list[int] = []
        refused: list[int] = []
        taken = taken_bytes = 0
        seen: set[bytes] = set()
        why = ""
        for position, message in enumerate(messages):
            if message.id in known or message.id in seen:
                admitted.append(position)
                continue
            cost = len(message.text.encode("utf-8")) + SEALED_OVERHEAD
            mine = taken < room[0] and taken_bytes + cost <= room[1]
            ours = taken < room_all[0] and taken_bytes + cost <= room_all[1]
            if not refused and mine and ours:
                taken, taken_bytes = taken + 1, taken_bytes + cost
                seen.add(message.id)
                admitted.append(position)
                continue
            # Once one is refused the later ones are too: chats are stored in order.
            refused.append(position)
            if not why:
                whose = "this stranger's" if not mine else "all strangers'"
                why = (
                    f"stranger_quota: {whose} chats are at the bound "
                    f"({quota.per_peer_messages} chats or {_size(quota.per_peer_bytes)} each, "
                    f"{quota.all_messages} or {_size(quota.all_bytes)} for all strangers) "
                    "until the user answers; the sender keeps them"
                )
        if self._stranger_total is not None:
            at, n, b = self._stranger_total
            self._stranger_total = (at, n + taken, b + taken_bytes)
        return IncomingAdmission(admitted, refused, why)

    def _strangers_total(self, conn: sqlite3.Connection, now: float) -> tuple[int, int]:
        cached = self._stranger_total
        if cached is None or not 0 <= now - cached[0] < TOTAL_RECOUNT_AFTER:
            count, size = conn.execute(
                _USAGE + "JOIN peers p ON p.id = m.peer_id "
                f"WHERE m.direction = 'in' AND {_STRANGER}"
            ).fetchone()
            cached = self._stranger_total = (now, int(count), int(size))
        return cached[1], cached[2]

    def forget_strangers(
        self,
        now: float,
        *,
        connected: Iterable[str] = (),
        idle_after: float = FORGET_SILENT_AFTER,
        keep_at_most: int = MAX_SILENT_STRANGERS,
    ) -> int:
        """Forget silent strangers (see the module docstring) unseen for `idle_after`
        seconds, and the longest unseen beyond `keep_at_most`; never a `connected`
        one. Returns how many were forgotten."""
        spare = sorted({normalize_fingerprint(fp) for fp in connected})
        skip = f"AND p.fingerprint NOT IN ({', '.join('?' * len(spare))})" if spare else ""
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT p.id, p.last_seen FROM peers p WHERE {_SILENT} {skip} "  # noqa: S608
                "ORDER BY p.last_seen DESC",
                spare,
            ).fetchall()
            doomed = [
                peer_id
                for rank, (peer_id, last_seen) in enumerate(rows)
                if rank >= keep_at_most or now - last_seen >= idle_after
            ]
            for start in range(0, len(doomed), 500):
                part = doomed[start : start + 500]
                conn.execute(
                    f"DELETE FROM peers WHERE id IN ({', '.join('?' * len(part))})",  # noqa: S608
                    part,
                )
        return len(doomed)


def _size(n: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def _known_ids(conn: sqlite3.Connection, ids: list[bytes]) -> set[bytes]:
    known: set[bytes] = set()
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        known.update(
            row[0]
            for row in conn.execute(
                f"SELECT id FROM messages WHERE id IN ({', '.join('?' * len(part))})",  # noqa: S608
                part,
            )
        )
    return known

"""Security events (the monitor's input) and alerts (its output).

Both tables are bounded: a hostile peer can make us log an event per packet,
so the store keeps `max_events` rows and prunes in batches (one DELETE per
`prune_batch` inserts, not one per insert). Events are pruned by value: the
oldest routine ones (connections, messages, key rotations: what a peer can make
us log by the thousand) go first, refusal noise (failed handshakes, rate
limits) next, and evidence (identity changes, downgrades, integrity failures,
failed unlocks) only when evidence alone fills the log. So a storm of cheap
events can never push the one `identity_changed` out. Alerts are pruned oldest
first: ids only grow and only the oldest rows go, so `max(id) - min(id) + 1`
is their row count without a scan. Event details are size-capped for the same
reason. Neither table holds user content, so neither is encrypted.

An alert's lifecycle (`set_alert_state`): unread -> acknowledged -> dismissed, and
false_alarm (a dismissal that says the alert was wrong) from any of them. States
only move forward; asking for an earlier one changes nothing and says so. Every
change moves the alert generation (meta 'alert_generation') in the same
transaction and stamps the rows with it, so a running node picks up what
`p2pmsg alerts --ack` did in another process (`alerts_changed_since`).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from p2pmsg.errors import StoreCorruptError, UnknownAlertError
from p2pmsg.security_events import ALERT_STATES, Alert, Evidence, SecurityEvent
from p2pmsg.store.base import StoreBase

MAX_DETAIL_CHARS = 4096
DEFAULT_MAX_EVENTS = 200_000
DEFAULT_MAX_ALERTS = 10_000

_EVENT_COLUMNS = "ts, event, peer, addr, bytes, detail"

#: What each event is worth keeping: 0 routine, 1 refusal noise, 2 evidence. Pruning
#: takes the oldest of the lowest tier first. Unknown names (none are stored) would be 1.
ROUTINE, NOISE, EVIDENCE = 0, 1, 2
EVENT_TIERS: Mapping[str, int] = {
    **dict.fromkeys(
        (
            "conn_open",
            "conn_close",
            "handshake_ok",
            "msg_sent",
            "msg_recv",
            "file_sent",
            "file_recv",
            "key_rotated",
            "cipher_changed",
            "peer_discovered",
            "peer_lost",
            "unlock_ok",
        ),
        ROUTINE,
    ),
    **dict.fromkeys(
        ("handshake_fail", "rate_limited", "frame_rejected", "decrypt_fail", "replay_rejected"),
        NOISE,
    ),
    **dict.fromkeys(
        ("identity_changed", "downgrade_rejected", "file_integrity_fail", "unlock_fail"), EVIDENCE
    ),
}
_ALERT_COLUMNS = (
    "id, ts, kind, severity, peer, addr, source, score, message, acknowledged_at, state, "
    "state_at, evidence"
)
#: The states each state may be reached from: forward only, a false alarm from any other.
ALERT_MOVES: Mapping[str, tuple[str, ...]] = {
    "acknowledged": ("unread",),
    "dismissed": ("unread", "acknowledged"),
    "false_alarm": ("unread", "acknowledged", "dismissed"),
}


@dataclasses.dataclass(frozen=True)
class AlertStateChange:
    """What `set_alert_state` did: the alerts it moved (as they are now), the ones it
    named that were already there or past it (unchanged, as they are), and the alert
    generation after the change."""

    changed: list[Alert]
    unchanged: list[Alert]
    generation: int


def _detail_json(detail: Mapping[str, Any]) -> str:
    text = json.dumps(dict(detail), sort_keys=True, separators=(",", ":"), default=str)
    if len(text) > MAX_DETAIL_CHARS:
        return json.dumps({"truncated": True, "chars": len(text)})
    return text


def _bounds_sql(table: str) -> str:
    # Two scalar subqueries, not `SELECT min(id), max(id)`: SQLite answers a lone min()
    # or max() from the end of the rowid b-tree, but both in one SELECT scan the table
    # (11 ms at 100,000 events, on every append, on the thread that stores messages).
    return f"SELECT (SELECT min(id) FROM {table}), (SELECT max(id) FROM {table})"  # noqa: S608


def _prune_oldest(conn: sqlite3.Connection, table: str, keep: int, batch: int) -> int:
    low, high = conn.execute(_bounds_sql(table)).fetchone()
    if low is None or high - low + 1 <= keep + batch:
        return 0
    return conn.execute(f"DELETE FROM {table} WHERE id <= ?", (high - keep,)).rowcount  # noqa: S608


def _prune_by_value(conn: sqlite3.Connection, keep: int) -> int:
    """Delete down to `keep` events, the oldest of the lowest tier first. Returns how
    many rows went."""
    excess = int(conn.execute("SELECT count(*) FROM events").fetchone()[0]) - keep
    deleted = 0
    for tier in (ROUTINE, NOISE, EVIDENCE):
        if excess <= 0:
            break
        last = conn.execute(
            "SELECT id FROM events WHERE tier = ? ORDER BY id LIMIT 1 OFFSET ?", (tier, excess - 1)
        ).fetchone()
        if last is None:  # fewer than `excess` of this tier: all of it goes
            gone = conn.execute("DELETE FROM events WHERE tier = ?", (tier,)).rowcount
        else:
            gone = conn.execute(
                "DELETE FROM events WHERE tier = ? AND id <= ?", (tier, last[0])
            ).rowcount
        deleted += gone
        excess -= gone
    return deleted


def _alert(row: tuple[Any, ...]) -> Alert:
    """An alert row as the record. Only `add_alert` writes rows, and only valid alerts
    exist, so a row outside the schema means the file was changed behind our back."""
    alert_id, ts, kind, severity, peer, addr, source, score, message, acked, state, state_at = row[
        :12
    ]
    try:
        evidence = tuple(Evidence.from_dict(item) for item in json.loads(row[12]))
        return Alert(
            ts,
            kind,
            severity,
            peer,
            addr,
            source,
            score,
            message,
            alert_id,
            acked,
            state,
            state_at,
            evidence,
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreCorruptError(f"stored alert {alert_id} is malformed: {exc}") from None


class MonitoringMixin(StoreBase):
    _max_events: int = DEFAULT_MAX_EVENTS
    _max_alerts: int = DEFAULT_MAX_ALERTS
    #: Events appended since the last count: counting (a scan of an index) happens once
    #: per prune batch, not per append. A rolled-back append only makes it count early.
    _events_uncounted: int | None = None

    def _prune_batch(self, keep: int) -> int:
        return max(1, keep // 10)

    # --- events ------------------------------------------------------------------------

    def append_events(self, events: Sequence[SecurityEvent]) -> int:
        """Append events in one transaction; returns how many old rows were pruned."""
        batch = self._prune_batch(self._max_events)
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO events (ts, event, peer, addr, bytes, detail, tier) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.ts,
                        e.event,
                        e.peer,
                        e.addr,
                        int(e.bytes),
                        _detail_json(e.detail),
                        EVENT_TIERS.get(e.event, NOISE),
                    )
                    for e in events
                ],
            )
            # Count (and prune) once per `batch` appended events; the first append of
            # this store counts at once, since the file may already be full.
            before = batch if self._events_uncounted is None else self._events_uncounted
            if before + len(events) < batch:
                self._events_uncounted = before + len(events)
                return 0
            self._events_uncounted = 0
            return _prune_by_value(conn, self._max_events)

    def append_event(self, event: SecurityEvent) -> None:
        self.append_events([event])

    def recent_events(
        self,
        limit: int = 500,
        *,
        event: str | None = None,
        peer: str | None = None,
        since: float | None = None,
    ) -> list[SecurityEvent]:
        """The newest `limit` events matching the filters, oldest first."""
        clauses, params = [], []
        for clause, value in (("event = ?", event), ("peer = ?", peer), ("ts >= ?", since)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events {where} "  # noqa: S608
                "ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [
            SecurityEvent(ts=ts, event=ev, peer=p, addr=a, bytes=b, detail=json.loads(d))
            for ts, ev, p, a, b, d in reversed(rows)
        ]

    def count_events(self, event: str | None = None, since: float | None = None) -> int:
        clauses, params = [], []
        for clause, value in (("event = ?", event), ("ts >= ?", since)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._read() as conn:
            return int(
                conn.execute(
                    f"SELECT count(*) FROM events {where}",  # noqa: S608
                    params,
                ).fetchone()[0]
            )

    # --- alerts ------------------------------------------------------------------------

    def add_alert(self, alert: Alert) -> Alert:
        """Store a new alert (unacknowledged); returns it with its id."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO alerts "
                "(ts, kind, severity, peer, addr, source, score, message, evidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.ts,
                    alert.kind,
                    alert.severity,
                    alert.peer,
                    alert.addr,
                    alert.source,
                    float(alert.score),
                    alert.message,
                    json.dumps([item.to_dict() for item in alert.evidence], allow_nan=False),
                ),
            )
            alert_id = cur.lastrowid
            _prune_oldest(conn, "alerts", self._max_alerts, self._prune_batch(self._max_alerts))
        return dataclasses.replace(
            alert,
            score=float(alert.score),
            id=alert_id,
            acknowledged_at=None,
            state="unread",
            state_at=None,
        )

    def list_alerts(
        self,
        limit: int = 100,
        *,
        unacknowledged_only: bool = False,
        states: Collection[str] | None = None,
    ) -> list[Alert]:
        """Newest first; `states` keeps only alerts in those states (`unacknowledged_only`
        is `states=("unread",)`)."""
        if unacknowledged_only:
            states = ("unread",)
        where, params = "", []
        if states is not None:
            wanted = [s for s in ALERT_STATES if s in states]
            where = f"WHERE state IN ({', '.join('?' * len(wanted))})" if wanted else "WHERE 0"
            params = wanted
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts {where} "  # noqa: S608
                "ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_alert(row) for row in rows]

    def get_alerts(self, ids: Sequence[int]) -> list[Alert]:
        """These alerts, in the order asked; an id with no alert is `UnknownAlertError`."""
        with self._read() as conn:
            return _alerts_by_id(conn, ids)

    def set_alert_state(
        self, ids: Sequence[int] | None, state: str, now: float
    ) -> AlertStateChange:
        """Move alerts to `state` ("acknowledged", "dismissed" or "false_alarm"), all or
        nothing: an unknown id is `UnknownAlertError` and changes nothing. `ids=None` is
        every alert that can move there (not for false alarms: the user says which
        alerts were wrong, one by one). An alert already in `state`, or past it, stays."""
        moves_from = ALERT_MOVES.get(state)
        if moves_from is None:
            raise ValueError(
                f"an alert can be set acknowledged, dismissed or false_alarm, not {state!r}"
            )
        if ids is None and state == "false_alarm":
            raise ValueError("mark false alarms one by one, by id")
        marks = ", ".join("?" * len(moves_from))
        with self._write() as conn:
            if ids is None:
                named = [
                    _alert(r)
                    for r in conn.execute(
                        f"SELECT {_ALERT_COLUMNS} FROM alerts "  # noqa: S608
                        f"WHERE state IN ({marks}) ORDER BY id",
                        moves_from,
                    ).fetchall()
                ]
            else:
                named = _alerts_by_id(conn, ids)
            movable = [a.id for a in named if a.id is not None and a.state in moves_from]
            generation = _alert_generation(conn)
            if movable:
                generation += 1
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('alert_generation', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (generation,),
                )
                conn.executemany(
                    "UPDATE alerts SET state = ?, state_at = ?, state_gen = ?, "  # noqa: S608
                    "acknowledged_at = coalesce(acknowledged_at, ?) "
                    f"WHERE id = ? AND state IN ({marks})",
                    [(state, now, generation, now, i, *moves_from) for i in movable],
                )
            moved = set(movable)
            changed = _alerts_by_id(conn, movable) if movable else []
        return AlertStateChange(changed, [a for a in named if a.id not in moved], generation)

    def acknowledge_alerts(self, ids: Sequence[int] | None, now: float) -> int:
        """Acknowledge these alerts (None: all unread); returns how many changed."""
        return len(self.set_alert_state(ids, "acknowledged", now).changed)

    def alert_counts(self) -> dict[str, int]:
        """How many stored alerts are in each state (every state, zeros included)."""
        with self._read() as conn:
            rows = conn.execute("SELECT state, count(*) FROM alerts GROUP BY state").fetchall()
        return {**dict.fromkeys(ALERT_STATES, 0), **{state: int(n) for state, n in rows}}

    def false_alarms(self, since: float) -> list[Alert]:
        """The alerts marked a false alarm at `since` or later, oldest mark first: what
        the monitor's quieting policy needs (their kind, key and `state_at`)."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts "  # noqa: S608
                "WHERE state = 'false_alarm' AND state_at >= ? ORDER BY state_at, id",
                (since,),
            ).fetchall()
        return [_alert(row) for row in rows]

    def alert_generation(self) -> int:
        """A counter every alert state change moves (in the same transaction): a running
        node polls it to see what `p2pmsg alerts --ack` did in another process."""
        with self._read() as conn:
            return _alert_generation(conn)

    def alerts_changed_since(self, generation: int, limit: int = 1000) -> list[Alert]:
        """Alerts whose state changed after that generation, newest change last."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts "  # noqa: S608
                "WHERE state_gen > ? ORDER BY state_gen, id LIMIT ?",
                (generation, limit),
            ).fetchall()
        return [_alert(row) for row in rows]


def _alert_generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'alert_generation'").fetchone()
    return int(row[0]) if row is not None else 0


def _alerts_by_id(conn: sqlite3.Connection, ids: Sequence[int]) -> list[Alert]:
    wanted = list(dict.fromkeys(int(i) for i in ids))
    found: dict[int, Alert] = {}
    for start in range(0, len(wanted), 500):  # SQLite's bound on host parameters
        chunk = wanted[start : start + 500]
        for row in conn.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts "  # noqa: S608
            f"WHERE id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ).fetchall():
            found[row[0]] = _alert(row)
    missing = [i for i in wanted if i not in found]
    if missing:
        listed = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise UnknownAlertError(
            f"no alert with id {listed} (see `p2pmsg alerts` for the ids; the oldest "
            "alerts are pruned)"
        )
    return [found[i] for i in wanted]

"""Peers, their addresses, and finding a peer by what the user types.

A peer is an identity (fingerprint = SHA-256 of its Ed25519 key). Discovery
only hints at peers; trust decisions (pinning, name clashes, key changes,
blocking, petnames) are in `trust.py`. Names are sealed; lookups by name
decrypt the (small) peers table.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from p2pmsg.errors import AmbiguousPeerError, UnknownPeerError
from p2pmsg.protocol.names import confusable_key, name_key
from p2pmsg.store.base import StoreBase, normalize_fingerprint
from p2pmsg.store.introductions import load_introductions
from p2pmsg.store.records import Address, PeerRecord

_PEER_COLUMNS = (
    "p.id, p.fingerprint, p.name, p.identity_key, p.verified, p.disappearing_ttl, "
    "p.first_seen, p.last_seen, p.local_name, p.trust, c.fingerprint, "
    "s.fingerprint, p.trust_since"
)
_PEER_JOINS = (
    "FROM peers p LEFT JOIN peers c ON c.id = p.clash_with LEFT JOIN peers s ON s.id = p.successor"
)
MIN_PREFIX_LEN = 4  # a shorter fingerprint prefix matches too much to mean anything


def _check_address(host: str, port: int) -> None:
    if not host or len(host) > 253 or any(c.isspace() for c in host):
        raise ValueError(f"bad host {host!r}")
    if not 1 <= port <= 65535:
        raise ValueError(f"bad port {port}")


def resolve_among(query: str, peers: Iterable[PeerRecord]) -> PeerRecord:
    """The one peer `query` names, looked for in this order, stopping at the first
    kind that matches anything:

    1. the user's own names for contacts (petnames);
    2. names that keys proved in a handshake (pinned keys that are neither
       flagged nor retired, and have no petname, which replaces the claim);
    3. fingerprint prefixes (at least 4 hex digits; spaces and colons ignored);
    4. names from mDNS adverts of keys not met yet (so a first `send --to bob`
       works), which never make a name of the earlier kinds ambiguous.

    Names compare as people read them (`name_key`). Raises `UnknownPeerError`,
    or `AmbiguousPeerError` listing every candidate of the first kind that matched.
    """
    wanted = name_key(query)
    prefix = query.strip().replace(" ", "").replace(":", "").lower()
    is_prefix = len(prefix) >= MIN_PREFIX_LEN and all(c in "0123456789abcdef" for c in prefix)
    candidates = list(peers)
    tiers = (
        [
            p
            for p in candidates
            if p.local_name and p.trust != "retired" and name_key(p.local_name) == wanted
        ],
        [
            p
            for p in candidates
            if not p.local_name
            and p.pinned
            and p.trust in ("ok", "blocked")
            and name_key(p.claimed_name) == wanted
        ],
        [p for p in candidates if is_prefix and p.fingerprint.startswith(prefix)],
        [
            p
            for p in candidates
            if not p.local_name
            and p.trust == "ok"
            and not p.pinned
            and name_key(p.claimed_name) == wanted
        ],
    )
    for matches in tiers:
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise AmbiguousPeerError(query, [describe_peer(p) for p in matches])
    hint = ""
    if prefix and not is_prefix and all(c in "0123456789abcdef" for c in prefix):
        hint = f" (a fingerprint prefix needs at least {MIN_PREFIX_LEN} hex digits)"
    raise UnknownPeerError(f"no known peer is called {query!r} or has that fingerprint{hint}")


def describe_peer(peer: PeerRecord) -> str:
    """`name (fingerprint prefix)` for lists and errors; the name may be hostile text,
    so whoever prints this must pass it through `p2pmsg.sanitize` first."""
    return f"{peer.name or '?'} ({peer.fingerprint[:16]})"


class PeersMixin(StoreBase):
    # --- reading -----------------------------------------------------------------------

    def _load_peers(
        self, conn: sqlite3.Connection, where: str = "", params: tuple[Any, ...] = ()
    ) -> list[PeerRecord]:
        # `where` is always a literal from this module; values go through `params`.
        rows = conn.execute(
            f"SELECT {_PEER_COLUMNS} {_PEER_JOINS} {where} ORDER BY p.id", params
        ).fetchall()
        if not rows:
            return []
        # One peer (every handshake, every trust decision) reads only its own addresses
        # and unread count; a whole listing reads them all in one pass each.
        if len(rows) == 1:
            only = " AND peer_id = ?"
            ids: tuple[Any, ...] = (rows[0][0],)
        else:
            only, ids = "", ()
        addresses: dict[int, list[Address]] = defaultdict(list)
        for peer_id, host, port, manual, seen in conn.execute(
            "SELECT peer_id, host, port, manual, last_seen FROM addresses "  # noqa: S608
            f"WHERE peer_id IS NOT NULL{only} ORDER BY last_seen DESC, id",
            ids,
        ):
            addresses[peer_id].append(Address(host, port, bool(manual), seen))
        unread = dict(
            conn.execute(
                "SELECT peer_id, count(*) FROM messages "  # noqa: S608
                f"WHERE direction = 'in' AND read_at IS NULL{only} GROUP BY peer_id",
                ids,
            ).fetchall()
        )
        notes = load_introductions(conn, self._sealer, rows[0][1] if len(rows) == 1 else None)
        return [
            replace(
                self._peer_from_row(row, tuple(addresses[row[0]]), unread.get(row[0], 0)),
                introductions=notes.get(row[1], ()),
            )
            for row in rows
        ]

    def _peer_from_row(
        self, row: tuple[Any, ...], addresses: tuple[Address, ...], unread: int
    ) -> PeerRecord:
        (
            peer_id,
            fp,
            name,
            key,
            verified,
            ttl,
            first_seen,
            last_seen,
            local_name,
            trust,
            clash_fp,
            successor_fp,
            trust_since,
        ) = row
        return PeerRecord(
            fingerprint=fp,
            claimed_name=self._sealer.open_optional_text(
                name, table="peers", column="name", row=peer_id
            )
            or "",
            local_name=self._sealer.open_optional_text(
                local_name, table="peers", column="local_name", row=peer_id
            )
            or "",
            identity_key=key,
            verified=bool(verified),
            disappearing_ttl=ttl,
            first_seen=first_seen,
            last_seen=last_seen,
            addresses=addresses,
            unread=unread,
            trust=trust,
            clash_with=clash_fp,
            successor=successor_fp,
            trust_since=trust_since,
        )

    def _peer_by_fp(self, conn: sqlite3.Connection, fp: str) -> PeerRecord | None:
        found = self._load_peers(conn, "WHERE p.fingerprint = ?", (fp,))
        return found[0] if found else None

    def get_peer(self, fingerprint: str | bytes) -> PeerRecord | None:
        """One peer by full fingerprint, or None."""
        fp = normalize_fingerprint(fingerprint)
        with self._read() as conn:
            return self._peer_by_fp(conn, fp)

    def list_peers(self) -> list[PeerRecord]:
        """Every known peer, with addresses and unread counts."""
        with self._read() as conn:
            return self._load_peers(conn)

    def resolve_peer(self, query: str) -> PeerRecord:
        """The peer the user means by `query`; see `resolve_among` for the order."""
        return resolve_among(query, self.list_peers())

    def peer_at_address(self, host: str, port: int) -> PeerRecord | None:
        """The peer last proven to listen at host:port, if any."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT p.fingerprint FROM addresses a JOIN peers p "
                "ON p.id = a.peer_id WHERE a.host = ? AND a.port = ?",
                (host, port),
            ).fetchone()
            return self._peer_by_fp(conn, row[0]) if row else None

    def dial_candidates(self) -> list[tuple[str | None, Address]]:
        """Every stored address with the fingerprint expected there (None: not met yet);
        addresses of blocked and retired keys are not dialled."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT p.fingerprint, a.host, a.port, a.manual, a.last_seen "
                "FROM addresses a LEFT JOIN peers p ON p.id = a.peer_id "
                "WHERE p.id IS NULL OR p.trust IN ('ok', 'flagged') "
                "ORDER BY a.id"
            ).fetchall()
        return [
            (fp, Address(host, port, bool(manual), seen)) for fp, host, port, manual, seen in rows
        ]

    # --- writing -----------------------------------------------------------------------

    def _ensure_peer(self, conn: sqlite3.Connection, fp: str, now: float) -> int:
        conn.execute(
            "INSERT INTO peers (fingerprint, first_seen, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT(fingerprint) DO UPDATE SET last_seen = max(last_seen, "
            "excluded.last_seen)",
            (fp, now, now),
        )
        return self._peer_id(conn, fp)

    def _set_name(self, conn: sqlite3.Connection, peer_id: int, name: str) -> None:
        sealed = self._sealer.seal_text(name, table="peers", column="name", row=peer_id)
        conn.execute(
            "UPDATE peers SET name = ?, name_tag = ? WHERE id = ?",
            (sealed, self._name_tag(name, "name"), peer_id),
        )

    def _name_tag(self, name: str, column: str) -> bytes:
        """The indexed tag of a name: equal for names that read alike (`confusable_key`)."""
        return self._sealer.lookup_tag(confusable_key(name), table="peers", column=column)

    def fill_name_tags(self) -> int:
        """Tag the names of rows written before tags existed (schema v4); returns how
        many. Runs at open: a migration cannot, it has no key."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, name, local_name FROM peers WHERE (name IS NOT NULL AND "
                "name_tag IS NULL) OR (local_name IS NOT NULL AND local_tag IS NULL)"
            ).fetchall()
            for peer_id, sealed_name, sealed_local in rows:
                tags = []
                for column, sealed in (("name", sealed_name), ("local_name", sealed_local)):
                    text = self._sealer.open_optional_text(
                        sealed, table="peers", column=column, row=peer_id
                    )
                    tags.append(None if text is None else self._name_tag(text, column))
                conn.execute(
                    "UPDATE peers SET name_tag = ?, local_tag = ? WHERE id = ?",
                    (*tags, peer_id),
                )
        return len(rows)

    def _bind_address(
        self,
        conn: sqlite3.Connection,
        peer_id: int | None,
        host: str,
        port: int,
        now: float,
        *,
        manual: bool = False,
    ) -> None:
        _check_address(host, port)
        conn.execute(
            "INSERT INTO addresses (host, port, peer_id, manual, last_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(host, port) DO UPDATE SET peer_id = coalesce(excluded.peer_id, peer_id), "
            "manual = max(manual, excluded.manual), last_seen = excluded.last_seen",
            (host, port, peer_id, int(manual), now),
        )

    def upsert_discovered(
        self, fingerprint: str | bytes, name: str, host: str, port: int, now: float
    ) -> PeerRecord:
        """Remember a peer seen in discovery (an untrusted hint). The node calls this
        for keys it already has a row for, and for an advertised key the user acts on
        (sends to, names): never for every advert (see `forget_unproven`).

        The advertised name is kept only while we have no name for the peer, and
        the address is bound only if no other peer has proven itself there: an
        advert alone must not rename or redirect a peer we know. A blocked or
        retired key gets no address (nobody dials it).
        """
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            peer_id = self._ensure_peer(conn, fp, now)
            if (
                name
                and conn.execute(
                    "SELECT name IS NULL FROM peers WHERE id = ?", (peer_id,)
                ).fetchone()[0]
            ):
                self._set_name(conn, peer_id, name)
            owner = conn.execute(
                "SELECT peer_id FROM addresses WHERE host = ? AND port = ?", (host, port)
            ).fetchone()
            usable = conn.execute(
                "SELECT trust IN ('ok', 'flagged') FROM peers WHERE id = ?", (peer_id,)
            ).fetchone()[0]
            if usable and (owner is None or owner[0] in (None, peer_id)):
                self._bind_address(conn, peer_id, host, port, now)
            record = self._peer_by_fp(conn, fp)
        assert record is not None
        return record

    def forget_unproven(self) -> int:
        """Delete rows that only adverts made: keys never proven in a handshake, that
        the user never named, wrote to, gave an address or a timer for. (Older
        versions kept a row per advertised fingerprint forever; discovery is now an
        in-memory cache, and a row is made when the user acts on a peer.) Returns
        how many went."""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM peers WHERE identity_key IS NULL AND local_name IS NULL "
                "AND trust = 'ok' AND disappearing_ttl IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer_id = peers.id) "
                "AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.peer_id = peers.id) "
                "AND NOT EXISTS (SELECT 1 FROM addresses a WHERE a.peer_id = peers.id "
                "AND a.manual = 1)"
            ).rowcount

    def set_disappearing_ttl(self, fingerprint: str | bytes, ttl: float | None) -> None:
        """This conversation's disappearing timer in seconds.

        `math.inf` (messages disappear never) is how "off in this conversation" is
        kept apart from None, "no timer of its own", to which a profile-wide
        default in a user interface applies. Either way a message gets no timer
        unless its sender names one."""
        if ttl is not None and not ttl > 0:  # `not >`: NaN is refused too
            raise ValueError("a disappearing timer must be positive")
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            conn.execute(
                "UPDATE peers SET disappearing_ttl = ? WHERE id = ?", (ttl, self._peer_id(conn, fp))
            )

    def add_manual_address(self, host: str, port: int, now: float) -> Address:
        """Persist a host:port to dial (routed networks, VPNs) before we know who is there."""
        with self._write() as conn:
            self._bind_address(conn, None, host, port, now, manual=True)
        return Address(host, port, True, now)

    def remove_address(self, host: str, port: int) -> bool:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM addresses WHERE host = ? AND port = ?", (host, port))
            return cur.rowcount > 0

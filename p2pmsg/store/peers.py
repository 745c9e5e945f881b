"""Peers, their addresses, and trust on first use.

A peer is an identity (fingerprint = SHA-256 of its Ed25519 key). Discovery
only hints at peers; `record_handshake` is where an authenticated identity
is pinned, recognised, or caught claiming another peer's name or address
(a key change, which blocks that identity until the user decides).
Display names are sealed; lookups by name decrypt the (small) peers table.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from typing import Any

from p2pmsg.errors import AmbiguousPeerError, UnknownPeerError
from p2pmsg.store.base import StoreBase, normalize_fingerprint
from p2pmsg.store.records import Address, HandshakeOutcome, PeerRecord

_PEER_COLUMNS = ("id, fingerprint, name, identity_key, verified, pending_key, "
                 "pending_fingerprint, pending_since, disappearing_ttl, first_seen, last_seen")
MIN_PREFIX_LEN = 4  # a shorter fingerprint prefix matches too much to mean anything


def _check_address(host: str, port: int) -> None:
    if not host or len(host) > 253 or any(c.isspace() for c in host):
        raise ValueError(f"bad host {host!r}")
    if not 1 <= port <= 65535:
        raise ValueError(f"bad port {port}")


class PeersMixin(StoreBase):
    # --- reading -----------------------------------------------------------------------

    def _load_peers(self, conn: sqlite3.Connection, where: str = "",
                    params: tuple[Any, ...] = ()) -> list[PeerRecord]:
        # `where` is always a literal from this module; values go through `params`.
        rows = conn.execute(f"SELECT {_PEER_COLUMNS} FROM peers {where} ORDER BY id",  # noqa: S608
                            params).fetchall()
        if not rows:
            return []
        addresses: dict[int, list[Address]] = defaultdict(list)
        for peer_id, host, port, manual, seen in conn.execute(
                "SELECT peer_id, host, port, manual, last_seen FROM addresses "
                "WHERE peer_id IS NOT NULL ORDER BY last_seen DESC, id"):
            addresses[peer_id].append(Address(host, port, bool(manual), seen))
        unread = dict(conn.execute(
            "SELECT peer_id, count(*) FROM messages "
            "WHERE direction = 'in' AND read_at IS NULL GROUP BY peer_id").fetchall())
        return [self._peer_from_row(row, tuple(addresses[row[0]]), unread.get(row[0], 0))
                for row in rows]

    def _peer_from_row(self, row: tuple[Any, ...], addresses: tuple[Address, ...],
                       unread: int) -> PeerRecord:
        (peer_id, fp, name, key, verified, pending_key, pending_fp, pending_since, ttl,
         first_seen, last_seen) = row
        return PeerRecord(
            fingerprint=fp,
            name=self._sealer.open_optional_text(name, table="peers", column="name",
                                                 row=peer_id) or "",
            identity_key=key, verified=bool(verified), pending_identity_key=pending_key,
            pending_fingerprint=pending_fp, pending_since=pending_since,
            disappearing_ttl=ttl, first_seen=first_seen, last_seen=last_seen,
            addresses=addresses, unread=unread)

    def _peer_by_fp(self, conn: sqlite3.Connection, fp: str) -> PeerRecord | None:
        found = self._load_peers(conn, "WHERE fingerprint = ?", (fp,))
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
        """A display name (case-insensitive) or a fingerprint prefix (>= 4 hex digits).

        Raises `UnknownPeerError`, or `AmbiguousPeerError` listing every candidate.
        """
        wanted = query.strip()
        prefix = wanted.replace(" ", "").replace(":", "").lower()
        is_prefix = len(prefix) >= MIN_PREFIX_LEN and all(c in "0123456789abcdef" for c in prefix)
        matches = [p for p in self.list_peers()
                   if p.name.casefold() == wanted.casefold()
                   or (is_prefix and p.fingerprint.startswith(prefix))]
        if not matches:
            raise UnknownPeerError(f"no known peer is called {query!r} or has that fingerprint")
        if len(matches) > 1:
            raise AmbiguousPeerError(query, [f"{p.name or '?'} ({p.fingerprint[:16]})"
                                             for p in matches])
        return matches[0]

    def peer_at_address(self, host: str, port: int) -> PeerRecord | None:
        """The peer last proven to listen at host:port, if any."""
        with self._read() as conn:
            row = conn.execute("SELECT p.fingerprint FROM addresses a JOIN peers p "
                               "ON p.id = a.peer_id WHERE a.host = ? AND a.port = ?",
                               (host, port)).fetchone()
            return self._peer_by_fp(conn, row[0]) if row else None

    def dial_candidates(self) -> list[tuple[str | None, Address]]:
        """Every stored address with the fingerprint expected there (None: not met yet)."""
        with self._read() as conn:
            rows = conn.execute("SELECT p.fingerprint, a.host, a.port, a.manual, a.last_seen "
                                "FROM addresses a LEFT JOIN peers p ON p.id = a.peer_id "
                                "ORDER BY a.id").fetchall()
        return [(fp, Address(host, port, bool(manual), seen))
                for fp, host, port, manual, seen in rows]

    # --- writing -----------------------------------------------------------------------

    def _ensure_peer(self, conn: sqlite3.Connection, fp: str, now: float) -> int:
        conn.execute("INSERT INTO peers (fingerprint, first_seen, last_seen) VALUES (?, ?, ?) "
                     "ON CONFLICT(fingerprint) DO UPDATE SET last_seen = max(last_seen, "
                     "excluded.last_seen)", (fp, now, now))
        return self._peer_id(conn, fp)

    def _set_name(self, conn: sqlite3.Connection, peer_id: int, name: str) -> None:
        sealed = self._sealer.seal_text(name, table="peers", column="name", row=peer_id)
        conn.execute("UPDATE peers SET name = ? WHERE id = ?", (sealed, peer_id))

    def _bind_address(self, conn: sqlite3.Connection, peer_id: int | None, host: str, port: int,
                      now: float, *, manual: bool = False) -> None:
        _check_address(host, port)
        conn.execute(
            "INSERT INTO addresses (host, port, peer_id, manual, last_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(host, port) DO UPDATE SET peer_id = coalesce(excluded.peer_id, peer_id), "
            "manual = max(manual, excluded.manual), last_seen = excluded.last_seen",
            (host, port, peer_id, int(manual), now))

    def upsert_discovered(self, fingerprint: str | bytes, name: str, host: str, port: int,
                          now: float) -> PeerRecord:
        """Remember a peer seen in discovery (an untrusted hint).

        The advertised name is kept only while we have no name for the peer, and
        the address is bound only if no other peer has proven itself there: an
        advert alone must not rename or redirect a peer we know.
        """
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            peer_id = self._ensure_peer(conn, fp, now)
            if name and conn.execute("SELECT name IS NULL FROM peers WHERE id = ?",
                                     (peer_id,)).fetchone()[0]:
                self._set_name(conn, peer_id, name)
            owner = conn.execute("SELECT peer_id FROM addresses WHERE host = ? AND port = ?",
                                 (host, port)).fetchone()
            if owner is None or owner[0] in (None, peer_id):
                self._bind_address(conn, peer_id, host, port, now)
            record = self._peer_by_fp(conn, fp)
        assert record is not None
        return record

    def record_handshake(self, identity_key: bytes, name: str, now: float,
                         address: tuple[str, int] | None = None) -> HandshakeOutcome:
        """Trust on first use for an identity the handshake just authenticated.

        `address` is the listening address we dialled (None for inbound
        connections, whose source port means nothing). See `HandshakeOutcome`.
        """
        if len(identity_key) != 32:
            raise ValueError("an identity key is 32 bytes")
        fp = hashlib.sha256(identity_key).hexdigest()
        with self._write() as conn:
            peer_id = self._ensure_peer(conn, fp, now)
            pinned = conn.execute("SELECT identity_key FROM peers WHERE id = ?",
                                  (peer_id,)).fetchone()[0]
            if pinned is None:
                previous = self._conflicting_peer(conn, peer_id, name, address)
                if previous is not None:
                    # pending_since keeps the first sighting of this claimant.
                    conn.execute("UPDATE peers SET pending_since = CASE WHEN "
                                 "pending_fingerprint IS ? THEN pending_since ELSE ? END, "
                                 "pending_key = ?, pending_fingerprint = ? WHERE fingerprint = ?",
                                 (fp, now, identity_key, fp, previous.fingerprint))
                    if name:
                        self._set_name(conn, peer_id, name)
                    flagged = self._peer_by_fp(conn, previous.fingerprint)
                    claimant = self._peer_by_fp(conn, fp)
                    assert claimant is not None
                    return HandshakeOutcome("key_changed", claimant, flagged)
                conn.execute("UPDATE peers SET identity_key = ? WHERE id = ?",
                             (identity_key, peer_id))
            if name:
                self._set_name(conn, peer_id, name)
            if address is not None:
                self._bind_address(conn, peer_id, address[0], address[1], now)
            record = self._peer_by_fp(conn, fp)
        assert record is not None
        return HandshakeOutcome("new" if pinned is None else "known", record)

    def _conflicting_peer(self, conn: sqlite3.Connection, peer_id: int, name: str,
                          address: tuple[str, int] | None) -> PeerRecord | None:
        """Another pinned peer with this display name or listening address."""
        others = [p for p in self._load_peers(conn, "WHERE id != ? AND identity_key IS NOT NULL",
                                              (peer_id,))]
        for other in others:
            if name and other.name.casefold() == name.casefold():
                return other
            if address is not None and any((a.host, a.port) == address for a in other.addresses):
                return other
        return None

    def accept_key_change(self, fingerprint: str | bytes, now: float, *,
                          as_new_contact: bool = False) -> PeerRecord:
        """The user accepts the pending key of `fingerprint` (the old identity).

        By default the new identity takes over the conversation: the row keeps its
        history and gets the new fingerprint and key, unverified. With
        `as_new_contact` the claimant is pinned as a separate peer instead (two
        people who happen to share a name). Returns the peer now trusted.
        """
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            old_id = self._peer_id(conn, fp)
            new_key, new_fp = conn.execute("SELECT pending_key, pending_fingerprint FROM peers "
                                           "WHERE id = ?", (old_id,)).fetchone()
            if new_key is None:
                raise ValueError(f"peer {fp} has no pending key change")
            conn.execute("UPDATE peers SET pending_key = NULL, pending_fingerprint = NULL, "
                         "pending_since = NULL WHERE id = ?", (old_id,))
            claimant = conn.execute("SELECT id FROM peers WHERE fingerprint = ?",
                                    (new_fp,)).fetchone()
            if as_new_contact:
                new_id = self._ensure_peer(conn, new_fp, now)
                conn.execute("UPDATE peers SET identity_key = ?, verified = 0 WHERE id = ?",
                             (new_key, new_id))
            else:
                if claimant is not None:
                    for table in ("messages", "transfers", "addresses"):
                        conn.execute(f"UPDATE {table} SET peer_id = ? WHERE peer_id = ?",  # noqa: S608
                                     (old_id, claimant[0]))
                    conn.execute("DELETE FROM peers WHERE id = ?", (claimant[0],))
                conn.execute("UPDATE peers SET fingerprint = ?, identity_key = ?, verified = 0, "
                             "last_seen = ? WHERE id = ?", (new_fp, new_key, now, old_id))
            record = self._peer_by_fp(conn, new_fp)
        assert record is not None
        return record

    def reject_key_change(self, fingerprint: str | bytes) -> None:
        """Forget the pending key; the claimant stays unpinned (flagged again if it returns)."""
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            conn.execute("UPDATE peers SET pending_key = NULL, pending_fingerprint = NULL, "
                         "pending_since = NULL WHERE id = ?", (self._peer_id(conn, fp),))

    def set_verified(self, fingerprint: str | bytes, verified: bool) -> None:
        """Mark a pinned peer verified (safety numbers compared) or not."""
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            peer_id = self._peer_id(conn, fp)
            if verified and conn.execute("SELECT identity_key IS NULL FROM peers WHERE id = ?",
                                         (peer_id,)).fetchone()[0]:
                raise ValueError(f"peer {fp} has no pinned key to verify")
            conn.execute("UPDATE peers SET verified = ? WHERE id = ?", (int(verified), peer_id))

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
            conn.execute("UPDATE peers SET disappearing_ttl = ? WHERE id = ?",
                         (ttl, self._peer_id(conn, fp)))

    def mark_seen(self, fingerprint: str | bytes, now: float) -> None:
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            conn.execute("UPDATE peers SET last_seen = max(last_seen, ?) WHERE id = ?",
                         (now, self._peer_id(conn, fp)))

    def add_manual_address(self, host: str, port: int, now: float) -> Address:
        """Persist a host:port to dial (routed networks, VPNs) before we know who is there."""
        with self._write() as conn:
            self._bind_address(conn, None, host, port, now, manual=True)
        return Address(host, port, True, now)

    def remove_address(self, host: str, port: int) -> bool:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM addresses WHERE host = ? AND port = ?", (host, port))
            return cur.rowcount > 0

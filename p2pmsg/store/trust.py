"""Trust decisions about keys: pinning on first use, name clashes, and the user's acts.

A peer is its key. What a key calls itself is a claim; what the user calls it
(a petname) is the user's. The store keeps four states per key (see
`PeerRecord`), and these rules, each one transaction:

* The first handshake with a key pins it (trust on first use).
* A key that claims, at first contact or by renaming itself later, a name
  that reads like another contact's (`names_clash`: normalised and
  confusable-checked) is *flagged*: a separate entry pointing at the contact
  it imitates. The contact is never touched, never blocked: somebody else
  using Carol's name changes nothing about Carol.
* A key change ("this new key is Carol's") happens only through
  `change_key`, the user's explicit act: the contact's row (and so its
  history) moves to the new key, the old key is kept as *retired* so it can
  be recognised and refused, never used again.
* `keep_apart` ("someone else") turns a flagged key into a contact of its own
  under a petname; `block` refuses a key from then on.
"""

from __future__ import annotations

import hashlib
import sqlite3

from p2pmsg.errors import UnknownPeerError
from p2pmsg.protocol.names import confusable_key, name_problem, names_clash
from p2pmsg.store.base import normalize_fingerprint
from p2pmsg.store.peers import PeersMixin, describe_peer
from p2pmsg.store.records import HandshakeOutcome, PeerRecord


class TrustMixin(PeersMixin):
    # --- the handshake ----------------------------------------------------------------

    def record_handshake(
        self, identity_key: bytes, name: str, now: float, address: tuple[str, int] | None = None
    ) -> HandshakeOutcome:
        """What we know of a key the handshake just authenticated, updated.

        `name` is the key's claimed name (already held to the name rule by the
        handshake); `address` is the listening address we dialled (None for
        inbound connections, whose source port means nothing). See
        `HandshakeOutcome` for the verdicts.
        """
        if len(identity_key) != 32:
            raise ValueError("an identity key is 32 bytes")
        fp = hashlib.sha256(identity_key).hexdigest()
        with self._write() as conn:
            peer_id = self._ensure_peer(conn, fp, now)
            before = self._peer_by_fp(conn, fp)
            assert before is not None
            if before.trust in ("blocked", "retired"):
                return HandshakeOutcome("refused", before)
            clash = None
            renamed = name != before.claimed_name
            if (not before.pinned or renamed) and not before.local_name and before.trust == "ok":
                clash = self._clashing_contact(conn, peer_id, name)
            if not before.pinned:
                conn.execute(
                    "UPDATE peers SET identity_key = ? WHERE id = ?", (identity_key, peer_id)
                )
            if clash is not None:
                conn.execute(
                    "UPDATE peers SET trust = 'flagged', clash_with = ?, "
                    "trust_since = ? WHERE id = ?",
                    (self._peer_id(conn, clash.fingerprint), now, peer_id),
                )
            if name and renamed:
                self._set_name(conn, peer_id, name)
            if address is not None:
                self._bind_address(conn, peer_id, address[0], address[1], now)
            record = self._peer_by_fp(conn, fp)
        assert record is not None
        if clash is not None:
            return HandshakeOutcome("name_clash", record, clash)
        return HandshakeOutcome("known" if before.pinned else "new", record)

    def _clashing_contact(
        self, conn: sqlite3.Connection, peer_id: int, name: str
    ) -> PeerRecord | None:
        """The contact whose name `name` reads like, if any: a pinned, unflagged key
        other than `peer_id`, compared by its own claimed name and by its petname.
        Verified contacts first, then the longest known. Found by the indexed tags
        of the names' confusable forms, so a new key costs the same at 20 contacts
        and at 20,000 (it once opened every contact's name: 120 ms at 20,000, on the
        thread that also stores chat); the tag's match is confirmed on the names."""
        if not name:
            return None
        wanted = confusable_key(name)
        rows = conn.execute(
            "SELECT id, fingerprint, name, local_name FROM peers "
            "WHERE (name_tag = ? OR local_tag = ?) AND id != ? "
            "AND identity_key IS NOT NULL AND trust = 'ok' "
            "ORDER BY verified DESC, first_seen, id",
            (self._name_tag(name, "name"), self._name_tag(name, "local_name"), peer_id),
        ).fetchall()
        for other_id, fp, sealed_name, sealed_local in rows:
            for column, sealed in (("name", sealed_name), ("local_name", sealed_local)):
                text = self._sealer.open_optional_text(
                    sealed, table="peers", column=column, row=other_id
                )
                if text and confusable_key(text) == wanted:
                    return self._peer_by_fp(conn, fp)
        return None

    # --- the user's decisions ---------------------------------------------------------

    def trust_generation(self) -> int:
        """A counter every decision below moves, in the same transaction as the decision.

        The running node polls it to apply decisions another process made
        (`p2pmsg trust/rename/block` while the app or `listen` runs). An explicit
        counter, not SQLite's data_version: that moves for any commit (every
        security event) and only when this connection next takes a read lock.
        """
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'trust_generation'").fetchone()
        return int(row[0]) if row is not None else 0

    def _decided(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('trust_generation', 1) "
            "ON CONFLICT(key) DO UPDATE SET value = value + 1"
        )

    def set_local_name(self, fingerprint: str | bytes, name: str | None) -> PeerRecord:
        """The user's own name for a peer (None or "" removes it).

        Held to the display-name rule, and refused when it reads like another
        contact's name: a petname exists to tell people apart.
        """
        fp = normalize_fingerprint(fingerprint)
        cleaned = (name or "").strip()
        with self._write() as conn:
            peer_id = self._peer_id(conn, fp)
            if cleaned:
                problem = name_problem(cleaned)
                if problem is not None:
                    raise ValueError(f"a contact's name {problem}")
                for other in self._load_peers(
                    conn, "WHERE p.id != ? AND p.trust != 'retired'", (peer_id,)
                ):
                    if names_clash(cleaned, other.name) or (
                        other.local_name == ""
                        and other.pinned
                        and names_clash(cleaned, other.claimed_name)
                    ):
                        raise ValueError(
                            f"{cleaned!r} reads like the name of "
                            f"{describe_peer(other)}; choose a name that tells "
                            "them apart"
                        )
                sealed = self._sealer.seal_text(
                    cleaned, table="peers", column="local_name", row=peer_id
                )
            else:
                sealed = None
            tag = self._name_tag(cleaned, "local_name") if cleaned else None
            conn.execute(
                "UPDATE peers SET local_name = ?, local_tag = ? WHERE id = ?",
                (sealed, tag, peer_id),
            )
            self._decided(conn)
            record = self._peer_by_fp(conn, fp)
        assert record is not None
        return record

    def set_verified(self, fingerprint: str | bytes, verified: bool) -> None:
        """Mark a pinned key verified (safety number compared, or paired by code) or not."""
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            peer = self._require(conn, fp)
            if verified and not peer.pinned:
                raise ValueError(f"{describe_peer(peer)} has no pinned key to verify yet")
            if verified and peer.trust in ("retired", "blocked"):
                raise ValueError(f"{describe_peer(peer)} is {peer.trust}; it cannot be verified")
            conn.execute("UPDATE peers SET verified = ? WHERE fingerprint = ?", (int(verified), fp))
            self._decided(conn)

    def change_key(self, contact: str | bytes, new_key_fp: str | bytes, now: float) -> PeerRecord:
        """The user's explicit key change: `contact` is now the key `new_key_fp`.

        The contact's row keeps its id, petname, history, settings and addresses
        and takes the new key (unverified: verify it again). Whatever the new key
        already had with us (its flagged conversation, transfers, addresses)
        moves into the contact. The old key stays as a *retired* row pointing at
        the contact, so it is recognised and refused from then on.
        """
        old_fp = normalize_fingerprint(contact)
        new_fp = normalize_fingerprint(new_key_fp)
        if old_fp == new_fp:
            raise ValueError("that is already this contact's key")
        with self._write() as conn:
            old = self._require(conn, old_fp)
            new = self._require(conn, new_fp)
            if not old.sendable:
                raise ValueError(
                    f"{describe_peer(old)} is not a contact whose key can change "
                    f"(its key is {old.state})"
                )
            if new.identity_key is None or new.trust not in ("ok", "flagged"):
                raise ValueError(
                    f"{describe_peer(new)} is not a key that can take over "
                    f"(it is {new.state}); connect to it first"
                )
            contact_id, new_id = self._peer_id(conn, old_fp), self._peer_id(conn, new_fp)
            old_key, old_name = old.identity_key, old.claimed_name
            for table in ("messages", "transfers", "addresses"):
                conn.execute(
                    f"UPDATE {table} SET peer_id = ? WHERE peer_id = ?",  # noqa: S608
                    (contact_id, new_id),
                )
            conn.execute("UPDATE peers SET clash_with = NULL WHERE clash_with = ?", (new_id,))
            conn.execute("DELETE FROM peers WHERE id = ?", (new_id,))
            conn.execute(
                "UPDATE peers SET fingerprint = ?, identity_key = ?, verified = 0, "
                "trust = 'ok', clash_with = NULL, trust_since = ?, "
                "last_seen = max(last_seen, ?) WHERE id = ?",
                (new_fp, new.identity_key, now, new.last_seen, contact_id),
            )
            self._set_name(conn, contact_id, new.claimed_name or old_name)
            conn.execute(
                "INSERT INTO peers (fingerprint, identity_key, verified, trust, "
                "successor, trust_since, first_seen, last_seen) "
                "VALUES (?, ?, ?, 'retired', ?, ?, ?, ?)",
                (
                    old_fp,
                    old_key,
                    int(old.verified),
                    contact_id,
                    now,
                    old.first_seen,
                    old.last_seen,
                ),
            )
            retired_id = self._peer_id(conn, old_fp)
            if old_name:
                self._set_name(conn, retired_id, old_name)
            self._decided(conn)
            record = self._peer_by_fp(conn, new_fp)
        assert record is not None
        return record

    def keep_apart(self, fingerprint: str | bytes, local_name: str) -> PeerRecord:
        """ "Someone else": a flagged key becomes a contact of its own, under a petname
        that tells it apart from the contact it was confused with."""
        fp = normalize_fingerprint(fingerprint)
        with self._read() as conn:
            peer = self._require(conn, fp)
        if peer.trust != "flagged":
            raise ValueError(f"{describe_peer(peer)} is not flagged")
        if not local_name.strip():
            raise ValueError("give this contact a name of its own, so the two can be told apart")
        self.set_local_name(fp, local_name)
        with self._write() as conn:
            conn.execute(
                "UPDATE peers SET trust = 'ok', clash_with = NULL, trust_since = NULL "
                "WHERE fingerprint = ?",
                (fp,),
            )
            self._decided(conn)
            record = self._peer_by_fp(conn, fp)
        assert record is not None
        return record

    def block(self, fingerprint: str | bytes, now: float) -> PeerRecord:
        """Refuse this key from now on: no sessions, nothing sent, not dialled."""
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            peer = self._require(conn, fp)
            if peer.trust == "retired":
                raise ValueError(f"{describe_peer(peer)} is a retired key; it is refused already")
            conn.execute(
                "UPDATE peers SET trust = 'blocked', trust_since = ? WHERE fingerprint = ?",
                (now, fp),
            )
            self._decided(conn)
            record = self._peer_by_fp(conn, fp)
        assert record is not None
        return record

    def unblock(self, fingerprint: str | bytes) -> PeerRecord:
        """Undo `block`; a key that was flagged before is flagged again."""
        fp = normalize_fingerprint(fingerprint)
        with self._write() as conn:
            peer = self._require(conn, fp)
            if peer.trust != "blocked":
                raise ValueError(f"{describe_peer(peer)} is not blocked")
            conn.execute(
                "UPDATE peers SET trust = CASE WHEN clash_with IS NULL THEN 'ok' "
                "ELSE 'flagged' END, trust_since = NULL WHERE fingerprint = ?",
                (fp,),
            )
            self._decided(conn)
            record = self._peer_by_fp(conn, fp)
        assert record is not None
        return record

    def _require(self, conn: sqlite3.Connection, fp: str) -> PeerRecord:
        peer = self._peer_by_fp(conn, fp)
        if peer is None:
            raise UnknownPeerError(f"no known peer has the fingerprint {fp}")
        return peer


__all__ = ["TrustMixin"]

"""One view of every peer, merged from the store, discovery and the live sessions.

A peer is an identity (a fingerprint). The store knows who we met and where
(`PeerRecord`), discovery knows who advertises right now and at which
addresses, and the session table knows who is connected. However many
addresses or connections one identity has, it is one `PeerView`.

The session table also settles the race when two peers dial each other at
the same moment: both ends end up with two authenticated sessions, and both
must drop the same one without talking about it. The rule is deterministic
and symmetric: keep the connection initiated by the lower fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterable

from p2pmsg.crypto.identity import short_fingerprint
from p2pmsg.node.advert import PeerAdvertised
from p2pmsg.node.api import PeerView
from p2pmsg.node.session import Session
from p2pmsg.store import PeerRecord
from p2pmsg.store.peers import MIN_PREFIX_LEN


def keep_first(mine: str, theirs: str, first: Session, second: Session) -> bool:
    """True if `first` survives a duplicate with `second` (same peer, both authenticated).

    Opposite directions: the one initiated by the lower fingerprint wins, which both
    ends compute alike. Same direction (two of our own dials raced): the older one.
    """
    if first.initiator == second.initiator:
        return True
    lower_is_mine = mine < theirs
    return first.initiator == lower_is_mine


class PeerDirectory:
    def __init__(self, own_fingerprint: str) -> None:
        self.own_fingerprint = own_fingerprint
        self._records: dict[str, PeerRecord] = {}
        self._adverts: dict[str, PeerAdvertised] = {}
        self._sessions: dict[str, Session] = {}

    # --- inputs --------------------------------------------------------------------------

    def set_records(self, records: Iterable[PeerRecord]) -> None:
        self._records = {r.fingerprint: r for r in records}

    def update_record(self, record: PeerRecord) -> None:
        self._records[record.fingerprint] = record

    def record(self, fingerprint: str) -> PeerRecord | None:
        return self._records.get(fingerprint)

    def lookup(self, query: str) -> PeerRecord | None:
        """The one cached record matching a name or fingerprint prefix (as the store
        matches them), or None when there is not exactly one."""
        record = self._records.get(query)
        if record is not None:
            return record
        wanted = query.strip()
        prefix = wanted.replace(" ", "").replace(":", "").lower()
        is_prefix = len(prefix) >= MIN_PREFIX_LEN and all(c in "0123456789abcdef" for c in prefix)
        folded = wanted.casefold()
        matches = [r for r in self._records.values()
                   if r.name.casefold() == folded
                   or (is_prefix and r.fingerprint.startswith(prefix))]
        return matches[0] if len(matches) == 1 else None

    def records(self) -> list[PeerRecord]:
        return list(self._records.values())

    def advertised(self, advert: PeerAdvertised) -> bool:
        """Remember an advertisement; True if the peer is new to discovery."""
        is_new = advert.fingerprint_hex not in self._adverts
        self._adverts[advert.fingerprint_hex] = advert
        return is_new

    def withdrawn(self, fingerprint: str) -> bool:
        return self._adverts.pop(fingerprint, None) is not None

    def advert(self, fingerprint: str) -> PeerAdvertised | None:
        return self._adverts.get(fingerprint)

    def adverts(self) -> list[PeerAdvertised]:
        return list(self._adverts.values())

    def advertised_at(self, host: str) -> set[str]:
        """Fingerprints whose advertisements name this address (who should be calling)."""
        return {fp for fp, a in self._adverts.items() if host in a.addresses}

    # --- sessions ------------------------------------------------------------------------

    def session(self, fingerprint: str) -> Session | None:
        session = self._sessions.get(fingerprint)
        return session if session is not None and session.is_open else None

    def add_session(self, session: Session) -> Session | None:
        """Make `session` the peer's session unless an existing one wins the tie-break.

        Returns the loser to close (the new session itself, or the one it replaced),
        or None when there was no live duplicate.
        """
        existing = self.session(session.peer)
        if existing is None or existing is session:
            self._sessions[session.peer] = session
            return None
        if keep_first(self.own_fingerprint, session.peer, existing, session):
            return session
        self._sessions[session.peer] = session
        return existing

    def remove_session(self, session: Session) -> bool:
        """Forget `session`; True if it was the peer's current one."""
        if self._sessions.get(session.peer) is session:
            del self._sessions[session.peer]
            return True
        return False

    def connected(self) -> list[str]:
        return [fp for fp, s in self._sessions.items() if s.is_open]

    # --- views ---------------------------------------------------------------------------

    def claimants(self) -> set[str]:
        return {r.pending_fingerprint for r in self._records.values() if r.pending_fingerprint}

    def view(self, fingerprint: str) -> PeerView | None:
        record = self._records.get(fingerprint)
        advert = self._adverts.get(fingerprint)
        if record is None and advert is None:
            return None
        online = self.session(fingerprint) is not None or advert is not None
        addresses: list[str] = []
        if record is not None:
            addresses.extend(str(a) for a in record.addresses)
        if advert is not None:
            addresses.extend(f"{h}:{advert.port}" for h in advert.addresses
                             if f"{h}:{advert.port}" not in addresses)
        name = record.name if record is not None and record.name else (
            advert.name if advert is not None else "")
        blocked = record is not None and (record.key_change_pending
                                          or fingerprint in self.claimants())
        return PeerView(
            fingerprint=fingerprint,
            name=name,
            short_fingerprint=short_fingerprint(bytes.fromhex(fingerprint)),
            online=online,
            verified=bool(record and record.verified),
            unread=record.unread if record is not None else 0,
            key_change_pending=blocked,
            addresses=tuple(addresses),
            manual=bool(record and record.manual),
            first_seen=record.first_seen if record is not None else None,
            last_seen=record.last_seen if record is not None else None,
        )

    def views(self) -> list[PeerView]:
        fingerprints = list(self._records)
        fingerprints += [fp for fp in self._adverts if fp not in self._records]
        views = [self.view(fp) for fp in fingerprints if fp != self.own_fingerprint]
        return [v for v in views if v is not None]

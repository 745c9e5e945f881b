"""One view of every peer, merged from the store, discovery and the live sessions.

A peer is an identity (a fingerprint). The store knows who we met and where
(`PeerRecord`), discovery knows who advertises right now and at which
addresses (only here, in memory: an advert of a key never met makes no row, so
a stranger's adverts cost a bounded, expiring cache, not the store), and the
session table knows who is connected. However many
addresses or connections one identity has, it is one `PeerView`.

The session table also settles the race when two peers dial each other at
the same moment: both ends end up with two authenticated sessions, and both
must drop the same one without talking about it. The rule is deterministic
and symmetric: keep the connection initiated by the lower fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterable

from p2pmsg.crypto.identity import short_fingerprint
from p2pmsg.errors import PeerLookupError
from p2pmsg.node.api import IntroductionView, PeerView
from p2pmsg.node.net.advert import PeerAdvertised
from p2pmsg.node.net.session import Session
from p2pmsg.store import PeerRecord
from p2pmsg.store.peers import resolve_among


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

    def lookup(self, query: str, *, adverts: bool = False) -> PeerRecord | None:
        """The one cached record `query` names (as the store resolves names), or None
        when there is not exactly one. With `adverts`, keys only discovery knows take
        part too, as unproven names (`advert_record`): they never make a name of a
        known key ambiguous (`resolve_among`'s order)."""
        record = self._records.get(query)
        if record is not None:
            return record
        candidates: list[PeerRecord] = list(self._records.values())
        if adverts:
            candidates += [
                advert_record(a) for fp, a in self._adverts.items() if fp not in self._records
            ]
        try:
            return resolve_among(query, candidates)
        except PeerLookupError:
            return None

    def stored(self, fingerprint: str) -> bool:
        """True if the store has a row for this key (not only an advert in memory)."""
        return fingerprint in self._records

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
            addresses.extend(
                f"{h}:{advert.port}"
                for h in advert.addresses
                if f"{h}:{advert.port}" not in addresses
            )
        if record is None:
            assert advert is not None
            return PeerView(
                fingerprint=fingerprint,
                name=advert.name,
                short_fingerprint=short_fingerprint(bytes.fromhex(fingerprint)),
                online=online,
                verified=False,
                unread=0,
                state="discovered",
                claimed_name=advert.name,
                addresses=tuple(addresses),
            )
        claimed = record.claimed_name or (advert.name if advert is not None else "")
        contact = self._records.get(record.clash_with) if record.clash_with else None
        return PeerView(
            fingerprint=fingerprint,
            name=record.local_name or claimed,
            short_fingerprint=short_fingerprint(bytes.fromhex(fingerprint)),
            online=online and record.trust in ("ok", "flagged"),
            verified=record.verified,
            unread=record.unread,
            state=record.state,
            local_name=record.local_name,
            claimed_name=claimed,
            clash_with=record.clash_with,
            clash_with_name=contact.name if contact is not None else "",
            successor=record.successor,
            addresses=tuple(addresses),
            manual=record.manual,
            first_seen=record.first_seen,
            last_seen=record.last_seen,
            introduced_by=tuple(
                IntroductionView(
                    n.introducer, n.introducer_name, n.group_id.hex(), n.group_name, n.at
                )
                for n in record.introductions
            ),
        )

    def views(self) -> list[PeerView]:
        fingerprints = list(self._records)
        fingerprints += [fp for fp in self._adverts if fp not in self._records]
        views = [self.view(fp) for fp in fingerprints if fp != self.own_fingerprint]
        return [v for v in views if v is not None]


def advert_record(advert: PeerAdvertised) -> PeerRecord:
    """What an advert alone says of a key, in the store's shape, for name lookups:
    unproven (no identity key), unverified, its claimed name, no row behind it."""
    return PeerRecord(
        fingerprint=advert.fingerprint_hex,
        claimed_name=advert.name,
        identity_key=None,
        verified=False,
        disappearing_ttl=None,
        first_seen=0.0,
        last_seen=0.0,
        addresses=(),
        unread=0,
    )

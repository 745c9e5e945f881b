"""Who a peer is: trust on first use, key changes, and advertisements that lie.

Three questions are answered here, in this order, for every handshake:

1. *Did the handshake prove what the advertisement claimed?* When we dial an
   address because an mDNS record said "fingerprint X lives here", the Noise
   handshake must prove X. `expectation_policy` checks it inside the handshake
   (as the initiator we see the responder's identity in message 2, so an
   impostor is refused before we have even told it who we are). A mismatch is
   the impostor case: an `identity_changed` security event, and the connection
   ends; nothing is ever sent to it.
2. *Have we seen this identity before?* The first successful handshake pins
   the key (`Store.record_handshake`, TOFU).
3. *Does a new identity claim a known peer's name or address?* Then it is a
   key change: `identity_changed`, a loud `IdentityChanged` event, and the
   outbox holds every message for both identities until the user accepts the
   new key (`accept_new_key`, `p2pmsg trust`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from p2pmsg.protocol.handshake import HandshakePolicy, PeerInfo
from p2pmsg.store import HandshakeOutcome, PeerRecord

TrustVerdict = Literal["new", "known", "key_changed"]


@dataclass
class Expectation:
    """What we expect to find at a dialled address, and what we found."""

    fingerprint: str | None  # None: we do not know who listens there
    source: Literal["advert", "address", "none"]
    mismatch: str | None = None  # the fingerprint the handshake proved instead


def expectation_policy(expected: Expectation) -> HandshakePolicy:
    """A handshake policy that refuses any identity other than the advertised one.

    Only advertisements are enforced here: a stored address that now answers
    with a different key is a key change (question 3), decided by the store
    with the user in the loop, not a refusal.
    """

    def policy(peer: PeerInfo, suites: tuple[str, ...]) -> str | None:
        if expected.source != "advert" or expected.fingerprint is None:
            return None
        proved = peer.fingerprint.hex()
        if proved != expected.fingerprint:
            expected.mismatch = proved
            return "the peer did not prove the fingerprint it advertised"
        return None

    return policy


def is_blocked(peer: PeerRecord) -> bool:
    """Nothing may be sent to this peer now.

    A peer is blocked while a different key claims to be it (the user must decide
    which key is the real one), and an identity that is not pinned (a claimant of
    someone else's name or address) stays blocked until accepted.
    """
    return peer.key_change_pending or not peer.pinned


@dataclass(frozen=True)
class KeyChange:
    """A key change worth telling the user about loudly."""

    claimant: PeerRecord
    previous: PeerRecord

    @property
    def detail(self) -> str:
        return (f"{self.claimant.name!r} ({self.claimant.fingerprint[:16]}) claims the name or "
                f"address of {self.previous.name!r} ({self.previous.fingerprint[:16]}), "
                "a peer you know by another key. Nothing is sent until you accept the new key.")


def key_change(outcome: HandshakeOutcome) -> KeyChange | None:
    if outcome.verdict != "key_changed" or outcome.previous is None:
        return None
    return KeyChange(outcome.peer, outcome.previous)


def flagged_peer_for(claimant_fp: str, peers: list[PeerRecord]) -> PeerRecord | None:
    """The known peer whose pending key is `claimant_fp` (accepting works from either side)."""
    for peer in peers:
        if peer.pending_fingerprint == claimant_fp:
            return peer
    return None

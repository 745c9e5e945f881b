"""Who a peer is: advertisements that lie, name clashes, and what may be sent where.

Three questions are answered for every handshake:

1. *Did the handshake prove what the advertisement claimed?* When we dial an
   address because an mDNS record said "fingerprint X lives here", the Noise
   handshake must prove X. `expectation_policy` checks it inside the handshake
   (as the initiator we see the responder's identity in message 2, so an
   impostor is refused before we have even told it who we are). A mismatch is
   the impostor case: an `identity_changed` security event, and the connection
   ends; nothing is ever sent to it.
2. *What do we know of this key?* `Store.record_handshake` pins a new key
   (trust on first use), recognises a known one, and refuses a blocked or
   retired one (the session ends).
3. *Does the key claim a name that reads like a contact's?* Then it is a
   separate, flagged entry (`NameClashed`, an `identity_changed` security
   event with reason `name_clash`); the contact is untouched. Nothing is sent
   to a flagged key until the user decides: "this is Carol's new key"
   (`change_key`), "someone else" (`keep_apart`) or `block`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from p2pmsg.protocol.handshake import HandshakePolicy, PeerInfo
from p2pmsg.store import PeerRecord


@dataclass
class Expectation:
    """What we expect to find at a dialled address, and what we found."""

    fingerprint: str | None  # None: we do not know who listens there
    source: Literal["advert", "address", "none"]
    mismatch: str | None = None  # the fingerprint the handshake proved instead


def expectation_policy(expected: Expectation) -> HandshakePolicy:
    """A handshake policy that refuses any identity other than the advertised one.

    Only advertisements are enforced here: a stored address that now answers
    with a different key is simply another key (addresses change hands on a
    LAN); whether it claims a contact's name is question 3, not a refusal.
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


def clash_detail(claimant: PeerRecord, contact: PeerRecord) -> str:
    """The warning for a name clash, in words a person can act on. Names are the
    peers' claims: whoever shows this passes it through `p2pmsg.sanitize`."""
    return (
        f"a new key ({claimant.fingerprint[:16]}) claims to be {claimant.claimed_name!r}, "
        f"which reads like your contact {contact.name!r} ({contact.fingerprint[:16]}); "
        "it is not that contact's key. It is kept apart and nothing is sent to it until "
        "you decide: someone else (give it a name), the contact's new key (compare "
        "safety numbers or pair by code first), or block."
    )


def unsendable_reason(peer: PeerRecord) -> str | None:
    """Why nothing may be sent to this key now, or None when it may."""
    who = f"{peer.name or '?'} ({peer.fingerprint[:16]})"
    if peer.trust == "flagged":
        return (
            f"{who} claims a name that reads like another contact's and is held apart: "
            f"decide who it is first (`p2pmsg rename {peer.fingerprint[:16]} NAME` if it "
            f"is someone else, `p2pmsg trust CONTACT --new-key {peer.fingerprint[:16]}` "
            "if it is that contact's new key, or `p2pmsg block`)"
        )
    if peer.trust == "blocked":
        return f"{who} is blocked (`p2pmsg block --undo {peer.fingerprint[:16]}` to unblock)"
    if peer.trust == "retired":
        return (
            f"{who} is a retired key, replaced by {(peer.successor or '?')[:16]}: "
            "send to that contact instead"
        )
    return None


#: How long a key must have been known before it counts as a contact without the
#: user's word for it (a name given, or a verification): long enough that keys made
#: for an attack are not, short enough that yesterday's colleague is.
CONTACT_AGE = 3600.0


def is_contact(peer: PeerRecord, now: float) -> bool:
    """A key whose connections may use the slots kept for contacts: sendable, and
    verified, named by the user, or known for at least CONTACT_AGE. A key made a
    minute ago by whoever is on the LAN is a stranger."""
    if not peer.sendable:
        return False
    return peer.verified or bool(peer.local_name) or now - peer.first_seen >= CONTACT_AGE

"""What `trust`, `rename` and `block` share: the profile's store, and one way to show a key.

These commands write the user's decision straight into the profile's store
without taking the profile lock, so they work while the app or `listen` runs
on the same profile: the running node notices the commit (SQLite's
trust generation) within a second and applies it to its live sessions. A trust
decision never dead-ends on "profile in use".
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from p2pmsg.commands._password import open_profile
from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.safety_number import format_safety_number, safety_number
from p2pmsg.sanitize import printable
from p2pmsg.store import PeerRecord, Store


@dataclass
class TrustContext:
    store: Store
    identity: Identity

    def find(self, query: str) -> PeerRecord:
        return self.store.resolve_peer(query)

    def safety_number(self, peer: PeerRecord) -> str | None:
        if peer.identity_key is None:
            return None
        return format_safety_number(safety_number(self.identity.public_key, peer.identity_key))


@contextlib.contextmanager
def trust_store(args: argparse.Namespace) -> Iterator[TrustContext]:
    """The unlocked profile's store, without the profile lock (see the module doc)."""
    with (
        open_profile(args, lock=False) as unlocked,
        Store.open(unlocked.profile.db_path, unlocked.data_key) as store,
    ):
        yield TrustContext(store, unlocked.identity)


def who(peer: PeerRecord) -> str:
    """`name (fingerprint prefix)`, the name made safe for the terminal."""
    return f"{printable(peer.name) or '?'} ({peer.fingerprint[:16]})"


def describe_key(ctx: TrustContext, peer: PeerRecord) -> list[str]:
    """The lines that tell a person what this key is and what they can do about it."""
    lines = [f"{who(peer)}", f"  fingerprint   {peer.fingerprint}"]
    if peer.local_name and peer.claimed_name != peer.local_name:
        lines.append(f"  calls itself  {printable(peer.claimed_name)}")
    state = {
        "discovered": "seen in an advert, never met (nothing is pinned yet)",
        "pinned": "verified"
        if peer.verified
        else "first seen (trusted on first use, not verified)",
        "flagged": f"FLAGGED: claims a name that reads like your contact "
        f"{(peer.clash_with or '?')[:16]}; it is not that contact's key",
        "retired": f"retired: replaced by {(peer.successor or '?')[:16]} in a key change "
        "you made; refused from now on",
        "blocked": "blocked: refused from now on",
    }[peer.state]
    lines.append(f"  state         {state}")
    number = ctx.safety_number(peer)
    if number is not None:
        lines.append(f"  safety number {number}")
    return lines

"""`p2pmsg trust PEER [--verified]`: accept a peer's new key, or mark a peer verified.

When a known peer shows up with a different key, p2pmsg blocks sending to it
(it may be an impostor). Compare the safety number with the person over a
channel you trust (in person, by voice); if it matches, `p2pmsg trust PEER`
accepts the new key and releases the held messages. `--verified` also records
that you compared the safety number.
"""

from __future__ import annotations

import argparse
import time

from p2pmsg.commands._password import open_profile
from p2pmsg.crypto.safety_number import format_safety_number, safety_number
from p2pmsg.errors import ConfigError
from p2pmsg.node.trust import flagged_peer_for
from p2pmsg.store import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("trust", parents=[common],
                              help="accept a peer's new key / mark a peer verified",
                              description="Accept the new key of a peer whose key changed "
                                          "(sending to it is blocked until you do), and/or "
                                          "mark it verified after comparing safety numbers.")
    p.add_argument("peer", metavar="PEER", help="display name or fingerprint prefix")
    p.add_argument("--verified", action="store_true",
                   help="also mark the peer verified (you compared the safety number)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_profile(args, command="p2pmsg trust") as unlocked, \
            Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        record = store.resolve_peer(args.peer)
        flagged = record if record.key_change_pending else flagged_peer_for(
            record.fingerprint, store.list_peers())
        if flagged is not None:
            record = store.accept_key_change(flagged.fingerprint, time.time())
            print(f"accepted the new key of {record.name} ({record.fingerprint[:16]}); "
                  "held messages will be sent when it is next online")
        elif not args.verified:
            raise ConfigError(f"{record.name or record.fingerprint[:16]} has no key change "
                              "waiting; use --verified to mark it verified")
        if record.identity_key is None:
            raise ConfigError(f"no key is pinned for {record.name or record.fingerprint[:16]} "
                              "yet: connect to it first")
        if args.verified:
            store.set_verified(record.fingerprint, True)
            print(f"{record.name} ({record.fingerprint[:16]}) marked verified")
        digits = safety_number(unlocked.identity.public_key, record.identity_key)
        print(f"safety number: {format_safety_number(digits)}")
    return 0

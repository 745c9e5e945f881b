"""`p2pmsg trust PEER [--verified | --new-key FINGERPRINT]`: look at a key, and decide about it.

Without options it shows what p2pmsg knows of PEER's key: its fingerprint,
its state (first seen, verified, flagged, retired, blocked) and the safety
number to compare with the person over a channel you trust (in person, by
voice). `--verified` records that you compared it (`p2pmsg pair` does the
same with a short code). `--new-key` is the explicit key change: the person
reinstalled, and the key FINGERPRINT (one p2pmsg has met, usually flagged for
claiming their name) is theirs now; the contact and its history move to it,
the old key is retired and refused from then on. Nothing ever changes a
contact's key but this.

Works while the app or `listen` runs on the profile (see `_trust.py`).
"""

from __future__ import annotations

import argparse
import time

from p2pmsg.commands._trust import describe_key, trust_store, who
from p2pmsg.errors import ConfigError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "trust",
        parents=[common],
        help="show a peer's key; mark it verified; change its key",
        description="Show what p2pmsg knows of PEER's key and its safety number; with "
        "--verified record that you compared the safety number; with --new-key "
        "move the contact PEER to a new key (a reinstall), retiring the old one.",
    )
    p.add_argument("peer", metavar="PEER", help="name, petname or fingerprint prefix")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--verified",
        action="store_true",
        help="mark PEER verified (you compared the safety number)",
    )
    what.add_argument(
        "--new-key",
        metavar="FINGERPRINT",
        help="PEER's key is now FINGERPRINT (a key p2pmsg has met): move the "
        "contact and its history to it and retire the old key",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with trust_store(args) as ctx:
        peer = ctx.find(args.peer)
        if args.new_key:
            new = ctx.find(args.new_key)
            try:
                moved = ctx.store.change_key(peer.fingerprint, new.fingerprint, time.time())
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            print(f"key changed: {who(moved)} is now the key {moved.fingerprint}")
            print(f"the old key {peer.fingerprint} is retired and refused from now on")
            print(
                "the new key is not verified yet: compare the safety number below, or run "
                f"`p2pmsg pair --to {moved.fingerprint[:16]}`"
            )
            peer = moved
        elif args.verified:
            try:
                ctx.store.set_verified(peer.fingerprint, True)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            print(f"{who(peer)} marked verified")
            peer = ctx.store.get_peer(peer.fingerprint) or peer
        for line in describe_key(ctx, peer):
            print(line)
    return 0

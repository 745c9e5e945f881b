"""`p2pmsg block PEER [--undo]`: refuse a key from now on.

A blocked key gets no session (its handshake is refused after it proves who
it is), nothing is sent to it and it is not dialled. Its history stays.
`--undo` unblocks it (a key that was flagged is flagged again).

Works while the app or `listen` runs on the profile (see `_trust.py`).
"""

from __future__ import annotations

import argparse
import time

from p2pmsg.commands._trust import trust_store, who
from p2pmsg.errors import ConfigError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "block",
        parents=[common],
        help="refuse a peer's key",
        description="Refuse PEER's key from now on (--undo: unblock).",
    )
    p.add_argument("peer", metavar="PEER", help="name, petname or fingerprint prefix")
    p.add_argument("--undo", action="store_true", help="unblock PEER")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with trust_store(args) as ctx:
        peer = ctx.find(args.peer)
        try:
            if args.undo:
                record = ctx.store.unblock(peer.fingerprint)
                print(f"{who(record)} unblocked ({record.state})")
            else:
                record = ctx.store.block(peer.fingerprint, time.time())
                print(f"{who(record)} blocked: its key is refused from now on")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return 0

"""`p2pmsg rename PEER NAME`: your own name for a contact (a petname).

The petname is what lists, conversations and `--to` use first; the name the
peer gives itself is shown beside it. Naming a *flagged* key (one that claims
a name reading like a contact's) is how you say "this is someone else": it
becomes a contact of its own under the new name. A petname must not read like
another contact's name. `--clear` removes it.

Works while the app or `listen` runs on the profile (see `_trust.py`).
"""

from __future__ import annotations

import argparse

from p2pmsg.commands._trust import trust_store, who
from p2pmsg.errors import ConfigError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "rename",
        parents=[common],
        help="give a peer your own name (a petname)",
        description="Give PEER a name of your own; naming a flagged key keeps it apart "
        "as someone else.",
    )
    p.add_argument("peer", metavar="PEER", help="name, petname or fingerprint prefix")
    p.add_argument("name", metavar="NAME", nargs="?", help="the new name")
    p.add_argument("--clear", action="store_true", help="remove your name for PEER")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.clear == (args.name is not None):
        raise ConfigError("give either NAME or --clear")
    with trust_store(args) as ctx:
        peer = ctx.find(args.peer)
        try:
            if args.clear:
                named = ctx.store.set_local_name(peer.fingerprint, None)
            elif peer.trust == "flagged":
                named = ctx.store.keep_apart(peer.fingerprint, args.name)
            else:
                named = ctx.store.set_local_name(peer.fingerprint, args.name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if peer.trust == "flagged" and named.trust == "ok":
            print(f"{who(named)} is kept apart as someone else; it is no longer flagged")
        else:
            print(f"{peer.fingerprint[:16]} is now called {who(named)}")
    return 0

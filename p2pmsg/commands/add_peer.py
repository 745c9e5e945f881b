"""`p2pmsg add-peer HOST:PORT`: remember an address to dial (routed networks, VPNs).

Multicast does not cross routers, so a peer on another subnet is added by
address. It is stored in the profile and dialled by every node of this
profile from then on; who answers there is still decided by the handshake
(trust on first use, then pinned).
"""

from __future__ import annotations

import argparse
import time

from p2pmsg.commands._node import parse_host_port
from p2pmsg.commands._password import open_profile
from p2pmsg.errors import ConfigError
from p2pmsg.sanitize import printable
from p2pmsg.store import Store


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "add-peer",
        parents=[common],
        help="remember a peer's HOST:PORT (no mDNS needed)",
        description="Remember a peer's address; nodes of this profile dial it from then on.",
    )
    p.add_argument("address", metavar="HOST:PORT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    host, port = parse_host_port(args.address)
    with (
        open_profile(args, command="p2pmsg add-peer") as unlocked,
        Store.open(unlocked.profile.db_path, unlocked.data_key) as store,
    ):
        try:
            store.add_manual_address(host, port, time.time())
        except ValueError as exc:
            raise ConfigError(f"cannot add {args.address}: {exc}") from None
        known = store.peer_at_address(host, port)
    # The known name is what that peer claimed in a handshake: printed inert.
    who = f" (known as {printable(known.name or '?')}, {known.fingerprint[:16]})" if known else ""
    print(f"added {printable(host)}:{port}{who}; nodes of this profile will dial it")
    return 0

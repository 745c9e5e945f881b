"""`p2pmsg peers [--json] [--wait S]`: the peers this profile knows and sees.

Without `--wait` it lists what the profile remembers (no network, no lock: it
works while `listen` or the app runs). With `--wait S` it also runs discovery
for S seconds first and shows who is advertising right now.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json

from p2pmsg.commands._node import add_network_options, running_node
from p2pmsg.commands._password import open_profile
from p2pmsg.errors import ConfigError
from p2pmsg.node.api import PeerView
from p2pmsg.node.peers import PeerDirectory
from p2pmsg.store import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("peers", parents=[common], help="list discovered and known peers",
                              description="List the peers this profile knows; with --wait, "
                                          "discover the LAN for a while first.")
    p.add_argument("--json", action="store_true", help="one JSON array")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="run discovery for S seconds before listing")
    add_network_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise ConfigError("--wait must not be negative")
    views = asyncio.run(_discover(args)) if args.wait > 0 else _known(args)
    views.sort(key=lambda v: (not v.online, v.name.casefold(), v.fingerprint))
    if args.json:
        print(json.dumps([dataclasses.asdict(v) for v in views]))
        return 0
    if not views:
        print("no peers yet" + ("" if args.wait else " (try --wait 3 to look around)"))
        return 0
    for v in views:
        flags = ["online" if v.online else "offline"]
        if v.verified:
            flags.append("verified")
        if v.key_change_pending:
            flags.append("KEY CHANGED: sending blocked")
        if v.unread:
            flags.append(f"{v.unread} unread")
        where = ", ".join(v.addresses[:3])
        print(f"{v.name or '?':<20} {v.short_fingerprint}  {' '.join(flags)}  {where}")
    return 0


def _known(args: argparse.Namespace) -> list[PeerView]:
    unlocked = open_profile(args, lock=False)
    fingerprint = unlocked.identity.fingerprint
    with Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        records = store.list_peers()
    directory = PeerDirectory(fingerprint.hex())
    directory.set_records(records)
    return directory.views()


async def _discover(args: argparse.Namespace) -> list[PeerView]:
    async with running_node(args, "p2pmsg peers", auto_connect=False, monitor=False) as node:
        await asyncio.sleep(args.wait)
        return await node.peers()

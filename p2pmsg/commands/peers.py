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

from p2pmsg.commands._node import add_network_options, introduction_text, running_node
from p2pmsg.commands._password import open_profile
from p2pmsg.errors import ConfigError
from p2pmsg.node.api import PeerView
from p2pmsg.node.peers import PeerDirectory
from p2pmsg.protocol.names import name_key
from p2pmsg.sanitize import clip, printable
from p2pmsg.store import Store


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "peers",
        parents=[common],
        help="list discovered and known peers",
        description="List the peers this profile knows; with --wait, "
        "discover the LAN for a while first.",
    )
    p.add_argument("--json", action="store_true", help="one JSON array")
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="S",
        help="run discovery for S seconds before listing",
    )
    add_network_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise ConfigError("--wait must not be negative")
    views = asyncio.run(_discover(args)) if args.wait > 0 else _known(args)
    order = {"pinned": 0, "discovered": 1, "flagged": 2, "blocked": 3, "retired": 4}
    views.sort(key=lambda v: (order[v.state], not v.online, name_key(v.name), v.fingerprint))
    if args.json:
        print(json.dumps([{**dataclasses.asdict(v), "sendable": v.sendable} for v in views]))
        return 0
    if not views:
        print("no peers yet" + ("" if args.wait else " (try --wait 3 to look around)"))
        return 0
    for v in views:
        print(peer_line(v))
    return 0


def peer_line(v: PeerView) -> str:
    """One peer on one line; every name is the peer's (or the user's) text, made inert."""
    name = printable(clip(v.name, 24)) or "?"
    flags = ["online" if v.online else "offline"]
    if v.state == "pinned":
        flags.append("verified" if v.verified else "first seen")
    elif v.state == "discovered":
        flags.append("not met yet")
    elif v.state == "flagged":
        contact = printable(clip(v.clash_with_name, 24)) or "a contact"
        flags.append(
            f"FLAGGED: claims to be {contact}, not {contact}'s key; sending held "
            f"(p2pmsg trust {v.fingerprint[:16]})"
        )
    elif v.state == "blocked":
        flags.append("BLOCKED")
    elif v.state == "retired":
        flags.append(f"retired key, replaced by {(v.successor or '?')[:16]}")
    if v.local_name and v.claimed_name and v.claimed_name != v.local_name:
        flags.append(f"calls itself {printable(clip(v.claimed_name, 24))}")
    intro = introduction_text(v)
    if intro:
        flags.append(intro)
    if v.unread:
        flags.append(f"{v.unread} unread")
    where = ", ".join(v.addresses[:3])
    return f"{name:<24} {v.short_fingerprint}  {'  '.join(flags)}  {where}".rstrip()


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

"""`p2pmsg send --to PEER TEXT` / `send --group NAME TEXT`: deliver one message and say
whether it arrived.

Starts a node (discovery on, dialling only the recipient), waits for the peer
to be found, stores the message, sends it, and waits for the delivery
receipt. Exit status: 0 delivered; 3 not delivered yet: the message stays
queued in this profile and goes out the next time a node of this profile
(`listen`, the app, another `send`) meets the peer; 1 an error (unknown or
ambiguous peer, a blocked key change, bad input).

With `--group`, the post is signed, stored and handed to every current member
reached; exit 0 once every other current member's summary shows it holds the
post (group receipts are anti-entropy summaries, docs/PROTOCOL.md "Groups"),
3 while some do not: they get it from any member they meet, or from this
profile's next node. `--ttl` makes it a disappearing post (docs/PROTOCOL.md
"Groups": each member deletes its copy's text `ttl` seconds after first showing it).
"""

from __future__ import annotations

import argparse
import asyncio

from p2pmsg.commands._node import (
    EXIT_QUEUED,
    add_network_options,
    find_peer,
    json_line,
    running_node,
)
from p2pmsg.errors import ConfigError
from p2pmsg.sanitize import printable


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "send",
        parents=[common],
        help="send a message and wait for its delivery receipt",
        description="Send one message to PEER (a display name or a fingerprint prefix) and "
        "wait for the delivery receipt. Exit status 0: delivered; 3: queued, "
        "it will be sent when this profile next meets the peer.",
    )
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument(
        "--to",
        metavar="PEER",
        help="display name or fingerprint prefix (at least 4 hex digits)",
    )
    to.add_argument("--group", metavar="NAME", help="post to this group (name or id prefix)")
    p.add_argument("text", help="the message")
    p.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="S",
        help="how long to wait for the receipt (default: %(default)s s)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to look for a peer not known yet (default: %(default)s s)",
    )
    p.add_argument(
        "--ttl",
        type=float,
        metavar="S",
        help="disappearing message: delete it S seconds after it is read (in a group: "
        "each member's copy S seconds after that member is shown it; yours after sending)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_network_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.text:
        raise ConfigError("the message is empty")
    if args.timeout <= 0 or args.wait < 0:
        raise ConfigError("--timeout must be positive and --wait not negative")
    return asyncio.run(_send(args))


async def _send(args: argparse.Namespace) -> int:
    if args.group is not None:
        return await _send_group(args)
    async with running_node(args, "p2pmsg send", auto_connect=False, monitor_models=False) as node:
        fingerprint = await find_peer(node, args.to, args.wait)
        message = await node.send_text(fingerprint, args.text, ttl=args.ttl)
        status = await node.wait_delivered(message.id, args.timeout)
        connected = node.directory.session(fingerprint) is not None
        name = node.directory.view(fingerprint)
        # The name is the peer's claim: printed only through the sanitiser.
        label = printable(name.name if name is not None and name.name else fingerprint[:16])
    delivered = status in ("delivered", "read")
    if args.json:
        print(
            json_line(
                {"id": message.id, "peer": fingerprint, "status": status, "delivered": delivered}
            )
        )
    elif delivered:
        print(f"delivered to {label} (message id {message.id})")
    elif connected:
        print(
            f"sent to {label} but no receipt within {args.timeout:g} s; it stays queued "
            "and is sent again when this profile next meets the peer"
        )
    else:
        print(
            f"{label} is offline; the message is queued and will be sent when this "
            "profile next meets the peer"
        )
    return 0 if delivered else EXIT_QUEUED


async def _send_group(args: argparse.Namespace) -> int:
    async with running_node(args, "p2pmsg send", auto_connect=False, monitor_models=False) as node:
        message = await node.send_group(args.group, args.text, ttl=args.ttl)
        view = await node.wait_group_delivered(args.group, message.id, args.timeout)
    delivered = view.delivered >= view.recipients
    if args.json:
        print(
            json_line(
                {
                    "id": view.id,
                    "group": view.group,
                    "delivered": view.delivered,
                    "recipients": view.recipients,
                    "status": "delivered" if delivered else "queued",
                }
            )
        )
    elif delivered:
        print(f"delivered to all {view.recipients} members of {printable(view.group_name)}")
    else:
        print(
            f"delivered to {view.delivered} of {view.recipients} members of "
            f"{printable(view.group_name)}; the others get it from any member they meet, "
            "or from this profile's next node"
        )
    return 0 if delivered else EXIT_QUEUED

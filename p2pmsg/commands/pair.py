"""`p2pmsg pair --to PEER [--code CODE]`: verify a peer by a short one-time code.

Without `--code` this shows a fresh code for PEER and waits while the other
person types it on their side; with `--code` it enters the code PEER shows.
The two nodes then run SPAKE2 inside their encrypted session (docs/PROTOCOL.md
7.1); if the codes match, and nobody sits in the middle, each marks the
other verified. Exit status: 0 verified; 1 anything else (a wrong or expired
code, the peer unreachable, a bad argument). A code is good for one try and
two minutes.

`--json`: the typer prints one object, the outcome; the shower prints the
code as one object first (so a script can pass it on) and the outcome last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from p2pmsg.commands._node import add_network_options, find_peer, running_node
from p2pmsg.errors import ConfigError, ProfileLockedError
from p2pmsg.node.api import OUTCOME_TEXT, PairingOutcome
from p2pmsg.node.node import Node
from p2pmsg.protocol.pairing import CODE_LIFETIME, CONFIRM_TIMEOUT, parse_code
from p2pmsg.sanitize import clip, printable


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "pair",
        parents=[common],
        help="verify a peer with a short one-time code",
        description="Without --code: show a one-time code for PEER and wait while they type "
        "it. With --code: enter the code PEER shows you. When the codes match, "
        "both sides mark each other verified. Exit status 0: verified; 1: not.",
    )
    p.add_argument(
        "--to",
        required=True,
        metavar="PEER",
        help="display name or fingerprint prefix (at least 4 hex digits)",
    )
    p.add_argument(
        "--code", metavar="CODE", help="the code PEER shows (e.g. 123-456); without it, show a code"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="with --code: how long to try to reach PEER and pair (default: %(default)s s)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to look for a peer not known yet (default: %(default)s s)",
    )
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_network_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.code is not None:
        parse_code(args.code)  # refuse a malformed code before unlocking anything
    if args.timeout <= 0 or args.wait < 0:
        raise ConfigError("--timeout must be positive and --wait not negative")
    try:
        return asyncio.run(_pair(args))
    except ProfileLockedError as exc:
        raise ProfileLockedError(
            f"{exc}. Pair from there instead: in the app, /pair in the conversation with "
            f"{args.to}; if it is `p2pmsg listen`, stop it and run this command again"
        ) from None


async def _pair(args: argparse.Namespace) -> int:
    async with running_node(args, "p2pmsg pair", auto_connect=False, monitor_models=False) as node:
        peer = await find_peer(node, args.to, args.wait)
        label = _label(node, peer)
        if args.code is None:
            outcome = await _show(node, peer, label, args)
        else:
            outcome = await node.enter_pairing_code(peer, args.code, args.timeout)
    if args.json:
        print(
            json.dumps(
                {
                    "peer": outcome.peer,
                    "ok": outcome.ok,
                    "reason": outcome.reason,
                    "role": "shower" if args.code is None else "typer",
                    "verified": outcome.ok,
                }
            )
        )
    elif outcome.ok:
        print(f"paired: {label} is now verified")
    else:
        print(f"pairing with {label} failed: {OUTCOME_TEXT.get(outcome.reason, outcome.reason)}")
    return 0 if outcome.ok else 1


async def _show(node: Node, peer: str, label: str, args: argparse.Namespace) -> PairingOutcome:
    shown = await node.pairing_code(peer)
    if args.json:
        print(json.dumps({"peer": peer, "code": shown.code, "expires_at": shown.expires_at}))
    else:
        me = node.display_name or node.fingerprint[:16]
        print(
            f"pairing code for {label}: {shown.code}\n"
            f"On their side they enter it: `p2pmsg pair --to {_quote(me)} --code "
            f"{shown.code}` (or /pair in the app). It is good for one try, for "
            f"{CODE_LIFETIME / 60:g} minutes. Waiting..."
        )
    sys.stdout.flush()
    return await node.wait_pairing(peer, CODE_LIFETIME + CONFIRM_TIMEOUT + 5.0)


def _label(node: Node, peer: str) -> str:
    view = node.directory.view(peer)
    # The name is the peer's own claim (or the user's petname): inert, the key beside it.
    name = printable(clip(view.name, 64)) if view is not None else ""
    return f"{name} ({peer[:16]})" if name else peer[:16]


def _quote(text: str) -> str:
    safe = printable(text)
    return safe if safe.replace("-", "").replace("_", "").isalnum() else json.dumps(safe)

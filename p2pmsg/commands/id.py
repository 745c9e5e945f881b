"""`p2pmsg id [--json]`: this profile's identity fingerprint, to compare with peers."""

from __future__ import annotations

import argparse
import json

from p2pmsg.commands._password import open_profile
from p2pmsg.crypto.identity import format_fingerprint, short_fingerprint


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "id",
        parents=[common],
        help="show your fingerprint",
        description="Show this profile's identity fingerprint.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Read-only: no profile lock, so it also works while `p2pmsg` or `listen` runs.
    unlocked = open_profile(args, lock=False)
    fp = unlocked.identity.fingerprint
    info = {
        "fingerprint": fp.hex(),
        "fingerprint_display": format_fingerprint(fp),
        "short_fingerprint": short_fingerprint(fp),
        "name": unlocked.display_name,
        "profile": str(unlocked.profile.path),
    }
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"name:        {info['name']}")
    print(f"fingerprint: {info['fingerprint_display']}")
    print(f"short:       {info['short_fingerprint']}")
    print(f"profile:     {info['profile']}")
    return 0

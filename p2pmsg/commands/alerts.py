"""`p2pmsg alerts [--json]`: the security monitor's alerts for this profile, newest first."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from p2pmsg.commands._password import open_profile
from p2pmsg.sanitize import printable
from p2pmsg.store import Store


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "alerts",
        parents=[common],
        help="show the security alerts",
        description="Show the alerts the security monitor raised for "
        "this profile, newest first (works while a node runs).",
    )
    p.add_argument("--json", action="store_true", help="one JSON array of alert records")
    p.add_argument("--limit", type=int, default=100, metavar="N")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    unlocked = open_profile(args, lock=False)  # read-only: works beside `listen`
    with Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        alerts = store.list_alerts(max(1, args.limit))
    if args.json:
        print(json.dumps([a.to_dict() for a in alerts]))
        return 0
    if not alerts:
        print("no alerts")
    for a in alerts:
        when = datetime.fromtimestamp(a.ts).strftime("%Y-%m-%d %H:%M:%S")
        who = printable((a.peer or "")[:16] or a.addr or "-")
        # An alert's message quotes what peers sent (names, reasons): one inert line.
        print(
            f"{when}  {printable(a.severity):<8} {printable(a.kind):<20} {who:<16}  "
            f"{printable(a.message)}"
        )
    return 0

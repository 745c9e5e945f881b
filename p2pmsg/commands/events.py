"""`p2pmsg events [--json]`: the profile's security event log (the monitor's input)."""

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
        "events",
        parents=[common],
        help="show the security event log",
        description="Show the newest security events of this profile, "
        "oldest first; --json prints one JSON object per "
        "line in the DESIGN.md schema.",
    )
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.add_argument("--limit", type=int, default=200, metavar="N")
    p.add_argument("--event", metavar="NAME", help="only this event type")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    unlocked = open_profile(args, lock=False)  # read-only: works beside `listen`
    with Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        events = store.recent_events(max(1, args.limit), event=args.event)
    for e in events:
        record = e.to_dict()
        if args.json:
            print(json.dumps(record, separators=(",", ":"), ensure_ascii=True))
            continue
        when = datetime.fromtimestamp(e.ts).strftime("%Y-%m-%d %H:%M:%S")
        who = printable((e.peer or "")[:16] or e.addr or "-")
        # The detail holds peer text (abort and bye reasons, claimed names). JSON with
        # ensure_ascii already escapes every control; the sanitiser is the rule anyway.
        detail = (
            json.dumps(record["detail"], separators=(",", ":"), ensure_ascii=True)
            if record["detail"]
            else ""
        )
        print(f"{when}  {printable(e.event):<18} {who:<16} {e.bytes:>8}  {printable(detail)}")
    if not events and not args.json:
        print("no events")
    return 0

"""`p2pmsg alerts [--json]`: the security monitor's alerts for this profile, newest first,
and what the user makes of them: `--ack ID...|all`, `--dismiss ID...`, `--false-alarm ID...`.

States move forward only: unread -> acknowledged -> dismissed, and "false alarm" (a
dismissal that says the alert was wrong) from any of them. A false alarm also makes
later alerts of that kind about that peer one severity lower for 7 days, within
limits (p2pmsg.monitor.quieting). An id with no alert is an error and changes
nothing. Like `trust` and `rename`, this writes the profile's store without the
profile lock, so it works while the app or `listen` runs: the running node picks the
change up within a second (the store's alert generation) and its screens follow.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Any

from p2pmsg.commands._alert_text import evidence_text
from p2pmsg.commands._password import open_profile
from p2pmsg.errors import ConfigError
from p2pmsg.sanitize import printable
from p2pmsg.security_events import Alert
from p2pmsg.store import Store

#: How each state reads in the listing (and in what an action prints).
STATE_WORDS = {
    "unread": "unread",
    "acknowledged": "acknowledged",
    "dismissed": "dismissed",
    "false_alarm": "false alarm",
}
_ACTIONS = (("ack", "acknowledged"), ("dismiss", "dismissed"), ("false_alarm", "false_alarm"))


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "alerts",
        parents=[common],
        help="show the security alerts, acknowledge or dismiss them",
        description="Show the alerts the security monitor raised for this profile, newest "
        "first, with their id and state; or act on them by id (works while a node runs).",
    )
    p.add_argument("--json", action="store_true", help="one JSON array of alert records")
    p.add_argument("--limit", type=int, default=100, metavar="N")
    act = p.add_mutually_exclusive_group()
    act.add_argument(
        "--ack", nargs="+", metavar="ID", help="acknowledge these alerts (all: every unread one)"
    )
    act.add_argument("--dismiss", nargs="+", metavar="ID", help="dismiss these alerts")
    act.add_argument(
        "--false-alarm",
        nargs="+",
        metavar="ID",
        help="these alerts were wrong: dismiss them, and raise later alerts of the same kind "
        "about the same peer one severity lower for 7 days (never critical ones)",
    )
    p.set_defaults(func=run)


def _ids(values: list[str], *, all_allowed: bool) -> list[int] | None:
    if all_allowed and [v.casefold() for v in values] == ["all"]:
        return None
    ids = []
    for value in values:
        if not value.isdigit() or int(value) == 0:
            also = " or all" if all_allowed else ""
            raise ConfigError(
                f"not an alert id: {value!r} (give the numbers in the first column of "
                f"`p2pmsg alerts`{also})"
            )
        ids.append(int(value))
    return ids


def record(alert: Alert) -> dict[str, Any]:
    """The DESIGN.md record, then the store's id and the lifecycle state, then the
    evidence (last: each field was added after the ones before it, so scripts that read
    lines by position keep working)."""
    fields = alert.to_dict()
    evidence = fields.pop("evidence")
    return {
        **fields,
        "id": alert.id,
        "state": alert.state,
        "state_at": alert.state_at,
        "evidence": evidence,
    }


def run(args: argparse.Namespace) -> int:
    wanted = next(((flag, state) for flag, state in _ACTIONS if getattr(args, flag)), None)
    ids = None if wanted is None else _ids(getattr(args, wanted[0]), all_allowed=wanted[0] == "ack")
    unlocked = open_profile(args, lock=False)  # no lock: works beside `listen` and the app
    with Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        if wanted is not None:
            change = store.set_alert_state(ids, wanted[1], time.time())
            return _report(change.changed, change.unchanged, wanted[1], args.json)
        alerts = store.list_alerts(max(1, args.limit))
        counts = store.alert_counts()
    if args.json:
        print(json.dumps([record(a) for a in alerts]))
        return 0
    if not alerts:
        print("no alerts")
        return 0
    for a in alerts:
        when = datetime.fromtimestamp(a.ts).strftime("%Y-%m-%d %H:%M:%S")
        who = printable((a.peer or "")[:16] or a.addr or "-")
        # An alert's message quotes what peers sent (names, reasons): one inert line.
        print(
            f"{a.id:>5}  {when}  {STATE_WORDS[a.state]:<12} {printable(a.severity):<8} "
            f"{printable(a.kind):<20} {who:<16}  {printable(a.message)}"
        )
        why = evidence_text(a.evidence)
        if why:
            print(f"{'':>5}  why: {why}")
    print(", ".join(f"{counts[state]} {word}" for state, word in STATE_WORDS.items()))
    return 0


def _report(changed: list[Alert], unchanged: list[Alert], state: str, as_json: bool) -> int:
    if as_json:
        print(
            json.dumps(
                {"changed": list(map(record, changed)), "unchanged": list(map(record, unchanged))}
            )
        )
        return 0
    if not changed and not unchanged:
        print("no unread alerts")
    for a in changed:
        print(_done(a, state))
    for a in unchanged:
        print(f"alert {a.id} is already {STATE_WORDS[a.state]}: unchanged")
    return 0


def _done(alert: Alert, state: str) -> str:
    what = f"alert {alert.id} ({printable(alert.severity)} {printable(alert.kind)})"
    if state != "false_alarm":
        return f"{STATE_WORDS[state]} {what}"
    from p2pmsg.monitor.quieting import QUIET_FOR, UNQUIETABLE_KINDS, UNQUIETABLE_SOURCES

    who = printable((alert.peer or "")[:16] or alert.addr or "this device")
    if alert.kind in UNQUIETABLE_KINDS or alert.source in UNQUIETABLE_SOURCES:
        return (
            f"marked {what} a false alarm; alerts like it are never quieted "
            "(impersonation, or a rule that fires on one event)"
        )
    until = datetime.fromtimestamp((alert.state_at or time.time()) + QUIET_FOR)
    return (
        f"marked {what} a false alarm; later {printable(alert.kind)} alerts about {who} are "
        f"raised one severity lower until {until:%Y-%m-%d %H:%M} (never below low; critical "
        "ones stay critical)"
    )

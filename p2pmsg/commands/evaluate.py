"""`p2pmsg evaluate`: grade rules, each model, and the combination on labeled data."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from p2pmsg.errors import ConfigError
from p2pmsg.sanitize import printable


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "evaluate", parents=[common], help="measure the security monitor on a labeled log"
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="FILE",
        help="labeled JSON-lines log (default: datasets/test_logs.jsonl in a checkout; in an "
        "installed copy, the same file, made on first use in the user cache directory and "
        "checked against its pinned SHA-256)",
    )
    p.add_argument(
        "--false-alarms",
        action="store_true",
        help="also report how many of the profile's own alerts were marked a false alarm, "
        "by kind (unlocks the profile: a labeled log has no false alarms of yours)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from p2pmsg.monitor.datasets import TEST, locate
    from p2pmsg.monitor.evaluate import evaluate_file, format_report

    if args.data is not None and not args.data.is_file():
        raise ConfigError(f"labeled data not found: {args.data}; {TEST.hint()}")
    data = args.data or locate(TEST, say=lambda msg: print(msg, file=sys.stderr))
    report = evaluate_file(data)
    if args.false_alarms:
        report["profile_alerts"] = profile_alerts(args)
    text = json.dumps(report) if args.json else format_report(report)
    if args.false_alarms and not args.json:
        text += "\n\n" + format_profile_alerts(report["profile_alerts"])
    print(text)
    return 0


def profile_alerts(args: argparse.Namespace) -> dict[str, Any]:
    """The profile's alerts by state, and its false alarms by kind: how often the monitor
    was wrong on this user's own traffic, in the user's judgement."""
    from p2pmsg.commands._password import open_profile
    from p2pmsg.store import Store

    unlocked = open_profile(args, lock=False, command="p2pmsg evaluate")  # beside a node
    with unlocked, Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        counts = store.alert_counts()
        by_kind = Counter(alert.kind for alert in store.false_alarms(0.0))
    total = sum(counts.values())
    return {
        "profile": unlocked.profile.name,
        "alerts": total,
        "by_state": dict(counts),
        "false_alarm_share": round(counts["false_alarm"] / total, 4) if total else 0.0,
        "false_alarms_by_kind": dict(sorted(by_kind.items())),
    }


def format_profile_alerts(found: dict[str, Any]) -> str:
    states = found["by_state"]
    lines = [
        f"profile {printable(found['profile'])}: {found['alerts']} alerts, "
        f"{states['false_alarm']} marked a false alarm ({found['false_alarm_share']:.0%}); "
        f"{states['unread']} unread, {states['acknowledged']} acknowledged, "
        f"{states['dismissed']} dismissed"
    ]
    for kind, count in found["false_alarms_by_kind"].items():
        lines.append(f"  false alarms of kind {kind}: {count}")
    return "\n".join(lines)

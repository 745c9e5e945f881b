"""`p2pmsg evaluate`: grade rules, each model, and the combination on labeled data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from p2pmsg.errors import ConfigError


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
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from p2pmsg.monitor.datasets import TEST, locate
    from p2pmsg.monitor.evaluate import evaluate_file, format_report

    if args.data is not None and not args.data.is_file():
        raise ConfigError(f"labeled data not found: {args.data}; {TEST.hint()}")
    data = args.data or locate(TEST, say=lambda msg: print(msg, file=sys.stderr))
    report = evaluate_file(data)
    print(
        json.dumps(report, indent=None if args.json else 2) if args.json else format_report(report)
    )
    return 0

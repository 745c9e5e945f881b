"""`p2pmsg evaluate`: grade rules, each model, and the combination on labeled data."""

from __future__ import annotations

import argparse
import json
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
        help="labeled JSON-lines log (default: datasets/test_logs.jsonl)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from p2pmsg.monitor.evaluate import evaluate_file, format_report
    from p2pmsg.monitor.train import REPO_ROOT

    data = args.data or REPO_ROOT / "datasets" / "test_logs.jsonl"
    if not data.is_file():
        raise ConfigError(f"labeled data not found: {data}")
    report = evaluate_file(data)
    print(
        json.dumps(report, indent=None if args.json else 2) if args.json else format_report(report)
    )
    return 0

"""`p2pmsg bench [SCENARIO...] [--json] [--quick]`: run performance scenarios."""

from __future__ import annotations

import argparse
import json
import sys
from types import ModuleType
from typing import Any

from p2pmsg.bench import SCENARIOS


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "bench",
        parents=[common],
        help="measure performance (cipher suites, ...)",
        description="Run benchmark scenarios and print a table, or one JSON object with "
        "--json. Figures are best-of-N batches, with baselines measured "
        "interleaved in the same run.",
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--quick",
        action="store_true",
        help="short measurements (seconds): a smoke test, not figures to quote",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `p2pmsg --help` does not load the benchmark machinery.
    from p2pmsg.bench import runner

    names: list[str] = args.scenarios
    runner.resolve(names)  # fail on a typo before measuring anything
    if args.json:
        report = runner.run(names, args.quick)
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

    machine = runner.machine_info()
    print(
        f"p2pmsg bench on {machine['cpu']} ({machine['cores']} cores), "
        f"{machine['python']}{' [quick]' if args.quick else ''}",
        flush=True,
    )

    def show(name: str, module: ModuleType, result: dict[str, Any]) -> None:
        print("\n" + runner.render(name, module, result), flush=True)

    runner.run(names, args.quick, on_result=show)
    return 0

"""`p2pmsg simulate`: write a seeded, labeled security-event log (JSON lines).

The shipped datasets are made with this command; `datasets/README.md` gives
the exact invocations, and the same options always give the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from p2pmsg.errors import ConfigError


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    from p2pmsg.monitor.simulate import SimConfig

    d = SimConfig()
    p = subparsers.add_parser(
        "simulate", parents=[common], help="generate a labeled, simulated security-event log"
    )
    p.add_argument("--hours", type=float, default=d.hours, help="simulated hours (%(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (%(default)s)")
    p.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="FILE",
        help="where to write the JSON lines (default: standard output)",
    )
    p.add_argument(
        "--start",
        type=float,
        default=d.start,
        metavar="EPOCH",
        help="first second of the log, Unix time (%(default)s)",
    )
    p.add_argument("--peers", type=int, default=d.peers, help="honest peers (%(default)s)")
    p.add_argument(
        "--attack-rate",
        type=float,
        default=d.attack_rate,
        metavar="PER_DAY",
        help="attack episodes per kind per day (%(default)s)",
    )
    p.add_argument(
        "--slowness",
        type=float,
        default=d.slowness,
        metavar="FACTOR",
        help="stretch the gaps of quiet attacks by FACTOR (%(default)s)",
    )
    p.add_argument(
        "--quiet-fraction",
        type=float,
        default=d.quiet_fraction,
        metavar="SHARE",
        help="share of attack episodes that are slow or quiet (%(default)s)",
    )
    p.add_argument(
        "--lookalike-rate",
        type=float,
        default=d.lookalike_rate,
        metavar="FACTOR",
        help="multiply benign look-alikes: big transfers, flaky links (%(default)s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from p2pmsg.monitor.simulate import SimConfig, generate, write_jsonl

    try:
        config = SimConfig(
            hours=args.hours,
            seed=args.seed,
            start=args.start,
            peers=args.peers,
            attack_rate=args.attack_rate,
            slowness=args.slowness,
            quiet_fraction=args.quiet_fraction,
            lookalike_rate=args.lookalike_rate,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    events = generate(config)
    if args.output == "-":
        write_jsonl(events, sys.stdout)
        return 0
    path = Path(args.output)
    try:
        # newline="\n": the same bytes on every platform, so the hashes in the README hold.
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            count = write_jsonl(events, out)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(
        f"wrote {count} events ({config.hours:g} h, seed {config.seed}) to {path}", file=sys.stderr
    )
    return 0

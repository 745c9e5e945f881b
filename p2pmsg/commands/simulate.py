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
    from p2pmsg.monitor.simulate import SHIFTS, SimConfig

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
    p.add_argument(
        "--shift",
        choices=sorted(SHIFTS),
        default=None,
        help="a preset away from the training data, to measure generalisation: "
        + "; ".join(
            f"{name}: " + ", ".join(f"{k.replace('_', '-')} {v:g}" for k, v in values.items())
            for name, values in sorted(SHIFTS.items())
        )
        + " (explicit options win)",
    )
    p.add_argument("--peers", type=int, default=None, help=f"honest peers ({d.peers})")
    p.add_argument(
        "--attack-rate",
        type=float,
        default=None,
        metavar="PER_DAY",
        help=f"attack episodes per kind per day ({d.attack_rate:g})",
    )
    p.add_argument(
        "--slowness",
        type=float,
        default=None,
        metavar="FACTOR",
        help=f"stretch the gaps of quiet attacks by FACTOR ({d.slowness:g})",
    )
    p.add_argument(
        "--quiet-fraction",
        type=float,
        default=None,
        metavar="SHARE",
        help=f"share of attack episodes that are slow or quiet ({d.quiet_fraction:g})",
    )
    p.add_argument(
        "--lookalike-rate",
        type=float,
        default=None,
        metavar="FACTOR",
        help=f"multiply benign look-alikes: big transfers, flaky links ({d.lookalike_rate:g})",
    )
    p.add_argument(
        "--attack-speed",
        type=float,
        default=None,
        metavar="FACTOR",
        help=f"multiply the event rate of loud attacks: floods, guessing ({d.attack_speed:g})",
    )
    p.add_argument(
        "--duration-scale",
        type=float,
        default=None,
        metavar="FACTOR",
        help=f"multiply how long each attack episode lasts ({d.duration_scale:g})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from p2pmsg.monitor.simulate import SHIFTS, SimConfig, generate, write_jsonl

    shifted: dict[str, float] = dict(SHIFTS[args.shift]) if args.shift else {}
    for name in (
        "peers",
        "attack_rate",
        "slowness",
        "quiet_fraction",
        "lookalike_rate",
        "attack_speed",
        "duration_scale",
    ):
        value = getattr(args, name)
        if value is not None:
            shifted[name] = value
    if "peers" in shifted:
        shifted["peers"] = int(shifted["peers"])
    try:
        config = SimConfig(hours=args.hours, seed=args.seed, start=args.start, **shifted)  # type: ignore[arg-type]
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

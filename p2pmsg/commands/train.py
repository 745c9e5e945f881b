"""`p2pmsg train`: retrain the monitor's models from the synthetic log.

Deterministic (fixed seeds, one job): the same data and library versions give
the same files. Writes `models/*.joblib`, `models/manifest.json` and the
hashes pinned inside the package that the loader checks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from p2pmsg.errors import ConfigError


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    from p2pmsg.monitor.train import DEFAULT_DATA, DEFAULT_OUT, PINNED_PATH

    p = subparsers.add_parser(
        "train", parents=[common], help="retrain the security monitor's models"
    )
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="FILE",
        help="labeled training log (default: datasets/synthetic_logs.jsonl)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="where to write the models (default: models/)",
    )
    p.add_argument(
        "--pin",
        type=Path,
        default=PINNED_PATH,
        metavar="FILE",
        help="where to write the hashes the loader trusts (default: inside the "
        "package, so the new models replace the shipped ones)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from p2pmsg.monitor.train import train

    if not args.data.is_file():
        raise ConfigError(f"training data not found: {args.data}")
    manifest = train(args.data, args.out, pin=args.pin, log=lambda msg: print(msg, file=sys.stderr))
    for name, info in manifest["files"].items():
        print(f"{name}  {info['bytes']:>10} bytes  sha256 {info['sha256']}")
    return 0

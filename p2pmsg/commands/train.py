"""`p2pmsg train`: retrain the monitor's models from the synthetic log.

Deterministic (fixed seeds, one job): the same data and library versions give
the same files. In a checkout it writes `models/*.joblib`, `models/manifest.json`
and the hashes pinned inside the package that the loader checks. An installed
copy (`pip install .`, pipx) never rewrites its own package: there `--out` and
`--pin` are required, and the training set comes from the user's cache
(`p2pmsg.monitor.datasets`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from p2pmsg.errors import ConfigError


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "train",
        parents=[common],
        help="retrain the security monitor's models",
        description="Retrain the security monitor's models, deterministically. In a checkout "
        "the defaults rewrite models/ and the package's pinned hashes. An installed copy "
        "never rewrites its own package: pass --out DIR --pin FILE there.",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="FILE",
        help="labeled training log (default: datasets/synthetic_logs.jsonl in a checkout; "
        "in an installed copy, the same file, made on first use in the user cache directory "
        "and checked against its pinned SHA-256)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write the models (default in a checkout: models/; required in an "
        "installed copy)",
    )
    p.add_argument(
        "--pin",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write the hashes the loader trusts (default in a checkout: inside the "
        "package, so the new models replace the shipped ones; required in an installed copy)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from p2pmsg.monitor.datasets import TRAINING, locate
    from p2pmsg.monitor.train import resolve_outputs, train, trust_note

    def say(msg: str) -> None:
        print(msg, file=sys.stderr)

    out_dir, pin = resolve_outputs(args.out, args.pin)
    if args.data is not None and not args.data.is_file():
        raise ConfigError(f"training data not found: {args.data}; {TRAINING.hint()}")
    data = args.data or locate(TRAINING, say=say)
    manifest = train(data, out_dir, pin=pin, log=say)
    for name, info in manifest["files"].items():
        print(f"{name}  {info['bytes']:>10} bytes  sha256 {info['sha256']}")
    note = trust_note(out_dir, pin)
    if note:
        say(note)
    return 0

"""Command-line entry point: `p2pmsg [COMMAND] ...`.

Each command lives in its own module under `p2pmsg.commands` and exposes
`register(subparsers, common)`, which adds its parser and sets `func`
(a callable taking the parsed namespace and returning an exit status).
This file only assembles them, so commands stay small and independent.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from p2pmsg import __version__
from p2pmsg.errors import P2PMsgError
from p2pmsg.sanitize import printable

# Order here is the order in `p2pmsg --help`.
COMMAND_MODULES: tuple[str, ...] = (
    # one line per command module in p2pmsg/commands/, e.g. "init",
    "init",
    "id",
    "passwd",
    "bench",
    "simulate",
    "train",
    "evaluate",
    "listen",
    "send",
    "send_file",
    "group",
    "peers",
    "add_peer",
    "trust",
    "rename",
    "block",
    "pair",
    "alerts",
    "events",
)


def common_options(*, after_command: bool = False) -> argparse.ArgumentParser:
    """Options every command accepts (the contract in DESIGN.md), before or after the
    command. The copy a command's parser gets (`after_command`) has no defaults, so it
    sets only what was given after the command and never overwrites what was given
    before it (the main parser holds the defaults); given in both places, the later wins."""
    common = argparse.ArgumentParser(add_help=False, argument_default=None)
    group = common.add_argument_group("profile and network")
    group.add_argument(
        "--profile", default="default", metavar="NAME", help="profile to use (default: default)"
    )
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="directory holding the profiles (default: the per-user data dir)",
    )
    group.add_argument(
        "--password-file", metavar="FILE", help="read the profile password from FILE (first line)"
    )
    group.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="N",
        help="TCP port to listen on (default: any free port)",
    )
    group.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="IP",
        help="only use the interface with this address (repeatable)",
    )
    if after_command:
        for action in common._actions:
            action.default = argparse.SUPPRESS
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="p2pmsg",
        description="Serverless, end-to-end encrypted messenger for your local network.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"p2pmsg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    after = common_options(after_command=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"p2pmsg.commands.{name}")
        module.register(sub, after)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        func = _default_command()
    try:
        return int(func(args) or 0)
    except P2PMsgError as exc:
        # Errors can quote peers (an ambiguous name lists every claimant's name): one
        # inert line, whatever they claimed.
        print(f"p2pmsg: error: {printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _default_command() -> Callable[[argparse.Namespace], int]:
    """A bare `p2pmsg` starts the TUI."""
    try:
        module = importlib.import_module("p2pmsg.commands.tui")
    except ModuleNotFoundError:

        def not_yet(_args: argparse.Namespace) -> int:
            print(
                "p2pmsg: the terminal UI is not available in this build yet; "
                "see `p2pmsg --help` for the commands.",
                file=sys.stderr,
            )
            return 2

        return not_yet
    run: Callable[[argparse.Namespace], int] = module.run
    return run

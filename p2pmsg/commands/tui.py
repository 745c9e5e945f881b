"""The bare `p2pmsg` command: the full-screen terminal UI.

Not in COMMAND_MODULES: `p2pmsg.cli` runs it when no subcommand is given.
A password from `--password-file` or P2PMSG_PASSWORD skips the prompt (the
unlock still runs in the app, in a worker, so the first frame is immediate).
"""

from __future__ import annotations

import argparse
import os

from p2pmsg.commands._password import PASSWORD_ENV, read_password_file


def preset_password(args: argparse.Namespace) -> str | None:
    path = getattr(args, "password_file", None)
    if path:
        return read_password_file(path)
    value = os.environ.get(PASSWORD_ENV)
    return value or None


def run(args: argparse.Namespace) -> int:
    from p2pmsg.commands._password import profile_from_args
    from p2pmsg.ui.app import P2PMsgApp
    from p2pmsg.ui.profile_launcher import ProfileLauncher

    options: dict[str, object] = {}
    if getattr(args, "port", 0):
        options["port"] = args.port
    if getattr(args, "interface", None):
        options["interfaces"] = tuple(args.interface)
    launcher = ProfileLauncher(
        profile_from_args(args), preset=preset_password(args), node_options=options
    )
    app = P2PMsgApp(launcher)
    try:
        app.run()
    finally:
        launcher.close()
    return int(app.return_code or 0)

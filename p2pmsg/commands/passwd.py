"""`p2pmsg passwd`: change the profile password (the identity and data key stay the same)."""

from __future__ import annotations

import argparse
import sys

from p2pmsg.commands._password import (
    INTERACTIVE_TRIES,
    in_whole_seconds,
    new_password_source,
    profile_from_args,
    read_password,
)
from p2pmsg.errors import PasswordPolicyError, UnlockThrottledError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "passwd",
        parents=[common],
        help="change the profile password",
        description="Change the profile password. The current one comes from --password-file, "
        "P2PMSG_PASSWORD or a prompt; the new one from --new-password-file, "
        "P2PMSG_NEW_PASSWORD or a prompt.",
    )
    p.add_argument(
        "--new-password-file", metavar="FILE", help="read the new password from FILE (first line)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = profile_from_args(args)
    with profile.lock("p2pmsg passwd"):
        old = read_password(args, prompt=f"Current password for profile '{profile.name}': ")
        new_source = new_password_source(args)
        tries = INTERACTIVE_TRIES if new_source.interactive() else 1
        for attempt in range(1, tries + 1):
            new = new_source.read(confirm=True, prompt="New password: ")
            try:
                profile.change_password(old, new)
            except PasswordPolicyError as exc:
                print("p2pmsg: error: new password rejected; rules not met:", file=sys.stderr)
                for failure in exc.failures:
                    print(f"  - {failure}", file=sys.stderr)
                if attempt == tries:
                    return 1
                continue
            except UnlockThrottledError as exc:
                raise in_whole_seconds(exc) from None
            print(f"password changed for profile '{profile.name}'; the identity is unchanged")
            return 0
    return 1

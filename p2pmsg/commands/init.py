"""`p2pmsg init --name NAME`: create a profile (a new identity sealed under a password)."""

from __future__ import annotations

import argparse
import sys

from p2pmsg.commands._password import INTERACTIVE_TRIES, password_source, profile_from_args
from p2pmsg.crypto.identity import format_fingerprint, short_fingerprint
from p2pmsg.crypto.password_policy import strength_hint
from p2pmsg.errors import KeystoreError, PasswordPolicyError


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "init",
        parents=[common],
        help="create a profile: a new identity and its password",
        description="Create a profile: a new identity sealed under a password. The password "
        "comes from --password-file, P2PMSG_PASSWORD or a prompt.",
    )
    p.add_argument("--name", required=True, help="your display name, shown to peers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = profile_from_args(args)
    if profile.exists():
        raise KeystoreError(
            f"profile '{profile.name}' already exists ({profile.keystore_path}); "
            "it was left untouched"
        )
    source = password_source(args)
    tries = INTERACTIVE_TRIES if source.interactive() else 1
    for attempt in range(1, tries + 1):
        password = source.read(confirm=True, prompt="New password: ")
        try:
            unlocked = profile.create(args.name, password)
        except PasswordPolicyError as exc:
            print("p2pmsg: error: password rejected; rules not met:", file=sys.stderr)
            for failure in exc.failures:
                print(f"  - {failure}", file=sys.stderr)
            if attempt == tries:
                return 1
            continue
        if source.interactive():
            print(f"password strength: {strength_hint(password)}")
        fp = unlocked.identity.fingerprint
        print(f"created profile '{profile.name}' in {profile.path}")
        print(f"name:        {unlocked.display_name}")
        print(f"fingerprint: {format_fingerprint(fp)}")
        print(f"short:       {short_fingerprint(fp)}")
        return 0
    return 1

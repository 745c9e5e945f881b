"""Where commands get passwords from, and how they open the profile.

A password comes from, in this order: the first line of `--password-file`,
the environment variable P2PMSG_PASSWORD, or a prompt when stdin is a
terminal. Scripts and tests use the first two; people the third. A command
that cannot get a password fails with a clear message rather than hanging on
a prompt nobody sees.
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from p2pmsg.errors import ConfigError, UnlockThrottledError, WrongPasswordError
from p2pmsg.profile import Profile, UnlockedProfile

PASSWORD_ENV = "P2PMSG_PASSWORD"  # noqa: S105 - a variable name, not a password
NEW_PASSWORD_ENV = "P2PMSG_NEW_PASSWORD"  # noqa: S105
INTERACTIVE_TRIES = 3
_MAX_PASSWORD_FILE = 64 * 1024


@dataclass(frozen=True)
class PasswordSource:
    """Where a password is taken from; only an interactive source can be asked again."""

    file: str | None
    env: str
    what: str  # "password" or "new password", for messages

    def interactive(self) -> bool:
        return not self.file and os.environ.get(self.env) is None and sys.stdin.isatty()

    def read(self, *, confirm: bool = False, prompt: str = "Password: ") -> str:
        if self.file:
            return read_password_file(self.file)
        value = os.environ.get(self.env)
        if value is not None:
            if not value:
                raise ConfigError(f"{self.env} is set but empty")
            return value
        if not sys.stdin.isatty():
            flag = "--password-file" if self.env == PASSWORD_ENV else "--new-password-file"
            raise ConfigError(f"no {self.what}: use {flag}, {self.env} or a terminal")
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat: ") != password:
            raise ConfigError("the two passwords do not match")
        if not password:
            raise ConfigError(f"empty {self.what}")
        return password


def password_source(args: argparse.Namespace) -> PasswordSource:
    return PasswordSource(getattr(args, "password_file", None), PASSWORD_ENV, "password")


def new_password_source(args: argparse.Namespace) -> PasswordSource:
    return PasswordSource(
        getattr(args, "new_password_file", None), NEW_PASSWORD_ENV, "new password"
    )


def read_password(
    args: argparse.Namespace, *, confirm: bool = False, prompt: str = "Password: "
) -> str:
    """The profile password: --password-file, then P2PMSG_PASSWORD, then a prompt."""
    return password_source(args).read(confirm=confirm, prompt=prompt)


def read_password_file(path: str) -> str:
    """The first line of `path`, without its line ending (spaces are kept: they may be meant)."""
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_PASSWORD_FILE)
    except OSError as exc:
        raise ConfigError(f"cannot read password file {path}: {exc.strerror}") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        print(
            f"p2pmsg: warning: password file {path} is readable by other users (chmod 600 {path})",
            file=sys.stderr,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"password file {path} is not UTF-8 text") from None
    first = text.splitlines()[0] if text else ""
    if not first:
        raise ConfigError(f"password file {path} is empty (the password is its first line)")
    return first


def profile_from_args(args: argparse.Namespace) -> Profile:
    data_dir = getattr(args, "data_dir", None)
    return Profile(Path(data_dir) if data_dir else None, getattr(args, "profile", "default"))


def open_profile(
    args: argparse.Namespace, *, lock: bool = True, command: str | None = None
) -> UnlockedProfile:
    """Unlock the profile named by the common options, taking its lock unless `lock=False`.

    On a terminal a wrong password may be typed again (up to three tries, each
    one counted by the backoff); from a file or the environment it fails at
    once. Use the result as a context manager to release the lock.
    """
    profile = profile_from_args(args)
    source = password_source(args)
    tries = INTERACTIVE_TRIES if source.interactive() else 1
    # The unlock event says which command unlocked: a script polling `p2pmsg alerts`
    # unlocks each time, and the monitor must not read that as guessing.
    program = command or f"p2pmsg {getattr(args, 'command', None) or 'cli'}"
    for attempt in range(1, tries + 1):
        password = source.read(prompt=f"Password for profile '{profile.name}': ")
        try:
            if lock:
                return profile.open(password, command=command)
            return profile.unlock(password, program=program)
        except WrongPasswordError:
            if attempt == tries:
                raise
            print("wrong password", file=sys.stderr)
        except UnlockThrottledError as exc:
            raise in_whole_seconds(exc) from None
    raise AssertionError("unreachable")


def in_whole_seconds(exc: UnlockThrottledError) -> UnlockThrottledError:
    """The same refusal with the wait rounded up, so "try again in N s" is never too early."""
    return UnlockThrottledError(float(math.ceil(exc.retry_after)))

"""The real `p2pmsg` command line inside a harness host: profiles, argv, `listen --json`.

Shared by the LAN chat tests and the live-monitor tests, which drive exactly
what a user runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from p2pmsg.bench.netns import Host
from p2pmsg.profile import Profile
from tests.harness.procs import JsonLines

PASSWORD = "Lan-Test-Passw0rd!"  # noqa: S105 - the throwaway test profiles' password
REPO = Path(__file__).resolve().parents[2]
#: The environment of every `p2pmsg` process: the password (no prompt), this checkout.
ENV = {"P2PMSG_PASSWORD": PASSWORD, "PYTHONPATH": str(REPO)}


def make_profile(data_dir: Path, name: str) -> str:
    """A profile with a cheap KDF (test speed); returns its fingerprint."""
    unlocked = Profile(data_dir, name, kdf_iterations=20_000).create(name, PASSWORD)
    return unlocked.identity.fingerprint.hex()


def p2pmsg(*args: str) -> list[str]:
    return [sys.executable, "-m", "p2pmsg", *args]


def listen(
    host: Host, data_dir: Path, name: str, *extra: str, ready_timeout: float = 20.0
) -> JsonLines:
    """`p2pmsg listen --json` for a profile, once it printed its ready line."""
    proc = host.run(
        p2pmsg("listen", "--json", "--data-dir", str(data_dir), "--profile", name, *extra),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = JsonLines(proc)
    lines.wait_for(lambda o: o.get("event") == "ready", ready_timeout, f"{name}'s ready line")
    return lines

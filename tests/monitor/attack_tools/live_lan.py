"""Helpers for the live-monitor LAN tests: profiles, real `p2pmsg` processes, polling alerts.

Everything runs through the command line a user has (`p2pmsg listen`,
`alerts --json`, `events --json`, `id`, `send-file`) inside LAN harness
hosts (tests/harness), so what is measured is what a user would see.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.harness import Host
from tests.harness.cli import ENV, PASSWORD, listen, make_profile, p2pmsg

__all__ = [
    "ALERT_DEADLINE",
    "ENV",
    "PASSWORD",
    "Alert",
    "Event",
    "ProfileCli",
    "first_event",
    "listen",
    "make_profile",
    "measure",
    "p2pmsg",
]

#: The issue's promise: a rule-backed attack is in `p2pmsg alerts` within 10 seconds.
ALERT_DEADLINE = 10.0

Alert = dict[str, Any]
Event = dict[str, Any]


class ProfileCli:
    """`p2pmsg` commands against one profile, run in one host."""

    def __init__(self, host: Host, data_dir: Path, name: str) -> None:
        self.host, self.data_dir, self.name = host, data_dir, name

    def run(
        self, *args: str, password: str = PASSWORD, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return self.host.exec(
            p2pmsg(*args, "--data-dir", str(self.data_dir), "--profile", self.name),
            env={**ENV, "P2PMSG_PASSWORD": password},
            timeout=timeout,
            check=False,
        )

    def alerts(self) -> list[Alert] | None:
        """The profile's alerts, newest first; None when the command was refused (throttled)."""
        result = self.run("alerts", "--json", "--limit", "500")
        if result.returncode != 0:
            return None
        alerts: list[Alert] = json.loads(result.stdout)
        return alerts

    def events(self, limit: int = 5000) -> list[Event]:
        result = self.run("events", "--json", "--limit", str(limit))
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def wait_for_alert(
        self, match: Callable[[Alert], bool], what: str, timeout: float = 25.0
    ) -> tuple[Alert, float]:
        """Poll `alerts --json` until an alert matches; (the oldest match, wall time seen).

        The time seen is taken after the command returned, so it overstates the delay by
        up to one poll (~0.4 s): the measurement errs against us, never for us.
        """
        deadline = time.monotonic() + timeout
        last: list[Alert] | None = None
        while time.monotonic() < deadline:
            alerts = self.alerts()
            seen = time.time()
            if alerts is not None:
                last = alerts
                hits = [a for a in alerts if match(a)]
                if hits:
                    return hits[-1], seen
            time.sleep(0.05)
        raise AssertionError(f"no alert for {what} within {timeout:.0f} s; alerts: {last}")


def first_event(events: Sequence[Event], match: Callable[[Event], bool]) -> Event:
    found = [e for e in events if match(e)]
    assert found, "the attack left no security event in the store"
    return min(found, key=lambda e: float(e["ts"]))


def measure(what: str, elapsed: float, detail: str = "") -> None:
    """One line in the test output, collected for the report (`pytest -s` shows them)."""
    print(
        f"\n[measure] {what}: alert seen {elapsed:.2f} s after the attack's first event"
        + (f" ({detail})" if detail else "")
    )

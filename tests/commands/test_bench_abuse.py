"""The `abuse` benchmark: the real command (quick) and the attacker's bounds.

Figures are reported, never asserted: whether the honest peer met its target
under attack is the benchmark's verdict, not a test's. What is asserted: the
report's shape, that the honest peer got samples under every condition, and
that each attack really happened and stopped by itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.bench import SCENARIOS, abuse
from p2pmsg.bench.attacker import MODES, run_attack, source_address
from p2pmsg.bench.peer import bench_config
from p2pmsg.bench.report import render_table
from p2pmsg.crypto.identity import Identity
from p2pmsg.node.node import Node
from tests.conftest import REPO_ROOT


def _quick_report() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "p2pmsg", "bench", "abuse", "--quick", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["quick"] is True
    return report


def test_abuse_is_a_registered_scenario() -> None:
    assert SCENARIOS["abuse"] == "p2pmsg.bench.abuse"
    assert list(abuse.CONDITIONS) == ["none", "squat", "noread", "flood"]


def test_bench_abuse_quick_json() -> None:
    result = _quick_report()["abuse"]
    entries = {e["condition"]: e for e in result["conditions"]}
    assert list(entries) == list(abuse.CONDITIONS)
    for name, e in entries.items():
        honest = e["honest"]
        assert honest["count"] >= 1, f"no honest sample under {name}"
        assert 0 < honest["p50_ms"] <= honest["p99_ms"] <= honest["max_ms"]
        assert 0 <= honest["over_target"] <= honest["count"]
        for trouble in ("refused", "late", "lost"):
            assert isinstance(honest[trouble], int) and honest[trouble] >= 0
        assert e["p99_vs_none"] > 0 and e["p50_vs_none"] > 0
        if sys.platform.startswith("linux"):
            assert e["victim"]["peak_rss_kib"] > 0 and e["victim"]["peak_fds"] > 0
    assert entries["none"]["attacker"] is None and "target" not in entries["none"]
    assert entries["none"]["p99_vs_none"] == 1.0

    for name in ("squat", "noread", "flood"):
        attacker, target = entries[name]["attacker"], entries[name]["target"]
        assert attacker["mode"] == name and attacker["errors"] == []
        assert attacker["accepted"] >= 1  # each attack got at least one handshake through
        assert isinstance(target["met"], bool) and target["limit_ms"] == abuse.TARGET_P99_MS
        assert target["p99_ms"] == entries[name]["honest"]["p99_ms"]
    assert entries["squat"]["attacker"]["attempts"] > entries["squat"]["attacker"]["accepted"]
    assert entries["noread"]["attacker"]["messages_sent"] > 0
    assert entries["noread"]["attacker"]["bytes_sent"] > 0
    assert entries["flood"]["attacker"]["messages_sent"] > 0
    # The victim's own log names the attacker's address for what it refused or accepted.
    assert entries["squat"]["victim"]["events_from_attacker"]["handshake_ok"] >= 1
    assert isinstance(result["all_targets_met"], bool)

    table = render_table(abuse.rows(result))
    assert len(table.splitlines()) == 2 + len(abuse.CONDITIONS)
    assert "tries" in table and "pings" in table and "chats" in table
    assert len(abuse.notes(result)) == 3 + len(abuse.CONDITIONS)


@pytest.mark.parametrize("mode", MODES)
async def test_each_attack_stops_by_itself(mode: str) -> None:
    """No stop from a parent: the deadline alone ends the attack and closes its sockets."""
    with tempfile.TemporaryDirectory(prefix="p2pmsg-test-abuse-") as tmp:
        config = bench_config(models=False)
        node = await Node.open(
            Identity.generate(os.urandom), "victim", Path(tmp, "v.db"), os.urandom(32), config
        )
        await node.start()
        try:
            start = time.monotonic()
            stats = await run_attack(mode, node.listen_port, source_address(), 0.5, 50, stdin=False)
            assert time.monotonic() - start < 5.0
        finally:
            await node.stop()
    assert stats.errors == [] and stats.attempts >= 1 and stats.accepted >= 1
    assert stats.attempts <= 50 and stats.messages_sent <= 50
    assert stats.seconds >= 0.5

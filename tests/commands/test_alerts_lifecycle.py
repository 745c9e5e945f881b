"""`p2pmsg alerts --ack/--dismiss/--false-alarm` through the real CLI (a subprocess) on
a real profile: states shown and kept, forward only, and one clear error line with
exit 1 (the CLI's way for a bad argument) for an id with no alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from p2pmsg.profile import Profile
from p2pmsg.security_events import Alert
from p2pmsg.store import Store
from tests.conftest import REPO_ROOT

PASSWORD = "Alerts-Life-Passw0rd!"  # noqa: S105 - a throwaway test profile
TS = datetime(2026, 1, 5, 12, 0, 0).timestamp()
PEER = "66" * 32


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2pmsg", "alerts", "--data-dir", str(data_dir), *args],
        env={**os.environ, "P2PMSG_PASSWORD": PASSWORD},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _ok(data_dir: Path, *args: str) -> str:
    result = _run(data_dir, *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def _profile(data_dir: Path) -> None:
    """A profile holding four alerts (ids 1-4): medium floods and a critical impersonation."""
    unlocked = Profile(data_dir, "default", kdf_iterations=20_000).create("me", PASSWORD)
    with unlocked, Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        for i, (kind, severity, source) in enumerate(
            [
                ("flood", "medium", "rule:malformed_frames"),
                ("flood", "medium", "rule:malformed_frames"),
                ("flood", "high", "rule:connection_rate"),
                ("impersonation", "critical", "rule:identity_changed"),
            ]
        ):
            store.add_alert(Alert(TS + i, kind, severity, PEER, None, source, 1.0, f"alert {i}"))


def _states(data_dir: Path) -> dict[int, str]:
    return {a["id"]: a["state"] for a in json.loads(_ok(data_dir, "--json"))}


def test_acknowledge_dismiss_and_false_alarm_by_id(tmp_path: Path) -> None:
    _profile(tmp_path)
    assert _states(tmp_path) == {1: "unread", 2: "unread", 3: "unread", 4: "unread"}

    assert _ok(tmp_path, "--ack", "1", "2") == (
        "acknowledged alert 1 (medium flood)\nacknowledged alert 2 (medium flood)\n"
    )
    assert _ok(tmp_path, "--dismiss", "2") == "dismissed alert 2 (medium flood)\n"
    assert _ok(tmp_path, "--ack", "2") == "alert 2 is already dismissed: unchanged\n"
    marked = _ok(tmp_path, "--false-alarm", "3")
    assert marked.startswith(
        "marked alert 3 (high flood) a false alarm; later flood alerts about 6666666666666666 "
        "are raised one severity lower until "
    )
    assert marked.endswith("(never below low; critical ones stay critical)\n")
    never = _ok(tmp_path, "--false-alarm", "4")
    assert "alerts like it are never quieted" in never
    assert _states(tmp_path) == {
        1: "acknowledged",
        2: "dismissed",
        3: "false_alarm",
        4: "false_alarm",
    }

    listing = _ok(tmp_path).splitlines()
    assert [line.split()[0] for line in listing[:-1]] == ["4", "3", "2", "1"]
    assert "  false alarm  critical impersonation" in listing[0]
    assert "  acknowledged medium   flood" in listing[3]
    assert listing[-1] == "0 unread, 1 acknowledged, 1 dismissed, 2 false alarm"


def test_ack_all_and_json_output_of_an_action(tmp_path: Path) -> None:
    _profile(tmp_path)
    _ok(tmp_path, "--dismiss", "1")
    done = json.loads(_ok(tmp_path, "--ack", "all", "--json"))
    assert [a["id"] for a in done["changed"]] == [2, 3, 4] and done["unchanged"] == []
    assert all(a["state"] == "acknowledged" and a["state_at"] for a in done["changed"])
    assert _ok(tmp_path, "--ack", "ALL") == "no unread alerts\n"
    again = json.loads(_ok(tmp_path, "--dismiss", "1", "--json"))
    assert again["changed"] == [] and again["unchanged"][0]["state"] == "dismissed"


def test_an_unknown_or_malformed_id_is_one_error_line_and_changes_nothing(
    tmp_path: Path,
) -> None:
    _profile(tmp_path)
    unknown = _run(tmp_path, "--dismiss", "1", "99")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr == (
        "p2pmsg: error: no alert with id 99 (see `p2pmsg alerts` for the ids; the oldest "
        "alerts are pruned)\n"
    )
    for bad, also in ((["--ack", "x1"], " or all"), (["--false-alarm", "all"], "")):
        result = _run(tmp_path, *bad)
        assert result.returncode == 1, result
        assert result.stderr == (
            f"p2pmsg: error: not an alert id: {bad[1]!r} (give the numbers in the first "
            f"column of `p2pmsg alerts`{also})\n"
        )
    assert set(_states(tmp_path).values()) == {"unread"}
    both = _run(tmp_path, "--ack", "1", "--dismiss", "2")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr  # argparse


def test_evaluate_reports_the_profiles_false_alarms(tmp_path: Path) -> None:
    """`p2pmsg evaluate --false-alarms` grades the labelled log as always, then says how
    often this user judged the monitor wrong on their own traffic, by kind."""
    _profile(tmp_path)
    _ok(tmp_path, "--false-alarm", "1", "3")
    _ok(tmp_path, "--ack", "2")

    def evaluate(*extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "p2pmsg", "evaluate", "--data-dir", str(tmp_path), *extra],
            env={**os.environ, "P2PMSG_PASSWORD": PASSWORD},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    report = json.loads(evaluate("--false-alarms", "--json"))
    assert report["detectors"]["combined"]["macro_f1"] > 0.9  # the log is still graded
    assert report["profile_alerts"] == {
        "profile": "default",
        "alerts": 4,
        "by_state": {"unread": 1, "acknowledged": 1, "dismissed": 0, "false_alarm": 2},
        "false_alarm_share": 0.5,
        "false_alarms_by_kind": {"flood": 2},
    }
    text = evaluate("--false-alarms").splitlines()
    assert text[-2:] == [
        "profile default: 4 alerts, 2 marked a false alarm (50%); 1 unread, 1 acknowledged, "
        "0 dismissed",
        "  false alarms of kind flood: 2",
    ]

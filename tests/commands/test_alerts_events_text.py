"""`p2pmsg alerts` and `p2pmsg events`: peer text in stored alerts and events prints
inert, byte for byte (the real command in a subprocess, reading a real profile)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from p2pmsg.profile import Profile
from p2pmsg.security_events import Alert, SecurityEvent
from p2pmsg.store import Store
from tests.conftest import REPO_ROOT

PASSWORD = "Alerts-Text-Passw0rd!"  # noqa: S105 - a throwaway test profile
TS = datetime(2026, 1, 5, 12, 0, 0).timestamp()
WHEN = "2026-01-05 12:00:00"
MALLORY = "66" * 32
REASON = "peer aborted the handshake: \x1b]0;pwned\x07\nfake line\u202e"
MESSAGE = "'alice\x1b[2J' (6666) claims the name of 'alice'\n2026-01-05 12:00:00  low  ok\r"


def _run(data_dir: Path, *args: str) -> bytes:
    command, *rest = args
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "p2pmsg",
            command,
            "--data-dir",
            str(data_dir),
            "--profile",
            "me",
            *rest,
        ],
        env={**os.environ, "P2PMSG_PASSWORD": PASSWORD},
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _profile_with_hostile_records(data_dir: Path) -> None:
    unlocked = Profile(data_dir, "me", kdf_iterations=20_000).create("me", PASSWORD)
    with unlocked, Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        store.append_event(
            SecurityEvent(
                ts=TS,
                event="handshake_fail",
                peer=None,
                addr="127.0.0.66",
                detail={"reason": REASON},
            )
        )
        store.add_alert(
            Alert(
                ts=TS,
                kind="impersonation",
                severity="high",
                peer=MALLORY,
                addr=None,
                source="rule:identity_changed",
                score=1.0,
                message=MESSAGE,
            )
        )


def test_alerts_and_events_print_peer_text_inert(tmp_path: Path) -> None:
    _profile_with_hostile_records(tmp_path)

    alerts = _run(tmp_path, "alerts")
    assert (
        alerts
        == (
            f"    1  {WHEN}  unread       high     impersonation        {MALLORY[:16]}  "
            "'alice␛[2J' (6666) claims the name of 'alice'␊2026-01-05 12:00:00  low  ok␍\n"
            "1 unread, 0 acknowledged, 0 dismissed, 0 false alarm\n"
        ).encode()
    )
    as_json = _run(tmp_path, "alerts", "--json")
    assert as_json.isascii() and json.loads(as_json)[0]["message"] == MESSAGE

    events = _run(tmp_path, "events", "--event", "handshake_fail")
    assert (
        events
        == (
            f"{WHEN}  handshake_fail     127.0.0.66              0  "
            '{"reason":"peer aborted the handshake: \\u001b]0;pwned\\u0007\\nfake line\\u202e"}\n'
        ).encode()
    )
    lines = _run(tmp_path, "events", "--json", "--event", "handshake_fail")
    assert lines.isascii() and lines.count(b"\n") == 1
    assert json.loads(lines)["detail"] == {"reason": REASON}


def test_the_json_outputs_are_pinned_byte_for_byte(tmp_path: Path) -> None:
    """`events --json` is one compact line per event, `alerts --json` one JSON array:
    scripts parse both, so the records behind them must not change a byte of either.
    (An alert's record is DESIGN.md's, then the store's id and its lifecycle state, then
    its evidence: each added field came last.)"""
    unlocked = Profile(tmp_path, "me", kdf_iterations=20_000).create("me", PASSWORD)
    with unlocked, Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        store.append_event(
            SecurityEvent(1763800000.25, "msg_recv", MALLORY, "10.0.0.2", 120, {"b": 1, "a": "x"})
        )
        store.add_alert(
            Alert(1763800002.5, "flood", "high", None, "10.0.0.9", "rule:connection_rate", 1.5, "m")
        )
    assert (
        _run(tmp_path, "events", "--json", "--event", "msg_recv")
        == (
            '{"ts":1763800000.25,"event":"msg_recv",'
            f'"peer":"{MALLORY}","addr":"10.0.0.2","bytes":120,"detail":{{"a":"x","b":1}}}}\n'
        ).encode()
    )
    assert _run(tmp_path, "alerts", "--json") == (
        b'[{"ts": 1763800002.5, "kind": "flood", "severity": "high", "peer": null, '
        b'"addr": "10.0.0.9", "source": "rule:connection_rate", "score": 1.5, "message": "m", '
        b'"id": 1, "state": "unread", "state_at": null, "evidence": []}]\n'
    )


def test_an_error_quoting_peer_names_prints_inert(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """`p2pmsg: error:` lines pass the sanitiser: an ambiguous name lists what peers
    claimed. (The handshake refuses such names; stored or advertised ones may differ.)"""
    from p2pmsg import cli
    from p2pmsg.commands import alerts
    from p2pmsg.errors import AmbiguousPeerError

    def ambiguous(_args: object) -> int:
        raise AmbiguousPeerError(
            "sam", ["sam\x1b[2J (6666666666666666)", "sam\n[12:00:00] alice: hi (7777777777777777)"]
        )

    monkeypatch.setattr(alerts, "run", ambiguous)
    assert cli.main(["alerts"]) == 1
    assert capsys.readouterr().err == (
        "p2pmsg: error: peer 'sam' is ambiguous: sam␛[2J (6666666666666666), "
        "sam␊[12:00:00] alice: hi (7777777777777777)\n"
    )


def test_add_peer_names_the_known_peer_inert(tmp_path: Path) -> None:
    unlocked = Profile(tmp_path, "me", kdf_iterations=20_000).create("me", PASSWORD)
    with unlocked, Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        outcome = store.record_handshake(
            b"\x07" * 32, "eve\x1b[2J\n[12:00:00] x\u2028", TS, ("127.0.0.1", 4000)
        )
    fingerprint = outcome.peer.fingerprint
    assert (
        _run(tmp_path, "add-peer", "127.0.0.1:4000")
        == (
            f"added 127.0.0.1:4000 (known as eve␛[2J␊[12:00:00] x<U+2028>, {fingerprint[:16]}); "
            "nodes of this profile will dial it\n"
        ).encode()
    )


def test_alerts_say_why_under_each_alert(tmp_path: Path) -> None:
    """Each alert with evidence gets a `why:` line: what was observed beside its
    threshold or normal range; one without (raised before alerts explained themselves)
    gets none."""
    from p2pmsg.security_events import Evidence

    unlocked = Profile(tmp_path, "me", kdf_iterations=20_000).create("me", PASSWORD)
    with unlocked, Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        store.add_alert(Alert(1.0, "flood", "high", None, "10.0.0.9", "model", 0.9, "old"))
        store.add_alert(
            Alert(
                2.0,
                "brute_force",
                "high",
                None,
                None,
                "rule:unlock_failures",
                1.0,
                "new",
                evidence=(
                    Evidence("failed unlocks in 5 min", 7.0, "alert at 5"),
                    Evidence("share of failed unlocks", 0.875, "usually under 0.2"),
                ),
            )
        )
    lines = _run(tmp_path, "alerts").decode().splitlines()
    whys = [line.strip() for line in lines if line.strip().startswith("why:")]
    assert whys == [
        "why: failed unlocks in 5 min 7 (alert at 5); share of failed unlocks 0.88 "
        "(usually under 0.2)"
    ]
    assert lines[lines.index(next(x for x in lines if "why:" in x)) - 1].split()[0] == "2"

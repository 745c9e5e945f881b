"""Atomic writes and the JSONL security event log."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from p2pmsg.profile import append_event, read_events
from p2pmsg.profile.files import atomic_write
from p2pmsg.security_events import SecurityEvent


def test_atomic_write_replaces_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    target.chmod(0o644)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_exclusive_write_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "identity.key"
    target.write_bytes(b"precious, even if corrupt")
    with pytest.raises(FileExistsError):
        atomic_write(target, b"new", exclusive=True)
    assert target.read_bytes() == b"precious, even if corrupt"
    assert [p.name for p in tmp_path.iterdir()] == ["identity.key"]  # temp file removed
    fresh = tmp_path / "other.key"
    atomic_write(fresh, b"x", exclusive=True)
    assert fresh.read_bytes() == b"x"


def test_event_lines_follow_the_design_schema(tmp_path: Path) -> None:
    log = tmp_path / "security_events.jsonl"
    append_event(log, SecurityEvent(1763800000.25, "unlock_fail", detail={"failures": 2}).to_dict())
    append_event(log, SecurityEvent(1763800001.0, "unlock_ok").to_dict())
    lines = log.read_text().splitlines()
    assert lines[0] == (  # byte for byte: the node and scripts read these lines
        '{"ts":1763800000.25,"event":"unlock_fail","peer":null,"addr":null,"bytes":0,'
        '"detail":{"failures":2}}'
    )
    assert json.loads(lines[0]) == {
        "ts": 1763800000.25,
        "event": "unlock_fail",
        "peer": None,
        "addr": None,
        "bytes": 0,
        "detail": {"failures": 2},
    }
    assert "label" not in json.loads(lines[1])
    assert read_events(log)[1]["ts"] == 1763800001.0
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "record",
    [
        {"ts": 1.0, "event": "unlock_ok"},
        {
            "ts": 1.0,
            "event": "unlock_ok",
            "peer": None,
            "addr": None,
            "bytes": 0,
            "detail": {},
            "label": "normal",
        },
    ],
)
def test_append_refuses_records_outside_the_live_schema(
    tmp_path: Path, record: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        append_event(tmp_path / "log.jsonl", record)


def test_reading_a_missing_log_is_empty(tmp_path: Path) -> None:
    assert read_events(tmp_path / "none.jsonl") == []

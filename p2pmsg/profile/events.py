"""The profile's unlock event log (JSONL), written before any store can be opened.

Unlocking is what yields the store's key, so unlock events cannot go to the
store directly; a running node imports and follows this file
(p2pmsg.node.services.unlock_events), which puts them in the store's event log and in
the live monitor.

One JSON object per line in the schema of DESIGN.md, without the `label` key
(labels only exist in datasets): a `SecurityEvent`'s `to_dict()`
(p2pmsg.security_events), checked again here because this file is the edge
where the record becomes JSON that other processes read::

    {"ts": 1763800000.25, "event": "unlock_fail", "peer": null, "addr": null,
     "bytes": 0, "detail": {"reason": "wrong_password", "failures": 3}}

Each record is written with a single `write` on an O_APPEND descriptor, so
lines from two processes never interleave.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from p2pmsg.profile.files import PRIVATE_FILE_MODE

SCHEMA_KEYS = ("ts", "event", "peer", "addr", "bytes", "detail")


def append_event(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record as one line. Refuses records outside the live-log schema."""
    if tuple(record) != SCHEMA_KEYS:
        raise ValueError(f"a live security event has exactly the keys {SCHEMA_KEYS}")
    line = (
        json.dumps(record, separators=(",", ":"), sort_keys=False, allow_nan=False).encode("utf-8")
        + b"\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every record in the log (for tests and for the store's one-time import)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]

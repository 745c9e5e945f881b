"""Reading security events from JSON lines, strictly; the label rules of datasets.

The records themselves (`SecurityEvent`, `Alert`) and the names of the schema
live in p2pmsg.security_events, shared by every layer; this module reads them
back from the live event log, from `datasets/*.jsonl` and from whatever
`p2pmsg evaluate --data` reads. Parsing is strict, because a monitor that
silently skips a malformed line is a monitor an attacker can blind: every bad
line raises `EventFormatError` naming the line and the field.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from p2pmsg.errors import EventFormatError
from p2pmsg.security_events import EVENT_NAMES, LABELS, SecurityEvent

EVENT_SET = frozenset(EVENT_NAMES)

# Highest priority first: a window holding events of several labels takes the first.
LABEL_PRIORITY: tuple[str, ...] = (
    "impersonation",
    "integrity_violation",
    "replay",
    "brute_force",
    "flood",
    "exfiltration",
    "normal",
)
LABEL_SET = frozenset(LABELS)

_FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
_RANK = {label: rank for rank, label in enumerate(LABEL_PRIORITY)}
_FIELDS = ("ts", "event", "peer", "addr", "bytes", "detail", "label")


def top_label(labels: Iterable[str]) -> str:
    """The label a window takes when it holds events of several labels."""
    return min(labels, key=_RANK.__getitem__, default="normal")


def event_from_dict(record: Any, *, where: str = "event") -> SecurityEvent:
    """Validate one decoded record; raise `EventFormatError` saying what is wrong."""
    if not isinstance(record, dict):
        raise EventFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(_FIELDS))
    if unknown:
        raise EventFormatError(f"{where}: unknown field(s) {', '.join(unknown)}")
    missing = [name for name in _FIELDS[:6] if name not in record]
    if missing:
        raise EventFormatError(f"{where}: missing field(s) {', '.join(missing)}")
    ts = record["ts"]
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts) or ts < 0:
        raise EventFormatError(f"{where}: 'ts' must be a non-negative number of seconds")
    name = record["event"]
    if name not in EVENT_SET:
        raise EventFormatError(f"{where}: unknown event {name!r}")
    peer = record["peer"]
    if peer is not None and (not isinstance(peer, str) or not _FINGERPRINT_RE.fullmatch(peer)):
        raise EventFormatError(f"{where}: 'peer' must be null or 64 lowercase hex digits")
    addr = record["addr"]
    if addr is not None:
        if not isinstance(addr, str):
            raise EventFormatError(f"{where}: 'addr' must be null or an IP address")
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise EventFormatError(f"{where}: 'addr' {addr[:60]!r} is not an IP address") from None
    size = record["bytes"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise EventFormatError(f"{where}: 'bytes' must be a non-negative integer")
    detail = record["detail"]
    if not isinstance(detail, dict):
        raise EventFormatError(f"{where}: 'detail' must be an object")
    label = record.get("label")
    if label is not None and label not in LABEL_SET:
        raise EventFormatError(f"{where}: unknown label {label!r}")
    return SecurityEvent(float(ts), name, peer, addr, size, detail, label)


def parse_event(line: str, *, lineno: int | None = None) -> SecurityEvent:
    """Parse one JSON line."""
    where = f"line {lineno}" if lineno is not None else "event"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EventFormatError(f"{where}: not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError):  # absurd numbers, absurd nesting
        raise EventFormatError(f"{where}: not a usable JSON value") from None
    return event_from_dict(record, where=where)


def iter_events(lines: Iterable[str], *, source: str = "") -> Iterator[SecurityEvent]:
    """Parse JSON lines, skipping blank ones; errors name the source and line."""
    prefix = f"{source}: " if source else ""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield parse_event(line, lineno=lineno)
        except EventFormatError as exc:
            raise EventFormatError(prefix + str(exc)) from None


def read_events(path: str | Any) -> list[SecurityEvent]:
    """Read a JSON-lines file of events (a dataset or an exported log)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return list(iter_events(handle, source=str(path)))
    except OSError as exc:
        raise EventFormatError(f"cannot read {path}: {exc.strerror or exc}") from None


def require_labels(events: Iterable[SecurityEvent], *, source: str = "data") -> None:
    """Evaluation and training need ground truth on every line."""
    for index, event in enumerate(events, start=1):
        if event.label is None:
            raise EventFormatError(
                f"{source}: event {index} has no 'label'; training and evaluation need labeled data"
            )

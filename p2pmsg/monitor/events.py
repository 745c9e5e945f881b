"""The security event record and the alert record (DESIGN.md, exactly).

One JSON object per line, the same record in the live event log, in
`datasets/*.jsonl` and in whatever `p2pmsg evaluate --data` reads:

    {"ts": 1763800000.25, "event": "handshake_fail", "peer": null,
     "addr": "192.168.1.20", "bytes": 0, "detail": {}, "label": "normal"}

`label` only appears in datasets. Parsing is strict, because a monitor that
silently skips a malformed line is a monitor an attacker can blind: every bad
line raises `EventFormatError` naming the line and the field.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from p2pmsg.errors import EventFormatError

EVENT_NAMES: tuple[str, ...] = (
    "unlock_ok",
    "unlock_fail",
    "conn_open",
    "conn_close",
    "handshake_ok",
    "handshake_fail",
    "identity_changed",
    "downgrade_rejected",
    "decrypt_fail",
    "replay_rejected",
    "frame_rejected",
    "rate_limited",
    "msg_sent",
    "msg_recv",
    "file_sent",
    "file_recv",
    "file_integrity_fail",
    "key_rotated",
    "cipher_changed",
    "peer_discovered",
    "peer_lost",
)
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
# A stable, readable order for reports and model classes.
LABELS: tuple[str, ...] = (
    "normal",
    "brute_force",
    "exfiltration",
    "integrity_violation",
    "replay",
    "flood",
    "impersonation",
)
LABEL_SET = frozenset(LABELS)
ATTACK_KINDS: tuple[str, ...] = tuple(label for label in LABELS if label != "normal")
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")

LOCAL_KEY = "local"
_FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
_RANK = {label: rank for rank, label in enumerate(LABEL_PRIORITY)}
_FIELDS = ("ts", "event", "peer", "addr", "bytes", "detail", "label")


def top_label(labels: Iterable[str]) -> str:
    """The label a window takes when it holds events of several labels."""
    return min(labels, key=_RANK.__getitem__, default="normal")


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One thing that happened, as the node logs it."""

    ts: float
    event: str
    peer: str | None = None  # identity fingerprint, lowercase hex, once authenticated
    addr: str | None = None  # remote IP address, when there is a remote end
    bytes: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None  # ground truth, datasets only

    @property
    def key(self) -> str:
        """Who the event is about: the peer, else its address before a handshake, else us."""
        return self.peer or self.addr or LOCAL_KEY

    def to_dict(self, *, with_label: bool = True) -> dict[str, Any]:
        record: dict[str, Any] = {
            "ts": self.ts,
            "event": self.event,
            "peer": self.peer,
            "addr": self.addr,
            "bytes": self.bytes,
            "detail": dict(self.detail),
        }
        if with_label and self.label is not None:
            record["label"] = self.label
        return record

    def to_json(self, *, with_label: bool = True) -> str:
        """Compact, key-ordered JSON: byte-for-byte reproducible datasets depend on it."""
        return json.dumps(
            self.to_dict(with_label=with_label),
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )


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


@dataclass(frozen=True, slots=True)
class Alert:
    """What the monitor tells its owner (DESIGN.md alert record)."""

    ts: float
    kind: str  # an attack label, never "normal"
    severity: str  # low | medium | high | critical
    peer: str | None
    addr: str | None
    source: str  # "rule:<name>" or "model"
    score: float
    message: str

    def __post_init__(self) -> None:
        if self.kind not in ATTACK_KINDS:
            raise ValueError(f"alert kind must be an attack label, not {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if not (self.source == "model" or self.source.startswith("rule:")):
            raise ValueError(f"alert source must be 'model' or 'rule:<name>', not {self.source!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "kind": self.kind,
            "severity": self.severity,
            "peer": self.peer,
            "addr": self.addr,
            "source": self.source,
            "score": self.score,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Alert:
        return cls(
            float(record["ts"]),
            str(record["kind"]),
            str(record["severity"]),
            record.get("peer"),
            record.get("addr"),
            str(record["source"]),
            float(record["score"]),
            str(record["message"]),
        )

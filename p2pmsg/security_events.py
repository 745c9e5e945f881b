"""The security event and the alert: DESIGN.md's two monitoring records, one type each.

One event used to take four shapes between the connection that noticed it and
the threat panel (a protocol event, a store record, a dict, a monitor record),
copied field by field at each hop. Now the node's security log makes one
`SecurityEvent`, the store keeps it, the monitor reads it and raises `Alert`s,
the store keeps those, and only the node's API turns an alert into its
`AlertView`. So that the protocol, the store, the monitor and the node can all
use these types, this module sits at the bottom of the layering and imports
nothing of p2pmsg.

JSON is made only where JSON is written (`to_dict`, `to_json`: the unlock event
log, `p2pmsg events --json`, datasets, the node API's `SecurityEventLogged`)
and read strictly only where it is read (p2pmsg.monitor.events). The record,
as DESIGN.md gives it:

    {"ts": 1763800000.25, "event": "handshake_fail", "peer": null,
     "addr": "192.168.1.20", "bytes": 0, "detail": {}, "label": "normal"}

`label` only appears in datasets (ground truth for training and evaluation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
#: What an alert can be about: every label but "normal".
ATTACK_KINDS: tuple[str, ...] = tuple(label for label in LABELS if label != "normal")
#: Alert severities, least severe first (escalation moves up this tuple).
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
#: The key of an event with neither a peer nor an address: this device (unlocks).
LOCAL_KEY = "local"
#: What the user made of an alert, in the order it moves (never back): new, seen, put
#: away. "false_alarm" is a dismissal that says the alert was wrong; any state can become
#: it, and it quiets later alerts of that kind for that key (p2pmsg.monitor.quieting).
ALERT_STATES: tuple[str, ...] = ("unread", "acknowledged", "dismissed", "false_alarm")


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
        """The JSON object, keys in schema order (`label` only when there is one)."""
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


#: At most this many reasons travel with one alert: an explanation a person reads, not a dump.
MAX_EVIDENCE = 6
#: Longest name or expectation text in an `Evidence` (ours, but stored and shown).
MAX_EVIDENCE_TEXT = 80


@dataclass(frozen=True, slots=True)
class Evidence:
    """One reason for an alert: a measure, the value observed, and what would be normal.

    A rule says its measure, what it saw and its threshold ("failed unlocks in 5 min",
    7, "alert at 5"); a model verdict says the few features that drove it, each beside
    this profile's normal range ("MiB sent to this peer in 1 min", 812.0, "usually
    0-40"). The texts are ours (never a peer's words), but they are stored, so they are
    checked like the rest of the record.
    """

    name: str
    observed: float
    expected: str

    def __post_init__(self) -> None:
        for label, text in (("name", self.name), ("expected", self.expected)):
            if not isinstance(text, str) or not 0 < len(text) <= MAX_EVIDENCE_TEXT:
                raise ValueError(f"evidence {label} must be 1-{MAX_EVIDENCE_TEXT} characters")
        if not isinstance(self.observed, int | float) or self.observed != self.observed:
            raise ValueError("evidence observed value must be a number")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "observed": self.observed, "expected": self.expected}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Evidence:
        return cls(str(record["name"]), float(record["observed"]), str(record["expected"]))


@dataclass(frozen=True, slots=True)
class Alert:
    """What the monitor raises (the DESIGN.md alert record), and what the store keeps.

    `evidence` is why: the rule's threshold beside what it saw, or the features that
    drove a model's verdict beside their normal range (`Evidence`, at most
    `MAX_EVIDENCE`). `id`, `acknowledged_at`, `state` and `state_at` exist once the
    store holds the
    alert: the store numbers it, and the user acknowledges, dismisses or marks it a
    false alarm (`ALERT_STATES`; `acknowledged_at` is when the user first acted on it,
    `state_at` when it took its current state). The schema is checked on construction,
    so no layer can make (or read back) an alert outside it.
    """

    ts: float
    kind: str  # an attack label, never "normal"
    severity: str  # low | medium | high | critical
    peer: str | None
    addr: str | None
    source: str  # "rule:<name>" or "model"
    score: float
    message: str
    id: int | None = None
    acknowledged_at: float | None = None
    state: str = "unread"
    state_at: float | None = None
    evidence: tuple[Evidence, ...] = ()

    def __post_init__(self) -> None:
        if len(self.evidence) > MAX_EVIDENCE or not all(
            isinstance(item, Evidence) for item in self.evidence
        ):
            raise ValueError(f"an alert carries at most {MAX_EVIDENCE} Evidence items")
        if self.kind not in ATTACK_KINDS:
            raise ValueError(f"alert kind must be an attack label, not {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if not (self.source == "model" or self.source.startswith("rule:")):
            raise ValueError(f"alert source must be 'model' or 'rule:<name>', not {self.source!r}")
        if self.state not in ALERT_STATES:
            raise ValueError(f"unknown alert state {self.state!r}")

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def key(self) -> str:
        """Who the alert is about, as the monitor keys it: the peer, else the address,
        else this device (the same rule as `SecurityEvent.key`)."""
        return self.peer or self.addr or LOCAL_KEY

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md record, keys in schema order (without the store's bookkeeping)."""
        return {
            "ts": self.ts,
            "kind": self.kind,
            "severity": self.severity,
            "peer": self.peer,
            "addr": self.addr,
            "source": self.source,
            "score": self.score,
            "message": self.message,
            "evidence": [item.to_dict() for item in self.evidence],
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
            evidence=tuple(Evidence.from_dict(item) for item in record.get("evidence", ())),
        )

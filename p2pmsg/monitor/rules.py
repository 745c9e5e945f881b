"""Threshold and leaky-bucket rules, in the manner of fail2ban and CrowdSec.

Rules see every event as it is observed and answer at once, so a loud attack
is reported within seconds, with or without models, and each verdict says
exactly which threshold was crossed. They are deliberately conservative: the
quiet variants below these thresholds are the models' job.

`RuleEngine.observe` returns a `RuleHit` for every event that finds a rule's
condition true (evaluation counts those per window); turning hits into alerts,
with de-duplication and escalation, is `AlertDeduper`'s job.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from p2pmsg.monitor.meaning import (
    failed_authentication,
    handshake_timed_out,
    moved_bytes,
    password_guess,
    peer_verified,
)
from p2pmsg.security_events import Evidence, SecurityEvent

MIB = 1024 * 1024

#: The session storms the protocol ends (a `rate_limited` reason prefix) and what to say.
_STORMS = {
    "rotation_storm": "a peer changed its keys in a storm (many tiny epochs); "
    "its session was closed",
    "rekey_storm": "a peer asked for key agreements in a storm; its session was closed",
    "ping_storm": "a peer sent pings in a storm (each asks for a reply); its session was closed",
}


@dataclass(frozen=True, slots=True)
class RuleHit:
    ts: float
    rule: str
    kind: str
    severity: str
    key: str
    peer: str | None
    addr: str | None
    score: float  # how far past the threshold: 1.0 means just at it
    message: str
    evidence: tuple[Evidence, ...] = ()  # the rule's measure, what it saw, its threshold


@dataclass(frozen=True)
class RuleConfig:
    """Thresholds; the defaults are the documented ones (README, `p2pmsg evaluate`)."""

    unlock_failures: tuple[int, float] = (5, 600.0)  # fail2ban's maxretry / findtime
    handshake_fast: tuple[int, float] = (5, 60.0)
    handshake_slow: tuple[int, float] = (12, 1800.0)
    handshake_timeouts: tuple[int, float] = (10, 60.0)  # handshakes left unfinished
    conn_bucket: tuple[float, float] = (20.0, 0.2)  # capacity, leak per second
    malformed_frames: tuple[int, float] = (3, 300.0)
    file_integrity: tuple[int, float] = (2, 900.0)
    exfil_span: float = 600.0
    exfil_floor_bytes: int = 200 * MIB  # to a peer that is not a verified contact
    exfil_verified_floor_bytes: int = 8 * 1024 * MIB  # to a verified contact
    exfil_factor: float = 10.0  # times the peer's own usual 10-minute outbound volume
    exfil_profile_factor: float = 2.0  # times this profile's largest unflagged send
    exfil_profile_half_life: float = 14 * 86400.0  # how fast that largest send is forgotten
    max_keys: int = 20000


SINGLE_TRIGGERS: dict[str, tuple[str, str, str]] = {
    # event: (kind, severity, message)
    "identity_changed": (
        "impersonation",
        "critical",
        "a known peer presented a different identity key",
    ),
    "downgrade_rejected": ("impersonation", "high", "a peer offered only weaker cipher suites"),
    "replay_rejected": ("replay", "high", "a replayed record was rejected"),
    "decrypt_fail": ("integrity_violation", "high", "a record failed authentication"),
}


# What an `identity_changed` event means, by its detail's reason: the alert says which.
# A name clash is a warning (the contact is untouched, the clashing key kept apart and
# flagged); a key that did not prove the fingerprint its advert named is an impostor
# caught in the act.
IDENTITY_REASONS: dict[str, tuple[str, str]] = {
    "name_clash": (
        "high",
        "a new key claims a name that reads like one of your contacts; "
        "it is kept apart and flagged (check it: p2pmsg trust)",
    ),
    "advertised_fingerprint_not_proven": (
        "critical",
        "a peer advertised a contact's fingerprint but could not prove it",
    ),
}


class _Counts:
    """Sliding "N events in T seconds" per key, bounded in keys and in memory per key."""

    def __init__(self, threshold: int, span: float, max_keys: int) -> None:
        self.threshold, self.span, self.max_keys = threshold, span, max_keys
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def add(self, key: str, ts: float) -> int | None:
        """Record one event; the count in the span when it reaches the threshold, else None."""
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = deque(maxlen=self.threshold)
            if len(self._times) > self.max_keys:
                self._times.popitem(last=False)
        else:
            self._times.move_to_end(key)
        times.append(ts)
        if len(times) == self.threshold and ts - times[0] <= self.span:
            return len(times)
        return None


class _Bucket:
    """A leaky bucket per key: each event pours in, the bucket drains at a steady rate."""

    def __init__(self, capacity: float, leak: float, max_keys: int) -> None:
        self.capacity, self.leak, self.max_keys = capacity, leak, max_keys
        self._level: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def pour(self, key: str, ts: float, amount: float) -> float | None:
        level, last = self._level.pop(key, (0.0, ts))
        level = max(0.0, level - max(ts - last, 0.0) * self.leak) + amount
        self._level[key] = (level, max(ts, last))
        if len(self._level) > self.max_keys:
            self._level.popitem(last=False)
        return level if level > self.capacity else None

    def level(self, key: str, ts: float) -> float:
        """The key's level now, without pouring."""
        level, last = self._level.get(key, (0.0, ts))
        return max(0.0, level - max(ts - last, 0.0) * self.leak)


class _Volume:
    """Outbound bytes to one peer over a sliding span, against what is usual here.

    "Usual" is three things, and the limit is the largest of them: a floor that
    depends on who receives (a verified contact may be sent a disk image; a key
    first seen today may not be sent 200 MiB unremarked), the peer's own usual
    volume, and the largest volume this profile sent anyone without alarm (a
    profile that ships gigabytes daily is not exfiltrating when it ships one
    more to a new colleague). Large alone is not exfiltration; unusual is.
    """

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        self._recent: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()
        self._usual: dict[str, float] = {}
        self._profile_peak = 0.0
        self._peak_at = 0.0
        # Volumes join the profile's peak only once their span is over, so a burst in
        # progress cannot raise its own limit as it grows.
        self._pending: deque[tuple[float, str, float]] = deque(maxlen=4096)

    def _learn(self, ts: float) -> None:
        """Fold the unflagged volumes whose span is over into the baselines."""
        half_life = self.config.exfil_profile_half_life
        while self._pending and self._pending[0][0] <= ts - self.config.exfil_span:
            when, key, total = self._pending.popleft()
            if key in self._recent:
                usual = self._usual.get(key, 0.0)
                self._usual[key] = usual + 0.05 * (total - usual)
            aged = self._profile_peak * 0.5 ** (max(when - self._peak_at, 0.0) / half_life)
            if total > aged:
                self._profile_peak, self._peak_at = total, when

    def _peak(self, ts: float) -> float:
        half_life = self.config.exfil_profile_half_life
        age = max(ts - self._peak_at, 0.0)
        return float(self._profile_peak * 0.5 ** (age / half_life))

    def add(
        self, key: str, ts: float, size: int, verified: bool | None
    ) -> tuple[int, float, float] | None:
        """(total, the peer's usual, the limit) when the limit is crossed, else None."""
        c = self.config
        self._learn(ts)
        recent = self._recent.pop(key, None) or deque()
        self._recent[key] = recent
        if len(self._recent) > c.max_keys:
            old, _ = self._recent.popitem(last=False)
            self._usual.pop(old, None)
        while recent and recent[0][0] < ts - c.exfil_span:
            recent.popleft()
        recent.append((ts, size))
        total = sum(s for _, s in recent)
        usual = self._usual.get(key, 0.0)
        floor = c.exfil_verified_floor_bytes if verified else c.exfil_floor_bytes
        limit = max(float(floor), c.exfil_factor * usual, c.exfil_profile_factor * self._peak(ts))
        # The baselines learn only from volumes they did not flag.
        if total <= limit:
            self._pending.append((ts, key, float(total)))
            return None
        return total, usual, limit


class RuleEngine:
    """All rules, fed one event at a time; cheap enough to run inline on every event."""

    def __init__(self, config: RuleConfig | None = None) -> None:
        self.config = c = config or RuleConfig()
        self._unlock = _Counts(*c.unlock_failures, c.max_keys)
        self._hs_fast = _Counts(*c.handshake_fast, c.max_keys)
        self._hs_slow = _Counts(*c.handshake_slow, c.max_keys)
        self._hs_timeouts = _Counts(*c.handshake_timeouts, c.max_keys)
        self._frames = _Counts(*c.malformed_frames, c.max_keys)
        self._files = _Counts(*c.file_integrity, c.max_keys)
        self._conns = _Bucket(*c.conn_bucket, c.max_keys)
        self._volume = _Volume(c)

    def observe(self, event: SecurityEvent) -> list[RuleHit]:
        name, key, ts, c = event.event, event.key, event.ts, self.config
        hits: list[RuleHit] = []

        def hit(
            rule: str, kind: str, severity: str, score: float, message: str, *why: Evidence
        ) -> None:
            hits.append(
                RuleHit(
                    ts,
                    rule,
                    kind,
                    severity,
                    key,
                    event.peer,
                    event.addr,
                    round(score, 3),
                    message,
                    why,
                )
            )

        if name in SINGLE_TRIGGERS:
            kind, severity, message = SINGLE_TRIGGERS[name]
            reason = event.detail.get("reason")
            if name == "identity_changed" and reason in IDENTITY_REASONS:
                severity, message = IDENTITY_REASONS[reason]
            hit(name, kind, severity, 1.0, message, Evidence(f"{name} events", 1, "alert at 1"))
        elif name == "unlock_fail":
            if not password_guess(event):
                return hits  # refused by the backoff before a password was tried
            count = self._unlock.add(key, ts)
            if count is not None:
                n, span = c.unlock_failures
                hit(
                    "unlock_failures",
                    "brute_force",
                    "high",
                    count / n,
                    f"{count} failed unlocks within {span / 60:.0f} min",
                    Evidence(f"wrong passwords in {span / 60:.0f} min", count, f"alert at {n}"),
                )
        elif name == "handshake_fail" and handshake_timed_out(event):
            # Handshakes left unfinished are evidence of flooding (connections held
            # open), or of a bad link: never of guessing, which needs a check to fail.
            count = self._hs_timeouts.add(key, ts)
            if count is not None:
                n, span = c.handshake_timeouts
                hit(
                    "handshake_timeouts",
                    "flood",
                    "medium",
                    count / n,
                    f"{count} handshakes left unfinished within {span:.0f} s",
                    Evidence(f"unfinished handshakes in {span:.0f} s", count, f"alert at {n}"),
                )
        elif failed_authentication(event):
            fast = self._hs_fast.add(key, ts)
            slow = self._hs_slow.add(key, ts)
            if fast is not None:
                hit(
                    "handshake_failures_fast",
                    "brute_force",
                    "high",
                    fast / c.handshake_fast[0],
                    f"{fast} handshakes failed authentication within {c.handshake_fast[1]:.0f} s",
                    Evidence(
                        f"failed key checks in {c.handshake_fast[1]:.0f} s",
                        fast,
                        f"alert at {c.handshake_fast[0]}",
                    ),
                )
            elif slow is not None:
                hit(
                    "handshake_failures_slow",
                    "brute_force",
                    "medium",
                    slow / c.handshake_slow[0],
                    f"{slow} handshakes failed authentication within "
                    f"{c.handshake_slow[1] / 60:.0f} min",
                    Evidence(
                        f"failed key checks in {c.handshake_slow[1] / 60:.0f} min",
                        slow,
                        f"alert at {c.handshake_slow[0]}",
                    ),
                )
        elif name == "rate_limited" and str(event.detail.get("reason", "")).startswith(
            tuple(_STORMS)
        ):
            # One event per storm: the session that rotated or rekeyed by the thousand was
            # closed, so the storm is one alert, not a connection-rate level.
            storm = str(event.detail["reason"]).split(":", 1)[0]
            hit(
                storm,
                "flood",
                "high",
                1.0,
                _STORMS[storm],
                Evidence(f"{storm.replace('_', ' ')}s", 1, "alert at 1"),
            )
        elif name == "rate_limited" and str(event.detail.get("reason", "")).startswith(
            "stranger_quota"
        ):
            # Chats held back, not connections: the key keeps its session, so this is
            # not a connection flood. One alert (the deduper keeps repeats quiet).
            hit(
                "stranger_quota",
                "flood",
                "medium",
                1.0,
                "a key you have not answered sent more chats than a stranger may store; "
                "the rest are held by its sender until you answer, name or block it",
                Evidence("chats over a stranger's quota", 1, "alert at 1"),
            )
        elif name in ("conn_open", "rate_limited"):
            amount = 1.0 if name == "conn_open" else float(event.detail.get("dropped", 1) or 1)
            level = self._conns.pour(key, ts, min(amount, 1000.0))
            if level is not None:
                hit(
                    "connection_rate",
                    "flood",
                    "high",
                    level / c.conn_bucket[0],
                    "connection attempts faster than the listener allows",
                    Evidence(
                        "connection bucket level",
                        round(level, 1),
                        f"alert above {c.conn_bucket[0]:g} (drains {c.conn_bucket[1]:g}/s)",
                    ),
                )
        elif name == "frame_rejected" and self._conns.level(key, ts) > c.conn_bucket[0] / 4:
            # Garbage sent on the connections of a connection flood is part of the flood
            # (the flood rule speaks for it), not a separate integrity matter. (Junk in
            # a flood's first few connections, before the bucket rises, still counts.)
            pass
        elif name == "frame_rejected":
            count = self._frames.add(key, ts)
            if count is not None:
                # Frames that break the protocol are abuse of it (or corruption on the
                # path), not volume: an integrity matter, not a flood.
                hit(
                    "malformed_frames",
                    "integrity_violation",
                    "medium",
                    count / c.malformed_frames[0],
                    f"{count} malformed frames within {c.malformed_frames[1] / 60:.0f} min",
                    Evidence(
                        f"malformed frames in {c.malformed_frames[1] / 60:.0f} min",
                        count,
                        f"alert at {c.malformed_frames[0]}",
                    ),
                )
        elif name == "file_integrity_fail":
            count = self._files.add(key, ts)
            if count is not None:
                hit(
                    "file_integrity",
                    "integrity_violation",
                    "medium",
                    count / c.file_integrity[0],
                    f"{count} received files failed their hash within "
                    f"{c.file_integrity[1] / 60:.0f} min",
                    Evidence(
                        f"files failing their hash in {c.file_integrity[1] / 60:.0f} min",
                        count,
                        f"alert at {c.file_integrity[0]}",
                    ),
                )
        elif name in ("file_sent", "msg_sent") and event.peer is not None:
            verified = peer_verified(event)
            found = self._volume.add(key, ts, moved_bytes(event), verified)
            if found is not None:
                total, usual, limit = found
                who = "a verified contact" if verified else "this peer"
                hit(
                    "exfiltration_volume",
                    "exfiltration",
                    "medium",
                    total / limit,
                    f"{total / MIB:.0f} MiB sent to {who} within {c.exfil_span / 60:.0f} min "
                    f"(usually {usual / MIB:.1f} MiB; limit {limit / MIB:.0f} MiB)",
                    Evidence(
                        f"MiB sent to this peer in {c.exfil_span / 60:.0f} min",
                        round(total / MIB, 1),
                        f"alert above {limit / MIB:.0f} (usually {usual / MIB:.1f})",
                    ),
                )
        return hits

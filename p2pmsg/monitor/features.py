"""Events -> per-key 60-second windows -> feature vectors.

A key is who an event is about: the peer's fingerprint once it has proved
it, the source address before that, `local` for unlocks. The `Windower` is
incremental: the live monitor feeds it event by event and closes windows on
each tick; training and evaluation replay a dataset through the very same
object (`featurize`), so what the models learn is what they are shown live.

Every feature looks backwards only (this window and the key's past), so a
window's features never depend on how far the caller has read ahead.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from p2pmsg.monitor.events import top_label
from p2pmsg.monitor.meaning import (
    handshake_timed_out,
    moved_bytes,
    password_guess,
    peer_verified,
)
from p2pmsg.security_events import EVENT_NAMES, LOCAL_KEY, SecurityEvent

WINDOW = 60.0
#: Counts beside the event names, for what an event means (p2pmsg.monitor.meaning):
#: a handshake that failed a key check vs one left unfinished; a password tried and
#: found wrong (never a successful unlock, nor one the backoff refused untried); the
#: connections a listener refused, as `rate_limited` events count them in `dropped`.
DERIVED = ("hs_auth_fail", "hs_timeout", "unlock_guess", "conn_refused")
COUNTED = (*EVENT_NAMES, *DERIVED)
_INDEX = {name: i for i, name in enumerate(COUNTED)}
_OUT = (_INDEX["msg_sent"], _INDEX["file_sent"])
_IN = (_INDEX["msg_recv"], _INDEX["file_recv"])
# Counts summed over the last five minutes: slow attacks stay under per-minute
# thresholds but not under these.
SLOW_EVENTS = (
    "unlock_guess",
    "handshake_fail",
    "hs_auth_fail",
    "hs_timeout",
    "conn_open",
    "conn_refused",
    "frame_rejected",
    "rate_limited",
    "decrypt_fail",
    "replay_rejected",
    "file_integrity_fail",
    "identity_changed",
    "downgrade_rejected",
    "file_sent",
)
_SLOW = tuple(_INDEX[name] for name in SLOW_EVENTS)
SHORT_SPAN = 300.0  # the "5-minute sums"
LONG_SPAN = 3600.0
ADDR_MEMORY = 86400.0  # an address that completed a handshake this recently is "known"
BASELINE_ALPHA = 0.05  # weight of a new window in a key's volume baseline
IDLE_EVICT = 86400.0

PROFILE_HALF_LIFE = 7 * 86400.0  # how fast the profile's largest outbound window is forgotten

FEATURE_NAMES: tuple[str, ...] = (
    *(f"n_{name}" for name in COUNTED),
    "log_bytes_out",
    "log_bytes_in",
    "log_max_event_bytes",
    "handshake_fail_ratio",
    "unlock_fail_ratio",
    "distinct_addrs",
    *(f"n5m_{name}" for name in SLOW_EVENTS),
    *(f"n1h_{name}" for name in SLOW_EVENTS),
    "log_bytes_out_5m",
    "log_bytes_out_1h",
    "active_minutes_1h",
    "addr_auth_ok",
    "addr_auth_changed",
    "volume_vs_baseline",
    "log_key_age_min",
    "addr_known",
    "key_is_local",
    "key_is_addr",
    "key_is_peer",
    "hour_sin",
    "hour_cos",
    # Rates and ratios that any flood or guessing shows, whatever its absolute pace.
    "auth_fail_ratio",  # failed key checks per handshake attempt
    "timeout_share",  # handshakes left unfinished per connection opened
    "refused_share",  # connections refused per connection attempted
    # Outbound volume against this profile's and this peer's own habits.
    "peer_verified",  # 1 verified contact, 0 not, 0.5 not said
    "out_vs_profile_peak",  # log bytes out (last 10 min) minus log of the largest usual
    "out_vs_peer_history",  # log bytes out (last hour) minus log of all sent before
    "hour_activity",  # share of this profile's past activity that fell in this hour
)


@dataclass(frozen=True, slots=True)
class Window:
    """One closed window of one key, ready to be scored."""

    key: str
    start: float
    features: tuple[float, ...]
    peer: str | None
    addr: str | None
    label: str | None  # ground truth when the events carried labels
    #: Seconds of this profile's traffic the windower had seen when the window closed:
    #: the features that compare with "usual" mean little before there is a usual.
    history: float = math.inf

    @property
    def end(self) -> float:
        return self.start + WINDOW


@dataclass
class _Open:
    start: float
    counts: list[int] = field(default_factory=lambda: [0] * len(COUNTED))
    bytes_out: int = 0
    bytes_in: int = 0
    max_bytes: int = 0
    addrs: set[str] = field(default_factory=set)
    peer: str | None = None
    addr: str | None = None
    labels: set[str] = field(default_factory=set)
    # For an address key: how connections from it ended up in this window, as told by
    # the events that carry the identity they proved (those are keyed by the peer).
    auth_ok: int = 0
    auth_changed: int = 0


@dataclass
class _KeyState:
    first_seen: float
    last_seen: float
    open: _Open | None = None
    # (start, slow counts, bytes_out) of the key's closed windows, last hour
    history: deque[tuple[float, tuple[int, ...], int]] = field(default_factory=deque)
    baseline_log_out: float = 0.0
    baseline_windows: int = 0
    handshake_addrs: set[str] = field(default_factory=set)
    verified: float = 0.5
    sent_before: int = 0  # bytes sent to this key in windows closed before the last hour


def _log(value: float) -> float:
    return math.log1p(max(value, 0.0))


class Windower:
    """Keeps one open window per active key and turns closed ones into features."""

    def __init__(self, *, utc_offset: float = 0.0, max_keys: int = 20000) -> None:
        self.utc_offset = utc_offset  # seconds east of UTC, for the hour-of-day features
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()
        self._addr_ok: dict[str, deque[float]] = {}
        self._ready: list[Window] = []
        self._next_sweep = 0.0
        # The profile's own habits: its largest 10-minute outbound volume (decaying),
        # folded in only once a window is an hour old so a burst cannot raise its own
        # bar; and when in the day it is active (24 decaying bins).
        self._peak_out = 0.0
        self._peak_at = 0.0
        self._peak_pending: deque[tuple[float, int]] = deque(maxlen=4096)
        self._hours = [0.0] * 24
        self._first_ts: float | None = None  # the first event seen: how much history there is

    @property
    def active_keys(self) -> int:
        return sum(1 for state in self._keys.values() if state.open is not None)

    def observe(self, event: SecurityEvent) -> None:
        """Add one event to its key's open window (closing an older one first)."""
        if self._first_ts is None:
            self._first_ts = event.ts
        key = event.key
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState(first_seen=event.ts, last_seen=event.ts)
            if len(self._keys) > self.max_keys:
                self._evict_one()
        else:
            self._keys.move_to_end(key)
        state.last_seen = max(state.last_seen, event.ts)
        start = math.floor(event.ts / WINDOW) * WINDOW
        current = state.open
        if current is not None and start >= current.start + WINDOW:
            self._close(key, state)
            current = None
        if current is None:
            # A late event (clock skew between tasks) joins the key's next open window.
            current = state.open = _Open(start=start)
        index = _INDEX[event.event]
        current.counts[index] += 1
        if event.event == "handshake_fail":
            timed_out = handshake_timed_out(event)
            current.counts[_INDEX["hs_timeout" if timed_out else "hs_auth_fail"]] += 1
        elif event.event == "unlock_fail" and password_guess(event):
            current.counts[_INDEX["unlock_guess"]] += 1
        elif event.event == "rate_limited":
            dropped = event.detail.get("dropped", 1)
            dropped = dropped if isinstance(dropped, int) and not isinstance(dropped, bool) else 1
            current.counts[_INDEX["conn_refused"]] += min(max(dropped, 1), 100_000)
        if index in _OUT:
            current.bytes_out += moved_bytes(event)
            verified = peer_verified(event)
            if verified is not None:
                state.verified = float(verified)
        elif index in _IN:
            current.bytes_in += moved_bytes(event)
        current.max_bytes = max(current.max_bytes, event.bytes)
        if event.addr is not None:
            current.addrs.add(event.addr)
            current.addr = event.addr
        if event.peer is not None:
            current.peer = event.peer
        if event.label is not None:
            current.labels.add(event.label)
        if event.event == "handshake_ok" and event.addr is not None:
            self._addr_ok.setdefault(event.addr, deque(maxlen=8)).append(event.ts)
            if event.peer is not None:
                state.handshake_addrs.add(event.addr)
        if (
            event.peer is not None
            and event.addr is not None
            and event.event in ("handshake_ok", "identity_changed")
        ):
            source = self._keys.get(event.addr)
            if source is not None and source.open is not None and source.open.start == start:
                if event.event == "handshake_ok":
                    source.open.auth_ok += 1
                else:
                    source.open.auth_changed += 1

    def close_until(self, now: float) -> list[Window]:
        """Close every window that ended at or before `now`; return all closed, in time order."""
        for key, state in self._keys.items():
            if state.open is not None and state.open.start + WINDOW <= now:
                self._close(key, state)
        if now >= self._next_sweep:
            self._sweep(now)
        ready, self._ready = self._ready, []
        ready.sort(key=lambda w: (w.start, w.key))
        return ready

    def flush(self) -> list[Window]:
        return self.close_until(math.inf)

    # --- internals -------------------------------------------------------------------------

    def _close(self, key: str, state: _KeyState) -> None:
        window = state.open
        assert window is not None
        state.open = None
        self._ready.append(self._features(key, state, window))

    def _features(self, key: str, state: _KeyState, w: _Open) -> Window:
        end = w.start + WINDOW
        history = state.history
        while history and history[0][0] < end - LONG_SPAN:
            state.sent_before += history.popleft()[2]
        slow_now = tuple(w.counts[i] for i in _SLOW)
        recent = [h for h in history if h[0] >= end - SHORT_SPAN]
        slow_sums = [slow_now[j] + sum(h[1][j] for h in recent) for j in range(len(_SLOW))]
        hour_sums = [slow_now[j] + sum(h[1][j] for h in history) for j in range(len(_SLOW))]
        out_5m = w.bytes_out + sum(h[2] for h in recent)
        out_1h = w.bytes_out + sum(h[2] for h in history)
        counts = w.counts
        hs_ok, hs_fail = counts[_INDEX["handshake_ok"]], counts[_INDEX["handshake_fail"]]
        un_ok, un_fail = counts[_INDEX["unlock_ok"]], counts[_INDEX["unlock_fail"]]
        kind = "local" if key == LOCAL_KEY else ("peer" if w.peer is not None else "addr")
        log_out = _log(w.bytes_out)
        # A key's first window is its own baseline: no history is not evidence of anything.
        baseline = state.baseline_log_out if state.baseline_windows else log_out
        hour = ((w.start + self.utc_offset) % 86400.0) / 3600.0
        conn_opens = counts[_INDEX["conn_open"]]
        refused = counts[_INDEX["conn_refused"]]
        auth_fail = counts[_INDEX["hs_auth_fail"]]
        out_10m = w.bytes_out + sum(h[2] for h in history if h[0] >= end - 600.0)
        peak = self._profile_peak(end)
        hour_bin = int(hour) % 24
        hour_total = sum(self._hours)
        active = sum(counts[_INDEX[n]] for n in ("msg_sent", "msg_recv", "file_sent", "file_recv"))
        features = (
            *(_log(c) for c in counts),
            log_out,
            _log(w.bytes_in),
            _log(w.max_bytes),
            hs_fail / (hs_fail + hs_ok) if hs_fail + hs_ok else 0.0,
            un_fail / (un_fail + un_ok) if un_fail + un_ok else 0.0,
            float(len(w.addrs)),
            *(_log(s) for s in slow_sums),
            *(_log(s) for s in hour_sums),
            _log(out_5m),
            _log(out_1h),
            (len(history) + 1) / 60.0,
            _log(w.auth_ok),
            _log(w.auth_changed),
            log_out - baseline,
            _log(min(end - state.first_seen, 7 * 86400.0) / 60.0),
            self._addr_known(kind, state, w, end),
            float(kind == "local"),
            float(kind == "addr"),
            float(kind == "peer"),
            math.sin(2 * math.pi * hour / 24),
            math.cos(2 * math.pi * hour / 24),
            auth_fail / (hs_fail + hs_ok) if hs_fail + hs_ok else 0.0,
            counts[_INDEX["hs_timeout"]] / max(conn_opens, 1),
            refused / (refused + conn_opens) if refused + conn_opens else 0.0,
            state.verified,
            _log(out_10m) - _log(peak) if out_10m else 0.0,
            _log(out_1h) - _log(state.sent_before) if out_1h else 0.0,
            self._hours[hour_bin] / hour_total if hour_total >= 1.0 else 1 / 24,
        )
        if active:
            self._learn_hour(hour_bin)
        if w.bytes_out:
            self._peak_pending.append((end, out_10m))
        history.append((w.start, slow_now, w.bytes_out))
        state.baseline_log_out = baseline + BASELINE_ALPHA * (log_out - baseline)
        state.baseline_windows += 1
        label = top_label(w.labels) if w.labels else None
        seen_for = w.start + WINDOW - (w.start if self._first_ts is None else self._first_ts)
        return Window(key, w.start, features, w.peer, w.addr, label, seen_for)

    def _profile_peak(self, now: float) -> float:
        """The profile's largest 10-minute outbound volume, as it stood an hour ago."""
        while self._peak_pending and self._peak_pending[0][0] <= now - LONG_SPAN:
            when, volume = self._peak_pending.popleft()
            if volume > self._decayed_peak(when):
                self._peak_out, self._peak_at = float(volume), when
        return self._decayed_peak(now)

    def _decayed_peak(self, now: float) -> float:
        return float(self._peak_out * 0.5 ** (max(now - self._peak_at, 0.0) / PROFILE_HALF_LIFE))

    def _learn_hour(self, hour_bin: int) -> None:
        """One active window in this hour of the day; old days fade (a 30-day memory)."""
        if sum(self._hours) > 30 * 60 * 24:
            self._hours = [h * 0.5 for h in self._hours]
        self._hours[hour_bin] += 1.0

    def _addr_known(self, kind: str, state: _KeyState, w: _Open, end: float) -> float:
        """Addresses: proved an identity lately? Peers: on an address they used before?"""
        if kind == "local":
            return 1.0
        if kind == "peer":
            return 1.0 if w.addrs <= state.handshake_addrs else 0.0
        times = self._addr_ok.get(w.addr or "")
        return 1.0 if times and any(end - ADDR_MEMORY <= t <= end for t in times) else 0.0

    def _sweep(self, now: float) -> None:
        """Forget keys idle for a day so memory stays bounded on a long-running node."""
        self._next_sweep = now + 3600.0
        stale = [
            k for k, s in self._keys.items() if s.open is None and s.last_seen < now - IDLE_EVICT
        ]
        for key in stale:
            del self._keys[key]
        for addr in [a for a, t in self._addr_ok.items() if t[-1] < now - ADDR_MEMORY]:
            del self._addr_ok[addr]

    def _evict_one(self) -> None:
        for key, state in self._keys.items():
            if state.open is None:
                del self._keys[key]
                return


def featurize(events: Iterable[SecurityEvent], *, utc_offset: float = 0.0) -> list[Window]:
    """Replay a recorded timeline through the live windower."""
    windower = Windower(utc_offset=utc_offset)
    windows: list[Window] = []
    next_boundary = -math.inf
    for event in events:
        if event.ts >= next_boundary:
            windows.extend(windower.close_until(event.ts))
            next_boundary = math.floor(event.ts / WINDOW) * WINDOW + WINDOW
        windower.observe(event)
    windows.extend(windower.flush())
    return windows

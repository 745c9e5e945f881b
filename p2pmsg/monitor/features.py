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
from p2pmsg.security_events import EVENT_NAMES, LOCAL_KEY, SecurityEvent

WINDOW = 60.0
_INDEX = {name: i for i, name in enumerate(EVENT_NAMES)}
_OUT = (_INDEX["msg_sent"], _INDEX["file_sent"])
_IN = (_INDEX["msg_recv"], _INDEX["file_recv"])
# Counts summed over the last five minutes: slow attacks stay under per-minute
# thresholds but not under these.
SLOW_EVENTS = (
    "unlock_fail",
    "handshake_fail",
    "conn_open",
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

FEATURE_NAMES: tuple[str, ...] = (
    *(f"n_{name}" for name in EVENT_NAMES),
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

    @property
    def end(self) -> float:
        return self.start + WINDOW


@dataclass
class _Open:
    start: float
    counts: list[int] = field(default_factory=lambda: [0] * len(EVENT_NAMES))
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

    @property
    def active_keys(self) -> int:
        return sum(1 for state in self._keys.values() if state.open is not None)

    def observe(self, event: SecurityEvent) -> None:
        """Add one event to its key's open window (closing an older one first)."""
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
        if index in _OUT:
            current.bytes_out += event.bytes
        elif index in _IN:
            current.bytes_in += event.bytes
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
            history.popleft()
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
        )
        history.append((w.start, slow_now, w.bytes_out))
        state.baseline_log_out = baseline + BASELINE_ALPHA * (log_out - baseline)
        state.baseline_windows += 1
        label = top_label(w.labels) if w.labels else None
        return Window(key, w.start, features, w.peer, w.addr, label)

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

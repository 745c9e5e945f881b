"""Clock and human time formats for the UI.

The app reads time only through a `Clock`, so snapshot tests can pin it (and
the time zone) and countdowns render the same on every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Clock:
    """Wall-clock source and local-time conversion, injectable for tests."""

    now: Callable[[], float] = field(default=time.time)
    utc: bool = False

    def struct(self, ts: float) -> time.struct_time:
        return time.gmtime(ts) if self.utc else time.localtime(ts)

    def hhmm(self, ts: float) -> str:
        return time.strftime("%H:%M", self.struct(ts))

    def day(self, ts: float) -> str:
        return time.strftime("%a %d %b %Y", self.struct(ts))

    def day_key(self, ts: float) -> tuple[int, int]:
        st = self.struct(ts)
        return (st.tm_year, st.tm_yday)

    def stamp(self, ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", self.struct(ts))


def duration(seconds: float) -> str:
    """Compact, fixed-precision duration: "45s", "12m 05s", "5m", "3h 07m", "2d"."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" if s % 60 == 0 else f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h" if s % 3600 == 0 else f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d" if s % 86400 == 0 else f"{s // 86400}d {s % 86400 // 3600:02d}h"


def ago(seconds: float) -> str:
    """Age for lists: "now", "42s", "5m", "3h", "2d"."""
    s = max(int(seconds), 0)
    if s < 5:
        return "now"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Parse "30s", "5m", "1h30m", "2d" or a bare number of seconds.

    Raises `ValueError` with a message fit for the user.
    """
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise ValueError("empty duration")
    if raw.isdigit():
        return float(raw)
    total = 0.0
    number = ""
    for char in raw:
        if char.isdigit() or char == ".":
            number += char
        elif char in _UNITS and number:
            total += float(number) * _UNITS[char]
            number = ""
        else:
            raise ValueError(f"not a duration: {text!r} (try 30s, 5m, 1h, 2d)")
    if number:
        raise ValueError(f"missing unit after {number!r} in {text!r} (s, m, h, d, w)")
    if total <= 0:
        raise ValueError("a duration must be positive")
    return total


def format_bytes(size: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value = float(size)
    for unit in units:
        if value < 1024 or unit == units[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - loop always returns

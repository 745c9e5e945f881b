"""Brute-force protection for unlocking a profile: counted failures, growing waits.

Policy: the first `FREE_ATTEMPTS` (5) failures cost nothing but the KDF. From
the 5th consecutive failure on, the next attempt must wait
``min(2 ** (failures - 4), 300)`` seconds after the last failure: 2 s after
the 5th, 4 s after the 6th, 8, 16, ... 256 s after the 12th, then 5 minutes
for good. An attempt made during the wait is refused without the password
being tried. A success resets the count.

Each attempt is counted *before* the password is tried (and the count undone
only on success), so killing the process while it derives the key does not
buy a free guess. The count lives in the profile (`unlock_state.json`), so it
survives restarts.

What this does and does not stop: it slows someone guessing through p2pmsg
itself, e.g. at an unlocked terminal, to at most ~290 guesses a day once the
cap is reached. Someone who can copy the identity file guesses offline and
is slowed only by PBKDF2; and someone who can write the profile can reset
the count. An unreadable state file is therefore treated as "at the
threshold" (the next failure is throttled) rather than refusing forever,
which would lock the owner out of their own profile.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from p2pmsg.profile.files import atomic_write

FREE_ATTEMPTS = 5
MAX_DELAY = 300.0
STATE_VERSION = 1


@dataclass(frozen=True)
class UnlockState:
    """Consecutive failed unlocks and when the last one happened (epoch seconds)."""

    failures: int = 0
    last_failure: float | None = None

    def after_failure(self, now: float) -> UnlockState:
        return UnlockState(self.failures + 1, now)


def delay_after(failures: int) -> float:
    """Seconds the next attempt must wait after `failures` consecutive failures."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    exponent = failures - FREE_ATTEMPTS + 1
    if exponent >= 16:  # far past the cap; avoid huge integers from a doctored file
        return MAX_DELAY
    return min(float(2**exponent), MAX_DELAY)


def retry_after(state: UnlockState, now: float) -> float:
    """Seconds to wait before the next attempt is allowed; 0.0 means go ahead.

    A clock set backwards (now before the last failure) does not shorten the
    wait, nor extend it beyond one full delay.
    """
    delay = delay_after(state.failures)
    if delay == 0.0 or state.last_failure is None:
        return 0.0
    elapsed = max(0.0, now - state.last_failure)
    return max(0.0, delay - elapsed)


def load_state(path: Path) -> UnlockState:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UnlockState()
    except (OSError, UnicodeDecodeError):
        return UnlockState(FREE_ATTEMPTS, None)
    try:
        data = json.loads(raw)
        failures = data["failures"]
        last = data["last_failure"]
        if (
            not isinstance(failures, int)
            or isinstance(failures, bool)
            or failures < 0
            or not (last is None or (isinstance(last, int | float) and math.isfinite(last)))
        ):
            raise ValueError("bad field")
    except (ValueError, KeyError, TypeError):
        return UnlockState(FREE_ATTEMPTS, None)
    return UnlockState(failures, None if last is None else float(last))


def save_state(path: Path, state: UnlockState) -> None:
    record = {
        "version": STATE_VERSION,
        "failures": state.failures,
        "last_failure": state.last_failure,
    }
    atomic_write(path, (json.dumps(record) + "\n").encode("utf-8"))

"""What a model verdict must be able to point at before it becomes an alert.

The classifier judges a whole window at once, and on traffic unlike its
training data it can call a mistyped password "brute force" or a large file to
a new colleague "exfiltration" (both seen on a live ordinary day: tests/
monitor/test_live_benign_day.py). A person cannot act on "p=0.84". So a model
verdict of these kinds stands only when the window also shows the thing the
kind is about, in an amount ordinary use does not reach; and that amount,
beside the floor, is the alert's first line of evidence.

- brute force: failed authentications (passwords tried and found wrong, key
  checks failed) in the last hour, at least 3: one or two typos are life, and
  slow guessing still gets there.
- exfiltration: at least an hour of this profile's traffic seen. The model's
  exfiltration features compare outbound volume with this profile's and this
  peer's habits; before there are habits (a new profile, a node just started)
  that comparison is empty and the verdict unfounded. The volume rule, with its
  absolute floors, covers that first hour.
Other kinds (flood, replay, integrity, impersonation) rest on events that
ordinary use does not produce at all, and stand on the model's word.

Shared by the live monitor and `p2pmsg evaluate` (through `model_verdicts`), so
the evaluation measures the detector that runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from p2pmsg.monitor.features import FEATURE_NAMES, Window
from p2pmsg.security_events import Evidence

_AT = {name: i for i, name in enumerate(FEATURE_NAMES)}
MIB = 1024 * 1024
#: Failed authentications in an hour below which a brute-force verdict is a typo.
MIN_AUTH_FAILURES = 3
#: Seconds of history before "unusual for this profile" means anything.
MIN_HISTORY = 3600.0


@dataclass(frozen=True, slots=True)
class Corroboration:
    """The measure a verdict of one kind must show, and how much of it."""

    measure: str
    observed: Callable[[Window], float]
    minimum: Callable[[Window], float]
    unit: str = ""

    def evidence(self, window: Window) -> Evidence | None:
        """The measure as evidence when it reaches its minimum, else None (no alert)."""
        seen, needed = self.observed(window), self.minimum(window)
        if seen < needed:
            return None
        return Evidence(self.measure, round(seen, 2), f"model alerts from {needed:g}{self.unit}")


def _count(name: str) -> Callable[[Window], float]:
    """A count feature as the count (they are stored as log1p)."""
    index = _AT[name]
    return lambda window: math.expm1(window.features[index])


def _auth_failures(window: Window) -> float:
    return round(_count("n1h_unlock_guess")(window) + _count("n1h_hs_auth_fail")(window))


def _history_hours(window: Window) -> float:
    return window.history / 3600.0


CORROBORATION: dict[str, Corroboration] = {
    "brute_force": Corroboration(
        "failed authentications in 1 h", _auth_failures, lambda _w: float(MIN_AUTH_FAILURES)
    ),
    "exfiltration": Corroboration(
        "hours of this profile's traffic seen",
        _history_hours,
        lambda _w: MIN_HISTORY / 3600.0,
        " h",
    ),
}


def corroborate(kind: str, window: Window) -> tuple[bool, tuple[Evidence, ...]]:
    """Whether a model verdict of `kind` on `window` stands, and its evidence."""
    rule = CORROBORATION.get(kind)
    if rule is None:
        return True, ()
    found = rule.evidence(window)
    return found is not None, (() if found is None else (found,))

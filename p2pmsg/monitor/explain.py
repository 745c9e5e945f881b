"""Which features drove a model verdict, in words, beside their normal range.

At training time `p2pmsg train` records each feature's normal range (the 5th to
95th percentile over the training set's normal windows) in the manifest. A
verdict is explained by the features that lie furthest outside that range,
weighted by how much the RandomForest relies on each (its impurity importance):
a large deviation in a feature the forest ignores explains nothing. Values are
shown in their natural units (counts, MiB), not as the log the models see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from p2pmsg.monitor.features import FEATURE_NAMES
from p2pmsg.security_events import MAX_EVIDENCE_TEXT, Evidence

#: Features a verdict names at most (the alert has room for six lines in all).
TOP_FEATURES = 3
NORMAL_PERCENTILES = (5.0, 95.0)
_MIB = 1024 * 1024
_SPANS = {"n_": "in 1 min", "n5m_": "in 5 min", "n1h_": "in 1 h"}


def normal_ranges(rows: Sequence[Sequence[float]]) -> dict[str, list[float]]:
    """Per feature, [p5, p95] over normal windows' feature rows (for the manifest)."""
    import numpy

    matrix = numpy.asarray(rows, dtype=numpy.float64).reshape(len(rows), len(FEATURE_NAMES))
    low, high = numpy.percentile(matrix, NORMAL_PERCENTILES, axis=0)
    return {
        name: [round(float(lo), 6), round(float(hi), 6)]
        for name, lo, hi in zip(FEATURE_NAMES, low, high, strict=True)
    }


def readable(name: str, value: float) -> tuple[str, float]:
    """A feature's name in words and its value in natural units."""
    for prefix, span in _SPANS.items():
        if name.startswith(prefix):
            return f"{name[len(prefix) :]} events {span}", float(round(math.expm1(value)))
    if name.startswith("log_bytes_"):
        rest = name[len("log_bytes_") :]
        direction, _, span = rest.partition("_")
        spans = {"": "1 min", "5m": "5 min", "1h": "1 h"}
        return f"MiB {direction} in {spans.get(span, span)}", round(math.expm1(value) / _MIB, 2)
    if name == "log_max_event_bytes":
        return "largest event, MiB", round(math.expm1(value) / _MIB, 2)
    if name == "log_key_age_min":
        return "minutes since the key was first seen", round(math.expm1(value), 1)
    return name.replace("_", " "), round(value, 3)


def _range_text(name: str, low: float, high: float) -> str:
    _, lo = readable(name, low)
    _, hi = readable(name, high)
    text = f"normal {lo:g}" if lo == hi else f"normal {lo:g} to {hi:g}"
    return text[:MAX_EVIDENCE_TEXT]


def drivers(
    features: Sequence[float],
    ranges: Mapping[str, Sequence[float]],
    importances: Sequence[float],
) -> tuple[Evidence, ...]:
    """The features furthest outside their normal range, weighted by importance."""
    scored: list[tuple[float, str, float, float, float]] = []
    for name, value, weight in zip(FEATURE_NAMES, features, importances, strict=True):
        bounds = ranges.get(name)
        if bounds is None or weight <= 0.0:
            continue
        low, high = float(bounds[0]), float(bounds[1])
        outside = low - value if value < low else value - high if value > high else 0.0
        if outside <= 0.0:
            continue
        scale = max(high - low, 1.0)  # most features are log counts: 1.0 is "e times more"
        scored.append((weight * outside / scale, name, value, low, high))
    scored.sort(reverse=True)
    evidence = []
    for _, name, value, low, high in scored[:TOP_FEATURES]:
        label, shown = readable(name, value)
        evidence.append(Evidence(label[:MAX_EVIDENCE_TEXT], shown, _range_text(name, low, high)))
    return tuple(evidence)

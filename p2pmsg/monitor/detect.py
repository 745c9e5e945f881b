"""How rule hits and model outputs become one verdict per window.

Shared by the live monitor and by `p2pmsg evaluate`, so the figures describe
the detector that actually runs.

The combination is a union: a window is an attack of kind K when a rule fired
for its key during it, or when the RandomForest says K; between several
kinds, DESIGN.md's label priority decides. Rules fire the moment their
threshold is crossed and are never silenced by a model (an explainable alert
within seconds is worth more than a model's second opinion); the models add
the quiet attacks no threshold sees.

The IsolationForest does not decide kinds: measured on held-out data, letting
its anomalies add verdicts of their own cost more precision than they gained
recall. It grades them instead: a model verdict on a window the IsolationForest
also finds anomalous is raised one severity step, and its anomaly scores feed
the threat panel's sparkline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from p2pmsg.monitor.events import top_label
from p2pmsg.monitor.features import WINDOW, Window
from p2pmsg.security_events import SEVERITIES

# Base severity of a model verdict, by kind.
MODEL_SEVERITY: dict[str, str] = {
    "brute_force": "medium",
    "exfiltration": "medium",
    "flood": "medium",
    "replay": "high",
    "integrity_violation": "high",
    "impersonation": "high",
}


@dataclass(frozen=True, slots=True)
class ModelVerdict:
    kind: str  # may be "normal"
    probability: float  # the classifier's probability for `kind`
    anomaly: float  # IsolationForest anomaly score (higher is stranger)
    anomalous: bool  # anomaly above the trained threshold


def window_start(ts: float) -> float:
    return (ts // WINDOW) * WINDOW


def model_verdicts(bundle: Any, windows: Sequence[Window]) -> list[ModelVerdict]:
    """Score a batch of windows with both models in one call each."""
    from p2pmsg.monitor.model import score

    if not windows:
        return []
    anomaly, proba = score(bundle, [w.features for w in windows])
    classes = bundle.classes
    verdicts = []
    for row, value in zip(proba, anomaly, strict=True):
        best = int(row.argmax())
        verdicts.append(
            ModelVerdict(
                classes[best], float(row[best]), float(value), bool(value > bundle.threshold)
            )
        )
    return verdicts


def combine(rule_kinds: Iterable[str], verdict: ModelVerdict | None) -> str:
    """The window's combined label: rules and classifier, by label priority."""
    kinds = set(rule_kinds)
    if verdict is not None and verdict.kind != "normal":
        kinds.add(verdict.kind)
    return top_label(kinds) if kinds else "normal"


def model_severity(verdict: ModelVerdict) -> str:
    """Base severity per kind, one step up when the IsolationForest agrees."""
    base = SEVERITIES.index(MODEL_SEVERITY.get(verdict.kind, "medium"))
    if verdict.anomalous:
        base += 1
    if verdict.probability < 0.6:
        base -= 1
    return SEVERITIES[max(0, min(base, len(SEVERITIES) - 1))]

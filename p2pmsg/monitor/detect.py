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

A verdict of a kind that ordinary use can resemble (brute force, exfiltration)
stands only when the window shows what that kind is about
(p2pmsg.monitor.corroboration); that measure is the alert's evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from p2pmsg.monitor.corroboration import corroborate
from p2pmsg.monitor.events import top_label
from p2pmsg.monitor.explain import drivers
from p2pmsg.monitor.features import WINDOW, Window
from p2pmsg.security_events import SEVERITIES, Evidence

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
    evidence: tuple[Evidence, ...] = ()  # why the verdict stands (see `model_verdicts`)
    #: A verdict the window did not bear out: what the classifier said before it became
    #: "normal" (kept for the record; it raises nothing).
    unsupported: str | None = None


def window_start(ts: float) -> float:
    return (ts // WINDOW) * WINDOW


def model_verdicts(bundle: Any, windows: Sequence[Window]) -> list[ModelVerdict]:
    """Score a batch of windows with both models in one call each."""
    from p2pmsg.monitor.model import score

    if not windows:
        return []
    anomaly, proba = score(bundle, [w.features for w in windows])
    classes = bundle.classes
    ranges = bundle.manifest.get("normal_ranges") or {}
    # The forest's importances cost ~9 ms to compute (a pass over 200 trees): only for
    # a batch that has a verdict to explain, which most ticks do not.
    importances: Any = None
    verdicts = []
    for window, row, value in zip(windows, proba, anomaly, strict=True):
        best = int(row.argmax())
        kind, probability = str(classes[best]), float(row[best])
        anomalous = bool(value > bundle.threshold)
        if kind == "normal":
            verdicts.append(ModelVerdict(kind, probability, float(value), anomalous))
            continue
        stands, because = corroborate(kind, window)
        if not stands:
            verdicts.append(ModelVerdict("normal", probability, float(value), anomalous, (), kind))
            continue
        if importances is None:
            importances = getattr(bundle.classifier, "feature_importances_", ()) if ranges else ()
        features = drivers(window.features, ranges, importances) if len(importances) else ()
        evidence = (
            *because,
            *features,
            Evidence(
                "classifier probability", round(probability, 3), f"highest of {len(classes)} labels"
            ),
            Evidence(
                "anomaly score",
                round(float(value), 3),
                f"{'above' if anomalous else 'below'} the threshold {bundle.threshold:.2f}",
            ),
        )
        verdicts.append(ModelVerdict(kind, probability, float(value), anomalous, evidence))
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

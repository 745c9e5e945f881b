"""Measure rules alone, each model alone, and the combination on a labeled log.

Every detector is graded on the same windows (key x 60 s), against the
window's ground-truth label, so the report shows plainly what the models add
over the rules. The IsolationForest only says "anomalous or not", so it is
graded as a binary detector, with its detection rate per attack kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from p2pmsg.errors import ModelIntegrityError
from p2pmsg.monitor.detect import combine, model_verdicts, window_start
from p2pmsg.monitor.events import read_events, require_labels, top_label
from p2pmsg.monitor.features import Window, featurize
from p2pmsg.monitor.rules import RuleConfig, RuleEngine
from p2pmsg.security_events import LABELS, SecurityEvent


def classification_report(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = LABELS
) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro-F1 and the confusion matrix.

    Macro-F1 averages over the labels that occur in the truth or the
    predictions (as scikit-learn does by default), so a class that never
    occurs neither helps nor hurts.
    """
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t]][index[p]] += 1
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        support = sum(matrix[i])
        predicted_n = sum(row[i] for row in matrix)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": support,
        }
        if support or predicted_n:
            f1s.append(f1)
    correct = sum(matrix[i][i] for i in range(len(labels)))
    return {
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "accuracy": round(correct / len(truth), 4) if truth else 0.0,
        "per_class": per_class,
        "confusion": {"labels": list(labels), "matrix": matrix},
        "windows": len(truth),
    }


def binary_report(truth: Sequence[str], flagged: Sequence[bool]) -> dict[str, Any]:
    attack = [t != "normal" for t in truth]
    tp = sum(a and f for a, f in zip(attack, flagged, strict=True))
    fp = sum((not a) and f for a, f in zip(attack, flagged, strict=True))
    fn = sum(a and not f for a, f in zip(attack, flagged, strict=True))
    normals = len(attack) - sum(attack)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    rates = {}
    for label in LABELS:
        rows = [f for t, f in zip(truth, flagged, strict=True) if t == label]
        rates[label] = round(sum(rows) / len(rows), 4) if rows else None
    return {
        "kind": "binary (anomalous vs normal)",
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4) if tp else 0.0,
        "false_alarm_rate": round(fp / normals, 4) if normals else 0.0,
        "flagged_share_by_label": rates,
        "windows": len(truth),
    }


def rule_kinds_by_window(
    events: Iterable[SecurityEvent], config: RuleConfig | None = None
) -> dict[tuple[str, float], set[str]]:
    """Replay the rules; which kinds fired for each (key, window start)."""
    engine = RuleEngine(config)
    fired: dict[tuple[str, float], set[str]] = defaultdict(set)
    for event in events:
        for hit in engine.observe(event):
            fired[(hit.key, window_start(hit.ts))].add(hit.kind)
    return fired


def evaluate_events(
    events: Sequence[SecurityEvent], bundle: Any | None, *, unavailable: str = ""
) -> dict[str, Any]:
    """Grade all detectors; `bundle` None means the models could not be used."""
    windows: list[Window] = featurize(events)
    truth = [w.label or "normal" for w in windows]
    fired = rule_kinds_by_window(events)
    rule_sets = [fired.get((w.key, w.start), set()) for w in windows]
    rules_pred = [top_label(kinds) if kinds else "normal" for kinds in rule_sets]
    detectors: dict[str, Any] = {"rules": classification_report(truth, rules_pred)}
    if bundle is not None:
        verdicts = model_verdicts(bundle, windows)
        detectors["isolation_forest"] = binary_report(truth, [v.anomalous for v in verdicts])
        detectors["isolation_forest"]["threshold"] = round(bundle.threshold, 6)
        detectors["random_forest"] = classification_report(truth, [v.kind for v in verdicts])
        combined = [combine(kinds, v) for kinds, v in zip(rule_sets, verdicts, strict=True)]
        mode = "models"
    else:
        detectors["isolation_forest"] = detectors["random_forest"] = None
        combined = rules_pred
        mode = f"rules-only: {unavailable}"
    detectors["combined"] = classification_report(truth, combined)
    report = dict(detectors["combined"])
    report.update({"mode": mode, "events": len(events), "detectors": detectors, "warnings": []})
    if report["macro_f1"] >= 0.9999 and len(truth) > 100:
        report["warnings"].append(
            "a perfect macro-F1 usually means leakage between training "
            "and test data; investigate before trusting it"
        )
    return report


def evaluate_file(path: Path, *, model_dir: Path | None = None) -> dict[str, Any]:
    from p2pmsg.monitor.model import load_models

    events = read_events(path)
    require_labels(events, source=str(path))
    try:
        bundle, reason = load_models(model_dir), ""
    except ModelIntegrityError as exc:
        bundle, reason = None, str(exc)
    report = evaluate_events(events, bundle, unavailable=reason)
    report["data"] = str(path)
    return report


def format_report(report: dict[str, Any]) -> str:
    """The human-readable form of `evaluate_file`'s result."""
    lines = [
        f"data: {report.get('data', '-')}  events: {report['events']}  "
        f"windows: {report['windows']}  mode: {report['mode']}",
        "",
    ]
    for name, title in (
        ("rules", "rules alone"),
        ("isolation_forest", "IsolationForest alone"),
        ("random_forest", "RandomForest alone"),
        ("combined", "combined (rules + models)"),
    ):
        result = report["detectors"].get(name)
        if result is None:
            lines += [f"{title}: unavailable", ""]
            continue
        if "per_class" not in result:
            lines.append(
                f"{title}: {result['kind']}; precision {result['precision']:.3f} "
                f"recall {result['recall']:.3f} F1 {result['f1']:.3f} "
                f"false alarms {result['false_alarm_rate']:.2%}"
            )
            flagged = ", ".join(
                f"{k} {v:.0%}" for k, v in result["flagged_share_by_label"].items() if v is not None
            )
            lines += [f"  flagged: {flagged}", ""]
            continue
        lines.append(f"{title}: macro-F1 {result['macro_f1']:.3f}")
        lines.append(f"  {'label':<20} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
        for label, row in result["per_class"].items():
            lines.append(
                f"  {label:<20} {row['precision']:>9.3f} {row['recall']:>7.3f} "
                f"{row['f1']:>6.3f} {row['support']:>8}"
            )
        lines.append("")
    confusion = report["confusion"]
    short = [label[:6] for label in confusion["labels"]]
    lines.append("confusion (combined; rows = truth, columns = predicted)")
    lines.append(" " * 21 + " ".join(f"{s:>7}" for s in short))
    for label, row in zip(confusion["labels"], confusion["matrix"], strict=True):
        lines.append(f"  {label:<19}" + " ".join(f"{n:>7}" for n in row))
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)

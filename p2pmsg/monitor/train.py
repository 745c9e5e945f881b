"""Training: windows from the synthetic log -> IsolationForest + RandomForest -> files.

`p2pmsg train` and `python -m p2pmsg.monitor.train --train` retrain
deterministically (fixed seeds, `n_jobs=1`) and write, into `models/`:
`anomaly_detector.joblib`, `security_classifier.joblib` (compressed) and
`manifest.json`; and into the package, `model_hashes.json`, the pinned hashes
the loader trusts. That default holds in a checkout only: an installed copy
is pip's to change, and its pins are what it trusts, so there `--out DIR` and
`--pin FILE` are required (`resolve_outputs`).

The split is by time block, never by shuffled windows: consecutive windows
share their five-minute and hourly sums, so a shuffled split would grade the
model on near-copies of its training rows. Each 12-hour block goes wholly to
training or to validation, and the first hour of every block is dropped (an
embargo) so no validation row carries sums that reach into a training block.

Byte-for-byte reproducibility holds for a fresh process (`p2pmsg train`):
pickle shares equal strings by object identity, and which equal strings are
one object can depend on what the process unpickled before.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pmsg.errors import ConfigError
from p2pmsg.monitor import model as model_files
from p2pmsg.monitor.events import read_events, require_labels
from p2pmsg.monitor.explain import normal_ranges
from p2pmsg.monitor.features import FEATURE_NAMES, Window, featurize
from p2pmsg.monitor.paths import MONITOR_DIR, checkout_root

BLOCK = 12 * 3600.0
EMBARGO = 3600.0
VALIDATION_EVERY = 4  # every 4th block is held out for validation
FALSE_ALARM_BUDGET = 0.01  # share of held-out normal windows the IsolationForest may flag
SEED = 20251117
PINNED_PATH = MONITOR_DIR / model_files.PINNED_HASHES


@dataclass(frozen=True)
class Split:
    train: list[Window]
    validation: list[Window]


def split_by_time(
    windows: Sequence[Window],
    *,
    block: float = BLOCK,
    embargo: float = EMBARGO,
    every: int = VALIDATION_EVERY,
) -> Split:
    """Whole time blocks to each side, with an embargo at the start of every block."""
    if not windows:
        return Split([], [])
    origin = min(w.start for w in windows)
    train: list[Window] = []
    validation: list[Window] = []
    for w in windows:
        index, offset = divmod(w.start - origin, block)
        if offset < embargo:
            continue
        (validation if int(index) % every == every - 1 else train).append(w)
    return Split(train, validation)


def matrix(windows: Sequence[Window]) -> Any:
    import numpy

    return numpy.asarray([w.features for w in windows], dtype=numpy.float64).reshape(
        len(windows), len(FEATURE_NAMES)
    )


def fit(
    windows: Sequence[Window], *, seed: int = SEED
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Fit both models; returns (anomaly blob, classifier blob, validation metrics)."""
    import numpy
    from sklearn.ensemble import IsolationForest, RandomForestClassifier

    split = split_by_time(windows)
    train_normal = [w for w in split.train if w.label == "normal"]
    val_normal = [w for w in split.validation if w.label == "normal"]
    if not train_normal or not val_normal:
        raise ValueError("training needs normal windows on both sides of the time split")
    anomaly = IsolationForest(n_estimators=200, random_state=seed, n_jobs=1)
    anomaly.fit(matrix(train_normal))
    val_scores = -anomaly.score_samples(matrix(val_normal))
    threshold = float(numpy.quantile(val_scores, 1.0 - FALSE_ALARM_BUDGET))

    classifier = RandomForestClassifier(
        n_estimators=200, max_depth=15, class_weight="balanced", random_state=seed, n_jobs=1
    )
    classifier.fit(matrix(split.train), [w.label for w in split.train])

    from p2pmsg.monitor.evaluate import classification_report

    val_pred = classifier.predict(matrix(split.validation))
    report = classification_report(
        [w.label or "normal" for w in split.validation], [str(p) for p in val_pred]
    )
    metrics = {
        "train_windows": len(split.train),
        "validation_windows": len(split.validation),
        "validation_macro_f1_classifier": round(report["macro_f1"], 4),
        "anomaly_threshold": round(threshold, 6),
        "false_alarm_budget": FALSE_ALARM_BUDGET,
    }
    return ({"model": anomaly, "threshold": threshold}, {"model": classifier}, metrics)


def default_outputs() -> tuple[Path, Path] | None:
    """(models dir, pin file) that a checkout retrains in place; None in an installed copy."""
    root = checkout_root()
    return (root / "models", PINNED_PATH) if root is not None else None


def resolve_outputs(out_dir: Path | None, pin: Path | None) -> tuple[Path, Path]:
    """Fill in the defaults, or say what to pass where there are none (an installed copy)."""
    defaults = default_outputs()
    if defaults is None:
        if out_dir is None or pin is None:
            raise ConfigError(
                f"this p2pmsg is installed ({MONITOR_DIR.parent}), not a checkout: train does "
                "not rewrite an installed package's models and pinned hashes; pass --out DIR "
                "--pin FILE (e.g. --out ~/p2pmsg-models --pin ~/p2pmsg-models/pins.json)"
            )
        return out_dir, pin
    return out_dir or defaults[0], pin or defaults[1]


def train(
    data: Path,
    out_dir: Path,
    *,
    seed: int = SEED,
    pin: Path | None = PINNED_PATH,
    log: Any = None,
) -> dict[str, Any]:
    """Train from a labeled log and write models, manifest and pinned hashes."""
    import joblib
    import numpy
    import sklearn

    say = log or (lambda _msg: None)
    raw = data.read_bytes()
    events = read_events(data)
    require_labels(events, source=str(data))
    say(f"read {len(events)} events from {data}")
    windows = featurize(events)
    say(f"{len(windows)} windows; fitting IsolationForest and RandomForest (n_jobs=1)")
    anomaly_blob, classifier_blob, metrics = fit(windows, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    files: dict[str, dict[str, Any]] = {}
    for name, blob in (
        (model_files.ANOMALY_FILE, anomaly_blob),
        (model_files.CLASSIFIER_FILE, classifier_blob),
    ):
        path = out_dir / name
        joblib.dump(blob, path, compress=("zlib", 6))
        content = path.read_bytes()
        hashes[name] = model_files.sha256_hex(content)
        files[name] = {"sha256": hashes[name], "bytes": len(content)}
    manifest = {
        "format": 1,
        "files": files,
        "sklearn_version": sklearn.__version__,
        "numpy_version": numpy.__version__,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "feature_names": list(FEATURE_NAMES),
        "classes": [str(c) for c in classifier_blob["model"].classes_],
        "anomaly_threshold": anomaly_blob["threshold"],
        "dataset": {
            "path": data.name,
            "sha256": model_files.sha256_hex(raw),
            "events": len(events),
            "windows": len(windows),
        },
        "seeds": {"isolation_forest": seed, "random_forest": seed},
        "estimators": {
            "isolation_forest": {"n_estimators": 200, "fitted_on": "normal windows"},
            "random_forest": {"n_estimators": 200, "max_depth": 15, "class_weight": "balanced"},
        },
        "split": {
            "block_hours": BLOCK / 3600,
            "embargo_minutes": EMBARGO / 60,
            "validation_every": VALIDATION_EVERY,
        },
        "metrics": metrics,
        # What "normal" looks like per feature, so a model alert can say which of its
        # features were outside it (p2pmsg.monitor.explain).
        "normal_ranges": normal_ranges(
            [w.features for w in windows if (w.label or "normal") == "normal"]
        ),
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (out_dir / model_files.MANIFEST_FILE).write_bytes(manifest_bytes)
    hashes[model_files.MANIFEST_FILE] = model_files.sha256_hex(manifest_bytes)
    if pin is not None:
        pin.write_text(json.dumps(hashes, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    say(
        f"wrote {out_dir}; validation macro-F1 (classifier) "
        f"{metrics['validation_macro_f1_classifier']:.3f}"
    )
    return manifest


def trust_note(out_dir: Path, pin: Path) -> str | None:
    """What the loader of this package will make of models written elsewhere (None: in place)."""
    if pin.resolve() == PINNED_PATH:
        return None
    written = json.loads(pin.read_text(encoding="utf-8"))
    if written == model_files.pinned_hashes():
        return (
            "these are byte for byte the models this p2pmsg trusts; "
            f"P2PMSG_MODEL_DIR={out_dir} makes it load them"
        )
    where = (
        f"copy {pin} over {PINNED_PATH} (or run `p2pmsg train` without --out and --pin)"
        if checkout_root() is not None
        else "retrain in a checkout, whose `p2pmsg train` rewrites the pins, and install that build"
    )
    return (
        f"these models differ from the ones this p2pmsg trusts ({PINNED_PATH}), "
        f"so it will not load them; to use them, {where}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    from p2pmsg.monitor.datasets import TRAINING, locate

    parser = argparse.ArgumentParser(
        prog="python -m p2pmsg.monitor.train", description="Retrain the security monitor's models."
    )
    parser.add_argument("--train", action="store_true", help="retrain now (required)")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--pin",
        type=Path,
        default=None,
        help="where to write the pinned hashes (default in a checkout: inside the package)",
    )
    args = parser.parse_args(argv)
    if not args.train:
        parser.print_help()
        return 2

    def say(msg: str) -> None:
        print(msg, file=sys.stderr)

    try:
        out_dir, pin = resolve_outputs(args.out, args.pin)
    except ConfigError as exc:
        parser.error(str(exc))
    data = args.data or locate(TRAINING, say=say)
    train(data, out_dir, pin=pin, log=say)
    note = trust_note(out_dir, pin)
    if note:
        say(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Loading and scoring the shipped models, with an integrity check first.

A joblib file is a pickle, and unpickling runs code: a model file is code.
So nothing is unpickled before its SHA-256 matches the hash pinned inside the
package (`model_hashes.json`, written by `p2pmsg train`), the manifest itself
matches its pinned hash, the running scikit-learn is the one that wrote the
files (its `InconsistentVersionWarning` is turned into an error), and the
unpickled objects are the estimators the manifest describes. Anything else is
a `ModelIntegrityError`; the monitor then keeps working on rules alone.

The bytes that are hashed are the bytes that are unpickled (no second read,
no window for a swap). scikit-learn is imported only here, lazily, so that
importing `p2pmsg.monitor` stays fast.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from p2pmsg.errors import ModelIntegrityError
from p2pmsg.monitor.features import FEATURE_NAMES
from p2pmsg.monitor.paths import MONITOR_DIR, checkout_root
from p2pmsg.security_events import LABELS

ANOMALY_FILE = "anomaly_detector.joblib"
CLASSIFIER_FILE = "security_classifier.joblib"
MANIFEST_FILE = "manifest.json"
MODEL_FILES = (ANOMALY_FILE, CLASSIFIER_FILE)
PINNED_HASHES = "model_hashes.json"  # inside the package, next to this module
MODEL_DIR_ENV = "P2PMSG_MODEL_DIR"


@dataclass(frozen=True)
class ModelBundle:
    """The two fitted estimators and what is needed to read their outputs."""

    anomaly: Any  # sklearn.ensemble.IsolationForest
    threshold: float  # anomaly scores above this are anomalous (false-alarm budget)
    classifier: Any  # sklearn.ensemble.RandomForestClassifier
    classes: tuple[str, ...]
    manifest: Mapping[str, Any]
    directory: Path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def candidate_model_dirs() -> list[Path]:
    """Where the models may live, most specific first.

    An explicit directory (the environment), the copy packaged inside an
    installed wheel, then the source checkout's top-level `models/`. Pointing
    elsewhere cannot weaken anything: the pinned hashes still decide.
    """
    dirs = []
    if os.environ.get(MODEL_DIR_ENV):
        dirs.append(Path(os.environ[MODEL_DIR_ENV]))
    dirs.append(MONITOR_DIR / "models")
    root = checkout_root()
    if root is not None:
        dirs.append(root / "models")
    return dirs


def default_model_dir() -> Path:
    for directory in candidate_model_dirs():
        if (directory / MANIFEST_FILE).is_file():
            return directory
    raise ModelIntegrityError(
        "no trained models found (looked in "
        + ", ".join(str(d) for d in candidate_model_dirs())
        + ")"
    )


def pinned_hashes() -> dict[str, str]:
    """The hashes `p2pmsg train` pinned into the package."""
    try:
        text = resources.files("p2pmsg.monitor").joinpath(PINNED_HASHES).read_text("utf-8")
        pinned = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(
            f"the package's pinned model hashes are unreadable: {exc}"
        ) from None
    if not isinstance(pinned, dict) or not all(isinstance(v, str) for v in pinned.values()):
        raise ModelIntegrityError("the package's pinned model hashes are malformed")
    return pinned


def _read(directory: Path, name: str) -> bytes:
    try:
        return (directory / name).read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read {name}: {exc.strerror or exc}") from None


def _checked(directory: Path, name: str, pinned: Mapping[str, str]) -> bytes:
    data = _read(directory, name)
    expected = pinned.get(name)
    if expected is None:
        raise ModelIntegrityError(f"no pinned hash for {name}")
    if sha256_hex(data) != expected:
        raise ModelIntegrityError(f"{name} does not match its pinned SHA-256; refusing to load it")
    return data


def load_models(
    directory: Path | None = None, *, pinned: Mapping[str, str] | None = None
) -> ModelBundle:
    """Verify, then load. Raises `ModelIntegrityError` with the reason on any doubt."""
    directory = directory if directory is not None else default_model_dir()
    pinned = pinned if pinned is not None else pinned_hashes()
    manifest_bytes = _checked(directory, MANIFEST_FILE, pinned)
    try:
        manifest = json.loads(manifest_bytes)
        files = manifest["files"]
        blobs = {}
        for name in MODEL_FILES:
            blobs[name] = _checked(directory, name, pinned)
            if files[name]["sha256"] != pinned[name]:
                raise ModelIntegrityError(f"the manifest disagrees with the pinned hash of {name}")
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"malformed manifest: {exc!r}") from None
    _check_environment(manifest)
    anomaly_blob = _unpickle(blobs[ANOMALY_FILE], ANOMALY_FILE)
    classifier_blob = _unpickle(blobs[CLASSIFIER_FILE], CLASSIFIER_FILE)
    return _validated(anomaly_blob, classifier_blob, manifest, directory)


def _check_environment(manifest: Mapping[str, Any]) -> None:
    import numpy
    import sklearn

    if manifest.get("sklearn_version") != sklearn.__version__:
        raise ModelIntegrityError(
            f"models were written by scikit-learn {manifest.get('sklearn_version')}, "
            f"this is {sklearn.__version__}; retrain with `p2pmsg train`"
        )
    written = str(manifest.get("numpy_version", "")).split(".")[0]
    if written != numpy.__version__.split(".")[0]:
        raise ModelIntegrityError(
            f"models were written with numpy {manifest.get('numpy_version')}, "
            f"this is {numpy.__version__}"
        )
    if tuple(manifest.get("feature_names", ())) != FEATURE_NAMES:
        raise ModelIntegrityError("the models were trained on other features than this code makes")


def _unpickle(data: bytes, name: str) -> Any:
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(io.BytesIO(data))
        except InconsistentVersionWarning as exc:
            raise ModelIntegrityError(f"{name}: {exc}") from None
        except Exception as exc:  # a corrupt pickle can raise nearly anything
            raise ModelIntegrityError(f"{name} could not be loaded: {type(exc).__name__}") from None


def _validated(
    anomaly_blob: Any, classifier_blob: Any, manifest: Mapping[str, Any], directory: Path
) -> ModelBundle:
    from sklearn.ensemble import IsolationForest, RandomForestClassifier

    try:
        anomaly, threshold = anomaly_blob["model"], float(anomaly_blob["threshold"])
        classifier = classifier_blob["model"]
    except (TypeError, KeyError, ValueError):
        raise ModelIntegrityError("a model file does not hold the expected structure") from None
    if not isinstance(anomaly, IsolationForest) or not isinstance(
        classifier, RandomForestClassifier
    ):
        raise ModelIntegrityError("a model file holds an unexpected kind of estimator")
    n = len(FEATURE_NAMES)
    if anomaly.n_features_in_ != n or classifier.n_features_in_ != n:
        raise ModelIntegrityError("a model expects a different number of features")
    classes = tuple(str(c) for c in classifier.classes_)
    if classes != tuple(manifest.get("classes", ())) or not set(classes) <= set(LABELS):
        raise ModelIntegrityError("the classifier's classes differ from the manifest")
    return ModelBundle(anomaly, threshold, classifier, classes, manifest, directory)


def score(bundle: ModelBundle, rows: Any) -> tuple[Any, Any]:
    """Anomaly scores (higher is stranger) and class probabilities for a batch of rows."""
    import numpy

    matrix = numpy.asarray(rows, dtype=numpy.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
        raise ValueError("rows must be a (n, n_features) matrix")
    if matrix.shape[0] == 0:
        return numpy.zeros(0), numpy.zeros((0, len(bundle.classes)))
    return -bundle.anomaly.score_samples(matrix), bundle.classifier.predict_proba(matrix)

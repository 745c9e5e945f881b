"""A model file is code: anything but the exact pinned bytes is refused."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from p2pmsg.errors import ModelIntegrityError
from p2pmsg.monitor import model as models
from p2pmsg.monitor.live import Monitor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(models.default_model_dir(), target)
    return target


def test_shipped_models_pass_their_integrity_check() -> None:
    bundle = models.load_models()
    assert bundle.directory == REPO / "models"
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    assert bundle.classes == tuple(manifest["classes"])
    total = sum((REPO / "models" / name).stat().st_size for name in models.MODEL_FILES)
    assert total < 15_000_000


def test_an_intact_copy_loads(model_copy: Path) -> None:
    assert models.load_models(model_copy).directory == model_copy


def test_flipped_byte_is_refused(model_copy: Path) -> None:
    path = model_copy / models.CLASSIFIER_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"security_classifier\.joblib does not match"):
        models.load_models(model_copy)


def test_swapped_files_are_refused(model_copy: Path) -> None:
    a, c = model_copy / models.ANOMALY_FILE, model_copy / models.CLASSIFIER_FILE
    a_bytes, c_bytes = a.read_bytes(), c.read_bytes()
    a.write_bytes(c_bytes)
    c.write_bytes(a_bytes)
    with pytest.raises(ModelIntegrityError, match="does not match its pinned SHA-256"):
        models.load_models(model_copy)


def test_edited_manifest_is_refused(model_copy: Path) -> None:
    path = model_copy / models.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["anomaly_threshold"] = 99.0
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=r"manifest\.json does not match"):
        models.load_models(model_copy)


def test_manifest_that_disagrees_with_the_pins_is_refused(model_copy: Path) -> None:
    """Even a manifest re-pinned by an attacker must name the pinned model hashes."""
    path = model_copy / models.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["files"][models.ANOMALY_FILE]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    pinned = dict(models.pinned_hashes())
    pinned[models.MANIFEST_FILE] = models.sha256_hex(path.read_bytes())
    with pytest.raises(ModelIntegrityError, match="manifest disagrees"):
        models.load_models(model_copy, pinned=pinned)


def test_missing_file_is_refused(model_copy: Path) -> None:
    (model_copy / models.ANOMALY_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match=r"cannot read anomaly_detector\.joblib"):
        models.load_models(model_copy)


def repin(directory: Path) -> dict[str, str]:
    return {
        name: models.sha256_hex((directory / name).read_bytes())
        for name in (*models.MODEL_FILES, models.MANIFEST_FILE)
    }


def test_other_scikit_learn_version_is_refused(model_copy: Path) -> None:
    path = model_copy / models.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["sklearn_version"] = "0.24.2"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=r"scikit-learn 0\.24\.2"):
        models.load_models(model_copy, pinned=repin(model_copy))


def test_inconsistent_version_warning_becomes_an_error(model_copy: Path) -> None:
    """A pickle written by another scikit-learn is refused even if the manifest lies."""
    import sklearn

    blob = joblib.load(model_copy / models.ANOMALY_FILE)
    raw = io.BytesIO()
    joblib.dump(blob, raw)  # uncompressed, so the version string can be edited in place
    current = sklearn.__version__.encode()
    forged = raw.getvalue().replace(current, b"0.0." + b"9" * (len(current) - 4))
    assert forged != raw.getvalue()
    (model_copy / models.ANOMALY_FILE).write_bytes(forged)
    manifest_path = model_copy / models.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][models.ANOMALY_FILE]["sha256"] = models.sha256_hex(forged)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=r"anomaly_detector\.joblib: .*version 0\.0\.9"):
        models.load_models(model_copy, pinned=repin(model_copy))


def test_wrong_estimator_type_is_refused(model_copy: Path) -> None:
    path = model_copy / models.ANOMALY_FILE
    joblib.dump(
        {"model": joblib.load(model_copy / models.CLASSIFIER_FILE)["model"], "threshold": 0.5}, path
    )
    manifest_path = model_copy / models.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][models.ANOMALY_FILE]["sha256"] = models.sha256_hex(path.read_bytes())
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="unexpected kind of estimator"):
        models.load_models(model_copy, pinned=repin(model_copy))


def test_monitor_falls_back_to_rules_and_raises_a_critical_alert(model_copy: Path) -> None:
    path = model_copy / models.ANOMALY_FILE
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    monitor = Monitor(model_dir=model_copy)
    assert monitor.load_models(1000.0) is False
    assert monitor.mode.startswith("rules-only: ")
    assert "anomaly_detector.joblib" in monitor.mode
    alerts = monitor.tick(1001.0)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.severity, alert.source, alert.kind) == (
        "critical",
        "rule:model_integrity",
        "integrity_violation",
    )
    assert "rules alone" in alert.message
    assert monitor.tick(1002.0) == []  # said once
    from tests.monitor.helpers import PEER, ev

    monitor.observe(ev(0, "identity_changed", peer=PEER, addr="10.0.0.9"))
    (rule_alert,) = monitor.tick(ev(1, "conn_open").ts)
    assert rule_alert.source == "rule:identity_changed"  # the rules keep working


def test_importing_the_monitor_does_not_import_scikit_learn() -> None:
    probe = (
        "import sys\n"
        "import p2pmsg.monitor.live, p2pmsg.monitor.model, p2pmsg.monitor.evaluate\n"
        "import p2pmsg.monitor.train, p2pmsg.cli\n"
        "p2pmsg.cli.build_parser()\n"
        "print('sklearn' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"

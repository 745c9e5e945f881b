"""Training: deterministic, time-split, and it writes what the loader verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from p2pmsg.monitor import model as models
from p2pmsg.monitor.features import FEATURE_NAMES, featurize
from p2pmsg.monitor.simulate import SimConfig, generate, write_jsonl
from p2pmsg.monitor.train import BLOCK, EMBARGO, split_by_time, train

REPO = Path(__file__).resolve().parents[2]


def test_time_split_keeps_whole_blocks_and_an_embargo() -> None:
    windows = featurize(generate(SimConfig(hours=72, seed=3, attack_rate=6)))
    split = split_by_time(windows)
    origin = min(w.start for w in windows)
    train_blocks = {int((w.start - origin) // BLOCK) for w in split.train}
    val_blocks = {int((w.start - origin) // BLOCK) for w in split.validation}
    assert train_blocks and val_blocks and not train_blocks & val_blocks
    assert all((w.start - origin) % BLOCK >= EMBARGO for w in split.train + split.validation)


def test_training_on_tiny_data_writes_verifiable_models(tmp_path: Path) -> None:
    data = tmp_path / "tiny.jsonl"
    with open(data, "w", encoding="utf-8") as out:
        write_jsonl(generate(SimConfig(hours=50, seed=8, attack_rate=4)), out)
    pin = tmp_path / "pins.json"
    manifest = train(data, tmp_path / "out", pin=pin)
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["feature_names"] == list(FEATURE_NAMES)
    assert manifest["seeds"] and manifest["dataset"]["sha256"] == models.sha256_hex(
        data.read_bytes()
    )
    assert set(manifest["metrics"]) >= {"validation_macro_f1_classifier", "anomaly_threshold"}
    pinned = json.loads(pin.read_text())
    bundle = models.load_models(tmp_path / "out", pinned=pinned)
    assert "normal" in bundle.classes
    # Same data, same seeds: the same bytes.
    again = train(data, tmp_path / "again", pin=None)
    assert again["files"] == manifest["files"]


def test_retraining_reproduces_the_shipped_models(tmp_path: Path) -> None:
    """`p2pmsg train` on the shipped dataset rebuilds the shipped files byte for byte.

    In a fresh process, as users run it: see p2pmsg.monitor.train on why.
    """
    pins = tmp_path / "pins.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "p2pmsg",
            "train",
            "--out",
            str(tmp_path),
            "--pin",
            str(pins),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
        timeout=300,
        text=True,
    )
    assert json.loads(pins.read_text()) == models.pinned_hashes()
    assert "these are byte for byte the models this p2pmsg trusts" in result.stderr
    assert (
        json.loads((tmp_path / "manifest.json").read_text())["files"]
        == json.loads((REPO / "models" / "manifest.json").read_text())["files"]
    )

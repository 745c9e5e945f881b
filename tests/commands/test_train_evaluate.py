"""`train` and `evaluate` as an installed copy runs them: datasets from the cache, no writes
into the package, and errors that say what to pass. (The real thing, a wheel in a fresh venv:
tests/test_installed_copy.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2pmsg.cli import main
from p2pmsg.monitor import model as models
from p2pmsg.monitor import paths
from p2pmsg.monitor import train as training

REPO = Path(__file__).resolve().parents[2]
INSTALLED_HINT = "pass --out DIR --pin FILE"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No checkout around the package, the user cache under tmp; returns the cache dir."""
    monitor = tmp_path / "site-packages" / "p2pmsg" / "monitor"
    monitor.mkdir(parents=True)
    monkeypatch.setattr(paths, "MONITOR_DIR", monitor)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "p2pmsg"


@pytest.mark.parametrize("given", [[], ["--out", "OUT"], ["--pin", "OUT/pins.json"]])
def test_installed_train_refuses_to_rewrite_the_package_and_says_what_to_pass(
    installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], given: list[str]
) -> None:
    argv = ["train", *(a.replace("OUT", str(tmp_path / "out")) for a in given)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("p2pmsg: error: this p2pmsg is installed (")
    assert INSTALLED_HINT in err
    assert not installed.exists()  # refused before making the training set
    assert not (tmp_path / "out").exists()


def test_train_help_says_where_it_writes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "never rewrites its own package: pass --out DIR --pin FILE there" in text
    assert "made on first use in the user cache directory" in text


@pytest.mark.parametrize(
    ("command", "what"), [("train", "training data"), ("evaluate", "labeled data")]
)
def test_a_missing_data_file_is_named_with_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, what: str
) -> None:
    missing = tmp_path / "nope.jsonl"
    extra = ["--out", str(tmp_path / "out"), "--pin", str(tmp_path / "p")]
    argv = [command, "--data", str(missing), *(extra if command == "train" else [])]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{what} not found: {missing}; pass --data FILE (a labeled JSON-lines log;" in err
    assert "p2pmsg simulate --hours" in err


def test_installed_evaluate_makes_the_test_set_in_the_user_cache(
    installed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # This checkout's models stand in for the copy a wheel carries inside the package.
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(REPO / "models"))
    assert main(["evaluate", "--json"]) == 0
    out, err = capsys.readouterr()
    cached = installed / "datasets" / "test_logs.jsonl"
    assert f"making the test set in {cached}" in err
    report = json.loads(out)
    assert report["data"] == str(cached)
    assert report["mode"] == "models"
    assert main(["evaluate", "--json"]) == 0  # the second run reuses it, silently
    assert "making" not in capsys.readouterr().err


def test_the_monitor_module_entry_point_refuses_the_same_way(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        training.main(["--train"])
    assert caught.value.code == 2
    assert INSTALLED_HINT in capsys.readouterr().err


def test_trust_note_tells_whether_the_loader_will_take_the_new_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert training.trust_note(tmp_path, training.PINNED_PATH) is None
    pins = tmp_path / "pins.json"
    pins.write_text(json.dumps(models.pinned_hashes()))
    same = training.trust_note(tmp_path / "m", pins)
    assert same is not None and f"P2PMSG_MODEL_DIR={tmp_path / 'm'}" in same
    pins.write_text(json.dumps({**models.pinned_hashes(), "manifest.json": "0" * 64}))
    in_checkout = training.trust_note(tmp_path, pins)
    assert in_checkout is not None and "will not load them" in in_checkout
    assert f"copy {pins} over {training.PINNED_PATH}" in in_checkout
    monkeypatch.setattr(paths, "MONITOR_DIR", tmp_path / "site-packages" / "p2pmsg" / "monitor")
    installed = training.trust_note(tmp_path, pins)
    assert installed is not None and "retrain in a checkout" in installed

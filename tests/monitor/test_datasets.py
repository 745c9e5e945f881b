"""The shipped datasets: the checkout's files, or verified copies made in the user's cache."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest

from p2pmsg.errors import DatasetError
from p2pmsg.monitor import datasets, paths

REPO = Path(__file__).resolve().parents[2]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run as an installed copy would (no checkout around the package); returns the cache dir."""
    monitor = tmp_path / "site-packages" / "p2pmsg" / "monitor"
    monitor.mkdir(parents=True)
    monkeypatch.setattr(paths, "MONITOR_DIR", monitor)
    return tmp_path / "cache"


@pytest.mark.parametrize("dataset", datasets.SHIPPED, ids=lambda d: d.name)
def test_pins_and_recipes_are_the_ones_datasets_readme_gives(
    dataset: datasets.ShippedDataset,
) -> None:
    readme = (REPO / "datasets" / "README.md").read_text(encoding="utf-8")
    row = re.search(
        rf"\| `{re.escape(dataset.name)}` \|[^|]*"
        r"\| `(p2pmsg simulate [^`]+)` \| `([0-9a-f]{64})` \|",
        readme,
    )
    assert row is not None
    assert row.group(1) == f"{dataset.recipe} -o datasets/{dataset.name}"
    assert row.group(2) == dataset.sha256 == sha256(REPO / "datasets" / dataset.name)


@pytest.mark.parametrize("dataset", datasets.SHIPPED, ids=lambda d: d.name)
def test_a_made_copy_is_the_repository_file_byte_for_byte(
    dataset: datasets.ShippedDataset, tmp_path: Path
) -> None:
    target = tmp_path / "made" / dataset.name
    datasets.write(dataset, target)
    assert sha256(target) == sha256(REPO / "datasets" / dataset.name)
    assert [p.name for p in target.parent.iterdir()] == [dataset.name]  # no temporary left


def test_a_checkout_reads_its_own_files_and_touches_no_cache(tmp_path: Path) -> None:
    said: list[str] = []
    for dataset in datasets.SHIPPED:
        found = datasets.locate(dataset, cache_dir=tmp_path, say=said.append)
        assert found == REPO / "datasets" / dataset.name
    assert said == [] and list(tmp_path.iterdir()) == []


def test_an_installed_copy_makes_the_file_once_then_reuses_it(installed: Path) -> None:
    said: list[str] = []
    path = datasets.locate(datasets.TEST, cache_dir=installed, say=said.append)
    assert path == installed / "datasets" / "test_logs.jsonl"
    assert sha256(path) == datasets.TEST.sha256
    assert len(said) == 1
    assert "making the test set in" in said[0]
    assert "p2pmsg simulate --hours 120 --seed 2" in said[0]
    made = path.stat().st_mtime_ns
    said.clear()
    assert datasets.locate(datasets.TEST, cache_dir=installed, say=said.append) == path
    assert said == [] and path.stat().st_mtime_ns == made


def test_an_altered_cache_file_is_made_again(installed: Path) -> None:
    path = datasets.cache_path(datasets.TEST, installed)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"ts": 1, "event": "unlock_ok", "label": "normal"}\n')
    said: list[str] = []
    assert datasets.locate(datasets.TEST, cache_dir=installed, say=said.append) == path
    assert "does not match the test set's pinned SHA-256" in said[0]
    assert sha256(path) == datasets.TEST.sha256
    assert sorted(p.name for p in path.parent.iterdir()) == ["test_logs.jsonl"]


def test_output_that_misses_the_pin_is_refused_and_never_cached(installed: Path) -> None:
    other = dataclasses.replace(datasets.TEST, sha256="0" * 64)
    with pytest.raises(DatasetError, match=r"does not reproduce .*pass --data FILE"):
        datasets.locate(other, cache_dir=installed)
    assert not (installed / "datasets" / other.name).exists()


def test_an_unwritable_cache_says_what_to_pass(installed: Path) -> None:
    installed.write_text("a file where the cache directory should be")
    with pytest.raises(DatasetError) as caught:
        datasets.locate(datasets.TEST, cache_dir=installed)
    message = str(caught.value)
    assert message.startswith(f"cannot write {installed / 'datasets' / 'test_logs.jsonl'}: ")
    assert "pass --data FILE" in message
    assert "`p2pmsg simulate --hours 120 --seed 2 -o FILE`" in message


def test_the_cache_defaults_to_the_user_cache_dir(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "user_cache_dir", lambda: installed)
    assert datasets.cache_path(datasets.TRAINING) == installed / "datasets" / "synthetic_logs.jsonl"

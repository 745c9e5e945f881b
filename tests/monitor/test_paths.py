"""One answer to "is this package running from a checkout?", and the model search it shapes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from p2pmsg.monitor import model as models
from p2pmsg.monitor import paths

REPO = Path(__file__).resolve().parents[2]


def installed_layout(tmp_path: Path, pyproject: str | None = None) -> Path:
    """A fake site-packages/p2pmsg/monitor; optionally a pyproject.toml beside p2pmsg/."""
    site = tmp_path / "site-packages"
    monitor = site / "p2pmsg" / "monitor"
    monitor.mkdir(parents=True)
    (site / "models").mkdir()  # some other distribution's top-level `models` package
    if pyproject is not None:
        (site / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return monitor


def test_the_test_run_is_a_checkout() -> None:
    assert paths.checkout_root() == REPO
    assert paths.MONITOR_DIR == REPO / "p2pmsg" / "monitor"


@pytest.mark.parametrize("pyproject", [None, '[project]\nname = "datasets"\n'])
def test_site_packages_is_not_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pyproject: str | None
) -> None:
    monkeypatch.setattr(paths, "MONITOR_DIR", installed_layout(tmp_path, pyproject))
    assert paths.checkout_root() is None


def test_an_installed_copy_never_looks_for_models_beside_site_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = installed_layout(tmp_path)
    monkeypatch.setattr(paths, "MONITOR_DIR", monitor)
    monkeypatch.delenv(models.MODEL_DIR_ENV, raising=False)
    dirs = models.candidate_model_dirs()
    assert tmp_path / "site-packages" / "models" not in dirs
    assert REPO / "models" not in dirs
    assert dirs == [models.MONITOR_DIR / "models"]


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_CACHE_HOME is the Linux convention")
def test_user_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.user_cache_dir() == tmp_path / "p2pmsg"

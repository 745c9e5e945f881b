"""An installed copy works like a checkout: a wheel, in a fresh venv, far from the repository.

What `pip install .` and pipx do, minus the download of the dependencies: the
wheel is built from a copy of the tree (so the build leaves nothing in the
checkout), installed into a new venv with `--no-deps`, and the third-party
packages come from this interpreter's site-packages through a directory of
symlinks that leaves out every trace of p2pmsg (the editable install's
finder and .pth included). The commands then run from the venv's `bin/`,
with HOME and the working directory in tmp and no PYTHONPATH, so every file
of p2pmsg they touch is one the wheel carried.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# What the build reads: pyproject's metadata and package data, setup.py's model copy,
# MANIFEST.in; datasets/, tests/ and docs/ are not part of a wheel.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "p2pmsg", "models")
PASSWORD = "Vq7#mulberry-Kite"  # noqa: S105 - test fixture


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    out = tmp_path / "wheel"
    # With build isolation, as pip and pipx build: setuptools comes from pip's cache or the index.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("p2pmsg-*.whl")
    return wheel


def dependencies_without_p2pmsg(tmp_path: Path) -> Path:
    """This interpreter's third-party packages, minus p2pmsg in any installed form."""
    deps = tmp_path / "deps"
    deps.mkdir()
    paths = sysconfig.get_paths()
    for site in dict.fromkeys(Path(paths[key]).resolve() for key in ("purelib", "platlib")):
        for entry in site.iterdir():
            name = entry.name.lower()
            ours = "p2pmsg" in name or name.startswith("__editable__")
            if ours or name.endswith(".pth") or (deps / entry.name).is_symlink():
                continue
            (deps / entry.name).symlink_to(entry)
    return deps


def fresh_venv(tmp_path: Path, wheel: Path) -> tuple[Path, Path]:
    """(bin dir, installed package dir) of a new venv holding the wheel and nothing else of ours."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", "")},
            cwd=tmp_path,
        ).stdout.strip()
    )
    (site / "_test_dependencies.pth").write_text(f"{dependencies_without_p2pmsg(tmp_path)}\n")
    installed = subprocess.run(
        [
            *(python, "-m", "pip", "install", "-q", "--disable-pip-version-check"),
            *("--no-deps", "--no-index", "--no-cache-dir", str(wheel)),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    return venv / "bin", site / "p2pmsg"


def tree_hashes(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_a_wheel_in_a_fresh_venv_runs_init_id_evaluate_and_train(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    # Everything the package reads besides its code (tcss, pins, word lists, py.typed) ...
    needed = {
        str(p.relative_to(REPO))
        for p in (REPO / "p2pmsg").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc")
    }
    # ... and the trained models, copied in by setup.py.
    needed |= {f"p2pmsg/monitor/models/{p.name}" for p in (REPO / "models").iterdir()}
    assert needed <= names, needed - names
    assert not [n for n in names if n.split("/")[0] in ("datasets", "tests", "models")]

    bin_dir, package = fresh_venv(tmp_path, wheel)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "P2PMSG_PASSWORD": PASSWORD,
        # The suite's mDNS guard (tests/conftest.py); these commands never start discovery.
        "P2PMSG_FORBID_MDNS_NETNS": os.environ["P2PMSG_FORBID_MDNS_NETNS"],
    }
    assert REPO not in home.parents

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            cwd=home,
            env=env,
            timeout=300,
            check=False,
        )

    where = run(
        "python",
        "-c",
        "import p2pmsg, p2pmsg.monitor.paths as p; "
        "print(p2pmsg.__file__); print(p.checkout_root())",
    )
    assert where.stdout.split() == [str(package / "__init__.py"), "None"], where.stderr
    before = tree_hashes(package)

    init = run("p2pmsg", "init", "--name", "x")
    assert init.returncode == 0, init.stderr
    assert "created profile 'default'" in init.stdout
    ident = run("p2pmsg", "id", "--json")
    assert ident.returncode == 0, ident.stderr
    info = json.loads(ident.stdout)
    assert info["name"] == "x" and len(bytes.fromhex(info["fingerprint"])) == 32
    assert Path(info["profile"]).is_relative_to(home)

    cache = home / ".cache" / "p2pmsg" / "datasets"
    evaluate = run("p2pmsg", "evaluate")
    assert evaluate.returncode == 0, evaluate.stderr
    assert f"making the test set in {cache / 'test_logs.jsonl'}" in evaluate.stderr
    assert f"data: {cache / 'test_logs.jsonl'}" in evaluate.stdout
    assert "mode: models" in evaluate.stdout  # the packaged models loaded and verified
    assert "combined (rules + models): macro-F1" in evaluate.stdout

    refused = run("p2pmsg", "train")
    assert refused.returncode == 1
    assert "pass --out DIR --pin FILE" in refused.stderr

    out, pins = tmp_path / "models", tmp_path / "pins.json"
    train = run("p2pmsg", "train", "--out", str(out), "--pin", str(pins))
    assert train.returncode == 0, train.stderr
    assert f"making the training set in {cache / 'synthetic_logs.jsonl'}" in train.stderr
    # Same data, same seeds, same libraries: the models this wheel ships, byte for byte.
    assert json.loads(pins.read_text()) == json.loads(
        (package / "monitor" / "model_hashes.json").read_text()
    )
    assert "these are byte for byte the models this p2pmsg trusts" in train.stderr

    assert tree_hashes(package) == before  # nothing wrote into the installed package

"""A short real atheris run of each harness: the CI form of the fuzzing campaign.

Each target runs for a bounded time from the checked-in seeds, in a
subprocess (libFuzzer owns the process and exits on a finding). The test
fails on a crash or a contract violation, on a run that executed almost
nothing, and on a run whose coverage shows the instrumentation is off.
The long run is documented in README.md, "Fuzzing".
"""

from __future__ import annotations

import importlib.util
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.launcher import CORPUS_ROOT

REPO = Path(__file__).resolve().parents[2]
SECONDS_PER_TARGET = 11
#: Lower bounds on coverage after loading the seeds: far below what the seeds reach
#: (roughly 50 / 150 / 600 edges), far above what an uninstrumented run reports (a few).
MIN_COVERAGE = {"frames": 25, "messages": 60, "connection": 250}
MIN_RUNS = 100

#: Where pyproject's marker installs atheris (its PyPI wheels).
SUPPORTED = (
    sys.platform == "linux"
    and platform.machine() == "x86_64"
    and (3, 11) <= sys.version_info[:2] < (3, 14)
)


def _require_atheris() -> None:
    if importlib.util.find_spec("atheris") is not None:
        return
    if SUPPORTED:
        pytest.fail(
            "atheris is missing although this platform has wheels: "
            "pip install -e '.[test]' (pyproject's test extra pins it)"
        )
    pytest.skip(
        f"atheris has no wheel for Python {platform.python_version()} on "
        f"{sys.platform}/{platform.machine()} (only Linux x86_64, CPython 3.11-3.13)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(MIN_COVERAGE))
def test_fuzz_target_runs_clean(target: str, tmp_path: Path) -> None:
    _require_atheris()
    work = tmp_path / "corpus"
    work.mkdir()
    command = [
        sys.executable,
        "-m",
        f"tests.fuzz.fuzz_{target}",
        f"-max_total_time={SECONDS_PER_TARGET}",
        "-rss_limit_mb=1024",
        "-timeout=10",
        f"-artifact_prefix={tmp_path}/",
        str(work),
        str(CORPUS_ROOT / target),
    ]
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=SECONDS_PER_TARGET + 90,
    )
    output = result.stdout + result.stderr
    artifacts = sorted(p.name for p in tmp_path.iterdir() if p.name != "corpus")
    assert result.returncode == 0 and not artifacts, (
        f"fuzz_{target} found a problem (exit {result.returncode}, artifacts {artifacts}); "
        f"reproduce with: python -m tests.fuzz.fuzz_{target} <artifact>\n{output[-4000:]}"
    )
    done = re.search(r"Done (\d+) runs", output)
    assert done and int(done.group(1)) >= MIN_RUNS, f"too few runs:\n{output[-2000:]}"
    inited = re.search(r"INITED cov: (\d+)", output)
    assert inited and int(inited.group(1)) >= MIN_COVERAGE[target], (
        f"coverage after the seeds is too low (instrumentation off?):\n{output[-2000:]}"
    )

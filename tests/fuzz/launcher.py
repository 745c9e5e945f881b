"""Shared atheris plumbing for the harnesses (imports no p2pmsg code).

Each harness does:

    with instrumented(__name__ == "__main__"):
        from p2pmsg.protocol... import ...      # coverage-instrumented when fuzzing
    def test_one_input(data: bytes) -> None: ...
    if __name__ == "__main__":
        fuzz_main("frames", test_one_input)

`test_one_input` stays importable without atheris, so the regression tests
run the very same code on the checked-in crash inputs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CORPUS_ROOT = Path(__file__).resolve().parent / "corpus"


def instrumented(enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """Instrument p2pmsg's bytecode for coverage feedback while importing it.

    Only active in a fuzzing process: a module imported before this block (or
    in a pytest process) is not instrumented, and does not need to be.
    """
    if not enabled:
        return contextlib.nullcontext()
    import atheris

    hooks: contextlib.AbstractContextManager[Any] = atheris.instrument_imports(include=["p2pmsg"])
    return hooks


def work_dir(target: str) -> Path:
    """Where a campaign keeps the corpus it grows and the crashes it finds: outside
    the repository, so the checked-in seeds stay the seeds."""
    root = os.environ.get("P2PMSG_FUZZ_WORKDIR") or os.path.join(
        tempfile.gettempdir(), "p2pmsg-fuzz"
    )
    return Path(root) / target


def fuzz_args(target: str, argv: list[str]) -> list[str]:
    """libFuzzer arguments: the caller's, plus defaults for the corpus directories
    (writable work corpus first, read-only seeds second) and the crash location."""
    args = list(argv)
    if not any(not arg.startswith("-") for arg in args[1:]):
        work = work_dir(target)
        (work / "corpus").mkdir(parents=True, exist_ok=True)
        args += [str(work / "corpus"), str(CORPUS_ROOT / target)]
    if not any(arg.startswith("-artifact_prefix=") for arg in args):
        crashes = work_dir(target) / "crashes"
        crashes.mkdir(parents=True, exist_ok=True)
        args.append(f"-artifact_prefix={crashes}/")
    return args


def fuzz_main(target: str, test_one_input: Callable[[bytes], None]) -> None:
    import atheris

    atheris.Setup(fuzz_args(target, sys.argv), test_one_input)
    atheris.Fuzz()

"""`keep_freed_memory`: chunk-sized objects freed by one turn are reused by the next.

Measured in a fresh interpreter each time (the setting is process-wide): the
minor page faults of allocating and freeing 1.5 MiB of 192 KiB objects, as a
transfer's turn does, 200 times. Without the thresholds glibc hands the memory
back every turn and faults it in again.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from p2pmsg.node.memory import keep_freed_memory

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)

_PROGRAM = """
import resource, sys
from p2pmsg.node.memory import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
def turn():
    chunks = [b"x" * 196608 for _ in range(8)]
    return len(chunks)
for _ in range(20):
    turn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    turn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM, mode], check=True, capture_output=True, text=True
    )
    return int(out.stdout)


@glibc_only
def test_freed_chunks_are_reused_instead_of_faulted_in_again() -> None:
    untuned, tuned = _faults("default"), _faults("tuned")
    # 200 turns of 1.5 MiB fault in ~77,000 pages when the memory goes back each turn.
    assert untuned > 10_000
    assert tuned < untuned // 20


@glibc_only
def test_it_is_idempotent() -> None:
    assert keep_freed_memory() and keep_freed_memory()

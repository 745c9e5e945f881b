"""Shared helpers for profile tests: a controllable clock and a fast-KDF profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pmsg.profile import Profile

FAST_KDF = 1_000
PASSWORD = "Vq7#mulberry-Kite"  # noqa: S105 - test fixture


class FakeClock:
    """An injectable `now` that only moves when told to."""

    def __init__(self, start: float = 1_763_800_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_profile(data_dir: Path, name: str = "default") -> Profile:
    """A fresh `Profile` object, as a new process would build it."""
    return Profile(data_dir, name, kdf_iterations=FAST_KDF)


@pytest.fixture
def created(tmp_path: Path, clock: FakeClock) -> Profile:
    profile = make_profile(tmp_path)
    profile.create("alice", PASSWORD, now=clock)
    return profile

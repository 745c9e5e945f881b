"""The soak's length and seed: `--chaos-minutes N --chaos-seed S` (registered in tests/conftest.py).

Without them the soak runs its short CI form with a fixed seed. Its timeout
follows the length asked for, so a long run is not cut off by the suite's
default.
"""

from __future__ import annotations

import pytest

SHORT_MINUTES = 1.5
DEFAULT_SEED = 11


def chaos_minutes(config: pytest.Config) -> float:
    value = config.getoption("--chaos-minutes", default=None)
    return SHORT_MINUTES if value is None else float(value)


def chaos_seed(config: pytest.Config) -> int:
    value = config.getoption("--chaos-seed", default=None)
    return DEFAULT_SEED if value is None else int(value)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    budget = chaos_minutes(config) * 60 + 240  # set-up, settle, checks, teardown
    for item in items:
        if item.path.name == "test_chaos_soak.py":
            item.add_marker(pytest.mark.timeout(budget))

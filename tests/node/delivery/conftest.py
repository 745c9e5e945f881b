"""A connected `CorePair` per test, over two SQLite files in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.delivery.pair import CorePair, make_pair


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[CorePair]:
    joined = make_pair(tmp_path)
    yield joined
    joined.a.store.close()
    joined.b.store.close()


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[CorePair]:
    """The same two, not connected yet."""
    apart = make_pair(tmp_path, connect=False)
    yield apart
    apart.a.store.close()
    apart.b.store.close()

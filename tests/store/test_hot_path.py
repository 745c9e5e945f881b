"""The hot-path benchmark runs, loses nothing, and stays in the right order of magnitude."""

from __future__ import annotations

from pathlib import Path

from p2pmsg.store.bench import measure_hot_path


def test_hot_path_batches_are_fast_and_lossless(tmp_path: Path) -> None:
    figures = measure_hot_path(tmp_path, messages=3000, batch=250)
    assert figures.messages == 3000
    # About 25,000/s end to end on a shared 2-core box; the floor only catches a
    # regression by an order of magnitude (e.g. a query that scans the table per
    # message) and leaves room for slow CI machines.
    assert figures.end_to_end_per_s > 2000, figures

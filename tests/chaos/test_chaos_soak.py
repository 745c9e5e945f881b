"""The chaos soak in the default run: a short, fixed-seed form (see tests/chaos/soak.py).

Five real nodes on a namespace LAN, one of them behind the lossy relay, one
on a small tmpfs, chat and swap files for 90 seconds while every kind of
fault in the schedule happens at least once. Then nothing may be lost,
duplicated, reordered, stuck or saved unverified. `--chaos-minutes` and
`--chaos-seed` make it the long form.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import chaos_minutes, chaos_seed
from tests.chaos.schedule import WEIGHTS
from tests.chaos.soak import Soak, SoakOptions
from tests.harness.fixtures import MakeLan

NODES = 5


def test_nothing_is_lost_duplicated_or_left_behind_under_chaos(
    make_lan: MakeLan,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    minutes = chaos_minutes(request.config)
    lan = make_lan(NODES + 1)
    summary = Soak(
        lan, tmp_path, SoakOptions(seed=chaos_seed(request.config), minutes=minutes, nodes=NODES)
    ).run()
    report = summary.text()
    with capsys.disabled():  # the figures belong in the CI log, pass or fail
        print("\n" + report)
    m = summary.messages
    assert m["sent"] > 100 * minutes, report
    assert m["lost"] == 0 and m["duplicates"] == 0 and m["out_of_order"] == 0, report
    assert m["stuck_outbox"] == 0 and m["delivered"] == m["sent"], report
    f = summary.files
    assert f["offered"] > 0 and f["by_sender_state"].get("completed", 0) > 0, report
    assert f["hash_mismatch"] == 0 and f["partial_left"] == 0, report
    assert f["unverified_saved"] == 0 and f["stuck"] == 0, report
    assert summary.settled_after is not None, report
    assert summary.passed, report
    # Every kind of fault really happened, and the corrupted byte was noticed as such.
    assert set(summary.faults) == set(WEIGHTS), report
    noticed = {"decrypt_fail", "frame_rejected", "replay_rejected"}
    assert noticed & set(summary.security_events), report
    for kind, r in summary.recovery_s.items():
        assert r["unrecovered"] == 0, f"{kind} did not recover\n{report}"

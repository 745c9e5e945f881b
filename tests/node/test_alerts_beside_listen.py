"""`p2pmsg alerts --ack` while `p2pmsg listen` holds the profile: the command writes the
store without the lock, and the running node publishes the change within a second
(`alert_state_changed` on its JSON stream), as it does for `trust` and `rename`."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pmsg.profile import Profile
from p2pmsg.security_events import Alert
from p2pmsg.store import Store
from tests.node.test_commands_loopback import PASSWORD, free_port, run, start_listen, stop

pytestmark = pytest.mark.timeout(60)


def test_ack_and_false_alarm_reach_a_running_listen(tmp_path: Path) -> None:
    unlocked = Profile(tmp_path, "alice", kdf_iterations=20_000).create("alice", PASSWORD)
    with unlocked, Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        for ts in (1.0, 2.0):
            store.add_alert(Alert(ts, "flood", "medium", "ab" * 32, None, "model", 0.9, "x"))
    listen = start_listen(tmp_path, "alice", free_port())
    try:
        acked = run(tmp_path, "alice", "alerts", "--ack", "1")
        assert acked.returncode == 0, acked.stderr
        assert acked.stdout == "acknowledged alert 1 (medium flood)\n"
        seen = listen.wait_for(lambda o: o.get("event") == "alert_state_changed", 10)
        assert [(a["id"], a["state"]) for a in seen["alerts"]] == [(1, "acknowledged")]
        assert seen["counts"] == {"unread": 1, "acknowledged": 1, "dismissed": 0, "false_alarm": 0}
        marked = run(tmp_path, "alice", "alerts", "--false-alarm", "2")
        assert marked.returncode == 0, marked.stderr
        seen = listen.wait_for(lambda o: o.get("event") == "alert_state_changed", 10)
        assert [(a["id"], a["state"]) for a in seen["alerts"]] == [(2, "false_alarm")]
    finally:
        stop(listen)
    listing = run(tmp_path, "alice", "alerts")
    assert listing.stdout.splitlines()[-1] == (
        "0 unread, 1 acknowledged, 0 dismissed, 1 false alarm"
    )

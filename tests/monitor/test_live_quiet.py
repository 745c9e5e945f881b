"""Ordinary life raises no alert: two honest nodes chatting steadily on the LAN harness.

Two real nodes (tests/monitor/attack_tools/chatter.py: the product's node
configuration, mDNS, the live monitor with its models, the profiles' unlock
logs) find each other and chat both ways at a human pace: pauses of a few
seconds, bursts, texts of varied length, one small file each way half-way
through. Afterwards `p2pmsg alerts --json` must be empty for both profiles,
while the monitor did run with its models and scored the chat's windows
(otherwise "no alert" would prove nothing), and the event log holds the
events of that life (the node writes them from every place DESIGN.md names).

Duration: `P2PMSG_QUIET_CHAT_SECONDS`, 120 s by default (CI). The long form
runs several minutes, e.g.

    P2PMSG_QUIET_CHAT_SECONDS=600 .venv/bin/python -m pytest tests/monitor/test_live_quiet.py -s
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.harness import Host, JsonLines
from tests.harness.fixtures import MakeLan
from tests.monitor.attack_tools.live_lan import ENV, ProfileCli, make_profile

DURATION = float(os.environ.get("P2PMSG_QUIET_CHAT_SECONDS", "120"))

pytestmark = [pytest.mark.netns, pytest.mark.timeout(DURATION + 180)]

#: What a stretch of ordinary chat must leave in each profile's event log.
EXPECTED_EVENTS = {
    "unlock_ok",
    "peer_discovered",
    "conn_open",
    "handshake_ok",
    "msg_sent",
    "msg_recv",
    "file_sent",
    "file_recv",
}


def chatter(host: Host, data_dir: Path, name: str, to: str, seed: int) -> JsonLines:
    downloads = data_dir / f"{name}-downloads"
    downloads.mkdir()
    attachment = data_dir / f"{name}-notes.bin"
    attachment.write_bytes(os.urandom(300 * 1024))
    proc = host.run(
        [
            sys.executable,
            "-m",
            "tests.monitor.attack_tools.chatter",
            "--data-dir",
            str(data_dir),
            "--profile",
            name,
            "--to",
            to,
            "--seconds",
            str(DURATION),
            "--seed",
            str(seed),
            "--downloads",
            str(downloads),
            "--file",
            str(attachment),
        ],
        env=ENV,
        stdout=-1,
        stderr=-1,
        text=True,
    )
    return JsonLines(proc)


def test_steady_chat_between_honest_peers_raises_no_alert(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    a, b = make_lan(2).hosts
    for name in ("alice", "bob"):
        make_profile(tmp_path, name)
    peers = {
        "alice": chatter(a, tmp_path, "alice", "bob", seed=1),
        "bob": chatter(b, tmp_path, "bob", "alice", seed=2),
    }
    for name, lines in peers.items():
        lines.wait_for(lambda o: "connected" in o, 45, f"{name} connecting")
    finished = {
        name: lines.wait_for(
            lambda o: o.get("finished") is True, DURATION + 45, f"{name} finishing"
        )
        for name, lines in peers.items()
    }
    for lines in peers.values():
        lines.proc.send_signal(signal.SIGTERM)
    done = {
        name: lines.wait_for(lambda o: o.get("done") is True, 30, f"{name}'s report")
        for name, lines in peers.items()
    }
    for lines in peers.values():
        assert lines.proc.wait(30) == 0, lines.proc.stderr.read() if lines.proc.stderr else ""

    for name, report in done.items():
        other = "bob" if name == "alice" else "alice"
        sent = finished[name]["sent"]
        assert sent >= DURATION / 6, f"{name} hardly chatted: {finished[name]}"
        assert finished[name]["delivered"] == sent, finished[name]
        assert done[other]["received"] >= sent  # everything said was heard
        # The models were loaded and judged the chat's closed windows...
        assert report["monitor_mode"] == "models", report
        assert report["recent_scores"], f"no window was scored for {name}"
        # ...and nothing was raised, neither live nor in the store.
        assert report["alerts"] == [], report["alerts"]
        cli = ProfileCli(a if name == "alice" else b, tmp_path, name)
        assert cli.alerts() == []
        logged = {e["event"] for e in cli.events()}
        assert logged >= EXPECTED_EVENTS, EXPECTED_EVENTS - logged
        print(
            f"\n[measure] quiet chat {DURATION:.0f} s, {name}: {sent} messages sent, "
            f"{report['received']} received, one 300 KiB file each way, "
            f"{len(report['recent_scores'])} model batches, highest anomaly score per batch "
            f"{report['recent_scores']}, alerts: 0"
        )

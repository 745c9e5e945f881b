"""The headless commands as a user runs them: real processes on 127.0.0.1, no mDNS.

`--no-discovery` keeps zeroconf off (these run in the host namespace); peers are
reached by `add-peer HOST:PORT`, as on a routed network.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from p2pmsg.commands._node import json_line
from p2pmsg.profile import Profile
from tests.harness import JsonLines

pytestmark = pytest.mark.timeout(60)

PASSWORD = "Cmd-Test-Passw0rd!"  # noqa: S105 - a throwaway test profile
ENV = {"P2PMSG_PASSWORD": PASSWORD}


def make_profile(data_dir: Path, profile: str, name: str | None = None) -> str:
    return (
        Profile(data_dir, profile, kdf_iterations=20_000)
        .create(name or profile, PASSWORD)
        .identity.fingerprint.hex()
    )


def run(
    data_dir: Path, profile: str, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    command, *rest = args
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "p2pmsg",
            command,
            "--data-dir",
            str(data_dir),
            "--profile",
            profile,
            *rest,
        ],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_listen(data_dir: Path, profile: str, port: int) -> JsonLines:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "p2pmsg",
            "listen",
            "--json",
            "--no-discovery",
            "--no-monitor",
            "--data-dir",
            str(data_dir),
            "--profile",
            profile,
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = JsonLines(proc)
    lines.wait_for(lambda o: o.get("event") == "ready", 15, "the ready line")
    return lines


def stop(lines: JsonLines) -> None:
    lines.proc.send_signal(signal.SIGTERM)
    lines.wait_for(lambda o: o.get("event") == "stopped", 10)
    assert lines.proc.wait(5) == 0


def test_send_listen_queue_and_trust_through_the_cli(tmp_path: Path) -> None:
    alice_fp = make_profile(tmp_path, "alice")
    make_profile(tmp_path, "bob")
    port = free_port()

    # A peer never met cannot be named yet (nothing answers at the added address).
    assert run(tmp_path, "bob", "add-peer", f"127.0.0.1:{port}").returncode == 0
    unknown = run(tmp_path, "bob", "send", "--no-discovery", "--to", "alice", "x", "--wait", "1")
    assert unknown.returncode == 1 and "no known peer" in unknown.stderr

    alice = start_listen(tmp_path, "alice", port)
    first = run(
        tmp_path,
        "bob",
        "send",
        "--no-discovery",
        "--to",
        "alice",
        "hi alice",
        "--json",
        "--wait",
        "5",
    )
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["delivered"] and result["peer"] == alice_fp
    got = alice.wait_for(lambda o: o.get("event") == "message_received", 10)
    assert got["message"]["text"] == "hi alice" and got["message"]["id"] == result["id"]
    # Read by a person: the whole id (two 8-hex prefixes once collided), the same one.
    human = run(
        tmp_path, "bob", "send", "--no-discovery", "--to", "alice", "and hello", "--wait", "5"
    )
    assert human.returncode == 0, human.stderr
    again = alice.wait_for(lambda o: o.get("event") == "message_received", 10)
    assert human.stdout == f"delivered to alice (message id {again['message']['id']})\n"
    # A fingerprint prefix too short to mean anything says how long one must be.
    short = run(tmp_path, "bob", "send", "--no-discovery", "--to", alice_fp[:3], "x", "--wait", "0")
    assert short.returncode == 1
    assert "a fingerprint prefix needs at least 4 hex digits" in short.stderr
    # Every line of `listen --json`, the ready line included, is printed the same way.
    assert alice.raw and all(line == json_line(json.loads(line)) for line in alice.raw)

    # Two processes cannot open one profile; the second names the holder.
    clash = run(tmp_path, "alice", "send", "--no-discovery", "--to", "bob", "from alice")
    assert clash.returncode == 1 and "listen" in clash.stderr
    stop(alice)

    # Offline: stored and queued, a distinct exit status, and a message that says so.
    queued = run(
        tmp_path,
        "bob",
        "send",
        "--no-discovery",
        "--to",
        alice_fp[:8],
        "while you were out",
        "--timeout",
        "2",
    )
    assert queued.returncode == 3, queued.stdout + queued.stderr
    assert "queued" in queued.stdout

    alice = start_listen(tmp_path, "alice", port)
    # The next node of bob's profile delivers what is queued: here `peers --wait`.
    listing = run(tmp_path, "bob", "peers", "--no-discovery", "--wait", "2", "--json")
    assert listing.returncode == 0, listing.stderr
    peers = json.loads(listing.stdout)
    assert [(p["name"], p["fingerprint"]) for p in peers] == [("alice", alice_fp)]
    alice.wait_for(
        lambda o: (
            o.get("event") == "message_received" and o["message"]["text"] == "while you were out"
        ),
        10,
    )
    stop(alice)

    # Events and alerts are readable beside a running node (no lock needed).
    events = run(tmp_path, "bob", "events", "--json", "--limit", "1000")
    names = {json.loads(line)["event"] for line in events.stdout.splitlines()}
    assert {"conn_open", "handshake_ok", "msg_sent", "conn_close"} <= names
    alerts = run(tmp_path, "bob", "alerts", "--json")
    assert alerts.returncode == 0 and isinstance(json.loads(alerts.stdout), list)

    shown = run(tmp_path, "bob", "trust", "alice")
    assert shown.returncode == 0, shown.stderr
    assert "first seen" in shown.stdout and alice_fp in shown.stdout
    verified = run(tmp_path, "bob", "trust", "alice", "--verified")
    assert verified.returncode == 0, verified.stderr
    assert "marked verified" in verified.stdout and "safety number" in verified.stdout
    assert "state         verified" in verified.stdout


def test_a_second_key_under_a_known_name_is_flagged_and_named_apart(tmp_path: Path) -> None:
    make_profile(tmp_path, "me")
    twins = [make_profile(tmp_path, f"twin{i}", "sam") for i in (1, 2)]
    ports = [free_port(), free_port()]
    listeners = [start_listen(tmp_path, f"twin{i + 1}", ports[i]) for i in range(2)]
    assert run(tmp_path, "me", "add-peer", f"127.0.0.1:{ports[0]}").returncode == 0
    run(tmp_path, "me", "peers", "--no-discovery", "--wait", "2")  # meet the first sam
    assert run(tmp_path, "me", "add-peer", f"127.0.0.1:{ports[1]}").returncode == 0
    run(tmp_path, "me", "peers", "--no-discovery", "--wait", "2")  # then the second

    listing = json.loads(run(tmp_path, "me", "peers", "--json").stdout)
    by_fp = {p["fingerprint"]: p for p in listing}
    assert by_fp[twins[0]]["state"] == "pinned" and by_fp[twins[0]]["sendable"]
    assert by_fp[twins[1]]["state"] == "flagged" and not by_fp[twins[1]]["sendable"]
    assert by_fp[twins[1]]["clash_with"] == twins[0]
    assert {"local_name", "claimed_name", "verified"} <= by_fp[twins[1]].keys()
    plain = run(tmp_path, "me", "peers").stdout
    assert "FLAGGED: claims to be sam, not sam's key" in plain

    # "sam" is the first sam: the second's claim makes nothing ambiguous.
    first = run(
        tmp_path,
        "me",
        "send",
        "--no-discovery",
        "--to",
        "sam",
        "hi first sam",
        "--json",
        "--wait",
        "5",
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["peer"] == twins[0]
    held = run(tmp_path, "me", "send", "--no-discovery", "--to", twins[1][:12], "no")
    assert held.returncode == 1 and "claims a name" in held.stderr

    # Someone else: a name of its own, and it is a contact like any other.
    too_close = run(tmp_path, "me", "rename", twins[1][:12], "SAM")
    assert too_close.returncode == 1 and "reads like" in too_close.stderr
    named = run(tmp_path, "me", "rename", twins[1][:12], "sam from football")
    assert named.returncode == 0 and "kept apart" in named.stdout, named.stderr
    second = run(
        tmp_path,
        "me",
        "send",
        "--no-discovery",
        "--to",
        "Sam from Football",
        "hi second sam",
        "--json",
        "--wait",
        "5",
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["peer"] == twins[1]

    # Without the petname two proven keys claim "sam": now that is ambiguous.
    assert run(tmp_path, "me", "rename", twins[1][:12], "--clear").returncode == 0
    result = run(tmp_path, "me", "send", "--no-discovery", "--to", "sam", "which one?")
    assert result.returncode == 1
    assert "ambiguous" in result.stderr
    assert all(fp[:16] in result.stderr for fp in twins)
    for lines in listeners:
        stop(lines)
    bad = run(tmp_path, "me", "add-peer", "not-an-address")
    assert bad.returncode == 1 and "HOST:PORT" in bad.stderr


def test_trust_decisions_reach_a_running_listen(tmp_path: Path) -> None:
    """`block`, `rename` and `trust --new-key` while `listen` holds the profile: no
    "profile in use", and the running node applies each decision to its sessions."""
    alice_fp = make_profile(tmp_path, "alice")
    make_profile(tmp_path, "bob")
    new_alice_fp = make_profile(tmp_path, "alice-reinstalled", "alice")
    bob_port, alice_port, new_port = free_port(), free_port(), free_port()
    for who in ("alice", "alice-reinstalled"):  # both dial bob's listen
        assert run(tmp_path, who, "add-peer", f"127.0.0.1:{bob_port}").returncode == 0
    bob = start_listen(tmp_path, "bob", bob_port)
    alice = start_listen(tmp_path, "alice", alice_port)
    bob.wait_for(
        lambda o: o.get("event") == "peer_connected" and o["peer"]["fingerprint"] == alice_fp,
        10,
        "alice to connect",
    )

    blocked = run(tmp_path, "bob", "block", "alice")
    assert blocked.returncode == 0, blocked.stderr
    bob.wait_for(
        lambda o: (
            o.get("event") == "peer_updated"
            and o["peer"]["fingerprint"] == alice_fp
            and o["peer"]["state"] == "blocked"
        ),
        10,
        "the running node to apply the block",
    )
    bob.wait_for(
        lambda o: o.get("event") == "peer_disconnected" and o["fingerprint"] == alice_fp,
        10,
        "the blocked session to end",
    )
    assert run(tmp_path, "bob", "block", "alice", "--undo").returncode == 0
    renamed = run(tmp_path, "bob", "rename", "alice", "Alice (old laptop)")
    assert renamed.returncode == 0, renamed.stderr
    bob.wait_for(
        lambda o: o.get("event") == "peer_updated" and o["peer"]["name"] == "Alice (old laptop)",
        10,
        "the petname",
    )
    stop(alice)

    # Alice reinstalled: her new key calls bob and is flagged, not taken for her.
    new_alice = start_listen(tmp_path, "alice-reinstalled", new_port)
    bob.wait_for(
        lambda o: (
            o.get("event") == "name_clashed"
            and o["fingerprint"] == new_alice_fp
            and o["contact"] == alice_fp
        ),
        10,
        "the new key to be flagged",
    )
    changed = run(tmp_path, "bob", "trust", "Alice (old laptop)", "--new-key", new_alice_fp[:12])
    assert changed.returncode == 0, changed.stderr
    assert f"the old key {alice_fp} is retired" in changed.stdout
    bob.wait_for(
        lambda o: (
            o.get("event") == "peer_updated"
            and o["peer"]["fingerprint"] == new_alice_fp
            and o["peer"]["state"] == "pinned"
        ),
        10,
        "the key change to apply",
    )
    sent = run(tmp_path, "bob", "send", "--no-discovery", "--to", "Alice (old laptop)", "x")
    assert sent.returncode == 1 and "listen" in sent.stderr  # the lock: listen still runs
    stop(bob)
    assert run(tmp_path, "bob", "add-peer", f"127.0.0.1:{new_port}").returncode == 0
    sent = run(
        tmp_path,
        "bob",
        "send",
        "--no-discovery",
        "--to",
        "Alice (old laptop)",
        "welcome back",
        "--json",
        "--wait",
        "5",
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["peer"] == new_alice_fp
    new_alice.wait_for(
        lambda o: o.get("event") == "message_received" and o["message"]["text"] == "welcome back",
        10,
    )
    stop(new_alice)

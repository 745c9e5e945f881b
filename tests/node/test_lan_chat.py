"""Real `p2pmsg` processes on a virtual LAN: mDNS discovery, TCP, the store, kill -9.

Each host is a network namespace (tests/harness); the processes are the real
command line (`p2pmsg listen --json`, `p2pmsg send`) or, where a test needs a
steady stream of messages, tests/node/lan_peer.py driving the Node API. Every
wait has a deadline and every process a bounded lifetime.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.profile import Profile
from p2pmsg.store import Store
from tests.harness import Host, JsonLines
from tests.harness.cli import ENV, PASSWORD, make_profile, p2pmsg
from tests.harness.cli import listen as harness_listen
from tests.harness.fixtures import MakeLan

pytestmark = pytest.mark.timeout(90)

SEE_TIMEOUT = 15.0


def listen(host: Host, data_dir: Path, name: str, *extra: str) -> JsonLines:
    """`p2pmsg listen` without the monitor: these tests are about delivery."""
    return harness_listen(host, data_dir, name, "--no-monitor", *extra, ready_timeout=15.0)


def send(
    host: Host, data_dir: Path, name: str, to: str, text: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return host.exec(
        p2pmsg(
            "send",
            "--data-dir",
            str(data_dir),
            "--profile",
            name,
            "--to",
            to,
            text,
            "--timeout",
            "10",
            *extra,
        ),
        env=ENV,
        timeout=40,
        check=False,
    )


def stop(lines: JsonLines) -> None:
    lines.proc.send_signal(signal.SIGTERM)
    lines.wait_for(lambda o: o.get("event") == "stopped", 10, "an orderly stop")
    lines.proc.wait(5)


def read_all(lines: JsonLines) -> list[dict[str, Any]]:
    """Everything a process printed; only for a process that has exited."""
    with contextlib.suppress(AssertionError):  # raised at end of output, as expected
        lines.wait_for(lambda o: False, 10, "the end of output")
    return lines.seen


def discovered(fp: str) -> Any:
    return lambda o: o.get("event") == "peer_discovered" and o["peer"]["fingerprint"] == fp


def received(text: str) -> Any:
    return lambda o: o.get("event") == "message_received" and o["message"]["text"] == text


def incoming(data_dir: Path, name: str, peer: str) -> list[str]:
    unlocked = Profile(data_dir, name).unlock(PASSWORD)
    with Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        return [m.text or "" for m in store.conversation(peer, limit=10_000) if m.direction == "in"]


def test_hosts_find_each_other_and_chat_both_ways_then_a_third_joins(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    lan = make_lan(2)
    a, b = lan.hosts
    fps = {n: make_profile(tmp_path, n) for n in ("alice", "bob", "carol")}

    started = time.monotonic()
    alice = listen(a, tmp_path, "alice")
    bob = listen(b, tmp_path, "bob")
    seen_bob = alice.wait_for(discovered(fps["bob"]), SEE_TIMEOUT, "alice discovering bob")
    seen_alice = bob.wait_for(discovered(fps["alice"]), SEE_TIMEOUT, "bob discovering alice")
    print(
        f"\n[measure] two hosts saw each other {time.monotonic() - started:.2f} s after "
        "both started listening (including process start and unlock)"
    )
    assert seen_bob["peer"]["name"] == "bob" and f"{b.ip}:" in str(seen_bob["peer"]["addresses"])
    assert seen_alice["peer"]["name"] == "alice"

    c = lan.add_host()
    result = send(c, tmp_path, "carol", "alice", "hello from carol")
    assert result.returncode == 0, result.stdout + result.stderr
    got = alice.wait_for(received("hello from carol"), 10, "carol's message")
    assert got["message"]["peer"] == fps["carol"]
    carol = [o for o in alice.seen if discovered(fps["carol"])(o)]
    assert carol and carol[0]["peer"]["name"] == "carol"

    stop(bob)
    result = send(b, tmp_path, "bob", "alice", "hello from bob")
    assert result.returncode == 0, result.stdout + result.stderr
    assert alice.wait_for(received("hello from bob"), 10)["message"]["peer"] == fps["bob"]

    stop(alice)
    bob = listen(b, tmp_path, "bob")
    result = send(a, tmp_path, "alice", fps["bob"][:12], "and back to bob")
    assert result.returncode == 0, result.stdout + result.stderr
    assert bob.wait_for(received("and back to bob"), 10)["message"]["peer"] == fps["alice"]
    stop(bob)


def test_receiver_killed_mid_stream_stores_every_message_once_and_shows_each(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    a, b = make_lan(2).hosts
    fps = {n: make_profile(tmp_path, n) for n in ("alice", "bob")}
    alice = listen(a, tmp_path, "alice")
    count = 150
    sender = JsonLines(
        b.run(
            [
                sys.executable,
                "-m",
                "tests.node.lan_peer",
                "send-many",
                "--data-dir",
                str(tmp_path),
                "--profile",
                "bob",
                "--to",
                "alice",
                "--count",
                str(count),
                "--interval",
                "0.01",
                "--lifetime",
                "60",
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    sender.wait_for(lambda o: o.get("stored") == 40, 20, "40 messages stored")
    os.killpg(alice.proc.pid, signal.SIGKILL)  # receiver dies mid-stream
    alice.proc.wait(5)
    first_run = [o for o in read_all(alice) if o.get("event") == "message_received"]
    time.sleep(0.5)
    alice = listen(a, tmp_path, "alice")
    sender.wait_for(lambda o: o.get("drained") is True, 40, "the sender's outbox to drain")
    stop(alice)

    texts = [f"message {i}" for i in range(count)]
    assert incoming(tmp_path, "alice", fps["bob"]) == texts  # all, once, in order
    second_run = [o for o in alice.seen if o.get("event") == "message_received"]
    # Shown: every message at least once. The kill may fall between storing a message
    # and showing it, or between showing it and its receipt leaving; either way bob
    # resends it and the second run shows it again, once, flagged, with the same id.
    first = {o["message"]["text"]: o["message"]["id"] for o in first_run}
    second = [o["message"]["text"] for o in second_run]
    assert sorted([*first, *second]) == sorted(texts + [t for t in second if t in first])
    assert len(first) == len(first_run) and len(set(second)) == len(second)
    assert not any(o["replayed"] for o in first_run)  # a fresh store has nothing to replay
    for o in second_run:
        if o["message"]["text"] in first:
            assert o["replayed"] and o["message"]["id"] == first[o["message"]["text"]]


def test_sender_killed_mid_stream_loses_nothing_it_stored(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    a, b = make_lan(2).hosts
    fps = {n: make_profile(tmp_path, n) for n in ("alice", "bob")}
    alice = listen(a, tmp_path, "alice")
    argv = [
        sys.executable,
        "-m",
        "tests.node.lan_peer",
        "--data-dir",
        str(tmp_path),
        "--profile",
        "bob",
        "--lifetime",
        "60",
    ]
    sender = JsonLines(
        b.run(
            [
                *argv[:3],
                "send-many",
                *argv[3:],
                "--to",
                "alice",
                "--count",
                "150",
                "--interval",
                "0.01",
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    sender.wait_for(lambda o: o.get("stored") == 60, 20, "60 messages stored")
    os.killpg(sender.proc.pid, signal.SIGKILL)  # sender dies mid-send
    sender.proc.wait(5)
    drainer = JsonLines(
        b.run(
            [*argv[:3], "drain", *argv[3:]],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    drainer.wait_for(lambda o: o.get("drained") is True, 40, "the outbox to drain")
    stop(alice)

    unlocked = Profile(tmp_path, "bob").unlock(PASSWORD)
    with Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        stored = [m.text for m in store.conversation(fps["alice"], limit=1000)]
    assert len(stored) >= 60
    assert stored == [f"message {i}" for i in range(len(stored))]
    assert incoming(tmp_path, "alice", fps["bob"]) == stored
    shown = [o["message"]["text"] for o in alice.seen if o.get("event") == "message_received"]
    assert shown == stored


def test_a_host_with_two_addresses_is_one_peer(make_lan: MakeLan, tmp_path: Path) -> None:
    lan = make_lan(2)
    a, b = lan.hosts
    second = lan.new_address()
    b.add_address(second)
    fps = {n: make_profile(tmp_path, n) for n in ("alice", "bob")}
    alice = listen(a, tmp_path, "alice")
    bob = listen(b, tmp_path, "bob")

    def bob_on_both(o: dict[str, Any]) -> bool:
        return (
            o.get("event") in ("peer_discovered", "peer_updated")
            and o["peer"]["fingerprint"] == fps["bob"]
            and {b.ip, second} <= {addr.rsplit(":", 1)[0] for addr in o["peer"]["addresses"]}
        )

    alice.wait_for(bob_on_both, SEE_TIMEOUT, "bob with both addresses")
    discoveries = [o for o in alice.seen if o.get("event") == "peer_discovered"]
    assert [o["peer"]["fingerprint"] for o in discoveries] == [fps["bob"]]  # once, not twice
    stop(bob)
    result = send(b, tmp_path, "bob", "alice", "one of me")
    assert result.returncode == 0, result.stdout + result.stderr
    alice.wait_for(received("one of me"), 10)
    stop(alice)


def test_a_peer_added_by_host_and_port_works_without_mdns(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    a, b = make_lan(2).hosts
    fps = {n: make_profile(tmp_path, n) for n in ("alice", "bob")}
    alice = listen(a, tmp_path, "alice", "--no-discovery", "--port", "47123")
    b.exec(
        p2pmsg("add-peer", "--data-dir", str(tmp_path), "--profile", "bob", f"{a.ip}:47123"),
        env=ENV,
    )
    result = send(b, tmp_path, "bob", "alice", "no multicast needed", "--no-discovery")
    assert result.returncode == 0, result.stdout + result.stderr
    assert alice.wait_for(received("no multicast needed"), 10)["message"]["peer"] == fps["bob"]
    stop(alice)


def test_an_impostor_advertising_anothers_identity_gets_nothing(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    a, b, m = make_lan(3).hosts
    fps = {n: make_profile(tmp_path, n) for n in ("alice", "bob", "mallory")}
    impostor = JsonLines(
        m.run(
            [
                sys.executable,
                "-m",
                "tests.node.lan_peer",
                "impostor",
                "--data-dir",
                str(tmp_path),
                "--profile",
                "mallory",
                "--claim-fp",
                fps["alice"],
                "--claim-name",
                "alice",
                "--lifetime",
                "60",
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    impostor.wait_for(lambda o: o.get("ready") is True, 15, "the impostor's advert")
    bob = listen(b, tmp_path, "bob")

    def caught(o: dict[str, Any]) -> bool:
        record = o.get("record") or {}
        return (
            o.get("event") == "security_event"
            and record.get("event") == "identity_changed"
            and record["detail"].get("claimed") == fps["alice"]
        )

    event = bob.wait_for(caught, SEE_TIMEOUT, "the impostor to be caught")["record"]
    assert event["peer"] == fps["mallory"] and event["addr"] == m.ip
    stop(bob)
    # The real alice comes online only now: had she connected to bob first, bob would
    # have had no reason to dial the impostor's advertised address, and the check above
    # would depend on which connection won the race.
    alice = listen(a, tmp_path, "alice")
    result = send(b, tmp_path, "bob", "alice", "for the real alice")
    assert result.returncode == 0, result.stdout + result.stderr
    assert alice.wait_for(received("for the real alice"), 10)["message"]["peer"] == fps["bob"]
    stop(alice)
    impostor.proc.send_signal(signal.SIGTERM)
    impostor.proc.wait(10)
    got = [o for o in impostor.seen if o.get("event") in ("MessageReceived", "PeerConnected")]
    assert got == []
    unlocked = Profile(tmp_path, "mallory").unlock(PASSWORD)
    with Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        assert all(store.conversation(p.fingerprint) == [] for p in store.list_peers())


def test_unproven_adverts_under_a_contacts_name_never_make_it_ambiguous(
    make_lan: MakeLan, tmp_path: Path
) -> None:
    """Anyone can advertise made-up fingerprints named "alice"; only one alice ever
    proved her key, so `send --to alice` still reaches her."""
    a, b, m = make_lan(3).hosts
    fps = {n: make_profile(tmp_path, n) for n in ("alice", "bob", "mallory")}
    alice = listen(a, tmp_path, "alice")
    first = send(b, tmp_path, "bob", "alice", "hello alice")
    assert first.returncode == 0, first.stdout + first.stderr
    fakes = JsonLines(
        m.run(
            [
                sys.executable,
                "-m",
                "tests.node.lan_peer",
                "fake-adverts",
                "--data-dir",
                str(tmp_path),
                "--profile",
                "mallory",
                "--claim-name",
                "alice",
                "--count",
                "3",
                "--lifetime",
                "60",
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    fake_fps = fakes.wait_for(lambda o: o.get("ready") is True, 15, "the fake adverts")
    bob = listen(b, tmp_path, "bob")
    unseen = set(fake_fps["fingerprints"])

    def all_fakes_seen(o: dict[str, Any]) -> bool:
        if o.get("event") == "peer_discovered":
            unseen.discard(o["peer"]["fingerprint"])
        return not unseen

    bob.wait_for(all_fakes_seen, SEE_TIMEOUT, "every fake advert")
    stop(bob)
    result = send(b, tmp_path, "bob", "alice", "still only you")
    assert result.returncode == 0, result.stdout + result.stderr
    got = alice.wait_for(received("still only you"), 10)
    assert got["message"]["peer"] == fps["bob"]
    peers = json.loads(
        b.exec(
            p2pmsg("peers", "--json", "--data-dir", str(tmp_path), "--profile", "bob"), env=ENV
        ).stdout
    )
    states = {p["fingerprint"]: p["state"] for p in peers}
    assert states[fps["alice"]] == "pinned"
    # The fakes were seen (above) but never proved a key: they left no row behind.
    assert not set(fake_fps["fingerprints"]) & set(states)
    fakes.proc.send_signal(signal.SIGTERM)
    fakes.proc.wait(10)
    stop(alice)

"""Real attacks against a running `p2pmsg listen` node on the LAN harness, and its alerts.

One victim for the whole module: alice runs `p2pmsg listen` (monitor with
its models, files accepted) in host 1; bob, an honest peer alice has met,
runs in host 2; the attacker works from host 3, each attack from a fresh
address of its own (so one attack's events and alerts are told apart from
another's by the address, or by the attacker's fresh fingerprint). Each test
launches one attack through the real network, then polls `p2pmsg alerts
--json` until the expected kind appears, and measures the time from the
attack's first security event (as the victim stored it) to the poll that
saw the alert; the issue's promise is under 10 seconds.

The attacks (tests/monitor/attack_tools): a wrong-password loop against the
victim's profile while it runs, handshakes whose identity signature was made
by another key, a replayed record, a record with one flipped bit, a
connection flood, a fresh key under bob's name, a record relabelled with a
suite outside the negotiated set, an offer of unknown suites only, an mDNS
advert of bob's fingerprint answered with another key, and a bulk file send.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.bench.netns import Lan
from tests.harness import Host, JsonLines
from tests.harness.fixtures import require_netns
from tests.monitor.attack_tools.live_lan import (
    ALERT_DEADLINE,
    ENV,
    Alert,
    ProfileCli,
    first_event,
    listen,
    make_profile,
    measure,
    p2pmsg,
)

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

#: Just over the exfiltration rule's floor (200 MiB within 10 minutes, no baseline yet).
BULK_BYTES = 210 * 1024 * 1024


@dataclass
class Victim:
    lan: Lan
    host: Host
    attacker: Host
    data_dir: Path
    port: int
    lines: JsonLines
    fps: dict[str, str]
    cli: ProfileCli
    bob: JsonLines

    def new_source(self) -> str:
        """A fresh address on the attacker's host: this attack's events carry it alone."""
        ip = self.lan.new_address()
        self.attacker.add_address(ip)
        return ip

    def attack(self, mode: str, source: str, *extra: str) -> dict[str, Any]:
        result = self.attacker.exec(
            [
                sys.executable,
                "-m",
                "tests.monitor.attack_tools.attacker",
                mode,
                "--target",
                f"{self.host.ip}:{self.port}",
                "--source",
                source,
                *extra,
            ],
            env=ENV,
            timeout=40,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
        return report

    def stop_bob(self) -> None:
        """Bob leaves (idempotent): alice dials an advert of bob only while he is away."""
        if self.bob.proc.poll() is None:
            self.bob.proc.send_signal(signal.SIGTERM)
            self.bob.proc.wait(15)

    def still_running(self) -> None:
        assert self.lines.proc.poll() is None, "the victim's node died"


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Victim]:
    require_netns()
    data_dir = tmp_path_factory.mktemp("live")
    fps = {name: make_profile(data_dir, name) for name in ("alice", "bob", "dave")}
    downloads = data_dir / "downloads"
    downloads.mkdir()
    lan = Lan()
    try:
        alice_host, bob_host, attacker = (lan.add_host() for _ in range(3))
        alice = listen(
            alice_host, data_dir, "alice", "--accept-files", "--downloads", str(downloads)
        )
        ready = alice.seen[0]
        bob = listen(bob_host, data_dir, "bob", "--no-monitor")
        # Alice meets bob (mDNS, then a handshake): bob is a peer she knows from now on.
        alice.wait_for(
            lambda o: o.get("event") == "peer_connected" and o["peer"]["fingerprint"] == fps["bob"],
            30,
            "alice meeting bob",
        )
        victim = Victim(
            lan,
            alice_host,
            attacker,
            data_dir,
            int(ready["port"]),
            alice,
            fps,
            ProfileCli(alice_host, data_dir, "alice"),
            bob,
        )
        yield victim
        victim.stop_bob()
        alice.proc.send_signal(signal.SIGTERM)
        alice.proc.wait(15)
    finally:
        lan.teardown()


def about(
    *,
    addr: str | None = None,
    peer: str | None = None,
    kind: str | None = None,
    source: str | None = None,
) -> Any:
    def match(record: dict[str, Any]) -> bool:
        return (
            (addr is None or record.get("addr") == addr)
            and (peer is None or record.get("peer") == peer)
            and (kind is None or record.get("kind") == kind)
            and (source is None or record.get("source") == source)
        )

    return match


def check_in_time(
    victim: Victim, what: str, alert: Alert, seen: float, first_ts: float, detail: str = ""
) -> None:
    elapsed = seen - first_ts
    measure(what, elapsed, detail or f"{alert['source']}, {alert['severity']}")
    assert 0 <= elapsed < ALERT_DEADLINE, (what, elapsed, alert)
    victim.still_running()


# --- the attacks ------------------------------------------------------------------------------


def test_wrong_password_loop_against_the_running_profile_is_brute_force(victim: Victim) -> None:
    started = time.time()
    # A script trying passwords in parallel (bounded: five are the rule's threshold, the
    # sixth is throttled); the profile's unlock guard takes them one at a time.
    guesses = [
        victim.host.run(
            p2pmsg("id", "--data-dir", str(victim.data_dir), "--profile", "alice"),
            env={**ENV, "P2PMSG_PASSWORD": f"not-the-password-{i}"},
            stdout=-1,
            stderr=-1,
            text=True,
        )
        for i in range(6)
    ]
    outcomes = [guess.communicate(timeout=30)[1] for guess in guesses]
    assert all(guess.returncode != 0 for guess in guesses)
    assert sum("wrong password" in text for text in outcomes) == 5, outcomes
    alert, seen = victim.cli.wait_for_alert(
        about(kind="brute_force", source="rule:unlock_failures"), "the unlock loop"
    )
    assert alert["peer"] is None and alert["addr"] is None  # this device, not a peer
    fails = [e for e in victim.cli.events() if e["event"] == "unlock_fail" and e["ts"] >= started]
    # Every guess reached the node's event log: five tried, then refused without trying
    # (the sixth, and any poll of ours that came during the two-second backoff).
    reasons = [e["detail"]["reason"] for e in fails]
    assert reasons[:5] == ["wrong_password"] * 5 and reasons[5] == "throttled"
    check_in_time(
        victim,
        "wrong-password loop -> brute_force",
        alert,
        seen,
        first_event(fails, lambda e: True)["ts"],
    )


def test_handshakes_with_bad_signatures_are_brute_force(victim: Victim) -> None:
    source = victim.new_source()
    report = victim.attack("bad-signature", source, "--count", "6")
    assert all("signature" in answer for answer in report["result"]), report
    alert, seen = victim.cli.wait_for_alert(
        about(addr=source, kind="brute_force"), "bad signatures"
    )
    events = victim.cli.events()
    fails = [e for e in events if e["addr"] == source and e["event"] == "handshake_fail"]
    assert len(fails) == 6 and all("signature" in e["detail"]["reason"] for e in fails)
    check_in_time(
        victim,
        "bad-signature handshakes -> brute_force",
        alert,
        seen,
        first_event(events, about(addr=source))["ts"],
    )


def test_a_replayed_record_is_replay(victim: Victim) -> None:
    source = victim.new_source()
    report = victim.attack("replay", source)
    fp = report["fingerprint"]
    alert, seen = victim.cli.wait_for_alert(about(peer=fp, kind="replay"), "the replay")
    events = victim.cli.events()
    assert [
        e["event"]
        for e in events
        if e["peer"] == fp and e["event"] in ("msg_recv", "replay_rejected")
    ] == ["msg_recv", "replay_rejected"]
    check_in_time(
        victim,
        "replayed record -> replay",
        alert,
        seen,
        first_event(events, about(addr=source))["ts"],
    )


def test_a_flipped_bit_is_an_integrity_violation(victim: Victim) -> None:
    source = victim.new_source()
    fp = victim.attack("bitflip", source)["fingerprint"]
    alert, seen = victim.cli.wait_for_alert(
        about(peer=fp, kind="integrity_violation"), "the flipped bit"
    )
    events = victim.cli.events()
    assert any(e["peer"] == fp and e["event"] == "decrypt_fail" for e in events)
    assert not any(e["peer"] == fp and e["event"] == "msg_recv" for e in events)
    check_in_time(
        victim,
        "bit-flipped record -> integrity_violation",
        alert,
        seen,
        first_event(events, about(addr=source))["ts"],
    )


def test_a_connection_flood_is_flood(victim: Victim) -> None:
    source = victim.new_source()
    report = victim.attack("flood", source, "--count", "60", "--seconds", "2")
    assert report["result"]["opened"] + report["result"]["failed"] == 60
    alert, seen = victim.cli.wait_for_alert(about(addr=source, kind="flood"), "the flood")
    events = victim.cli.events()
    refused = [e for e in events if e["addr"] == source and e["event"] == "rate_limited"]
    assert refused, "the listener refused nothing"
    check_in_time(
        victim,
        "connection flood (60 connections) -> flood",
        alert,
        seen,
        first_event(events, about(addr=source))["ts"],
        f"{alert['source']}; {len(refused)} connections refused",
    )


def test_a_new_key_under_a_known_peers_name_is_impersonation(victim: Victim) -> None:
    source = victim.new_source()
    fp = victim.attack("identity-swap", source, "--claim-name", "bob")["fingerprint"]
    alert, seen = victim.cli.wait_for_alert(
        about(peer=fp, kind="impersonation"), "the identity swap"
    )
    # A name clash: the new key is kept apart and flagged, bob is untouched (high, not
    # critical: nothing was taken over), and the alert says what happened.
    assert alert["source"] == "rule:identity_changed" and alert["severity"] == "high"
    assert "reads like one of your contacts" in alert["message"]
    events = victim.cli.events()
    (changed,) = [e for e in events if e["peer"] == fp and e["event"] == "identity_changed"]
    assert changed["detail"] == {"reason": "name_clash", "claims": victim.fps["bob"]}
    check_in_time(
        victim,
        "fresh key under bob's name -> impersonation",
        alert,
        seen,
        first_event(events, about(addr=source))["ts"],
    )


def test_a_suite_outside_the_negotiated_set_is_impersonation(victim: Victim) -> None:
    source = victim.new_source()
    fp = victim.attack("downgrade", source)["fingerprint"]
    alert, seen = victim.cli.wait_for_alert(
        about(peer=fp, kind="impersonation", source="rule:downgrade_rejected"), "the downgrade"
    )
    events = victim.cli.events()
    (rejected,) = [e for e in events if e["peer"] == fp and e["event"] == "downgrade_rejected"]
    assert "not negotiated" in rejected["detail"]["reason"]
    check_in_time(
        victim,
        "record relabelled to an unnegotiated suite -> impersonation",
        alert,
        seen,
        first_event(events, about(addr=source))["ts"],
    )


def test_an_offer_of_unknown_suites_only_fails_the_handshake(victim: Victim) -> None:
    """PROTOCOL.md: an empty suite intersection is a handshake failure, not a downgrade
    (nothing was downgraded: no session exists). One is below every threshold; five in a
    minute are brute_force like any failed handshakes."""
    source = victim.new_source()
    report = victim.attack("weak-offer", source)
    assert "no cipher suite in common" in report["result"]
    events = victim.cli.events()
    (failed,) = [e for e in events if e["addr"] == source and e["event"] == "handshake_fail"]
    assert "no cipher suite in common" in failed["detail"]["reason"]
    victim.still_running()


def test_an_advert_of_a_known_fingerprint_answered_by_another_key_is_impersonation(
    victim: Victim,
) -> None:
    victim.stop_bob()
    started = time.time()
    impostor = victim.attacker.run(
        [
            sys.executable,
            "-m",
            "tests.monitor.attack_tools.attacker",
            "advert-impostor",
            "--target",
            f"{victim.host.ip}:{victim.port}",
            "--claim-fp",
            victim.fps["bob"],
            "--claim-name",
            "bob",
            "--seconds",
            "8",
        ],
        env=ENV,
        stdout=-1,
        stderr=-1,
        text=True,
    )
    try:
        # The rule's alert, not any impersonation alert: a model verdict on an earlier
        # test's window (from another attacker address) carries that window's end as
        # its time, which can fall after `started` (CI met one, with no peer).
        alert, seen = victim.cli.wait_for_alert(
            lambda a: (
                a["kind"] == "impersonation"
                and a["source"] == "rule:identity_changed"
                and a["ts"] >= started
                and a["addr"] in victim.attacker.addresses
            ),
            "the advert impostor",
        )
        out, err = impostor.communicate(timeout=30)
        assert impostor.returncode == 0, out + err
    finally:
        if impostor.poll() is None:
            impostor.kill()
            impostor.wait(5)
    fp = json.loads(out.splitlines()[-1])["fingerprint"]
    assert alert["peer"] == fp and alert["source"] == "rule:identity_changed"
    events = [e for e in victim.cli.events() if e["ts"] >= started]
    refused = [e for e in events if e["event"] == "identity_changed" and e["peer"] == fp]
    assert refused and refused[0]["detail"] == {
        "reason": "advertised_fingerprint_not_proven",
        "claimed": victim.fps["bob"],
    }
    # The attack's first trace: bob's fingerprint "discovered" at the impostor's address.
    first = first_event(
        events,
        lambda e: (
            e["addr"] in victim.attacker.addresses
            or (e["event"] == "peer_discovered" and e["peer"] == victim.fps["bob"])
        ),
    )
    check_in_time(
        victim,
        "advert of bob's fingerprint, another key -> impersonation",
        alert,
        seen,
        first["ts"],
    )


def test_a_bulk_file_send_is_exfiltration(victim: Victim) -> None:
    """dave (host 3) sends 210 MiB to alice: dave's own monitor (the rules-only monitor
    `send-file` runs) sees 210 MiB leave for one peer that had no such history."""
    source_file = victim.data_dir / "bulk.bin"
    with source_file.open("wb") as fh:
        fh.truncate(BULK_BYTES)  # sparse: the bytes still cross the wire, encrypted
    dave = ProfileCli(victim.attacker, victim.data_dir, "dave")
    started = time.time()
    sender = victim.attacker.run(
        p2pmsg(
            "send-file",
            "--to",
            "alice",
            str(source_file),
            "--data-dir",
            str(victim.data_dir),
            "--profile",
            "dave",
            "--wait",
            "20",
            "--timeout",
            "60",
            "--json",
        ),
        env=ENV,
        stdout=-1,
        stderr=-1,
        text=True,
    )
    try:
        alert, seen = dave.wait_for_alert(
            about(peer=victim.fps["alice"], kind="exfiltration"), "the bulk send", timeout=90
        )
        out, err = sender.communicate(timeout=60)
        assert sender.returncode == 0, out + err
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(5)
        source_file.unlink()
        shutil.rmtree(victim.data_dir / "downloads")  # 210 MiB we no longer need
    (sent,) = [e for e in dave.events() if e["event"] == "file_sent"]
    assert sent["bytes"] == BULK_BYTES and sent["peer"] == victim.fps["alice"]
    check_in_time(
        victim,
        "bulk file send (210 MiB) -> exfiltration",
        alert,
        seen,
        sent["ts"],
        f"{alert['source']}; the rule judges completed transfers, so the clock "
        f"starts at file_sent; the send took {sent['ts'] - started:.1f} s",
    )

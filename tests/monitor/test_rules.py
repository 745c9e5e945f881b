from __future__ import annotations

import pytest

from p2pmsg.monitor.rules import MIB, RuleEngine, RuleHit
from p2pmsg.security_events import SecurityEvent
from tests.monitor.helpers import PEER, ev


def run(events: list[SecurityEvent]) -> list[RuleHit]:
    engine = RuleEngine()
    return [hit for event in events for hit in engine.observe(event)]


def rules_fired(events: list[SecurityEvent]) -> set[str]:
    return {hit.rule for hit in run(events)}


@pytest.mark.parametrize(
    ("n", "spacing", "fires"),
    [
        (4, 10, False),  # below: four in ten minutes
        (5, 10, True),  # at the threshold
        (8, 10, True),  # above
        (5, 151, False),  # five, but spread over more than ten minutes
    ],
)
def test_unlock_failures_five_in_ten_minutes(n: int, spacing: float, fires: bool) -> None:
    hits = run([ev(i * spacing, "unlock_fail") for i in range(n)])
    assert bool(hits) is fires
    if fires:
        assert hits[0].rule == "unlock_failures" and hits[0].kind == "brute_force"
        assert hits[0].key == "local"


@pytest.mark.parametrize(
    ("n", "spacing", "expected"),
    [
        (4, 5, set()),
        (5, 5, {"handshake_failures_fast"}),
        (11, 100, set()),  # slow bucket: 11 in 30 min is below
        (12, 100, {"handshake_failures_slow"}),  # 12 in 30 min
        (12, 170, set()),  # 12, but over more than 30 min
    ],
)
def test_handshake_failure_buckets(n: int, spacing: float, expected: set[str]) -> None:
    assert (
        rules_fired([ev(i * spacing, "handshake_fail", addr="10.6.6.6") for i in range(n)])
        == expected
    )


def test_handshake_failures_are_counted_per_source() -> None:
    events = [ev(i, "handshake_fail", addr=f"10.6.6.{i}") for i in range(10)]
    assert run(events) == []


@pytest.mark.parametrize(
    ("per_second", "seconds", "fires"),
    [
        (0.2, 600, False),  # at the leak rate the bucket never fills
        (0.5, 30, False),  # 15 drops: below capacity 20
        (0.5, 120, True),  # sustained above the leak rate
        (10.0, 3, True),  # a burst
    ],
)
def test_connection_rate_leaky_bucket(per_second: float, seconds: int, fires: bool) -> None:
    n = int(per_second * seconds)
    events = [ev(i / per_second, "conn_open", addr="10.7.7.7") for i in range(n)]
    assert ("connection_rate" in rules_fired(events)) is fires


def test_rate_limited_pours_its_dropped_count() -> None:
    assert rules_fired([ev(0, "rate_limited", addr="10.7.7.7", detail={"dropped": 25})]) == {
        "connection_rate"
    }
    assert rules_fired([ev(0, "rate_limited", addr="10.7.7.7", detail={"dropped": 5})]) == set()


@pytest.mark.parametrize(("n", "fires"), [(2, False), (3, True)])
def test_malformed_frames(n: int, fires: bool) -> None:
    hits = run([ev(i * 30, "frame_rejected", addr="10.8.8.8") for i in range(n)])
    assert bool(hits) is fires and all(h.kind == "flood" for h in hits)


@pytest.mark.parametrize(
    ("event", "kind", "severity"),
    [
        ("identity_changed", "impersonation", "critical"),
        ("downgrade_rejected", "impersonation", "high"),
        ("replay_rejected", "replay", "high"),
        ("decrypt_fail", "integrity_violation", "high"),
    ],
)
def test_single_event_triggers(event: str, kind: str, severity: str) -> None:
    (hit,) = run([ev(0, event, peer=PEER, addr="10.0.0.2")])
    assert (hit.rule, hit.kind, hit.severity, hit.peer) == (event, kind, severity, PEER)


def test_one_corrupted_file_is_tolerated_two_are_not() -> None:
    one = [ev(0, "file_integrity_fail", peer=PEER, addr="10.0.0.2")]
    assert run(one) == []
    two = [*one, ev(300, "file_integrity_fail", peer=PEER, addr="10.0.0.2")]
    assert rules_fired(two) == {"file_integrity"}


def sends(sizes: list[int], start: float = 0.0, gap: float = 10.0) -> list[SecurityEvent]:
    return [
        ev(start + i * gap, "file_sent", peer=PEER, addr="10.0.0.2", size=s)
        for i, s in enumerate(sizes)
    ]


def test_exfiltration_floor_below_at_and_above() -> None:
    assert run(sends([100 * MIB, 100 * MIB])) == []  # exactly at the floor: no
    hits = run(sends([100 * MIB, 100 * MIB + 1]))  # one byte above: yes
    assert [h.rule for h in hits] == ["exfiltration_volume"]
    assert run(sends([150 * MIB, 150 * MIB], gap=601)) == []  # outside the 10-minute span


def test_exfiltration_threshold_follows_the_peers_own_baseline() -> None:
    # A peer that routinely moves ~60 MiB per ten minutes is judged against ten times that.
    routine = sends([60 * MIB] * 40, gap=900)
    burst = sends([250 * MIB], start=40 * 900)
    engine = RuleEngine()
    assert [h for e in routine for h in engine.observe(e)] == []
    assert [h for e in burst for h in engine.observe(e)] == []  # above the floor, not the baseline
    assert rules_fired(burst) == {"exfiltration_volume"}  # a new peer: the floor applies


def test_identity_changed_alerts_say_what_happened() -> None:
    from p2pmsg.monitor.rules import RuleEngine
    from p2pmsg.security_events import SecurityEvent as Event

    engine = RuleEngine()
    clash = engine.observe(
        Event(
            ts=1.0,
            event="identity_changed",
            peer="ab" * 32,
            detail={"reason": "name_clash", "claims": "cd" * 32},
        )
    )
    assert [(h.kind, h.severity) for h in clash] == [("impersonation", "high")]
    assert "reads like one of your contacts" in clash[0].message
    liar = engine.observe(
        Event(
            ts=2.0,
            event="identity_changed",
            peer="ef" * 32,
            detail={"reason": "advertised_fingerprint_not_proven"},
        )
    )
    assert [(h.kind, h.severity) for h in liar] == [("impersonation", "critical")]


def test_a_rotation_storm_is_one_high_alert() -> None:
    engine = RuleEngine()
    storm = ev(
        0, "rate_limited", peer=PEER, addr="10.0.0.7", detail={"reason": "rotation_storm: x"}
    )
    (hit,) = engine.observe(storm)
    assert (hit.rule, hit.kind, hit.severity) == ("rotation_storm", "flood", "high")
    assert "keys in a storm" in hit.message


def test_chats_held_from_a_stranger_are_a_flood_alert_not_a_connection_flood() -> None:
    engine = RuleEngine()
    held = [
        ev(
            float(t),
            "rate_limited",
            peer=PEER,
            addr="10.0.0.7",
            detail={"reason": "stranger_quota: x"},
        )
        for t in range(50)
    ]
    hits = [h for e in held for h in engine.observe(e)]
    assert {(h.rule, h.kind, h.severity) for h in hits} == {("stranger_quota", "flood", "medium")}
    assert "have not answered" in hits[0].message


def test_a_rekey_storm_is_one_high_alert() -> None:
    engine = RuleEngine()
    storm = ev(0, "rate_limited", peer=PEER, addr="10.0.0.7", detail={"reason": "rekey_storm: x"})
    (hit,) = engine.observe(storm)
    assert (hit.rule, hit.kind, hit.severity) == ("rekey_storm", "flood", "high")
    assert "key agreements in a storm" in hit.message

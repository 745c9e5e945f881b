from __future__ import annotations

import pytest

from p2pmsg.monitor.rules import MIB, RuleEngine, RuleHit
from p2pmsg.security_events import SecurityEvent
from tests.monitor.helpers import OTHER, PEER, ev


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
    # Protocol abuse (or corruption on the path), not volume: integrity, not flood.
    assert bool(hits) is fires and all(h.kind == "integrity_violation" for h in hits)


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


def test_a_flood_of_unfinished_handshakes_is_a_flood_not_brute_force() -> None:
    """Handshakes that time out or are reset are connections held open (or a bad link):
    evidence of flooding, never of guessing, which needs a check to fail."""
    events = []
    for i in range(30):
        events.append(ev(i * 2.0, "conn_open", addr="10.9.9.9"))
        reason = ("handshake deadline passed", "timeout", "reset")[i % 3]
        events.append(ev(i * 2.0 + 1, "handshake_fail", addr="10.9.9.9", detail={"reason": reason}))
    events.append(ev(61, "rate_limited", addr="10.9.9.9", detail={"dropped": 30}))
    kinds = {hit.kind for hit in run(events)}
    assert kinds == {"flood"}
    assert "handshake_timeouts" in rules_fired(events)


def test_handshakes_that_fail_a_key_check_are_brute_force_whatever_the_wording() -> None:
    for reason in (
        "identity signature does not match the peer's Noise static key",
        "bad_signature",
        "unknown_key",
        "",  # no reason given: counted, an attacker does not get to choose the wording
    ):
        events = [
            ev(
                i * 5,
                "handshake_fail",
                addr="10.6.6.6",
                detail={"reason": reason} if reason else {},
            )
            for i in range(5)
        ]
        assert {hit.kind for hit in run(events)} == {"brute_force"}, reason


def test_polling_the_cli_unlocks_without_an_alert() -> None:
    """A script calling `p2pmsg alerts` every 10 s unlocks each time; after one typo of
    the owner's, the polls that land in the backoff are refused before any password is
    tried. Neither is guessing."""
    events = [
        ev(i * 10.0, "unlock_ok", detail={"program": "p2pmsg alerts", "previous_failures": 0})
        for i in range(360)
    ]
    events.append(ev(1000.5, "unlock_fail", detail={"reason": "wrong_password", "failures": 1}))
    events += [
        ev(1001 + i, "unlock_fail", detail={"reason": "throttled", "program": "p2pmsg alerts"})
        for i in range(20)
    ]
    assert run(sorted(events, key=lambda e: e.ts)) == []


def test_a_verified_contact_may_be_sent_a_large_file() -> None:
    big = [
        ev(0, "file_sent", peer=PEER, size=500 * MIB, detail={"verified": True, "resumed_from": 0})
    ]
    assert run(big) == []
    unverified = [ev(0, "file_sent", peer=PEER, size=500 * MIB, detail={"verified": False})]
    assert rules_fired(unverified) == {"exfiltration_volume"}


def test_a_resumed_transfer_counts_only_what_was_sent_after_the_resume() -> None:
    resumed = [
        ev(0, "file_sent", peer=PEER, size=300 * MIB, detail={"resumed_from": 250 * MIB}),
    ]
    assert run(resumed) == []


def test_a_profile_that_often_sends_gigabytes_may_send_one_to_a_new_peer() -> None:
    routine = [
        ev(i * 86400.0, "file_sent", peer=OTHER, size=3 * 1024 * MIB, detail={"verified": True})
        for i in range(3)
    ]
    new_peer = ev(3 * 86400.0 + 5, "file_sent", peer=PEER, size=2 * 1024 * MIB)
    assert run([*routine, new_peer]) == []


def test_exfiltration_far_beyond_this_profiles_habits_still_alerts() -> None:
    """Small files by day to a verified contact, then a night of large ones to another:
    past the floor and past twice anything this profile ever sent."""
    routine = [
        ev(i * 3600.0, "file_sent", peer=OTHER, size=5 * MIB, detail={"verified": True})
        for i in range(48)
    ]
    night = [
        ev(48 * 3600.0 + i * 20, "file_sent", peer=PEER, size=40 * MIB, detail={"verified": False})
        for i in range(8)
    ]
    hits = run([*routine, *night])
    assert {h.rule for h in hits} == {"exfiltration_volume"} and hits[0].peer == PEER
    assert "limit 200 MiB" in hits[0].message


def test_junk_frames_inside_a_connection_flood_are_the_flood() -> None:
    """Malformed frames alone are an integrity matter; sent on the connections of a
    connection flood they are part of the flood, and the flood rule speaks for them."""
    events = []
    for i in range(40):
        events.append(ev(i * 0.1, "conn_open", addr="10.9.9.9"))
        if i >= 6:  # the flood under way
            events.append(ev(i * 0.1 + 0.01, "frame_rejected", addr="10.9.9.9"))
    assert {hit.kind for hit in run(events)} == {"flood"}
    spaced = [ev(i * 2.0, "conn_open", addr="10.8.8.8") for i in range(3)]
    spaced += [ev(i * 2.0 + 0.01, "frame_rejected", addr="10.8.8.8") for i in range(3)]
    assert {hit.kind for hit in run(sorted(spaced, key=lambda e: e.ts))} == {"integrity_violation"}


def test_every_rule_hit_explains_itself_with_its_threshold_and_what_it_saw() -> None:
    guesses = run(
        [ev(i * 10, "unlock_fail", detail={"reason": "wrong_password"}) for i in range(5)]
    )
    (why,) = guesses[0].evidence
    assert (why.name, why.observed, why.expected) == ("wrong passwords in 10 min", 5, "alert at 5")
    (sent,) = run([ev(0, "file_sent", peer=PEER, size=300 * MIB, detail={"verified": False})])
    (why,) = sent.evidence
    assert why.observed == 300.0 and why.expected == "alert above 200 (usually 0.0)"
    single = run([ev(0, "replay_rejected", peer=PEER, addr="10.0.0.2")])
    assert single[0].evidence and single[0].evidence[0].expected == "alert at 1"

from __future__ import annotations

import math

import pytest

from p2pmsg.monitor.features import FEATURE_NAMES, WINDOW, Window, Windower, featurize
from p2pmsg.monitor.simulate import SimConfig, generate
from tests.monitor.helpers import OTHER, PEER, T0, ev

IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def feature(window: Window, name: str) -> float:
    return window.features[IDX[name]]


def count(window: Window, name: str) -> int:
    return round(math.expm1(feature(window, name)))


def by_key(windows: list[Window], key: str) -> list[Window]:
    return [w for w in windows if w.key == key]


def test_one_window_per_key_and_minute_with_counts_and_bytes() -> None:
    events = [
        ev(1, "msg_sent", peer=PEER, addr="10.0.0.2", size=300, label="normal"),
        ev(2, "msg_recv", peer=PEER, addr="10.0.0.2", size=100, label="normal"),
        ev(3, "file_sent", peer=PEER, addr="10.0.0.2", size=5000, label="exfiltration"),
        ev(4, "unlock_fail", label="normal"),
        ev(61, "msg_sent", peer=PEER, addr="10.0.0.2", size=10, label="normal"),
    ]
    windows = featurize(events)
    assert [(w.key, w.start - T0) for w in windows] == [(PEER, 0.0), ("local", 0.0), (PEER, 60.0)]
    first = by_key(windows, PEER)[0]
    assert len(first.features) == len(FEATURE_NAMES)
    assert count(first, "n_msg_sent") == 1 and count(first, "n_file_sent") == 1
    assert feature(first, "log_bytes_out") == pytest.approx(math.log1p(5300))
    assert feature(first, "log_bytes_in") == pytest.approx(math.log1p(100))
    assert first.label == "exfiltration"  # label priority inside the window
    assert by_key(windows, PEER)[1].label == "normal"
    local = by_key(windows, "local")[0]
    assert feature(local, "key_is_local") == 1.0 and feature(local, "unlock_fail_ratio") == 1.0


def test_five_minute_and_hourly_sums_see_slow_attacks() -> None:
    # One failed handshake every 90 s from one address: never more than one per window.
    events = [ev(90 * i, "handshake_fail", addr="10.9.9.9") for i in range(12)]
    windows = by_key(featurize(events), "10.9.9.9")
    assert all(count(w, "n_handshake_fail") == 1 for w in windows)
    last = windows[-1]
    assert count(last, "n5m_handshake_fail") == 4  # t = 720, 810, 900, 990 within 5 min
    assert count(last, "n1h_handshake_fail") == 12
    assert count(last, "n1h_hs_auth_fail") == 12  # no reason given: a failed check
    assert feature(last, "handshake_fail_ratio") == 1.0
    assert feature(last, "addr_known") == 0.0


def test_address_becomes_known_after_a_successful_handshake() -> None:
    events = [
        ev(1, "conn_open", addr="10.0.0.7"),
        ev(1.2, "handshake_ok", peer=PEER, addr="10.0.0.7"),
        ev(100, "conn_open", addr="10.0.0.7"),
        ev(101, "handshake_fail", addr="10.0.0.7"),
        ev(102, "conn_open", addr="10.0.0.8"),
    ]
    windows = featurize(events)
    first, second = by_key(windows, "10.0.0.7")
    assert feature(first, "addr_auth_ok") == pytest.approx(math.log1p(1))
    assert feature(second, "addr_known") == 1.0
    assert feature(by_key(windows, "10.0.0.8")[0], "addr_known") == 0.0


def test_identity_change_is_credited_to_the_source_address_window() -> None:
    events = [
        ev(5, "conn_open", addr="10.0.0.66"),
        ev(5.1, "identity_changed", peer=OTHER, addr="10.0.0.66"),
    ]
    source = by_key(featurize(events), "10.0.0.66")[0]
    assert feature(source, "addr_auth_changed") > 0


def test_volume_ratio_is_against_the_keys_own_baseline() -> None:
    events = [ev(60 * i, "msg_sent", peer=PEER, addr="10.0.0.2", size=1000) for i in range(30)]
    events.append(ev(60 * 30, "file_sent", peer=PEER, addr="10.0.0.2", size=500_000_000))
    windows = by_key(featurize(events), PEER)
    assert abs(feature(windows[-2], "volume_vs_baseline")) < 1.0
    assert feature(windows[-1], "volume_vs_baseline") > 10.0


def test_live_ticks_and_replay_give_identical_windows() -> None:
    """One code path: feeding events with ticks at odd moments changes nothing."""
    events = generate(SimConfig(hours=6, seed=11, attack_rate=8))
    replayed = featurize(events)
    live, windower = [], Windower()
    next_tick = events[0].ts + 2.5
    for event in events:
        while event.ts >= next_tick:
            live += windower.close_until(next_tick)
            next_tick += 2.5
        windower.observe(event)
    live += windower.flush()
    assert sorted(live, key=lambda w: (w.start, w.key)) == replayed


def test_windows_close_only_when_their_minute_is_over() -> None:
    windower = Windower()
    windower.observe(ev(10, "conn_open", addr="10.0.0.1"))
    assert windower.close_until(T0 + WINDOW - 0.001) == []
    assert windower.active_keys == 1
    closed = windower.close_until(T0 + WINDOW)
    assert len(closed) == 1 and closed[0].end == T0 + WINDOW
    assert windower.active_keys == 0


def test_key_count_is_bounded() -> None:
    windower = Windower(max_keys=50)
    for i in range(200):
        windower.observe(ev(i * 61, "conn_open", addr=f"10.1.{i // 250}.{i % 250}"))
    assert len(windower._keys) <= 51


def test_timeouts_and_refusals_are_flood_evidence_guesses_are_not_polls() -> None:
    """A handshake left unfinished is counted apart from one that failed a key check,
    refused connections by their `dropped` count, and only wrong passwords as guesses
    (never a successful unlock, nor a poll the backoff refused untried)."""
    events = [
        ev(1, "conn_open", addr="10.9.9.9"),
        ev(2, "handshake_fail", addr="10.9.9.9", detail={"reason": "handshake deadline passed"}),
        ev(3, "conn_open", addr="10.9.9.9"),
        ev(4, "handshake_fail", addr="10.9.9.9", detail={"reason": "bad_signature"}),
        ev(5, "rate_limited", addr="10.9.9.9", detail={"reason": "per_source", "dropped": 6}),
        ev(6, "unlock_ok", detail={"program": "p2pmsg alerts"}),
        ev(7, "unlock_fail", detail={"reason": "throttled"}),
        ev(8, "unlock_fail", detail={"reason": "wrong_password"}),
    ]
    windows = featurize(events)
    (flood,) = by_key(windows, "10.9.9.9")
    assert count(flood, "n_hs_timeout") == 1 and count(flood, "n_hs_auth_fail") == 1
    assert count(flood, "n_conn_refused") == 6
    assert feature(flood, "timeout_share") == 0.5 and feature(flood, "auth_fail_ratio") == 0.5
    assert feature(flood, "refused_share") == pytest.approx(6 / 8)
    (local,) = by_key(windows, "local")
    assert count(local, "n_unlock_guess") == 1 and count(local, "n_unlock_fail") == 2


def test_outbound_volume_is_judged_against_this_profiles_and_peers_habits() -> None:
    day = 86400.0
    routine = [
        ev(i * day, "file_sent", peer=OTHER, size=2_000_000_000, detail={"verified": True})
        for i in range(3)
    ]
    after = [
        ev(3 * day + 10, "file_sent", peer=PEER, size=1_000_000_000, detail={"verified": False})
    ]
    windows = featurize([*routine, *after])
    (new,) = by_key(windows, PEER)
    assert feature(new, "out_vs_profile_peak") < 0  # half of what this profile often sends
    assert feature(new, "peer_verified") == 0.0
    assert feature(by_key(windows, OTHER)[-1], "peer_verified") == 1.0
    alone = by_key(featurize(after), PEER)[0]
    assert feature(alone, "out_vs_profile_peak") > 20  # a profile that never sent anything

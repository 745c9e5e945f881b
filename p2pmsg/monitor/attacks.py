"""Attack episodes and their benign look-alikes for the simulator.

Each attack kind has a loud variant (what a script does) and a slow or quiet
variant (what a patient attacker does to stay under thresholds); `slowness`
stretches the gaps further. The look-alikes are honest activity that resembles
an attack on one axis: a big legitimate transfer, a backup of many files, a
flaky link that breaks handshakes, a forgotten password, a new device. The
models only learn the difference if the data holds both.
"""

# ruff: noqa: S311  (a seeded simulation: reproducibility is the point, not secrecy)
from __future__ import annotations

import math
import random
from collections.abc import Callable

from p2pmsg.monitor.simulate import (
    DAY,
    HOUR,
    SUITES,
    Peer,
    SimConfig,
    Sink,
    connect,
    file_transfer,
    fingerprint_for,
    poisson_times,
)

Episode = Callable[[Sink, random.Random, SimConfig, list[Peer], float, bool], None]


def _attacker_addr(rng: random.Random) -> str:
    return f"192.168.1.{rng.randrange(150, 250)}"


def _gap(rng: random.Random, low: float, high: float, config: SimConfig, quiet: bool) -> float:
    return rng.uniform(low, high) * (config.slowness if quiet else 1.0)


def _span(rng: random.Random, low: float, high: float, config: SimConfig) -> float:
    """How long an episode lasts, scaled by `duration_scale`."""
    return rng.uniform(low, high) * config.duration_scale


def _fast(rng: random.Random, low: float, high: float, config: SimConfig) -> float:
    """A loud attack's gap between events, shortened by `attack_speed`."""
    return rng.uniform(low, high) / config.attack_speed


#: How our node and other tools word a handshake that failed a key check.
AUTH_REASONS = (
    "bad_signature",
    "unknown_key",
    "bad_payload",
    "identity signature does not match the peer's Noise static key",
    "peer sent an invalid X25519 public key",
    "auth_failed",
)
#: How a handshake left unfinished is worded.
TIMEOUT_REASONS = ("timeout", "handshake deadline passed", "handshake timed out")


def _off_hours(rng: random.Random, day0: float) -> float:
    """A time between 22:00 and 05:30, when nobody should be pulling data."""
    return day0 + (22.0 + rng.uniform(0, 7.5)) * HOUR


# --- attacks ---------------------------------------------------------------------------------


def brute_force(
    sink: Sink, rng: random.Random, config: SimConfig, peers: list[Peer], t: float, quiet: bool
) -> None:
    """Password guessing at the unlock prompt, or handshakes with keys that are not pinned."""
    label = "brute_force"
    if rng.random() < 0.4:
        duration = _span(rng, 1800, 7200, config) if quiet else _span(rng, 120, 600, config)
        end = t + duration
        failures = 0
        while t < end:
            failures += 1
            sink.emit(
                t,
                "unlock_fail",
                label,
                detail={"reason": "wrong_password", "failures": failures},
            )
            t += _gap(rng, 45, 200, config, quiet) if quiet else _fast(rng, 1.5, 8.0, config)
        return
    addr = _attacker_addr(rng)
    duration = _span(rng, 1800, 10800, config) if quiet else _span(rng, 120, 600, config)
    end = t + duration
    reasons = rng.sample(AUTH_REASONS, rng.randrange(1, 4))
    while t < end:
        sink.emit(t, "conn_open", label, addr=addr)
        t += rng.uniform(0.05, 0.5)
        sink.emit(t, "handshake_fail", label, addr=addr, detail={"reason": rng.choice(reasons)})
        sink.emit(t + 0.005, "conn_close", label, addr=addr)
        t += _gap(rng, 40, 240, config, quiet) if quiet else _fast(rng, 0.3, 4.0, config)


def exfiltration(
    sink: Sink, rng: random.Random, config: SimConfig, peers: list[Peer], t: float, quiet: bool
) -> None:
    """A compromised peer pulling files at night: many, or big, or a steady trickle."""
    label = "exfiltration"
    peer = rng.choice(peers)
    t = connect(sink, rng, peer, t, flakiness=0.0)
    if quiet:
        end, low, high = t + _span(rng, 3600, 4 * 3600, config), math.log(1e6), math.log(3e7)
    else:
        end, low, high = t + _span(rng, 300, 1800, config), math.log(5e6), math.log(2e8)
    while t < end:
        size = int(math.exp(rng.uniform(low, high)))
        if rng.random() < 0.9:
            detail = {"resumed_from": 0, "verified": peer.verified}
            sink.emit(t, "file_sent", label, peer=peer.fp, addr=peer.addr, size=size, detail=detail)
        else:
            sink.emit(t, "msg_sent", label, peer=peer.fp, addr=peer.addr, size=min(size, 65536))
        t += _gap(rng, 60, 400, config, quiet) if quiet else rng.uniform(4, 40)
    sink.emit(t, "conn_close", label, peer=peer.fp, addr=peer.addr)


def integrity_violation(
    sink: Sink, rng: random.Random, config: SimConfig, peers: list[Peer], t: float, quiet: bool
) -> None:
    """Someone on the path flips bits (records fail authentication, files their hash),
    or someone sends frames that break the protocol (malformed: abuse, not volume)."""
    label = "integrity_violation"
    peer = rng.choice(peers)
    end = t + (_span(rng, 1800, 7200, config) if quiet else _span(rng, 120, 600, config))
    if rng.random() < 0.3:
        addr = _attacker_addr(rng) if rng.random() < 0.6 else peer.addr
        while t < end:
            sink.emit(t, "conn_open", label, addr=addr)
            sink.emit(
                t + 0.01,
                "frame_rejected",
                label,
                addr=addr,
                detail={"reason": rng.choice(("oversize", "bad_msgpack", "bad version"))},
            )
            sink.emit(t + 0.02, "conn_close", label, addr=addr)
            t += _gap(rng, 60, 400, config, quiet) if quiet else _fast(rng, 2, 30, config)
        return
    while t < end:
        if rng.random() < 0.75:
            sink.emit(t, "decrypt_fail", label, peer=peer.fp, addr=peer.addr)
            sink.emit(
                t + 0.002,
                "conn_close",
                label,
                peer=peer.fp,
                addr=peer.addr,
                detail={"reason": "decrypt_fail"},
            )
            sink.emit(
                t + rng.uniform(1, 5),
                "handshake_ok",
                label,
                peer=peer.fp,
                addr=peer.addr,
                detail={"suite": rng.choice(SUITES)},
            )
        else:
            sink.emit(
                t,
                "file_integrity_fail",
                label,
                peer=peer.fp,
                addr=peer.addr,
                size=int(rng.lognormvariate(13, 1.5)),
                detail={"reason": "sha256"},
            )
        t += _gap(rng, 120, 600, config, quiet) if quiet else rng.uniform(3, 25)


def replay(
    sink: Sink, rng: random.Random, config: SimConfig, peers: list[Peer], t: float, quiet: bool
) -> None:
    """Captured records injected again into a peer's connection."""
    label = "replay"
    peer = rng.choice(peers)
    end = t + (_span(rng, 1800, 7200, config) if quiet else _span(rng, 60, 480, config))
    while t < end:
        for _ in range(1 if quiet else rng.randrange(1, 6)):
            sink.emit(
                t,
                "replay_rejected",
                label,
                peer=peer.fp,
                addr=peer.addr,
                detail={"reason": rng.choice(("counter", "message_id"))},
            )
            t += rng.uniform(0.01, 0.5)
        sink.emit(t, "conn_close", label, peer=peer.fp, addr=peer.addr, detail={"reason": "replay"})
        t += _gap(rng, 180, 900, config, quiet) if quiet else rng.uniform(5, 40)


def flood(
    sink: Sink, rng: random.Random, config: SimConfig, peers: list[Peer], t: float, quiet: bool
) -> None:
    """Connection floods (one or several sources): connections opened faster than the
    listener admits (the rest refused, `rate_limited`), or held open without finishing
    the handshake until it times out (slowloris), or both."""
    label = "flood"
    sources = [_attacker_addr(rng) for _ in range(rng.choice((1, 1, 1, 3)))]
    holding = rng.random() < 0.4  # handshakes left to time out
    garbage = not quiet and rng.random() < 0.25  # some admitted connections send junk
    budget = rng.choice((2, 3, 3, 5))  # the listener's per-source admissions per second
    end = t + (_span(rng, 900, 3600, config) if quiet else _span(rng, 60, 240, config))
    if quiet:
        per_second = rng.uniform(0.15, 0.6) / config.slowness
    else:
        per_second = rng.uniform(1.0, 5.0) * config.attack_speed
    timeout = rng.choice((5.0, 10.0, 10.0, 30.0))
    second = math.floor(t)
    while second < end:
        for addr in sources:
            opens = sum(1 for _ in poisson_times(rng, per_second, second, second + 1))
            dropped = 0
            for k in range(opens):
                when = second + (k + rng.random()) / max(opens, 1)
                if k >= budget:  # the listener's per-source budget: the rest are refused
                    dropped += 1
                    continue
                sink.emit(when, "conn_open", label, addr=addr)
                if holding and rng.random() < 0.8:
                    gone = when + timeout + rng.uniform(0.0, 0.5)
                    reason = rng.choice(TIMEOUT_REASONS)
                    sink.emit(gone, "handshake_fail", label, addr=addr, detail={"reason": reason})
                    sink.emit(gone + 0.01, "conn_close", label, addr=addr)
                else:
                    if garbage and rng.random() < 0.5:
                        sink.emit(
                            when + 0.01,
                            "frame_rejected",
                            label,
                            addr=addr,
                            detail={"reason": rng.choice(("oversize", "bad_msgpack"))},
                        )
                    sink.emit(when + 0.02, "conn_close", label, addr=addr)
            if dropped:
                sink.emit(
                    second + 0.999,
                    "rate_limited",
                    label,
                    addr=addr,
                    detail={"reason": "per_source", "dropped": dropped},
                )
        second += 1


def impersonation(
    sink: Sink, rng: random.Random, config: SimConfig, peers: list[Peer], t: float, quiet: bool
) -> None:
    """Someone claims a known peer's name with another key, or offers weaker suites."""
    label = "impersonation"
    victim = rng.choice(peers)
    addr = victim.addr if rng.random() < 0.3 else _attacker_addr(rng)  # ARP spoof, or a new host
    forged = fingerprint_for(config.seed, f"forged-{rng.random()}")
    attempts = rng.randrange(1, 3) if quiet else rng.randrange(3, 12)
    for _ in range(attempts):
        sink.emit(t, "conn_open", label, addr=addr)
        t += rng.uniform(0.05, 0.4)
        if rng.random() < 0.6:
            sink.emit(
                t,
                "identity_changed",
                label,
                peer=forged,
                addr=addr,
                detail={"pinned": victim.fp[:16]},
            )
            sink.emit(t + 0.01, "conn_close", label, peer=forged, addr=addr)
        else:
            sink.emit(
                t,
                "downgrade_rejected",
                label,
                addr=addr,
                detail={"offered": ["none"] if rng.random() < 0.5 else ["aes-128-cbc"]},
            )
            sink.emit(t + 0.01, "conn_close", label, addr=addr)
        t += _gap(rng, 300, 1800, config, quiet) if quiet else rng.uniform(5, 60)


ATTACKS: dict[str, Episode] = {
    "brute_force": brute_force,
    "exfiltration": exfiltration,
    "integrity_violation": integrity_violation,
    "replay": replay,
    "flood": flood,
    "impersonation": impersonation,
}


def attacks(sink: Sink, config: SimConfig, peers: list[Peer]) -> None:
    for kind, episode in ATTACKS.items():
        rng = random.Random(f"{config.seed}:attack:{kind}")
        for t in poisson_times(rng, config.attack_rate / DAY, config.start, config.end):
            if kind == "exfiltration" and rng.random() < 0.75:
                t = _off_hours(rng, math.floor(t / DAY) * DAY)
            episode(sink, rng, config, peers, t, rng.random() < config.quiet_fraction)


# --- benign look-alikes ------------------------------------------------------------------------


def big_transfer(sink: Sink, rng: random.Random, peer: Peer, day0: float) -> None:
    """A video, a disk image: one huge file in working hours (now and then in the evening)."""
    when = day0 + rng.uniform(9.0, 23.0 if rng.random() < 0.25 else 18.5) * HOUR
    file_transfer(
        sink, rng, peer, when, size=int(math.exp(rng.uniform(math.log(2e8), math.log(4e9))))
    )


def photo_backup(sink: Sink, rng: random.Random, peer: Peer, day0: float) -> None:
    """Many medium files in a few minutes: a phone syncing its photos."""
    t = day0 + rng.uniform(8.0, 21.0) * HOUR
    for _ in range(rng.randrange(15, 80)):
        file_transfer(sink, rng, peer, t, size=int(rng.uniform(1.5e6, 8e6)))
        t += rng.uniform(1.0, 8.0)


def flaky_link(sink: Sink, rng: random.Random, peer: Peer, day0: float) -> None:
    """A bad access point: the link keeps dying and handshakes time out for a while."""
    t = day0 + rng.uniform(8.0, 22.0) * HOUR
    for _ in range(rng.randrange(3, 9)):
        sink.emit(
            t, "conn_close", "normal", peer=peer.fp, addr=peer.addr, detail={"reason": "reset"}
        )
        t = connect(sink, rng, peer, t + rng.uniform(3, 40), flakiness=0.6, max_failures=4)
        t += rng.uniform(20, 240)


def forgotten_password(sink: Sink, rng: random.Random, peer: Peer, day0: float) -> None:
    """Three or four wrong guesses over a few minutes, then the right one."""
    t = day0 + rng.uniform(7.5, 11.0) * HOUR
    for _ in range(rng.randrange(3, 5)):
        sink.emit(t, "unlock_fail", "normal", detail={"reason": "wrong_password"})
        t += rng.uniform(8, 90)
    sink.emit(t, "unlock_ok", "normal")


def new_device(sink: Sink, rng: random.Random, peer: Peer, day0: float) -> None:
    """Someone's new laptop joins: unknown address, fresh key, a shaky first handshake."""
    newcomer = Peer(
        fingerprint_for(rng.randrange(1 << 30), "newcomer"),
        f"192.168.1.{rng.randrange(100, 150)}",
        0,
        0,
        0,
        0,
        0,
        0,
        0.5,
        0,
    )
    t = day0 + rng.uniform(9.0, 19.0) * HOUR
    sink.emit(t, "peer_discovered", "normal", peer=newcomer.fp, addr=newcomer.addr)
    t = connect(sink, rng, newcomer, t + 1.0, flakiness=0.5, max_failures=2)
    for k in range(rng.randrange(2, 12)):
        sink.emit(
            t + 5 + 20 * k,
            "msg_sent" if k % 2 else "msg_recv",
            "normal",
            peer=newcomer.fp,
            addr=newcomer.addr,
            size=int(rng.uniform(60, 400)),
        )
    if rng.random() < 0.5:  # a first-seen contact is sent (or sends) a file, small or huge
        size = int(math.exp(rng.uniform(math.log(1e3), math.log(3e9))))
        file_transfer(sink, rng, newcomer, t + 300 + rng.uniform(0, 600), size=size)


LOOKALIKES: dict[str, tuple[float, Callable[[Sink, random.Random, Peer, float], None]]] = {
    # name: (episodes per simulated day at lookalike_rate 1.0, generator)
    "big_transfer": (1.5, big_transfer),
    "photo_backup": (0.5, photo_backup),
    "flaky_link": (1.0, flaky_link),
    "forgotten_password": (0.3, forgotten_password),
    "new_device": (0.3, new_device),
}


def lookalikes(sink: Sink, config: SimConfig, peers: list[Peer]) -> None:
    for name, (per_day, episode) in LOOKALIKES.items():
        rng = random.Random(f"{config.seed}:lookalike:{name}")
        rate = per_day * config.lookalike_rate / DAY
        for t in poisson_times(rng, rate, config.start, config.end):
            episode(sink, rng, rng.choice(peers), math.floor(t / DAY) * DAY)

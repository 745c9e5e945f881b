"""A seeded generator of realistic security-event logs (the monitor's datasets).

Normal life is a handful of peers with habits of their own (when they start
and stop, how chatty they are, how big their files are, how flaky their
Wi-Fi is) on a daily rhythm, plus the local user unlocking the app, now and
then with a mistyped password. Attacks and benign look-alikes come from
`p2pmsg.monitor.attacks`. Every event carries its ground-truth label.

Determinism is the contract: the same `SimConfig` gives the same bytes, so
`datasets/README.md` can say exactly how the shipped files were made. All
randomness flows from `random.Random` instances seeded with strings derived
from the config seed (string seeds hash with SHA-512, independent of
PYTHONHASHSEED), and timestamps are rounded to milliseconds.
"""

# ruff: noqa: S311  (a seeded simulation: reproducibility is the point, not secrecy)
from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from p2pmsg.security_events import SecurityEvent

DAY = 86400.0
HOUR = 3600.0
# 2025-11-17 00:00 UTC, a Monday. Simulated clocks run in UTC: hour 0 is midnight.
DEFAULT_START = 1763337600.0
SUITES = ("aes-256-gcm", "chacha20-poly1305", "twofish-cbc-hmac-sha256")


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes a generated log; the same config gives the same bytes."""

    hours: float = 240.0
    seed: int = 1
    start: float = DEFAULT_START
    peers: int = 6
    attack_rate: float = 3.0  # attack episodes per kind per simulated day
    slowness: float = 1.0  # > 1 stretches the gaps between attack events (quieter attacks)
    quiet_fraction: float = 0.4  # share of attack episodes that are slow or quiet
    lookalike_rate: float = 1.0  # multiplies benign look-alikes (big transfers, flaky links)
    attack_speed: float = 1.0  # multiplies the event rate of loud attacks (floods, guessing)
    duration_scale: float = 1.0  # multiplies how long every attack episode lasts

    def __post_init__(self) -> None:
        if not (0 < self.hours <= 24 * 365):
            raise ValueError("hours must be in (0, 8760]")
        if not (1 <= self.peers <= 200):
            raise ValueError("peers must be between 1 and 200")
        if self.attack_rate < 0 or self.lookalike_rate < 0:
            raise ValueError("rates cannot be negative")
        if self.slowness <= 0:
            raise ValueError("slowness must be positive")
        if not (0.05 <= self.attack_speed <= 20.0):
            raise ValueError("attack_speed must be between 0.05 and 20")
        if not (0.05 <= self.duration_scale <= 20.0):
            raise ValueError("duration_scale must be between 0.05 and 20")
        if not (0.0 <= self.quiet_fraction <= 1.0):
            raise ValueError("quiet_fraction must be between 0 and 1")

    @property
    def end(self) -> float:
        return self.start + self.hours * HOUR


@dataclass
class Peer:
    """An honest peer and its habits."""

    fp: str
    addr: str
    start_hour: float  # when its day begins (simulated local time)
    end_hour: float  # may exceed 24 for night owls
    weekend_presence: float
    bursts_per_hour: float
    files_per_hour: float
    file_log_median: float  # ln(bytes) of a typical file
    flakiness: float  # chance that a handshake attempt dies on the network
    drops_per_hour: float
    verified: bool = False  # a contact whose safety number the owner compared


@dataclass
class Sink:
    """Collects events from every generator, then sorts them into one timeline."""

    start: float
    end: float
    rows: list[tuple[float, int, SecurityEvent]] = field(default_factory=list)

    def emit(
        self,
        ts: float,
        event: str,
        label: str,
        *,
        peer: str | None = None,
        addr: str | None = None,
        size: int = 0,
        detail: dict[str, Any] | None = None,
    ) -> None:
        if not (self.start <= ts < self.end):
            return
        ts = round(ts, 3)
        record = SecurityEvent(ts, event, peer, addr, int(size), detail or {}, label)
        self.rows.append((ts, len(self.rows), record))

    def timeline(self) -> list[SecurityEvent]:
        return [row[2] for row in sorted(self.rows, key=lambda row: (row[0], row[1]))]


#: Named shifts away from the training distribution (`p2pmsg simulate --shift NAME`),
#: for measuring how the monitor holds up on traffic it was not trained on. Explicit
#: options still win over a preset's values.
SHIFTS: dict[str, dict[str, float]] = {
    # More peers, patient attackers, many benign look-alikes.
    "slow": {
        "peers": 10,
        "slowness": 2.5,
        "lookalike_rate": 3.0,
        "quiet_fraction": 0.6,
        "attack_speed": 0.5,
        "duration_scale": 1.5,
    },
    # Few peers, short and fast attacks.
    "fast": {
        "peers": 3,
        "slowness": 0.6,
        "lookalike_rate": 2.0,
        "quiet_fraction": 0.2,
        "attack_speed": 3.0,
        "duration_scale": 0.4,
    },
    # A busy LAN: many peers, many look-alikes, attacks of every pace.
    "crowd": {
        "peers": 24,
        "slowness": 1.5,
        "lookalike_rate": 4.0,
        "quiet_fraction": 0.5,
        "attack_speed": 1.5,
        "duration_scale": 0.7,
    },
}


def fingerprint_for(seed: int, name: str) -> str:
    return hashlib.sha256(f"p2pmsg-sim/{seed}/{name}".encode()).hexdigest()


def poisson_times(
    rng: random.Random, rate_per_s: float, start: float, end: float
) -> Iterator[float]:
    """Arrival times of a Poisson process on [start, end)."""
    if rate_per_s <= 0:
        return
    t = start + rng.expovariate(rate_per_s)
    while t < end:
        yield t
        t += rng.expovariate(rate_per_s)


def make_peers(config: SimConfig) -> list[Peer]:
    rng = random.Random(f"{config.seed}:peers")
    peers = []
    for index in range(config.peers):
        night_owl = rng.random() < 0.2
        start_hour = rng.uniform(7.0, 10.5) + (3.0 if night_owl else 0.0)
        end_hour = rng.uniform(17.0, 22.5) + (3.5 if night_owl else 0.0)
        peers.append(
            Peer(
                fp=fingerprint_for(config.seed, f"peer{index}"),
                addr=f"192.168.1.{10 + index}",
                start_hour=start_hour,
                end_hour=end_hour,
                weekend_presence=rng.uniform(0.2, 0.8),
                bursts_per_hour=rng.uniform(1.5, 8.0),
                files_per_hour=rng.uniform(0.05, 0.8),
                file_log_median=rng.uniform(math.log(40e3), math.log(15e6)),
                flakiness=rng.uniform(0.0, 0.12),
                drops_per_hour=rng.uniform(0.02, 0.4),
                verified=rng.random() < 0.6,
            )
        )
    return peers


def connect(
    sink: Sink, rng: random.Random, peer: Peer, t: float, *, flakiness: float, max_failures: int = 3
) -> float:
    """A dial that may die on a bad link a few times before the handshake succeeds."""
    failures = 0
    while failures < max_failures and rng.random() < flakiness:
        sink.emit(t, "conn_open", "normal", addr=peer.addr)
        t += rng.uniform(0.5, 10.0)
        sink.emit(
            t,
            "handshake_fail",
            "normal",
            addr=peer.addr,
            detail={"reason": rng.choice(("timeout", "reset", "handshake deadline passed"))},
        )
        sink.emit(t + 0.01, "conn_close", "normal", addr=peer.addr)
        t += rng.uniform(2.0, 30.0)
        failures += 1
    sink.emit(t, "conn_open", "normal", addr=peer.addr)
    t += rng.uniform(0.02, 0.4)
    sink.emit(
        t,
        "handshake_ok",
        "normal",
        peer=peer.fp,
        addr=peer.addr,
        detail={"suite": rng.choice(SUITES)},
    )
    return t


def chat_burst(
    sink: Sink, rng: random.Random, peer: Peer, t: float, end: float, *, messages: int
) -> None:
    for _ in range(messages):
        if t >= end:
            return
        event = "msg_sent" if rng.random() < 0.5 else "msg_recv"
        size = min(65536, 48 + int(rng.lognormvariate(5.0, 0.9)))
        sink.emit(t, event, "normal", peer=peer.fp, addr=peer.addr, size=size)
        t += rng.expovariate(1 / 25.0)


def file_transfer(
    sink: Sink, rng: random.Random, peer: Peer, t: float, *, size: int, label: str = "normal"
) -> None:
    """One file either way; now and then the link drops mid-way and it resumes."""
    event = "file_sent" if rng.random() < 0.5 else "file_recv"
    resumed = 0
    if size > 5_000_000 and rng.random() < 0.12:  # paused by a drop, resumed later
        resumed = int(size * rng.uniform(0.1, 0.9))
        sink.emit(t, "conn_close", label, peer=peer.fp, addr=peer.addr, detail={"reason": "reset"})
        t = connect(sink, rng, peer, t + rng.uniform(5.0, 600.0), flakiness=peer.flakiness)
        t += rng.uniform(1.0, 60.0)
    detail: dict[str, Any] = {"resumed_from": resumed}
    if event == "file_sent":
        detail["verified"] = peer.verified
    sink.emit(t, event, label, peer=peer.fp, addr=peer.addr, size=size, detail=detail)


def peer_session(sink: Sink, rng: random.Random, peer: Peer, start: float, end: float) -> None:
    """One stretch of a peer being online: discovery, a connection, chat, files, drops."""
    sink.emit(start, "peer_discovered", "normal", peer=peer.fp, addr=peer.addr)
    t = connect(sink, rng, peer, start + rng.uniform(0.5, 5.0), flakiness=peer.flakiness)
    session_start = t
    for burst in poisson_times(rng, peer.bursts_per_hour / HOUR, t, end):
        chat_burst(sink, rng, peer, burst, end, messages=1 + int(rng.expovariate(1 / 7.0)))
    for when in poisson_times(rng, peer.files_per_hour / HOUR, t, end):
        # From a kilobyte to a few gigabytes: a long tail, each peer its own median.
        size = int(rng.lognormvariate(peer.file_log_median, 1.6))
        file_transfer(sink, rng, peer, when, size=max(1000, min(size, 6_000_000_000)))
    for epoch, when in enumerate(poisson_times(rng, 1 / HOUR, session_start, end), start=1):
        sink.emit(
            when, "key_rotated", "normal", peer=peer.fp, addr=peer.addr, detail={"epoch": epoch}
        )
        if rng.random() < 0.05:
            sink.emit(
                when + 0.001,
                "cipher_changed",
                "normal",
                peer=peer.fp,
                addr=peer.addr,
                detail={"suite": rng.choice(SUITES)},
            )
    for when in poisson_times(rng, peer.drops_per_hour / HOUR, t, end):
        # A Wi-Fi drop or a restart of the peer's app: the link dies, then comes back.
        sink.emit(
            when, "conn_close", "normal", peer=peer.fp, addr=peer.addr, detail={"reason": "reset"}
        )
        if rng.random() < 0.3:
            sink.emit(when + 0.5, "peer_lost", "normal", peer=peer.fp, addr=peer.addr)
            sink.emit(
                when + rng.uniform(5, 60), "peer_discovered", "normal", peer=peer.fp, addr=peer.addr
            )
        connect(sink, rng, peer, when + rng.uniform(2.0, 45.0), flakiness=peer.flakiness * 2)
    sink.emit(end, "conn_close", "normal", peer=peer.fp, addr=peer.addr)
    sink.emit(end + 0.2, "peer_lost", "normal", peer=peer.fp, addr=peer.addr)


def normal_life(sink: Sink, config: SimConfig, peers: list[Peer]) -> None:
    days = math.ceil(config.hours / 24) + 1
    first_day = math.floor(config.start / DAY) * DAY - DAY  # sessions from the day before spill in
    for peer_index, peer in enumerate(peers):
        rng = random.Random(f"{config.seed}:life:{peer_index}")
        for day in range(days):
            day0 = first_day + day * DAY
            weekend = int(day0 // DAY + 3) % 7 >= 5  # the epoch began on a Thursday
            if rng.random() > (peer.weekend_presence if weekend else 0.92):
                continue
            if rng.random() < 0.06:  # a DHCP lease changed the peer's address
                peer.addr = f"192.168.1.{rng.randrange(100, 150)}"
            start = day0 + (peer.start_hour + rng.gauss(0, 0.6)) * HOUR
            end = day0 + (peer.end_hour + rng.gauss(0, 0.8)) * HOUR
            if end - start > HOUR:
                peer_session(sink, rng, peer, start, end)
    local_user(sink, config, days, first_day)
    cli_scripts(sink, config, days, first_day)
    restarts(sink, config, peers, days, first_day)


def local_user(sink: Sink, config: SimConfig, days: int, first_day: float) -> None:
    """The owner opening the app: once a day and after restarts; sometimes a typo first."""
    rng = random.Random(f"{config.seed}:local")
    for day in range(days):
        day0 = first_day + day * DAY
        unlocks = [day0 + rng.uniform(7.5, 10.0) * HOUR]
        unlocks += [day0 + rng.uniform(10.0, 22.0) * HOUR for _ in range(rng.randrange(0, 3))]
        for when in sorted(unlocks):
            if rng.random() < 0.15:
                for typo in range(1 + (rng.random() < 0.3)):
                    sink.emit(when - rng.uniform(4, 20) * (2 - typo), "unlock_fail", "normal")
            sink.emit(when, "unlock_ok", "normal")


def cli_scripts(sink: Sink, config: SimConfig, days: int, first_day: float) -> None:
    """Scripts polling the CLI (`p2pmsg alerts`, `events`): each call unlocks the profile.

    Successful unlocks by our own commands, dozens an hour for hours: never guessing.
    """
    rng = random.Random(f"{config.seed}:scripts")
    for day in range(days):
        day0 = first_day + day * DAY
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            start = day0 + rng.uniform(0.0, 20.0) * HOUR
            end = start + rng.uniform(0.5, 8.0) * HOUR
            period = rng.choice((5.0, 10.0, 15.0, 30.0, 60.0, 300.0))
            program = rng.choice(("p2pmsg alerts", "p2pmsg events", "p2pmsg peers", "p2pmsg id"))
            t = start
            while t < end:
                sink.emit(t, "unlock_ok", "normal", detail={"program": program})
                t += period * rng.uniform(0.9, 1.1)


def restarts(sink: Sink, config: SimConfig, peers: list[Peer], days: int, first_day: float) -> None:
    """Our node restarting (an update, a reboot): every peer online reconnects at once."""
    rng = random.Random(f"{config.seed}:restarts")
    for day in range(days):
        day0 = first_day + day * DAY
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            t = day0 + rng.uniform(8.0, 22.0) * HOUR
            sink.emit(t, "unlock_ok", "normal")
            for peer in peers:
                if rng.random() < 0.6:
                    when = t + rng.uniform(1.0, 20.0)
                    sink.emit(when, "peer_discovered", "normal", peer=peer.fp, addr=peer.addr)
                    connect(sink, rng, peer, when + rng.uniform(0.1, 3.0), flakiness=peer.flakiness)


def generate(config: SimConfig) -> list[SecurityEvent]:
    """The whole labeled timeline for `config`."""
    from p2pmsg.monitor import attacks  # late import: attacks builds on this module

    sink = Sink(config.start, config.end)
    peers = make_peers(config)
    normal_life(sink, config, peers)
    attacks.lookalikes(sink, config, make_peers(config))
    attacks.attacks(sink, config, make_peers(config))
    return sink.timeline()


def write_jsonl(events: list[SecurityEvent], out: TextIO) -> int:
    """Write one compact JSON object per line; returns the number of lines."""
    for event in events:
        out.write(event.to_json())
        out.write("\n")
    return len(events)

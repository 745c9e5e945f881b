"""The seeded fault schedule: what goes wrong, when, to whom, for how long.

A schedule is a pure function of (seed, duration, the cast), printed at the
start of a run, so a failing run can be replayed with `--seed` and read
line by line. Timing of the real processes still varies from run to run;
the faults, their order and their parameters do not.

Node 0 is the witness: it is never killed, so its memory and descriptor
counts cover the whole run. The last node sits behind the relay (reached by
host:port through it, no mDNS), so relay faults hit its every session.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

SUITES = ("aes-256-gcm", "chacha20-poly1305", "twofish-cbc-hmac-sha256")

#: kind -> relative weight. Node faults, then network faults, then session faults.
WEIGHTS: dict[str, int] = {
    "kill": 5,
    "link": 4,
    "addr": 2,
    "disk_full": 2,
    "shape": 2,
    "relay_slow": 3,
    "relay_lossy": 3,
    "relay_stall": 2,
    "relay_cut": 2,
    "relay_corrupt": 2,
    "suite": 3,
    "rotate": 3,
}


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the traffic starts
    kind: str
    node: int  # the node it hits (the relayed node for relay_* faults)
    duration: float = 0.0  # how long it lasts before it is undone (0: instantaneous)
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Cast:
    """Who is in the run: node indices and their roles."""

    nodes: int
    witness: int = 0
    disk_node: int = 1  # its downloads folder is a small tmpfs

    @property
    def relayed(self) -> int:
        return self.nodes - 1

    @property
    def mdns_nodes(self) -> list[int]:
        return list(range(self.nodes - 1))


def make_schedule(
    seed: int, duration: float, cast: Cast, *, mean_gap: float = 6.0, quiet_tail: float = 0.0
) -> list[Fault]:
    """Faults over [5 s, duration - quiet_tail), gaps drawn around `mean_gap` seconds.

    Every kind comes once, in a seeded order, before the weighted draw starts, so
    even a two-minute run meets each fault at least once.
    """
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    first_round = rng.sample(kinds, len(kinds))
    faults: list[Fault] = []
    at = 5.0
    end = duration - quiet_tail
    while True:
        at += rng.uniform(0.5 * mean_gap, 1.5 * mean_gap)
        if at >= end:
            break
        kind = first_round.pop() if first_round else rng.choices(kinds, weights)[0]
        fault = _fault(rng, kind, round(at, 2), cast)
        if fault.at + fault.duration > end:
            fault = Fault(
                fault.at, fault.kind, fault.node, round(max(0.0, end - fault.at), 2), fault.params
            )
        faults.append(fault)
    return faults


def _fault(rng: random.Random, kind: str, at: float, cast: Cast) -> Fault:
    everyone = list(range(cast.nodes))
    killable = [n for n in everyone if n != cast.witness]
    if kind == "kill":
        return Fault(at, kind, rng.choice(killable), round(rng.uniform(0.5, 5.0), 2))
    if kind == "link":
        return Fault(at, kind, rng.choice(everyone), round(rng.uniform(1.0, 8.0), 2))
    if kind == "addr":
        return Fault(at, kind, rng.choice(cast.mdns_nodes))
    if kind == "disk_full":
        return Fault(at, kind, cast.disk_node, round(rng.uniform(3.0, 10.0), 2))
    if kind == "shape":  # kernel rate limit (tc tbf) on a host's interface
        return Fault(
            at,
            kind,
            rng.choice(everyone),
            round(rng.uniform(3.0, 10.0), 2),
            {"rate_kbit": rng.choice([256, 512, 1024])},
        )
    if kind == "relay_slow":
        return Fault(
            at,
            kind,
            cast.relayed,
            round(rng.uniform(3.0, 12.0), 2),
            {
                "latency": round(rng.uniform(0.02, 0.3), 3),
                "jitter": round(rng.uniform(0.0, 0.1), 3),
            },
        )
    if kind == "relay_lossy":
        return Fault(
            at,
            kind,
            cast.relayed,
            round(rng.uniform(3.0, 12.0), 2),
            {
                "loss": round(rng.uniform(0.02, 0.2), 3),
                "loss_pause": round(rng.uniform(0.2, 1.0), 2),
            },
        )
    if kind == "relay_stall":
        return Fault(at, kind, cast.relayed, round(rng.uniform(1.0, 6.0), 2))
    if kind in ("relay_cut", "relay_corrupt"):
        return Fault(at, kind, cast.relayed)
    other = rng.choice(everyone)
    if kind == "suite":
        peer = rng.choice([n for n in everyone if n != other])
        return Fault(at, kind, other, params={"peer": peer, "suite": rng.choice(SUITES)})
    if kind == "rotate":
        peer = rng.choice([n for n in everyone if n != other])
        return Fault(at, kind, other, params={"peer": peer, "rekey": rng.random() < 0.3})
    raise ValueError(f"unknown fault kind {kind!r}")

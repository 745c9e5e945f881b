"""Scenario `discovery`: how fast hosts on one LAN find each other over real mDNS.

Zeroconf is multicast and must never touch this machine's real interfaces,
so this scenario runs only inside the repository's LAN harness
(tests/harness: network namespaces on a private bridge, no uplink). Without
root, `ip`, or the harness, it reports `{"skipped": "<reason>"}`.

Each host runs the real `p2pmsg.node.net.discovery.Discovery` in its own process
(p2pmsg/bench/discovery_probe.py, which prints one JSON line per event). We
measure, with this process's monotonic clock at the moment each line
arrives:

- `pair_s`: two hosts; from the moment the later one starts discovery
  (zeroconf's name probing and first announcement included) until each has
  seen the other;
- `all_s` (`all_20_s` in a full run): the same for `hosts` hosts, until
  every host has seen every other one (target: under 10 s for 20 hosts);
- `*_from_launch_s`: the same measured from process launch, which on this
  machine mostly measures 20 Python start-ups sharing 2 cores;
- each probe's resident memory once the mesh is complete.

`--quick` uses 2 and 5 hosts. Every wait is bounded; on a timeout the figure
is null and `incomplete` says how far it got.
"""

from __future__ import annotations

import contextlib
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from p2pmsg.bench import netns
from p2pmsg.bench.netutil import rss_kib
from p2pmsg.node.net.netguard import FORBID_MDNS_NETNS_ENV, current_netns

TITLE = "mDNS discovery in network-namespace hosts on one virtual LAN"
TARGET_ALL_S = 10.0
QUICK_HOSTS = (2, 5)
FULL_HOSTS = (2, 20)
#: Longest wait for start-up and for the complete mesh, per measurement.
READY_TIMEOUT = 90.0
MESH_TIMEOUT = 60.0
#: Discovery alone, one process per namespace host (run with `python -m`).
PROBE_MODULE = "p2pmsg.bench.discovery_probe"
BASE_PORT = 41000


@dataclass
class _Host:
    index: int
    fingerprint: str
    proc: subprocess.Popen[str]
    ready_at: float | None = None  # announced and browsing
    started_at: float | None = None  # imports done, Discovery.start() about to run
    seen: dict[str, float] = field(default_factory=dict)  # fingerprint -> first sighting


def _pump(index: int, stream: IO[str], out: queue.Queue[tuple[int, float, str | None]]) -> None:
    for line in stream:
        out.put((index, time.monotonic(), line))
    out.put((index, time.monotonic(), None))


def _measure(n_hosts: int) -> dict[str, Any]:
    import json

    lan = netns.Lan()
    hosts: list[_Host] = []
    lines: queue.Queue[tuple[int, float, str | None]] = queue.Queue()
    # Belt and braces: a probe that somehow ran in our namespace refuses to start mDNS.
    env = {FORBID_MDNS_NETNS_ENV: current_netns() or "unknown"}
    try:
        for _ in range(n_hosts):
            lan.add_host()
        launched = time.monotonic()
        for i, ns_host in enumerate(lan.hosts):
            fp = os.urandom(32).hex()
            proc = ns_host.run(
                [
                    sys.executable,
                    "-m",
                    PROBE_MODULE,
                    "--fp",
                    fp,
                    "--name",
                    f"bench{i}",
                    "--port",
                    str(BASE_PORT + i),
                    "--duration",
                    str(READY_TIMEOUT + MESH_TIMEOUT + 10),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            threading.Thread(target=_pump, args=(i, proc.stdout, lines), daemon=True).start()
            hosts.append(_Host(i, fp, proc))
        wanted = {h.fingerprint for h in hosts}
        deadline = launched + READY_TIMEOUT + MESH_TIMEOUT
        complete_at: float | None = None
        problems: list[str] = []
        while complete_at is None and time.monotonic() < deadline:
            try:
                index, at, line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            host = hosts[index]
            if line is None:
                problems.append(f"probe {index} exited ({host.proc.poll()})")
                break
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                event = obj.get("event")
                if event == "ready":
                    # The probe stamps its lines with seconds since it finished importing;
                    # the arrival time minus that is when it began starting discovery.
                    host.ready_at = at
                    host.started_at = at - float(obj.get("t", 0.0))
                elif event == "advertised" and obj.get("fp") in wanted:
                    host.seen.setdefault(obj["fp"], at)
                elif event == "error":
                    problems.append(f"probe {index}: {obj.get('message')}")
                    break
            if all(len(h.seen) >= n_hosts - 1 and h.ready_at is not None for h in hosts):
                complete_at = max(t for h in hosts for t in h.seen.values())
        rss = [rss_kib(h.proc.pid) for h in hosts]
    finally:
        lan.teardown()
    sightings = sum(len(h.seen) for h in hosts)
    readies = [h.ready_at for h in hosts if h.ready_at is not None]
    all_ready = max(readies) if len(readies) == n_hosts else None
    starts = [h.started_at for h in hosts if h.started_at is not None]
    last_start = max(starts) if len(starts) == n_hosts else None
    rss_mib = [round(k / 1024, 1) for k in rss if k is not None]
    result: dict[str, Any] = {
        "hosts": n_hosts,
        "seconds": None
        if complete_at is None or last_start is None
        else round(complete_at - last_start, 3),
        "after_last_announced_s": None
        if complete_at is None or all_ready is None
        else round(max(0.0, complete_at - all_ready), 3),
        "from_launch_s": None if complete_at is None else round(complete_at - launched, 3),
        "rss_mib": rss_mib,
    }
    if complete_at is None:
        result["incomplete"] = (
            f"{sightings} of {n_hosts * (n_hosts - 1)} sightings, "
            f"{len(readies)} of {n_hosts} hosts ready"
            + (f"; {'; '.join(problems)}" if problems else "")
        )
    return result


def run(quick: bool) -> dict[str, Any]:
    if os.geteuid() != 0:
        return {"skipped": "needs root to create network namespaces (the LAN harness)"}
    reason = netns.netns_unavailable_reason()
    if reason is not None:
        return {"skipped": reason}
    small, large = QUICK_HOSTS if quick else FULL_HOSTS
    pair = _measure(small)
    mesh = _measure(large)
    rss = mesh["rss_mib"]
    return {
        "pair_s": pair["seconds"],
        "all_s": mesh["seconds"],
        "hosts": large,
        "all_20_s": mesh["seconds"] if large == 20 else None,
        "target_all_20_s": TARGET_ALL_S,
        "target_met": (
            None if large != 20 or mesh["seconds"] is None else mesh["seconds"] < TARGET_ALL_S
        ),
        "rss_mib_per_node": {"min": min(rss), "median": statistics.median(rss), "max": max(rss)}
        if rss
        else None,
        "pair": pair,
        "mesh": mesh,
        "node": "p2pmsg/bench/discovery_probe.py: p2pmsg.node.net.discovery.Discovery alone, "
        "one process per host",
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    if "skipped" in result:
        return [("discovery",), (f"skipped: {result['skipped']}",)]
    table: list[tuple[str, ...]] = [
        (
            "hosts",
            "all see all s",
            "after announced s",
            "from launch s",
            "RSS MiB/node (min-max)",
            "target",
        )
    ]
    for key in ("pair", "mesh"):
        m = result[key]
        rss = m["rss_mib"]
        target = ""
        if key == "mesh" and result["target_met"] is not None:
            target = f"< {TARGET_ALL_S:g} s: {'met' if result['target_met'] else 'MISSED'}"
        table.append(
            (
                str(m["hosts"]),
                _secs(m["seconds"]),
                _secs(m["after_last_announced_s"]),
                _secs(m["from_launch_s"]),
                f"{min(rss):.1f}-{max(rss):.1f}" if rss else "-",
                target,
            )
        )
    return table


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def notes(result: dict[str, Any]) -> list[str]:
    if "skipped" in result:
        return []
    lines = [
        "'all see all': from the moment the last host began starting discovery (its "
        "mDNS probing and announcement included) until every host saw every other",
        "'after announced': the part after the last host's record was registered; "
        "'from launch' adds Python start-up of all probes on this machine's cores",
    ]
    for key in ("pair", "mesh"):
        if "incomplete" in result[key]:
            lines.append(f"{result[key]['hosts']} hosts incomplete: {result[key]['incomplete']}")
    return lines

"""What a chaos run reports: counts, latencies, recoveries, resources, and the verdict.

Recovery of a fault is measured from the moment it ends (cable back in,
node restarted, relay cleared) with probes: one fresh message each way
between the hit node and every live peer; it has recovered when all of them
have been shown. Resources are the nodes' VmRSS and open descriptors,
sampled every few seconds; the witness node is never killed, so its series
covers the whole run and says whether memory and descriptors stay flat.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tests.chaos.verify import Verdict

if TYPE_CHECKING:
    from tests.chaos.soak import Soak

#: Samples from the first seconds of a process (imports, caches warming) are not a trend.
WARMUP = 30.0
#: Growth over the run that still counts as flat (allocator noise, SQLite page cache).
FLAT_RSS_KIB = 12 * 1024
FLAT_FDS = 6


@dataclass
class Recovery:
    kind: str
    node: int
    started: float
    waiting: set[str] = field(default_factory=set)  # accepted probes not shown yet
    posted: int = 0  # probes handed to a live node (less those it refused)
    arrived: int = 0
    last_arrival: float = 0.0
    seconds: float | None = None
    gave_up: bool = False


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _slope_per_min(points: list[tuple[float, int]]) -> float:
    """Least-squares growth in units per minute."""
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [float(p[1]) for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return (
        0.0
        if den == 0
        else 60.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
    )


def resources(
    samples: dict[int, list[tuple[float, int, int, int]]], witness: int
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for node, series in sorted(samples.items()):
        last_life = max(s[1] for s in series)
        life = [s for s in series if s[1] == last_life]
        settled = [s for s in life if s[0] - life[0][0] >= WARMUP] or life
        first, last = settled[0], settled[-1]
        entry = {
            "incarnations": last_life,
            "samples": len(life),
            "rss_mib_first": round(first[2] / 1024, 1),
            "rss_mib_last": round(last[2] / 1024, 1),
            "rss_mib_max": round(max(s[2] for s in life) / 1024, 1),
            "fds_first": first[3],
            "fds_last": last[3],
            "fds_max": max(s[3] for s in life),
            "rss_kib_per_min": round(_slope_per_min([(s[0], s[2]) for s in settled]), 1),
        }
        if node == witness:
            entry["flat"] = (
                last[2] - first[2] <= max(FLAT_RSS_KIB, first[2] // 10)
                and last[3] - first[3] <= FLAT_FDS
            )
        report[f"node{node}"] = entry
    return report


@dataclass
class Summary:
    seed: int
    minutes: float
    nodes: int
    traffic_seconds: float
    settled_after: float | None
    shaping: str
    faults: dict[str, int]
    faults_skipped: dict[str, int]
    messages: dict[str, int]
    rejected_commands: dict[str, int]
    latency_s: dict[str, float]
    files: dict[str, Any]
    security_events: dict[str, int]
    recovery_s: dict[str, dict[str, Any]]
    resources: dict[str, Any]
    problems: list[str]
    passed: bool

    @classmethod
    def build(
        cls, soak: Soak, v: Verdict, traffic_seconds: float, settled_after: float | None
    ) -> Summary:
        latencies = [soak.shown_at[i] - t for i, t in soak.accept_at.items() if i in soak.shown_at]
        by_kind: dict[str, list[Recovery]] = {}
        for r in soak.recoveries:
            by_kind.setdefault(r.kind, []).append(r)
        recovery = {}
        for kind, rs in sorted(by_kind.items()):
            done = [r.seconds for r in rs if r.seconds is not None]
            recovery[kind] = {
                "n": len(rs),
                "median": round(_pct(done, 0.5), 2),
                "max": round(max(done, default=0.0), 2),
                # waited past the cap: a real failure to recover
                "unrecovered": sum(1 for r in rs if r.gave_up),
                # still open when the run ended (e.g. a probe's receiver was
                # killed between storing it and saying so): no time known
                "unmeasured": sum(1 for r in rs if r.seconds is None and not r.gave_up),
            }
        res = resources(soak.samples, soak.cast.witness)
        passed = (
            not v.problems
            and v.lost == 0
            and v.duplicates == 0
            and v.sent > 0
            and settled_after is not None
        )
        assert soak.box is not None
        return cls(
            seed=soak.opt.seed,
            minutes=soak.opt.minutes,
            nodes=soak.opt.nodes,
            traffic_seconds=round(traffic_seconds, 1),
            settled_after=None if settled_after is None else round(settled_after, 1),
            shaping="netem" if soak.box.netem else "tbf (no netem in this kernel) + TCP relay",
            faults=dict(soak.fault_log),
            faults_skipped=dict(soak.skipped),
            messages={
                "sent": v.sent,
                "confirmed": v.confirmed,
                "delivered": v.delivered,
                "duplicates": v.duplicates,
                "replayed_after_restart": v.replayed,
                "lost": v.lost,
                "out_of_order": v.out_of_order,
                "stuck_outbox": v.stuck_outbox,
            },
            rejected_commands=dict(soak.rejected),
            latency_s={
                "p50": round(_pct(latencies, 0.5), 3),
                "p95": round(_pct(latencies, 0.95), 3),
                "p99": round(_pct(latencies, 0.99), 3),
                "max": round(max(latencies, default=0.0), 3),
            },
            files={
                "offered": v.files_offered,
                "by_sender_state": dict(v.files_by_state),
                "hash_mismatch": v.file_hash_mismatch,
                "partial_left": v.partial_files,
                "unverified_saved": v.unverified_files,
                "stuck": v.stuck_transfers,
                "events": dict(soak.transfer_events),
            },
            security_events=dict(soak.security),
            recovery_s=recovery,
            resources=res,
            problems=v.problems[:40],
            passed=passed,
        )

    def text(self) -> str:
        m, f = self.messages, self.files
        lines = [
            f"chaos soak: seed {self.seed}, {self.nodes} nodes, {self.traffic_seconds:.0f} s "
            f"of traffic, settled after {self.settled_after} s; shaping: {self.shaping}",
            f"  messages: sent {m['sent']} (confirmed {m['confirmed']}), delivered "
            f"{m['delivered']}, duplicates {m['duplicates']} (shown again after a restart, by "
            f"design: {m.get('replayed_after_restart', 0)}), lost {m['lost']}, out of order "
            f"{m['out_of_order']}, stuck in outbox {m['stuck_outbox']}",
            f"  latency accept->shown: p50 {self.latency_s['p50']} s, p95 "
            f"{self.latency_s['p95']} s, p99 {self.latency_s['p99']} s, max "
            f"{self.latency_s['max']} s",
            f"  files: offered {f['offered']}, by state {f['by_sender_state']}, hash mismatch "
            f"{f['hash_mismatch']}, partial left {f['partial_left']}, unverified saved "
            f"{f['unverified_saved']}, stuck {f['stuck']}",
            f"  faults: {sum(self.faults.values())} {dict(sorted(self.faults.items()))}; "
            f"skipped {self.faults_skipped}",
            f"  recovery (s): {self.recovery_s}",
            f"  security events: {dict(sorted(self.security_events.items()))}",
            f"  rejected commands: {self.rejected_commands}",
        ]
        for node, r in self.resources.items():
            lines.append(
                f"  {node}: rss {r['rss_mib_first']} -> {r['rss_mib_last']} MiB "
                f"(max {r['rss_mib_max']}, {r['rss_kib_per_min']} KiB/min), fds "
                f"{r['fds_first']} -> {r['fds_last']} (max {r['fds_max']}), "
                f"{r['incarnations']} incarnation(s)"
                + (f", flat: {r['flat']}" if "flat" in r else "")
            )
        for problem in self.problems[:20]:
            lines.append(f"  PROBLEM: {problem}")
        lines.append("  RESULT: " + ("PASS" if self.passed else "FAIL"))
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

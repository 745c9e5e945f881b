"""The chaos soak: nodes on a namespace LAN chat and swap files while faults rain down.

Phases: set up (profiles, a tmpfs downloads disk, the relay, every node
started and meshed), traffic under the seeded fault schedule, settle (all
faults undone, traffic stopped, wait until every outbox and transfer is
finished), then one dump per node and the checks in verify.py. The result
is a `Summary` (summary.py) that prints itself.

Threads: the main loop here owns the schedule and the fault box; each node
incarnation has a reader thread calling `_on_event`, which only records
under `self.lock`; restarts run on their own threads and hand back through
`self.inbox`, so a slow restart never stalls the traffic.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pmsg.bench.netns import Lan
from p2pmsg.profile import Profile
from tests.chaos.cluster import NODE_PORT, PASSWORD, NodeHandle, RelayHandle, rss_and_fds
from tests.chaos.faults import FaultBox, mount_tmpfs, netem_available, unmount
from tests.chaos.schedule import Cast, Fault, make_schedule
from tests.chaos.summary import Recovery, Summary
from tests.chaos.verify import Ledger, chat_text, sha256_file, verify

RELAY_PORT = 7801  # the relayed node, for everyone else
RELAY_BACK = 7810  # + k: node k, for the relayed node
POOL_SIZES = (0, 1, 4096, 65536 + 3, 200_000, 700_000, 1_500_000)


@dataclass(frozen=True)
class SoakOptions:
    seed: int
    minutes: float
    nodes: int = 5
    msg_rate: float = 4.0  # chat messages per second, across the LAN
    file_every: float = 6.0  # seconds between file offers
    settle_timeout: float = 120.0
    mesh_timeout: float = 60.0
    fast_timeouts: bool = True
    max_per_key: int = 200  # small, so rotations by count happen in a short run too
    sample_every: float = 10.0
    disk_mib: int = 16
    recovery_cap: float = 150.0
    mean_fault_gap: float = 6.0


def chain(*actions: Callable[[], object]) -> Callable[[], None]:
    """One scheduled action that does several things in order."""

    def run() -> None:
        for action in actions:
            action()

    return run


class Soak:
    def __init__(
        self, lan: Lan, root: Path, options: SoakOptions, out: Callable[[str], None] = print
    ) -> None:
        if len(lan.hosts) != options.nodes + 1:
            raise ValueError("the LAN needs one host per node plus one for the relay")
        self.lan, self.root, self.opt, self._out = lan, root, options, out
        self.cast = Cast(options.nodes)
        self.rng = random.Random(options.seed ^ 0x5EED)  # noqa: S311 - replayable traffic
        self.lock = threading.Lock()
        self.inbox: queue.Queue[Callable[[], None]] = queue.Queue()
        self.restarts: list[threading.Thread] = []  # restarts of killed nodes, in flight
        self.ledger = Ledger()
        self.nodes: list[NodeHandle] = []
        self.relay: RelayHandle | None = None
        self.box: FaultBox | None = None
        self.t0 = time.monotonic()
        self.seq: Counter[tuple[int, int]] = Counter()
        self.pending: dict[tuple[int, int], tuple[str, Any]] = {}  # (node, req) -> what
        self.accept_at: dict[str, float] = {}
        self.shown_at: dict[str, float] = {}
        self._shown: set[tuple[int, str, str]] = set()
        self.rejected: Counter[str] = Counter()
        self.security: Counter[str] = Counter()
        self.transfer_events: Counter[str] = Counter()
        self.fault_log: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.recoveries: list[Recovery] = []
        self.samples: dict[int, list[tuple[float, int, int, int]]] = defaultdict(list)
        self.verified_early: dict[str, bool] = {}
        self.disk_mount = root / f"node{self.cast.disk_node}" / "dlfs"

    def log(self, text: str) -> None:
        self._out(f"[{time.monotonic() - self.t0:7.1f}s] {text}")

    # --- set up --------------------------------------------------------------------------

    def setup(self) -> None:
        opt = self.opt
        hosts = self.lan.hosts
        self.box = FaultBox(self.lan, netem=netem_available(hosts[0]))
        pool = self.root / "pool"
        pool.mkdir(parents=True, exist_ok=True)
        data = random.Random(opt.seed)  # noqa: S311 - replayable file contents
        for i, size in enumerate(POOL_SIZES):
            path = pool / f"f{i}-{size}.bin"
            path.write_bytes(data.randbytes(size))
            self.ledger.pool[str(path)] = sha256_file(path)
        for k in range(opt.nodes):
            data_dir = self.root / f"node{k}"
            Profile(data_dir, f"node{k}", kdf_iterations=20_000).create(f"node{k}", PASSWORD)
            if k == self.cast.disk_node:
                mount_tmpfs(self.disk_mount, opt.disk_mib)
                downloads = self.disk_mount / "downloads"
            else:
                downloads = data_dir / "downloads"
            downloads.mkdir(parents=True, exist_ok=True)
            self.nodes.append(
                NodeHandle(
                    k,
                    hosts[k],
                    data_dir,
                    downloads=downloads,
                    discovery=k != self.cast.relayed,
                    fast_timeouts=opt.fast_timeouts,
                    max_per_key=opt.max_per_key,
                    on_event=self._on_event,
                )
            )
        relay_host = hosts[opt.nodes]
        routes = [f"{relay_host.ip}:{RELAY_PORT}={hosts[self.cast.relayed].ip}:{NODE_PORT}"]
        routes += [
            f"{relay_host.ip}:{RELAY_BACK + k}={hosts[k].ip}:{NODE_PORT}"
            for k in self.cast.mdns_nodes
        ]
        self.relay = RelayHandle(relay_host, routes, opt.seed)
        starters = [threading.Thread(target=n.start) for n in self.nodes]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        for n in self.nodes:
            if not n.alive:
                raise RuntimeError(f"{n.name} failed to start: {n.stderr_tail[-20:]}")
            self.ledger.fingerprints[n.index] = n.fingerprint
        relayed = self.nodes[self.cast.relayed]
        for k in self.cast.mdns_nodes:
            self.nodes[k].request({"cmd": "add_peer", "host": relay_host.ip, "port": RELAY_PORT})
            relayed.request({"cmd": "add_peer", "host": relay_host.ip, "port": RELAY_BACK + k})
        self._wait_for_mesh()

    def _wait_for_mesh(self) -> None:
        deadline = time.monotonic() + self.opt.mesh_timeout
        missing: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            missing = {}
            for n in self.nodes:
                status = n.request({"cmd": "status"}, timeout=10) or {}
                have = set(status.get("connected", ()))
                lack = [m.name for m in self.nodes if m is not n and m.fingerprint not in have]
                if lack:
                    missing[n.name] = lack
            if not missing:
                self.log(
                    f"full mesh of {len(self.nodes)} nodes after {time.monotonic() - self.t0:.1f} s"
                )
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"the nodes did not all meet within {self.opt.mesh_timeout} s: {missing}"
        )

    # --- events from the nodes (reader threads) ------------------------------------------

    def _on_event(self, node: NodeHandle, obj: dict[str, Any], at: float) -> None:
        kind = obj.get("event")
        with self.lock:
            if kind == "recv":
                entry = (node.index, obj["id"], obj["text"])
                if obj.get("replayed") and entry in self._shown:
                    self.ledger.replays.append(entry)  # again after a restart, by design
                else:
                    self.ledger.shown.append(entry)
                    self._shown.add(entry)
                self.shown_at.setdefault(obj["id"], at)
            elif kind == "reply":
                what = self.pending.pop((node.index, int(obj.get("req") or 0)), None)
                if what is not None:
                    self._replied(node, what, obj, at)
            elif kind == "security":
                self.security[obj["record"]["event"]] += 1
            elif kind == "transfer":
                self.transfer_events[f"{obj['direction']}:{obj['state']}"] += 1
        if (
            kind == "transfer"
            and obj["direction"] == "in"
            and obj["state"] == "completed"
            and node.index == self.cast.disk_node
        ):
            self._verify_and_clear(obj)

    def _replied(
        self, node: NodeHandle, what: tuple[str, Any], obj: dict[str, Any], at: float
    ) -> None:
        kind, detail = what
        if not obj.get("ok"):
            self.rejected[f"{kind}: {str(obj.get('error'))[:60]}"] += 1
            if kind == "send" and detail[2] is not None:
                detail[2].posted -= 1  # a probe that never went out is not waited for
            return
        if kind == "send":
            receiver, seq, probe = detail
            self.ledger.accepted[obj["id"]] = (node.index, receiver, seq)
            self.accept_at[obj["id"]] = at
            if probe is not None:
                probe.waiting.add(obj["id"])
        elif kind == "file":
            receiver, path = detail
            self.ledger.files[obj["id"]] = (node.index, receiver, self.ledger.pool[path])

    def _verify_and_clear(self, view: dict[str, Any]) -> None:
        """The small disk would fill with good files too: check each one, then remove it."""
        path = Path(view["path"])
        ok = path.is_file() and sha256_file(path) == view["sha256"]
        with self.lock:
            self.verified_early[view["id"]] = ok
        path.unlink(missing_ok=True)

    # --- traffic -------------------------------------------------------------------------

    def _alive(self) -> list[NodeHandle]:
        return [n for n in self.nodes if n.alive]

    def send_chat(self, sender: NodeHandle, receiver: int, probe: Recovery | None = None) -> None:
        with self.lock:
            self.seq[(sender.index, receiver)] += 1
            seq = self.seq[(sender.index, receiver)]
            text = chat_text(
                sender.index, receiver, seq, "x" * self.rng.choice((0, 8, 40, 200, 1000))
            )
            req = sender.post({"cmd": "send", "to": self.nodes[receiver].fingerprint, "text": text})
            if req is None:
                self.seq[(sender.index, receiver)] -= 1  # never offered: no gap to explain
                return
            self.pending[(sender.index, req)] = ("send", (receiver, seq, probe))
            if probe is not None:
                probe.posted += 1

    def _chat_tick(self) -> None:
        alive = self._alive()
        if alive:
            sender = self.rng.choice(alive)
            receiver = self.rng.choice([k for k in range(self.opt.nodes) if k != sender.index])
            self.send_chat(sender, receiver)

    def _file_tick(self) -> None:
        alive = self._alive()
        if not alive:
            return
        sender = self.rng.choice(alive)
        receiver = self.rng.choice([k for k in range(self.opt.nodes) if k != sender.index])
        path = self.rng.choice(sorted(self.ledger.pool))
        with self.lock:
            req = sender.post({"cmd": "file", "to": self.nodes[receiver].fingerprint, "path": path})
            if req is not None:
                self.pending[(sender.index, req)] = ("file", (receiver, path))

    def _sample(self) -> None:
        now = time.monotonic() - self.t0
        line = []
        for n in self.nodes:
            pid = n.pid
            if pid is None or not n.alive:
                continue
            got = rss_and_fds(pid)
            if got is not None:
                self.samples[n.index].append((now, n.incarnation, got[0], got[1]))
                line.append(f"{n.name} {got[0] / 1024:.1f} MiB {got[1]} fds")
        if len(self.samples[self.cast.witness]) % 6 == 1:  # once a minute, for the log
            self.log("resources: " + ", ".join(line))

    # --- recovery ------------------------------------------------------------------------

    def open_recovery(self, kind: str, node: int) -> None:
        """Probe both ways between `node` and every live peer; done when all arrive."""
        target = self.nodes[node]
        if not target.alive:
            return
        probe = Recovery(kind, node, time.monotonic())
        self.recoveries.append(probe)
        for other in self._alive():
            if other is not target:
                self.send_chat(other, node, probe)
                self.send_chat(target, other.index, probe)

    def _check_recoveries(self) -> None:
        now = time.monotonic()
        with self.lock:
            for r in self.recoveries:
                if r.seconds is not None or r.gave_up:
                    continue
                arrived = {i for i in r.waiting if i in self.shown_at}
                r.waiting -= arrived
                r.arrived += len(arrived)
                if arrived:
                    r.last_arrival = max(r.last_arrival, max(self.shown_at[i] for i in arrived))
                if r.posted > 0 and r.arrived >= r.posted:
                    r.seconds = r.last_arrival - r.started
                elif now - r.started > self.opt.recovery_cap:
                    r.gave_up = True

    # --- faults --------------------------------------------------------------------------

    def apply(self, fault: Fault, later: Callable[[float, Callable[[], None]], None]) -> None:
        assert self.box is not None and self.relay is not None
        box, relay, node = self.box, self.relay, self.nodes[fault.node]
        host = node.host
        kind, d = fault.kind, fault.duration
        self.fault_log[kind] += 1
        if kind == "kill":
            if not node.alive:
                self.skipped[kind] += 1
                return
            node.kill9()
            self._forget_requests(node)
            later(d, lambda: self._restart(node))
        elif kind == "link":
            box.link_down(host)
            later(d, chain(lambda: box.link_up(host), lambda: self.open_recovery(kind, node.index)))
        elif kind == "addr":
            old, new = box.change_address(host)
            if fault.node in self.cast.mdns_nodes:
                relay.command(
                    {
                        "cmd": "retarget",
                        "listen_port": RELAY_BACK + fault.node,
                        "target": f"{new}:{NODE_PORT}",
                    }
                )
            self.log(f"  node{fault.node}: {old} -> {new}")
            self.open_recovery(kind, node.index)
        elif kind == "disk_full":
            filler = self.disk_mount / "filler"
            box.fill_disk(filler)
            later(d, lambda: box.free_disk(filler))
        elif kind == "shape":
            self.log(f"  shaping: {box.shape(host, int(fault.params['rate_kbit']))}")
            later(d, chain(lambda: box.unshape(host), lambda: self.open_recovery(kind, node.index)))
        elif kind in ("relay_slow", "relay_lossy"):
            relay.command({"cmd": "impair", **fault.params})
            undo = {"latency": 0.0, "jitter": 0.0} if kind == "relay_slow" else {"loss": 0.0}
            later(
                d,
                chain(
                    lambda: relay.command({"cmd": "impair", **undo}),
                    lambda: self.open_recovery(kind, node.index),
                ),
            )
        elif kind == "relay_stall":
            relay.command({"cmd": "stall", "seconds": d})
            later(d, lambda: self.open_recovery(kind, node.index))
        elif kind in ("relay_cut", "relay_corrupt"):
            relay.command({"cmd": kind.removeprefix("relay_")})
            later(0.5, lambda: self.open_recovery(kind, node.index))
        elif kind in ("suite", "rotate"):
            peer = self.nodes[int(fault.params["peer"])].fingerprint
            cmd = (
                {"cmd": "suite", "to": peer, "suite": fault.params["suite"]}
                if kind == "suite"
                else {"cmd": "rekey" if fault.params.get("rekey") else "rotate", "to": peer}
            )
            with self.lock:
                req = node.post(cmd)
                if req is None:
                    self.skipped[kind] += 1
                else:
                    self.pending[(node.index, req)] = (kind, None)

    def _forget_requests(self, node: NodeHandle) -> None:
        """Replies a killed node owed will never come (its store still knows what it took)."""
        with self.lock:
            for key in [k for k in self.pending if k[0] == node.index]:
                kind, detail = self.pending.pop(key)
                self.rejected[f"{kind}: no reply, killed"] += 1
                if kind == "send" and detail[2] is not None:
                    detail[2].posted -= 1

    def _restart(self, node: NodeHandle) -> None:
        def run() -> None:
            try:
                node.start()
            except RuntimeError as exc:
                message = f"  restart of {node.name} failed: {exc}"
                self.inbox.put(lambda: self.log(message))
                return
            self.inbox.put(lambda: self.open_recovery("kill", node.index))

        thread = threading.Thread(target=run, daemon=True)
        self.restarts = [t for t in self.restarts if t.is_alive()] + [thread]
        thread.start()

    # --- the run -------------------------------------------------------------------------

    def run(self) -> Summary:
        try:
            return self._run()
        finally:
            self.close()

    def close(self) -> None:
        """Whatever happened: no node left running, the relay gone, the tmpfs unmounted."""
        for n in self.nodes:
            n.kill9()
        if self.relay is not None:
            self.relay.close()
        unmount(self.disk_mount)

    def _run(self) -> Summary:
        opt = self.opt
        duration = opt.minutes * 60.0
        schedule = make_schedule(opt.seed, duration, self.cast, mean_gap=opt.mean_fault_gap)
        self.log(
            f"seed {opt.seed}: {len(schedule)} faults over {duration:.0f} s, "
            f"{opt.nodes} nodes (node{self.cast.witness} never killed, "
            f"node{self.cast.relayed} behind the relay, node{self.cast.disk_node} "
            f"on a {opt.disk_mib} MiB tmpfs)"
        )
        for fault in schedule:
            self._out("  fault " + fault.to_json())
        self.setup()
        assert self.box is not None
        self.log(
            "kernel shaping: "
            + ("netem" if self.box.netem else "tc netem unavailable here; tbf token bucket + relay")
        )
        counter = itertools.count()
        heap: list[tuple[float, int, Callable[[], None]]] = []
        start = time.monotonic()

        def at(t: float, action: Callable[[], None]) -> None:
            heapq.heappush(heap, (t, next(counter), action))

        def later(delay: float, action: Callable[[], None]) -> None:
            at(time.monotonic() - start + delay, action)

        def inject(f: Fault) -> Callable[[], None]:
            def go() -> None:
                self.log(f"fault {f.kind} node{f.node} {f.duration:g}s {f.params or ''}")
                self.apply(f, later)

            return go

        for fault in schedule:
            at(fault.at, inject(fault))
        for i in range(int(duration * opt.msg_rate)):
            at(i / opt.msg_rate, self._chat_tick)
        for i in range(int(duration / opt.file_every)):
            at(i * opt.file_every + 1.0, self._file_tick)
        for i in range(int(duration / opt.sample_every) + 1):
            at(i * opt.sample_every, self._sample)
        for i in range(int(duration * 2)):
            at(i / 2, self._check_recoveries)
        while heap:
            when, _, action = heapq.heappop(heap)
            while (wait := start + when - time.monotonic()) > 0:
                try:
                    self.inbox.get(timeout=wait)()
                except queue.Empty:
                    break
            action()  # undo actions due after the end still run: they restore the LAN
        return self.settle_and_check(time.monotonic() - start)

    def settle_and_check(self, traffic_seconds: float) -> Summary:
        assert self.box is not None and self.relay is not None
        self.log("traffic stopped; undoing every fault and settling")
        self.box.restore_all(self.lan.hosts)
        self.relay.command({"cmd": "clear"})
        self.box.free_disk(self.disk_mount / "filler")
        # A node killed just before the end may be restarting on its own thread right now
        # (its restart was due after the last fault): starting it here as well would run
        # two processes on one profile, and the node would look lost to the check.
        for thread in self.restarts:
            thread.join(timeout=60.0)
        for n in self.nodes:
            if not n.alive:
                n.start()
        settle_start = time.monotonic()
        settled_after: float | None = None
        while time.monotonic() - settle_start < self.opt.settle_timeout:
            while not self.inbox.empty():
                self.inbox.get()()
            self._check_recoveries()
            statuses = [n.request({"cmd": "status"}, timeout=30) or {} for n in self.nodes]
            if all(s and not s["outbox_peers"] and not s["busy_transfers"] for s in statuses):
                settled_after = time.monotonic() - settle_start
                break
            time.sleep(2.0)
        time.sleep(2.0)  # the last recv lines are printed just after the store commit
        self._check_recoveries()
        self._sample()
        dumps = {
            n.index: n.request({"cmd": "dump"}, timeout=120)
            or {"messages": [], "transfers": [], "partial": ["<no dump: node down>"]}
            for n in self.nodes
        }
        for n in self.nodes:
            n.stop()
        self.relay.close()
        downloads = {n.index: n.downloads for n in self.nodes}
        try:
            with self.lock:
                verdict = verify(self.ledger, dumps, downloads, self.verified_early)
        finally:
            unmount(self.disk_mount)
        with self.lock:
            return Summary.build(self, verdict, traffic_seconds, settled_after)

"""Scenario `trust`: what the trust features cost, each beside a baseline from the same run.

1. Name check: a new key's first `Store.record_handshake` looks its claimed
   name up among the pinned contacts' (`_clashing_contact`: by the indexed
   lookup tags of the names' confusable forms, so its cost should not grow
   with N; it once opened every contact's name). Timed on a real store of N contacts, interleaved
   with the same call for a known key keeping its name (no check) and with an
   in-memory Noise XX handshake. Each new key is blocked after its timed call
   (blocked keys are not compared) and each round starts from a copy of one
   N-contact file, so N stays N; the blocked rows the query still steps over
   (N/2 at most, ~90 ns each) cost about 1% of the check by a batch's end.
2. Pairing by a short code: the SPAKE2 machines' three messages as records of
   two established `PeerConnection`s in memory, beside the same handshake.
3. Pairing two real `Node`s (TCP on 127.0.0.1, no mDNS) until both recorded
   the other verified, alternated with a chat round trip between the two.
A path that misbehaves raises: no figure is reported for a broken path.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from p2pmsg.bench.netutil import LOOPBACK, BenchError, percentile
from p2pmsg.bench.peer import bench_config
from p2pmsg.bench.report import fmt_ratio
from p2pmsg.bench.timing import Budget, Measurement, measure_interleaved
from p2pmsg.crypto.identity import Identity
from p2pmsg.node.node import Node
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import UserMessageReceived
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.protocol.messages import PairMessage
from p2pmsg.protocol.names import confusable_key
from p2pmsg.protocol.pairing import CODE_LIFETIME, Binding, PairingShower, PairingTyper, new_code
from p2pmsg.store import Store

TITLE = "trust features: name check per new key, pairing by code"
CONTACTS = {True: (100, 1000), False: (100, 1000, 5000)}  # by `quick`
#: Node pairings (most of each, seconds) per run, whichever ends first; one op's deadline.
NODE_BOUNDS, NODE_OP_TIMEOUT = {True: (5, 3.0), False: (100, 20.0)}, 10.0
WARMUP = 2
T0 = 1_000_000.0  # store timestamps: contact i was first seen at T0 + i
_identity = functools.partial(Identity.generate, os.urandom)
HANDSHAKE, KNOWN = "in-memory Noise XX handshake", "same, known key (no check)"
Op = Callable[[], float]  # does one operation, returns the seconds its measured call took
Ops = Mapping[str, tuple[Op, int]]  # name -> (op, most calls per batch)


def _handshake(a_id: Identity, b_id: Identity) -> tuple[PeerConnection, PeerConnection]:
    """One Noise XX handshake between two `PeerConnection`s joined in memory."""
    a = PeerConnection("initiator", a_id, "bench-a", os.urandom, time.time, ProtocolConfig())
    b = PeerConnection("responder", b_id, "bench-b", os.urandom, time.time, ProtocolConfig())
    b.receive_data(a.start())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    if a.state != "established" or b.state != "established":
        raise BenchError("the in-memory Noise XX handshake did not complete")
    return a, b


def _measure_ops(ops: Ops, budget: Budget, reset: Callable[[], object]) -> dict[str, Measurement]:
    """`measure_interleaved` for calls with untimed work around them (each op times its
    own call): `cap` bounds calls per batch, `reset` runs before every round."""
    reset()
    numbers = {
        name: max(1, min(cap, int(budget.batch_seconds / min(op() for _ in range(WARMUP)))))
        for name, (op, cap) in ops.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in ops}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # as timing.time_batch does, for the whole measurement
    try:
        for _ in range(budget.repeats):
            reset()
            for name, (op, _) in ops.items():
                samples[name].append(sum(op() for _ in range(numbers[name])) / numbers[name])
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Measurement(numbers[name], tuple(samples[name])) for name in ops}


def _record(store: Store, key: bytes, name: str, now: float, verdict: str) -> tuple[float, str]:
    """`record_handshake` timed alone: (seconds, fingerprint); any other verdict raises."""
    start = time.perf_counter()
    outcome = store.record_handshake(key, name, now)
    elapsed = time.perf_counter() - start
    if outcome.verdict != verdict:
        raise BenchError(f"record_handshake said {outcome.verdict}, not {verdict}, for {name}")
    return elapsed, outcome.peer.fingerprint


class _Contacts:
    """A store file with exactly `n` pinned contacts, copied afresh for every round."""

    def __init__(self, directory: Path, n: int) -> None:
        self.n, self.data_key, self._fresh = n, os.urandom(32), itertools.count()
        self.template, self.work = directory / f"contacts-{n}.db", directory / "work.db"
        self.names = [f"contact {i}" for i in range(n)]
        if len({confusable_key(name) for name in self.names}) != n:
            raise BenchError("the contacts' names read alike; the check would stop early")
        self.keys = [_identity().public_key for _ in range(n)]
        with Store.open(self.template, self.data_key) as store:
            with store.transaction():
                # Each pinned by the handshake path, then blocked so that the next is not
                # checked against all before it (O(N^2): minutes at 5,000), then unblocked.
                for i in range(n):
                    store.block(_record(store, self.keys[i], self.names[i], T0 + i, "new")[1], T0)
                for peer in store.list_peers():
                    store.unblock(peer.fingerprint)
            if sum(p.trust == "ok" and p.pinned for p in store.list_peers()) != n:
                raise BenchError(f"the store does not hold {n} pinned contacts")
            store.checkpoint()
        self.store = self._copy()

    def _copy(self) -> Store:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.work}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.work)
        store = Store.open(self.work, self.data_key)
        store.set_automatic_checkpoints(False)  # as in the node: no call pays their fsync
        return store

    def reset(self) -> Store:
        self.store.close()
        self.store = self._copy()
        return self.store

    def probe(self) -> None:
        """The check runs, and reaches the contact it compares last (first seen last)."""
        lookalike = self.names[-1].replace("o", "\u043e", 1)  # a Cyrillic o
        outcome = self.reset().record_handshake(os.urandom(32), lookalike, T0 + self.n)
        if outcome.clash_with is None or outcome.clash_with.claimed_name != self.names[-1]:
            raise BenchError(f"the name check missed a look-alike of contact {self.n - 1}")

    def new_key(self) -> float:
        key, now = _identity().public_key, T0 + self.n + next(self._fresh)
        elapsed, fp = _record(self.store, key, f"newcomer {now:.0f}", now, "new")
        self.store.block(fp, now)  # untimed: it must not be contact N+1 for the next call
        return elapsed

    def known_key(self) -> float:
        return _record(self.store, self.keys[0], self.names[0], T0 + self.n, "known")[0]


def _figures(got: dict[str, Measurement]) -> dict[str, Any]:
    ms = {f"{k}_ms": round(m.best * 1e3, 4) for k, m in got.items()}
    return {**ms, **{k: m.as_dict() for k, m in got.items()}}


def _name_check(n: int, budget: Budget, directory: Path) -> dict[str, Any]:
    contacts, ids = _Contacts(directory, n), (_identity(), _identity())
    contacts.probe()

    def handshake() -> float:
        start = time.perf_counter()
        _handshake(*ids)
        return time.perf_counter() - start

    ops = {"new_key": (contacts.new_key, max(1, n // 2)), "known_key": (contacts.known_key, 1000)}
    try:
        got = _measure_ops({**ops, "handshake": (handshake, 1000)}, budget, contacts.reset)
    finally:
        contacts.store.close()
    new, known, hs = got["new_key"].best, got["known_key"].best, got["handshake"].best
    return {
        "contacts": n,
        "check_ms": round((new - known) * 1e3, 4),
        "new_vs_known": round(new / known, 2),
        "new_vs_handshake": round(new / hs, 3),
        **_figures(got),
    }


def _pairing_in_memory(budget: Budget) -> dict[str, Any]:
    ids = _identity(), _identity()
    a, b = _handshake(*ids)
    assert a.handshake_hash is not None
    bind_a = Binding(ids[0].fingerprint, ids[1].fingerprint, a.handshake_hash)
    bind_b = Binding(ids[1].fingerprint, ids[0].fingerprint, a.handshake_hash)

    def carry(to_b: bool, out: list[PairMessage]) -> list[Any]:
        sender, receiver = (a, b) if to_b else (b, a)
        receiver.receive_data(sender.send_messages(out))
        return [
            e.message for e in iter(receiver.next_event, None) if type(e) is UserMessageReceived
        ]

    def pairing() -> None:
        now, code = time.time(), new_code(os.urandom)
        shower = PairingShower(code, now + CODE_LIFETIME, os.urandom, now)
        typer = PairingTyper(code, bind_a, os.urandom, now)
        reply = [r for m in carry(True, [typer.start()]) for r in shower.receive(m, bind_b, now)]
        finish = [r for m in carry(False, reply) for r in typer.receive(m, bind_a, now)]
        for message in carry(True, finish):
            shower.receive(message, bind_b, now)
        if not (typer.result and typer.result.ok and shower.result and shower.result.ok):
            raise BenchError(f"in-memory pairing did not verify: {typer.result} {shower.result}")

    got = measure_interleaved({"pairing": pairing, "handshake": lambda: _handshake(*ids)}, budget)
    ratio = round(got["pairing"].best / got["handshake"].best, 2)
    return {"pairing_vs_handshake": ratio, **_figures(got)}


async def _round(shower: Node, typer: Node) -> tuple[float, float]:
    """Seconds for one pairing (code shown to both verified), then one chat round trip."""
    start = time.perf_counter()
    code = await shower.pairing_code(typer.fingerprint)
    waiting = asyncio.create_task(shower.wait_pairing(typer.fingerprint, NODE_OP_TIMEOUT))
    typed = await typer.enter_pairing_code(shower.fingerprint, code.code, NODE_OP_TIMEOUT)
    shown = await waiting
    if not (typed.ok and shown.ok):
        raise BenchError(f"node pairing did not verify: {typed.reason} / {shown.reason}")
    paired = time.perf_counter()
    sent = await typer.send_text(shower.fingerprint, "ping")
    status = await typer.wait_delivered(sent.id, NODE_OP_TIMEOUT)
    if status not in ("delivered", "read"):
        raise BenchError(f"a chat message between the nodes ended {status}")
    return paired - start, time.perf_counter() - paired


async def _both_online(a: Node, b: Node) -> None:
    for node, other in ((a, b), (b, a)):
        while not any(p.fingerprint == other.fingerprint and p.online for p in await node.peers()):
            await asyncio.sleep(0.02)


async def _nodes(quick: bool) -> dict[str, Any]:
    count, seconds = NODE_BOUNDS[quick]
    config = bench_config(models=False)  # product defaults, but 127.0.0.1 only and no mDNS
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="p2pmsg-bench-trust-") as tmp:
        nodes: list[Node] = []
        try:
            for name in ("shower", "typer"):
                node = await Node.open(_identity(), name, Path(tmp, name), os.urandom(32), config)
                nodes.append(node)
                await node.start()
            shower, typer = nodes
            await typer.add_peer(LOOPBACK, shower.listen_port)
            await asyncio.wait_for(_both_online(shower, typer), NODE_OP_TIMEOUT)
            deadline = time.perf_counter() + seconds
            for i in range(WARMUP + count):
                samples.append(await asyncio.wait_for(_round(shower, typer), 3 * NODE_OP_TIMEOUT))
                if i >= WARMUP and time.perf_counter() > deadline:
                    break
        finally:
            for node in nodes:
                await node.stop()
    pairing, chat = (_latency([s[k] for s in samples[WARMUP:]]) for k in (0, 1))
    ratio = round(pairing["p50_ms"] / chat["p50_ms"], 2)
    return {"pairing": pairing, "chat": chat, "pairing_vs_chat": ratio}


def _latency(values: list[float]) -> dict[str, Any]:
    p50, mean = percentile(values, 50) * 1e3, statistics.fmean(values) * 1e3
    return {"p50_ms": round(p50, 3), "mean_ms": round(mean, 3), "count": len(values)}


def run(quick: bool) -> dict[str, Any]:
    budget = Budget.for_run(quick)
    with tempfile.TemporaryDirectory(prefix="p2pmsg-bench-trust-") as tmp:
        checks = [_name_check(n, budget, Path(tmp)) for n in CONTACTS[quick]]
    pairing = _pairing_in_memory(budget)
    return {"name_check": checks, "pairing": pairing, "nodes": asyncio.run(_nodes(quick))}


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    p, n = result["pairing"], result["nodes"]
    lines: list[tuple[str, float, str, float, float]] = []
    for e in result["name_check"]:
        what, new = f"record_handshake, new key, {e['contacts']} contacts", e["new_key_ms"]
        lines.append((what, new, KNOWN, e["known_key_ms"], e["new_vs_known"]))
        lines.append(("", new, HANDSHAKE, e["handshake_ms"], e["new_vs_handshake"]))
    pairing = ("SPAKE2 pairing, in memory", p["pairing_ms"], HANDSHAKE, p["handshake_ms"])
    lines.append((*pairing, p["pairing_vs_handshake"]))
    chat = ("chat round trip, same nodes (p50)", n["chat"]["p50_ms"], n["pairing_vs_chat"])
    lines.append(("pairing two Nodes, 127.0.0.1 (p50)", n["pairing"]["p50_ms"], *chat))
    cells = ((w, f"{m:.3f}", b, f"{bm:.3f}", fmt_ratio(r)) for w, m, b, bm, r in lines)
    return [("what", "ms/op", "baseline", "base ms/op", "ratio"), *cells]


def notes(result: dict[str, Any]) -> list[str]:
    checks = result["name_check"]
    per = ", ".join(f"{e['check_ms']:.3f} ms at {e['contacts']}" for e in checks)
    return [
        "in process: best of interleaved batches; ratio = ms/op / base ms/op",
        f"the check alone, new - known: {per} contacts",
        f"nodes: {result['nodes']['pairing']['count']} pairings alternated with chat round trips",
    ]

"""Scenario `handshake`: connect + Noise XX + identity check, per second and mean latency.

One handshake = a fresh TCP connection to 127.0.0.1, the full three-message
Noise XX exchange through the real sans-I/O `PeerConnection` (framing,
handshake payloads with the Ed25519 binding of the static key, suite
negotiation), and on both ends an identity check against the key we expect
(a pinned fingerprint: anything else refuses the peer inside the handshake).
It counts as done when BOTH ends have reported `HandshakeCompleted`, which is
when the responder could first accept a record.

Handshakes run one after another in one event loop, so `mean_ms` is the
latency of one handshake with nothing else going on, and `per_s` is how many
a single core completes back to back (closing included). The baseline is a
bare TCP connect + one small request/reply on the same loop, the cost of the
round trips alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from p2pmsg.bench.netutil import LOOPBACK, BenchError, percentile
from p2pmsg.bench.report import fmt_rate, fmt_ratio
from p2pmsg.crypto.identity import Identity
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import ConnectionClosed, HandshakeCompleted, SecurityEvent
from p2pmsg.protocol.handshake import HandshakePolicy, PeerInfo

TITLE = "TCP connect + Noise XX + identity check, loopback"
READ_SIZE = 64 * 1024
#: (most handshakes, seconds) per run; whichever comes first ends the loop.
QUICK_BOUNDS = (40, 2.0)
FULL_BOUNDS = (1000, 20.0)
WARMUP = 3
#: One handshake that takes longer than this is a failure, not a slow figure.
HANDSHAKE_TIMEOUT = 10.0


def _expect(fingerprint: bytes) -> HandshakePolicy:
    """Refuse any identity but the pinned one (what a node does for a known peer)."""

    def policy(peer: PeerInfo, suites: tuple[str, ...]) -> str | None:
        return None if peer.fingerprint == fingerprint else "not the pinned identity"

    return policy


async def _pump_until_handshake(conn: PeerConnection, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> HandshakeCompleted:
    """Drive `conn` over the stream until its handshake completes; anything else raises."""
    first = conn.start()
    if first:
        writer.write(first)
    while True:
        data = await reader.read(READ_SIZE)
        conn.receive_data(data)
        out = conn.data_to_send()
        if out:
            writer.write(out)
        while (event := conn.next_event()) is not None:
            if type(event) is HandshakeCompleted:
                return event
            if type(event) in (SecurityEvent, ConnectionClosed):
                raise BenchError(f"{conn.role} handshake failed: {event}")
        if not data:
            raise BenchError(f"{conn.role}: connection closed during the handshake")


async def _close(conn: PeerConnection, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.write(conn.close("bench done"))
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


class _Responder:
    """The listening side: every connection is a responder pinned to the client's key."""

    def __init__(self, identity: Identity, client_fp: bytes) -> None:
        self.identity = identity
        self.client_fp = client_fp
        self.completed: asyncio.Queue[HandshakeCompleted | BaseException] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()

    def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = PeerConnection("responder", self.identity, "bench-responder", os.urandom,
                              time.time, policy=_expect(self.client_fp))
        try:
            self.completed.put_nowait(await _pump_until_handshake(conn, reader, writer))
            # Stay until the initiator hangs up, as a real listener would.
            while await reader.read(READ_SIZE):
                pass
        except (BenchError, ConnectionError) as exc:
            self.completed.put_nowait(exc)
        finally:
            await _close(conn, writer)


async def _one_handshake(port: int, identity: Identity, server_fp: bytes,
                         responder: _Responder) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    conn = PeerConnection("initiator", identity, "bench-initiator", os.urandom, time.time,
                          policy=_expect(server_fp))
    try:
        done = await _pump_until_handshake(conn, reader, writer)
        other = await responder.completed.get()
        elapsed = time.perf_counter() - start
        if isinstance(other, BaseException):
            raise other
        if done.peer.fingerprint != server_fp or other.peer.fingerprint != identity.fingerprint:
            raise BenchError("a handshake completed with the wrong identity")
        return elapsed
    finally:
        await _close(conn, writer)


async def _bare_round_trip(port: int) -> float:
    """Baseline: TCP connect, 64 bytes there, 64 back, close."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(bytes(64))
        await reader.readexactly(64)
        return time.perf_counter() - start
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        writer.write(await reader.readexactly(64))
        await writer.drain()
    writer.close()


async def _loop(step: Callable[[], Awaitable[float]], count: int,
                seconds: float) -> tuple[list[float], float]:
    """Run `step` up to `count` times or until `seconds` pass; (latencies, wall time)."""
    for _ in range(WARMUP):
        await asyncio.wait_for(step(), HANDSHAKE_TIMEOUT)
    latencies: list[float] = []
    start = time.perf_counter()
    end = start + seconds
    while len(latencies) < count and time.perf_counter() < end:
        latencies.append(await asyncio.wait_for(step(), HANDSHAKE_TIMEOUT))
    return latencies, time.perf_counter() - start


def _summary(latencies: list[float], wall: float) -> dict[str, Any]:
    return {
        "per_s": round(len(latencies) / wall, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1e3, 3),
        "p50_ms": round(percentile(latencies, 50) * 1e3, 3),
        "p99_ms": round(percentile(latencies, 99) * 1e3, 3),
        "count": len(latencies),
    }


async def _run(quick: bool) -> dict[str, Any]:
    count, seconds = QUICK_BOUNDS if quick else FULL_BOUNDS
    server_id, client_id = Identity.generate(os.urandom), Identity.generate(os.urandom)
    responder = _Responder(server_id, client_id.fingerprint)
    server = await asyncio.start_server(responder.on_connect, LOOPBACK, 0)
    echo = await asyncio.start_server(_echo, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    echo_port = echo.sockets[0].getsockname()[1]
    try:
        latencies, wall = await _loop(
            lambda: _one_handshake(port, client_id, server_id.fingerprint, responder),
            count, seconds)
        base_latencies, base_wall = await _loop(lambda: _bare_round_trip(echo_port),
                                                count, seconds / 4)
    finally:
        for srv in (server, echo):
            srv.close()
        for task in list(responder.tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*responder.tasks, return_exceptions=True)
        for srv in (server, echo):
            await srv.wait_closed()
    result = _summary(latencies, wall)
    baseline = _summary(base_latencies, base_wall)
    return {
        **result,
        "path": "asyncio streams + p2pmsg.protocol.connection.PeerConnection, both ends "
                "pinned to the expected identity",
        "suites_offered": list(PeerConnection("initiator", client_id, "x", os.urandom,
                                              time.time).config.suites),
        "baseline": {"name": "TCP connect + 64 B request/reply", **baseline},
        "slowdown_vs_baseline": round(result["mean_ms"] / baseline["mean_ms"], 2),
    }


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick))


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    base = result["baseline"]
    return [
        ("what", "per s", "mean ms", "p50 ms", "p99 ms", "count", "vs base"),
        ("connect + Noise XX + identity", fmt_rate(result["per_s"]), f"{result['mean_ms']:.2f}",
         f"{result['p50_ms']:.2f}", f"{result['p99_ms']:.2f}", str(result["count"]),
         fmt_ratio(result["slowdown_vs_baseline"])),
        ("baseline: " + base["name"], fmt_rate(base["per_s"]), f"{base['mean_ms']:.2f}",
         f"{base['p50_ms']:.2f}", f"{base['p99_ms']:.2f}", str(base["count"]), "1.00x"),
    ]


def notes(result: dict[str, Any]) -> list[str]:
    return [f"path: {result['path']}",
            "one at a time on one event loop: per s = completed handshakes / wall time "
            "(closing included); 'vs base' = mean latency / baseline mean latency"]

"""Scenario `handshake`: connect + Noise XX + identity check, per second and mean latency.

One handshake = a fresh TCP connection to 127.0.0.1, driven on both ends by
the node's own session driver (`p2pmsg.node.net.session.Session` around the
sans-I/O `PeerConnection`: framing, the three Noise XX messages with the
Ed25519 binding of the static key, suite negotiation), with the node's
identity check on both ends (`p2pmsg.node.net.trust.expectation_policy`: the
peer must prove the fingerprint we expect, or it is refused inside the
handshake). It counts as done when BOTH ends have called the handler's
`authenticated`, the moment a node would start using the session.

Not through `Node.add_peer`: a node's admission control allows an address
16 connections at once and 4 per second after that (p2pmsg.node.net.admission), so
a loop of node-to-node connects would measure the rate limiter.

Handshakes run one after another in one event loop, so `mean_ms` is the
latency of one handshake with nothing else going on, and `per_s` is how many
a single core completes back to back (closing included). The baseline is a
bare TCP connect + one small request/reply on the same loop: the cost of the
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
from p2pmsg.node.net.session import Session
from p2pmsg.node.net.trust import Expectation, expectation_policy
from p2pmsg.protocol.connection import PeerConnection, Role
from p2pmsg.protocol.events import Event, UserMessage
from p2pmsg.protocol.limits import ProtocolConfig

TITLE = "TCP connect + Noise XX + identity check, loopback"
#: (most handshakes, seconds) per run; whichever comes first ends the loop.
QUICK_BOUNDS = (40, 2.0)
FULL_BOUNDS = (1000, 20.0)
WARMUP = 3
#: One handshake that takes longer than this is a failure, not a slow figure.
HANDSHAKE_TIMEOUT = 10.0


class _Handler:
    """The node's side of a session, reduced to what a handshake needs."""

    def __init__(self) -> None:
        self.authenticated_fp: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.security: list[Event] = []

    async def authenticated(self, session: Session) -> bool:
        if not self.authenticated_fp.done():
            self.authenticated_fp.set_result(session.peer)
        return True

    def received(self, session: Session, messages: list[UserMessage]) -> None:
        pass

    def file_message(self, session: Session, message: UserMessage) -> None:
        pass

    def protocol_event(self, session: Session, event: Event) -> None:
        self.security.append(event)

    def closed(self, session: Session, reason: str, detail: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)
        if not self.authenticated_fp.done():
            self.authenticated_fp.set_exception(
                BenchError(
                    f"session closed before authentication: {reason} {detail} {self.security}"
                )
            )

    def read_allowed(self, session: Session) -> Awaitable[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _session(
    role: Role,
    identity: Identity,
    expected_fp: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: _Handler,
) -> Session:
    # The check a node makes when it dials an advertised fingerprint, on both ends here.
    policy = expectation_policy(Expectation(expected_fp.hex(), "advert"))
    conn = PeerConnection(
        role,
        identity,
        f"bench-{role}",
        os.urandom,
        time.time,
        config=ProtocolConfig(),
        policy=policy,
    )
    return Session(conn, reader, writer, handler, remote_address=LOOPBACK)


class _Responder:
    """The listening side: every connection is a responder pinned to the client's key."""

    def __init__(self, identity: Identity, client_fp: bytes) -> None:
        self.identity = identity
        self.client_fp = client_fp
        self.handlers: asyncio.Queue[_Handler] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()

    def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = _Handler()
        session = _session("responder", self.identity, self.client_fp, reader, writer, handler)
        task = asyncio.create_task(session.run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.handlers.put_nowait(handler)


async def _one_handshake(
    port: int, identity: Identity, server_fp: bytes, responder: _Responder
) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    handler = _Handler()
    session = _session("initiator", identity, server_fp, reader, writer, handler)
    task = asyncio.create_task(session.run())
    try:
        server_side = await responder.handlers.get()
        proved = await handler.authenticated_fp
        client_proved = await server_side.authenticated_fp
        elapsed = time.perf_counter() - start
        if proved != server_fp.hex() or client_proved != identity.fingerprint.hex():
            raise BenchError("a handshake completed with the wrong identity")
        return elapsed
    finally:
        session.close("bench done")
        with contextlib.suppress(asyncio.CancelledError):
            await task


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


async def _loop(
    step: Callable[[], Awaitable[float]], count: int, seconds: float
) -> tuple[list[float], float]:
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
            count,
            seconds,
        )
        base_latencies, base_wall = await _loop(
            lambda: _bare_round_trip(echo_port), count, seconds / 4
        )
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
        "path": "p2pmsg.node.net.session.Session (PeerConnection over asyncio streams), "
        "trust.expectation_policy on both ends",
        "suites_offered": list(ProtocolConfig().suites),
        "baseline": {"name": "TCP connect + 64 B request/reply", **baseline},
        "slowdown_vs_baseline": round(result["mean_ms"] / baseline["mean_ms"], 2),
    }


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick))


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    base = result["baseline"]
    return [
        ("what", "per s", "mean ms", "p50 ms", "p99 ms", "count", "vs base"),
        (
            "connect + Noise XX + identity",
            fmt_rate(result["per_s"]),
            f"{result['mean_ms']:.2f}",
            f"{result['p50_ms']:.2f}",
            f"{result['p99_ms']:.2f}",
            str(result["count"]),
            fmt_ratio(result["slowdown_vs_baseline"]),
        ),
        (
            "baseline: " + base["name"],
            fmt_rate(base["per_s"]),
            f"{base['mean_ms']:.2f}",
            f"{base['p50_ms']:.2f}",
            f"{base['p99_ms']:.2f}",
            str(base["count"]),
            "1.00x",
        ),
    ]


def notes(result: dict[str, Any]) -> list[str]:
    return [
        f"path: {result['path']}",
        "one at a time on one event loop: per s = completed handshakes / wall time "
        "(closing included); 'vs base' = mean latency / baseline mean latency",
    ]

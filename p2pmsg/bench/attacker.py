"""The hostile peer of the `abuse` scenario, in a process of its own.

    python -m p2pmsg.bench.attacker {squat,noread,flood} --port PORT
        [--source ADDR] [--seconds S] [--most N]

It speaks p2pmsg with the project's own sans-I/O `PeerConnection` over plain
asyncio sockets, so every byte up to its misbehaviour is what an honest peer
would send, and it connects only to 127.0.0.1 (from `--source`, another
loopback address, so the victim's per-address limits charge it and not the
honest peer). Each attack ends after `--seconds` or when the parent says stop
(a line or EOF on stdin); after `--most` attempts, pings or chats it sends no
more but holds what it has (connections, unread replies) until then:

- `squat`: as many connections as it can, as fast as it can, each a fresh
  key that completes the Noise XX handshake and then holds its connection
  open, silent; `CONCURRENCY` attempts in flight, a refused one replaced at
  once, so the victim's rate limit is hit over and over;
- `noread`: one connection that completes the handshake, then sends pings
  (each draws a pong) and never reads its socket: the victim's replies back
  up until it stops reading this peer (`READ_PAUSE_AT` in node/net/session.py);
- `flood`: one never-seen key that completes the handshake and sends chats
  of `MAX_TEXT_BYTES` (32 KiB) as fast as the victim takes them, reading its
  socket so the victim's receipts count what was accepted.

Out (JSON lines): `ready` {pid, mode, source} once the attack is under way,
then `done` {stats} when it has stopped and closed every connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

from p2pmsg.bench.netutil import LOOPBACK, emit, run_child
from p2pmsg.crypto.identity import Identity
from p2pmsg.protocol.connection import PeerConnection
from p2pmsg.protocol.events import UserMessageReceived
from p2pmsg.protocol.limits import MAX_TEXT_BYTES, ProtocolConfig
from p2pmsg.protocol.messages import Receipt, new_chat

MODES = ("squat", "noread", "flood")
#: The attacker's own loopback address (Linux routes all of 127/8 to lo).
SOURCE = "127.0.0.66"
#: squat: connection attempts in flight at once.
CONCURRENCY = 16
#: One handshake (connect included) that takes longer than this counts as refused.
HANDSHAKE_TIMEOUT = 5.0
READ_SIZE = 1 << 16
#: Our own send buffer: never hold more than this unsent in memory.
OUR_HIGH_WATER = 1 << 20
#: noread: pings per write; flood: chats per write (each chat is its own record).
PINGS_PER_WRITE = 256
CHATS_PER_WRITE = 8
#: How long one wait for the victim to take our bytes may last before we look at the clock.
DRAIN_SLICE = 0.1
FLOOD_TEXT = "x" * MAX_TEXT_BYTES
HOLD_SLICE = 0.05
#: noread, flood: how long to wait before trying again when the victim refused us.
RETRY_EVERY = 0.25
#: How long the attack's loops may take to notice a stop and close their sockets.
STOP_TIMEOUT = 10.0
#: Longest an attacker lives, whatever its arguments or its parent.
MAX_LIFETIME = 600.0


def source_address(index: int = 0) -> str:
    """SOURCE + index (one address per attack, so the rate limit one attack ran down does
    not refuse the next) where the OS lets us bind it, else 127.0.0.1."""
    address = str(ipaddress.ip_address(SOURCE) + index)
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return LOOPBACK
    return address


class Bounds:
    """When an attack stops: a deadline, a most, or the parent's word, whichever is first.
    Loops test `live`; no loop relies on being cancelled."""

    def __init__(self, deadline: float, most: int) -> None:
        self.deadline, self.most, self.stopped = deadline, most, False

    def live(self, done: int) -> bool:
        return not self.stopped and done < self.most and time.monotonic() < self.deadline

    async def hold(self) -> None:
        """`most` reached: keep what we have (connections, unread bytes) until the end."""
        while self.live(0):
            await asyncio.sleep(HOLD_SLICE)


@dataclass
class Stats:
    mode: str
    source: str
    attempts: int = 0  # connections tried
    accepted: int = 0  # handshakes completed
    refused: int = 0  # closed or reset by the victim before the handshake completed
    timed_out: int = 0  # no handshake within HANDSHAKE_TIMEOUT
    connect_errors: dict[str, int] = field(default_factory=dict)  # TCP connect failed, by errno
    held_peak: int = 0  # connections open at once after their handshake
    closed_by_victim: int = 0  # established connections the victim ended
    bytes_sent: int = 0  # handed to the kernel (accepted by the socket)
    messages_sent: int = 0  # pings (noread) or chats (flood) handed to the kernel
    messages_accepted: int = 0  # flood: chats the victim acknowledged with a receipt
    stalled_seconds: float = 0.0  # time our writes waited for the victim to read
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class _Conn:
    """One established connection, driven by hand: we choose when to read."""

    def __init__(
        self, conn: PeerConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.conn, self.reader, self.writer = conn, reader, writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()

    @property
    def unsent(self) -> int:
        return self.writer.transport.get_write_buffer_size()


async def handshake(port: int, source: str, stats: Stats) -> _Conn | None:
    """Connect from `source` with a fresh key and complete Noise XX; None if refused."""
    stats.attempts += 1
    identity = Identity.generate(os.urandom)
    conn = PeerConnection(
        "initiator", identity, "bench-attacker", os.urandom, time.time, ProtocolConfig()
    )
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(LOOPBACK, port, local_addr=(source, 0)), HANDSHAKE_TIMEOUT
        )
    except ConnectionResetError:  # accepted by the kernel, then reset by the victim
        stats.refused += 1
        return None
    except (OSError, TimeoutError) as exc:
        why = (
            "timeout" if isinstance(exc, TimeoutError) else errno.errorcode.get(exc.errno or 0, "?")
        )
        stats.connect_errors[why] = stats.connect_errors.get(why, 0) + 1
        return None
    peer = _Conn(conn, reader, writer)
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT
    try:
        writer.write(conn.start())
        while conn.state == "handshaking":
            data = await asyncio.wait_for(reader.read(READ_SIZE), deadline - time.monotonic())
            conn.receive_data(data)
            if not data or conn.closed:
                stats.refused += 1
                peer.close()
                return None
            writer.write(conn.data_to_send())
    except TimeoutError:
        stats.timed_out += 1
        peer.close()
        return None
    except OSError:  # reset: the victim refused after accepting the TCP connection
        stats.refused += 1
        peer.close()
        return None
    while conn.next_event() is not None:
        pass
    stats.accepted += 1
    return peer


async def _wait_taken(peer: _Conn, stats: Stats, bounds: Bounds) -> bool:
    """Wait (in slices, while the attack lives) until our unsent bytes are under our
    high-water mark; False when the connection is gone."""
    while peer.unsent > OUR_HIGH_WATER and bounds.live(0):
        if peer.writer.transport.is_closing():
            break
        start = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(peer.writer.drain(), DRAIN_SLICE)
        stats.stalled_seconds += time.monotonic() - start
    return not peer.writer.transport.is_closing()


async def _get_in(port: int, stats: Stats, bounds: Bounds) -> _Conn | None:
    """One established connection: refused attempts are retried every RETRY_EVERY s."""
    while bounds.live(0):
        peer = await handshake(port, stats.source, stats)
        if peer is not None:
            return peer
        await asyncio.sleep(RETRY_EVERY)
    return None


def _is_open(peer: _Conn) -> bool:
    return not (peer.reader.at_eof() or peer.writer.is_closing())


async def squat(port: int, stats: Stats, bounds: Bounds, started: asyncio.Event) -> None:
    held: list[_Conn] = []

    async def worker() -> None:
        while bounds.live(stats.attempts):
            peer = await handshake(port, stats.source, stats)
            started.set()
            if peer is None:
                await asyncio.sleep(0)  # let the others run; a refused attempt is retried
                continue
            held.append(peer)
            stats.held_peak = max(stats.held_peak, sum(map(_is_open, held)))

    workers = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    try:
        await asyncio.gather(*workers)
        await bounds.hold()
    finally:
        await asyncio.gather(*workers, return_exceptions=True)
        stats.closed_by_victim = sum(not _is_open(p) for p in held)
        for peer in held:
            peer.close()


async def noread(port: int, stats: Stats, bounds: Bounds, started: asyncio.Event) -> None:
    peer = await _get_in(port, stats, bounds)
    started.set()
    if peer is None:
        return
    try:
        while bounds.live(stats.messages_sent):
            n = min(PINGS_PER_WRITE, bounds.most - stats.messages_sent)
            data = b"".join(peer.conn.ping() for _ in range(n))
            peer.writer.write(data)
            stats.messages_sent += n
            stats.bytes_sent += len(data)
            if not await _wait_taken(peer, stats, bounds):
                stats.closed_by_victim += 1
                break
            await asyncio.sleep(0)
        else:
            await bounds.hold()  # still never reading
        stats.bytes_sent -= peer.unsent  # what is still ours was never handed over
    finally:
        peer.close()


async def flood(port: int, stats: Stats, bounds: Bounds, started: asyncio.Event) -> None:
    peer = await _get_in(port, stats, bounds)
    started.set()
    if peer is None:
        return

    async def read_receipts() -> None:
        while True:
            data = await peer.reader.read(READ_SIZE)
            peer.conn.receive_data(data)
            while (event := peer.conn.next_event()) is not None:
                message = event.message if type(event) is UserMessageReceived else None
                if type(message) is Receipt and message.status == "delivered":
                    stats.messages_accepted += len(message.ids)
            if not data or peer.conn.closed:
                return
            with contextlib.suppress(Exception):  # pongs; after a close there is nothing
                peer.writer.write(peer.conn.data_to_send())

    reading = asyncio.create_task(read_receipts())
    try:
        while bounds.live(stats.messages_sent) and not reading.done():
            n = min(CHATS_PER_WRITE, bounds.most - stats.messages_sent)
            now = time.time()
            data = peer.conn.send_messages(
                [new_chat(os.urandom, now, FLOOD_TEXT) for _ in range(n)]
            )
            peer.writer.write(data)
            stats.messages_sent += n
            stats.bytes_sent += len(data)
            if not await _wait_taken(peer, stats, bounds):
                break
            await asyncio.sleep(0)
        if reading.done():
            stats.closed_by_victim += 1
        else:
            await bounds.hold()  # receipts for what we sent keep coming
        stats.bytes_sent -= peer.unsent
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reading
        peer.close()


Attack = Callable[[int, Stats, Bounds, asyncio.Event], Coroutine[Any, Any, None]]
ATTACKS: dict[str, Attack] = {"squat": squat, "noread": noread, "flood": flood}


async def _stop_requested() -> None:
    """A line or EOF on stdin: the parent wants us to stop (or is gone)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()


async def run_attack(
    mode: str, port: int, source: str, seconds: float, most: int, stdin: bool = True
) -> Stats:
    """Run one attack until `seconds` pass, `most` is reached or the parent says stop."""
    stats = Stats(mode=mode, source=source)
    started = asyncio.Event()
    begin, cpu = time.monotonic(), time.process_time()
    bounds = Bounds(begin + min(seconds, MAX_LIFETIME), most)
    attack = asyncio.create_task(ATTACKS[mode](port, stats, bounds, started))
    stop = asyncio.create_task(_stop_requested()) if stdin else None
    waiting = asyncio.create_task(started.wait())
    try:
        await asyncio.wait({attack, waiting}, return_when=asyncio.FIRST_COMPLETED)
        emit("ready", pid=os.getpid(), mode=mode, source=source)
        await asyncio.wait(
            {attack} if stop is None else {attack, stop}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        bounds.stopped = True  # every loop ends at its next test; each closes its sockets
        for task in (stop, waiting):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.wait({attack}, timeout=STOP_TIMEOUT)
        if not attack.done():
            attack.cancel()
            stats.errors.append(f"did not stop within {STOP_TIMEOUT:g} s; cancelled")
            await asyncio.wait({attack})
    if not attack.cancelled() and attack.exception() is not None:
        stats.errors.append(repr(attack.exception()))
    stats.seconds = round(time.monotonic() - begin, 3)
    stats.cpu_seconds = round(time.process_time() - cpu, 3)
    stats.stalled_seconds = round(stats.stalled_seconds, 3)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="p2pmsg bench: a hostile peer on 127.0.0.1")
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default=SOURCE, help="our loopback address (127.x.y.z)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--most", type=int, default=10_000, help="connection attempts, pings or chats"
    )
    args = parser.parse_args(argv)
    if not args.source.startswith("127."):
        parser.error("--source must be a loopback address")

    async def attack_and_report() -> None:
        stats = await run_attack(args.mode, args.port, args.source, args.seconds, args.most)
        emit("done", stats=asdict(stats))

    return run_child(attack_and_report)


if __name__ == "__main__":
    sys.exit(main())

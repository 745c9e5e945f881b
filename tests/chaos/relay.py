"""A small lossy, delaying TCP relay, run as a process inside a namespace host.

    python -m tests.chaos.relay --route LISTEN_IP:PORT=TARGET_IP:PORT [--route ...]

Why: this machine's kernel has no `netem`, so latency, loss and stalls are
made here, at the TCP level, between two real nodes: bytes read from one side
are held in a per-direction queue and written to the other side no earlier
than `latency + jitter` later, in order. TCP cannot lose bytes without
breaking the stream, so "loss" is what loss looks like to an application
above TCP: a retransmission pause (with probability `loss` a chunk is held
an extra `loss_pause` seconds, and everything behind it waits). A stall
holds every direction for a while; a cut aborts every relayed connection
(an RST, like a NAT box forgetting its table); a corruption flips one byte
in the next chunk, which the record layer must notice.

Control: one JSON object per line on stdin, e.g.
`{"cmd": "impair", "latency": 0.05, "jitter": 0.02, "loss": 0.05}`,
`{"cmd": "stall", "seconds": 3}`, `{"cmd": "cut"}`, `{"cmd": "corrupt"}`,
`{"cmd": "retarget", "listen_port": 7801, "target": "10.77.0.9:7700"}`,
`{"cmd": "clear"}`. Every command is answered with one JSON line
(`{"event": "ok", ...}`); the first line is `{"event": "ready"}`.
The process ends when stdin closes or after `--lifetime` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

CHUNK = 16 * 1024
#: Bytes held per direction before the relay stops reading (TCP backpressure).
MAX_QUEUED = 1 << 20


@dataclass
class Impairment:
    latency: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    loss_pause: float = 0.3
    stalled_until: float = 0.0
    corrupt_next: bool = False


class Relay:
    def __init__(self, routes: dict[int, tuple[str, int]], listen_ip: str, seed: int) -> None:
        self.routes = routes
        self.listen_ip = listen_ip
        self.impairment = Impairment()
        self.rng = random.Random(seed)  # noqa: S311 - replayable impairments
        self.writers: set[asyncio.StreamWriter] = set()
        self.stats = {"connections": 0, "bytes": 0, "cuts": 0, "corrupted": 0, "held": 0}

    async def start(self) -> list[asyncio.Server]:
        servers = []
        for port in self.routes:
            servers.append(await asyncio.start_server(self._acceptor(port), self.listen_ip, port))
        return servers

    def _acceptor(
        self, port: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._accept(reader, writer, port)

        return accept

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        host, target_port = self.routes[port]
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(host, target_port), 5
            )
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        self.stats["connections"] += 1
        self.writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self.writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        room = asyncio.Semaphore(max(1, MAX_QUEUED // CHUNK))

        async def pump_in() -> None:
            try:
                while data := await reader.read(CHUNK):
                    await room.acquire()
                    await queue.put((self._release_time(), self._maybe_corrupt(data)))
            except (OSError, ConnectionError):
                pass
            finally:
                await queue.put(None)

        async def pump_out() -> None:
            try:
                while (item := await queue.get()) is not None:
                    release, data = item
                    while (
                        wait := max(release, self.impairment.stalled_until) - time.monotonic()
                    ) > 0:
                        await asyncio.sleep(min(wait, 0.25))
                    writer.write(data)
                    self.stats["bytes"] += len(data)
                    room.release()
                    await writer.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                writer.transport.abort()  # either side gone: the whole path is gone

        await asyncio.gather(pump_in(), pump_out())

    def _release_time(self) -> float:
        imp = self.impairment
        delay = imp.latency + self.rng.uniform(0.0, imp.jitter)
        if imp.loss and self.rng.random() < imp.loss:
            delay += imp.loss_pause  # a retransmission: this chunk and all behind it wait
            self.stats["held"] += 1
        return time.monotonic() + delay

    def _maybe_corrupt(self, data: bytes) -> bytes:
        if not self.impairment.corrupt_next or len(data) < 8:
            return data
        self.impairment.corrupt_next = False
        self.stats["corrupted"] += 1
        # Past the first 4 bytes of the chunk: a body byte, usually ciphertext or its tag.
        at = self.rng.randrange(4, len(data))
        return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]

    def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        kind = cmd.get("cmd")
        imp = self.impairment
        if kind == "impair":
            imp.latency = float(cmd.get("latency", imp.latency))
            imp.jitter = float(cmd.get("jitter", imp.jitter))
            imp.loss = float(cmd.get("loss", imp.loss))
            imp.loss_pause = float(cmd.get("loss_pause", imp.loss_pause))
        elif kind == "stall":
            imp.stalled_until = time.monotonic() + float(cmd["seconds"])
        elif kind == "cut":
            self.stats["cuts"] += 1
            for writer in list(self.writers):
                writer.transport.abort()
        elif kind == "corrupt":
            imp.corrupt_next = True
        elif kind == "retarget":
            host, port = str(cmd["target"]).rsplit(":", 1)
            self.routes[int(cmd["listen_port"])] = (host, int(port))
        elif kind == "clear":
            self.impairment = Impairment()
        elif kind != "stats":
            return {"event": "error", "message": f"unknown command {kind!r}"}
        return {"event": "ok", "cmd": kind, "stats": dict(self.stats)}


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line)
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def main(args: argparse.Namespace) -> None:
    routes: dict[int, tuple[str, int]] = {}
    listen_ip = ""
    for route in args.route:
        listen, target = route.split("=")
        listen_ip, listen_port = listen.rsplit(":", 1)
        host, port = target.rsplit(":", 1)
        routes[int(listen_port)] = (host, int(port))
    relay = Relay(routes, listen_ip, args.seed)
    servers = await relay.start()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_stdin_lines, args=(loop, commands), daemon=True).start()
    emit({"event": "ready", "routes": {str(k): f"{h}:{p}" for k, (h, p) in routes.items()}})
    deadline = loop.time() + args.lifetime
    while (remaining := deadline - loop.time()) > 0:
        try:
            line = await asyncio.wait_for(commands.get(), remaining)
        except TimeoutError:
            break
        if line is None:
            break
        try:
            emit(relay.command(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            emit({"event": "error", "message": str(exc)})
    for server in servers:
        server.close()
    for writer in list(relay.writers):
        writer.transport.abort()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--route", action="append", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=4 * 3600.0)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))

"""Baselines for the network scenarios: the same traffic with none of the product in it.

`chat` is judged against the cheapest thing that could still be called a
message protocol: the same number of length-prefixed msgpack frames, each as
large as one of the product's encrypted chat records, sent over a plain
asyncio TCP connection on loopback, decoded one by one on the other side and
acknowledged. No handshake, no encryption, no storage, no receipts per
message: whatever the product spends beyond this is the price of those.

The baseline is deliberately strong, so the ratio is conservative:
- the sender packs each message with msgpack (a product sends structured
  messages too) but coalesces frames into one `write` per batch and waits
  only when the transport buffer is over its high-water mark;
- the receiver acknowledges once per socket read (the count of frames it
  decoded), not once per frame.

It lives here, in the bench package, and nowhere else: the product has no
switch that turns encryption off.

The receiving side runs in a child process (`python -m
p2pmsg.bench.baselines serve`), like the receiving node of `chat`, so both
sides of the comparison have the same topology.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import struct
import sys
import time
from dataclasses import dataclass

import msgpack

from p2pmsg.bench.netutil import LOOPBACK

_LENGTH = struct.Struct(">I")
#: Frames per `write`: enough to amortise the syscall, small enough to interleave with acks.
BATCH = 256
#: Above this many unsent bytes the sender waits for the socket (backpressure).
HIGH_WATER = 1024 * 1024
READ_SIZE = 256 * 1024


@dataclass(frozen=True)
class BaselineResult:
    count: int
    frame_size: int  # bytes on the wire per message, length prefix included
    seconds: float

    @property
    def msgs_per_s(self) -> float:
        return self.count / self.seconds

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "msgs_per_s": round(self.msgs_per_s, 1),
            "count": self.count,
            "frame_size": self.frame_size,
            "seconds": round(self.seconds, 4),
        }


def chat_like_frame(text: str, frame_size: int, index: int) -> bytes:
    """One length-prefixed msgpack frame shaped like a chat message, `frame_size` bytes long.

    `[1, id, ts, text, ttl, pad]`: the fields of a chat message, padded with a
    bin so the frame is exactly as large as the product's record for the same text.
    """
    ident = index.to_bytes(16, "big")
    ts = time.time()
    want = frame_size - 4 - len(msgpack.packb([1, ident, ts, text, None, b""]))
    if want < 0:
        raise ValueError(f"frame_size {frame_size} is smaller than the bare message")
    # A bin's header grows by a byte past 255 bytes, so one size is out of reach by
    # padding alone; a ttl of 128 (2 bytes, where None is 1) makes up that byte.
    for pad in (want, want - 1):
        for ttl in (None, 128):
            body: bytes = msgpack.packb([1, ident, ts, text, ttl, bytes(max(0, pad))])
            if len(body) == frame_size - 4:
                return _LENGTH.pack(len(body)) + body
    raise ValueError(f"cannot shape a {frame_size}-byte frame")


def _frames(buffer: bytearray) -> list[bytes]:
    """Cut complete frames off the front of `buffer`."""
    out: list[bytes] = []
    pos, size = 0, len(buffer)
    while size - pos >= 4:
        (length,) = _LENGTH.unpack_from(buffer, pos)
        end = pos + 4 + length
        if end > size:
            break
        out.append(bytes(buffer[pos + 4 : end]))
        pos = end
    del buffer[:pos]
    return out


async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Receive frames until EOF: decode each, acknowledge each read with a count."""
    buffer = bytearray()
    total = 0
    unpackb = msgpack.unpackb
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            buffer += data
            frames = _frames(buffer)
            for body in frames:
                message = unpackb(body)
                if message[0] != 1:
                    raise ValueError("not a chat-like frame")
            if frames:
                total += len(frames)
                ack = msgpack.packb(len(frames))
                writer.write(_LENGTH.pack(len(ack)) + ack)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return total


async def send_frames(
    host: str, port: int, count: int, text: str, frame_size: int, timeout: float
) -> BaselineResult:
    """Send `count` frames to a `serve_one` peer and wait until all are acknowledged."""
    reader, writer = await asyncio.open_connection(host, port)
    transport = writer.transport
    acked = 0
    done = asyncio.get_running_loop().create_future()

    async def read_acks() -> None:
        nonlocal acked
        buffer = bytearray()
        while acked < count:
            data = await reader.read(READ_SIZE)
            if not data:
                raise ConnectionError(f"baseline receiver closed after {acked} of {count}")
            buffer += data
            for body in _frames(buffer):
                acked += msgpack.unpackb(body)
        done.set_result(None)

    async def write_all() -> None:
        index = 0
        while index < count:
            n = min(BATCH, count - index)
            transport.write(
                b"".join(chat_like_frame(text, frame_size, index + i) for i in range(n))
            )
            index += n
            if transport.get_write_buffer_size() > HIGH_WATER:
                await writer.drain()
            else:
                await asyncio.sleep(0)  # let the ack reader run, as a real peer would

    start = time.perf_counter()
    acks = asyncio.create_task(read_acks())
    try:
        await asyncio.wait_for(asyncio.gather(write_all(), acks), timeout)
        elapsed = time.perf_counter() - start
    finally:
        acks.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await writer.wait_closed()
    return BaselineResult(count, frame_size, elapsed)


async def _serve_forever_once() -> None:
    """Child side: listen, print the port, serve one connection (or see stdin close), exit."""
    finished = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve_one(reader, writer)
        finally:
            if not finished.done():
                finished.set_result(None)

    async def parent_gone() -> None:
        """EOF on stdin: the parent closed it or died; either way, stop."""
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            pass
        if not finished.done():
            finished.set_result(None)

    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(on_connect, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    watcher = asyncio.create_task(parent_gone())
    print(json.dumps({"event": "ready", "port": port, "pid": os.getpid()}), flush=True)
    try:
        await asyncio.wait_for(finished, timeout=600)
    finally:
        watcher.cancel()
        server.close()
        await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="plain-frames baseline receiver")
    parser.add_argument("mode", choices=["serve"])
    parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever_once())
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["BaselineResult", "chat_like_frame", "send_frames", "serve_one"]

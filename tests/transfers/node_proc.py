"""A real node in its own process, for tests that kill -9 it or measure its memory.

    python -m tests.transfers.node_proc --dir D --name alice --port P [--peer 127.0.0.1:Q]
        [--downloads DL] [--send PATH [--folder]] [--throttle BYTES_PER_S]

The identity and data key live in D (created on first run), so starting it
again with the same D is a restart of the same node. One JSON object per line
on stdout: {"event": "ready", ...}, {"event": "transfer", ...} for every
TransferUpdated, {"event": "security", ...} for file_* security events,
{"event": "chat", ...} for received chat messages.

`--throttle` slows the receiver's disk writes (a test hook living only in this
test program) so a test can reliably kill a process in the middle of a transfer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from p2pmsg.crypto.identity import Identity
from p2pmsg.node.api import MessageReceived, PeerConnected, SecurityEventLogged, TransferUpdated
from p2pmsg.node.node import Node
from p2pmsg.node.transfers import receiver
from p2pmsg.node.transfers.settings import TransferSettings
from tests.node.conftest import loopback_config


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def throttle_writes(bytes_per_s: float) -> None:
    original = receiver.IncomingTransfer.write

    def slow_write(self: receiver.IncomingTransfer, chunks: Any) -> int:
        started = time.monotonic()
        done = original(self, chunks)
        spent = time.monotonic() - started
        wanted = sum(len(data) for _, data in chunks) / bytes_per_s
        if wanted > spent:
            time.sleep(wanted - spent)
        return done

    receiver.IncomingTransfer.write = slow_write  # type: ignore[method-assign]


def load_identity(directory: Path) -> tuple[Identity, bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    id_file, key_file = directory / "identity.bin", directory / "data.key"
    if not id_file.exists():
        id_file.write_bytes(Identity.generate(os.urandom).to_bytes())
        key_file.write_bytes(os.urandom(32))
    return Identity.from_bytes(id_file.read_bytes()), key_file.read_bytes()


#: However a test ends, this helper never outlives it by more than this.
MAX_LIFETIME = 300.0


async def exit_when_orphaned(parent: int) -> None:
    """A test killed mid-way (a timeout, Ctrl-C) must not leave its nodes behind."""
    deadline = time.monotonic() + MAX_LIFETIME
    while os.getppid() == parent and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    os._exit(2)


async def main(args: argparse.Namespace) -> None:
    watchdog = asyncio.create_task(exit_when_orphaned(os.getppid()))
    if args.throttle:
        throttle_writes(args.throttle)
    identity, data_key = load_identity(Path(args.dir))
    files = TransferSettings(
        downloads=Path(args.downloads) if args.downloads else None,
        accept_files=True,
        min_free_after=0,
    )
    config = replace(loopback_config(files=files), port=args.port)
    node = await Node.open(identity, args.name, Path(args.dir) / "node.db", data_key, config)
    events = node.subscribe()
    await node.start()
    emit(
        {
            "event": "ready",
            "fingerprint": node.fingerprint,
            "port": node.listen_port,
            "pid": os.getpid(),
        }
    )
    if args.peer:
        host, port = args.peer.rsplit(":", 1)
        await node.add_peer(host, int(port))
    sent = False
    try:
        async for event in events:
            if isinstance(event, PeerConnected):
                emit({"event": "connected", "peer": event.peer.fingerprint})
                if args.send and not sent:
                    sent = True
                    if args.folder:
                        view = await node.send_files(event.peer.fingerprint, [args.send])
                    else:
                        view = await node.send_file(event.peer.fingerprint, args.send)
                    emit({"event": "offered", "id": view.id})
                if args.chat:
                    await node.send_text(event.peer.fingerprint, args.chat)
            elif isinstance(event, TransferUpdated):
                emit({"event": "transfer", **asdict(event.transfer)})
            elif isinstance(event, SecurityEventLogged) and str(
                event.record.get("event", "")
            ).startswith("file_"):
                emit({"event": "security", **event.record})
            elif isinstance(event, MessageReceived):
                emit({"event": "chat", "text": event.message.text, "at": time.time()})
    finally:
        watchdog.cancel()
        await node.stop()


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--peer")
    p.add_argument("--downloads")
    p.add_argument("--send")
    p.add_argument("--folder", action="store_true", help="--send PATH is a folder offer")
    p.add_argument("--chat")
    p.add_argument("--throttle", type=float, default=0.0)
    return p.parse_args()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse()))

"""One chaos node: a real profile running a real `Node`, steered through stdin.

    P2PMSG_PASSWORD=... python -m tests.chaos.driver --data-dir D --profile P --port N
        [--no-discovery] [--downloads DIR] [--fast-timeouts] [--lifetime S]

It is `p2pmsg listen --json --accept-files` with a steering wheel: the same
profile unlock (and lock), the same `Node`, discovery and file settings, but
the chaos orchestrator also tells it what to send, because two processes
cannot hold one profile and the soak needs one node process per host that
both listens and sends. Commands arrive as JSON lines on stdin and are done
one at a time, in order (so chat stays in order per conversation):

    {"req": 7, "cmd": "send", "to": FP, "text": "..."}  -> {"event": "reply", "req": 7, "id": ..}
    {"req": 8, "cmd": "file", "to": FP, "path": "/..."}
    {"req": 9, "cmd": "suite", "to": FP, "suite": "twofish-cbc-hmac-sha256"}
    {"req": 10, "cmd": "rotate", "to": FP} / "rekey" / "add_peer" (host, port)
    {"req": 11, "cmd": "status"} -> peers with an outbox, unfinished transfers, sessions
    {"req": 12, "cmd": "dump"}  -> every message and transfer in the store, and the
                                   partial files left in the downloads folder

Events are printed as they happen: `ready`, `recv` (a chat message was
stored and shown: id, peer, text), `connected` / `disconnected`, `transfer`
(final states), `security` (anything but routine traffic events). A command
that fails is answered with `"ok": false` and the error text; nothing here
may crash the node.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from p2pmsg.commands._node import node_config
from p2pmsg.commands._password import open_profile
from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import (
    MessageReceived,
    PeerConnected,
    PeerDisconnected,
    SecurityEventLogged,
    TransferUpdated,
)
from p2pmsg.node.node import Node
from p2pmsg.node.transfers.receiver import PARTIAL_DIR
from p2pmsg.protocol.limits import ProtocolConfig
from p2pmsg.store import Store

ROUTINE = frozenset(
    {
        "conn_open",
        "conn_close",
        "handshake_ok",
        "msg_sent",
        "msg_recv",
        "key_rotated",
        "cipher_changed",
        "peer_discovered",
        "peer_lost",
        "file_sent",
        "file_recv",
    }
)
FINAL = frozenset({"completed", "failed", "declined", "expired", "cancelled"})


def emit(obj: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the orchestrator went away; the lifetime ends us
        pass


def _config(args: argparse.Namespace) -> Any:
    config = node_config(args, monitor=True)
    # --fast-timeouts: short keepalive and idle timers, so a half-open session left by a
    # killed peer or a pulled cable is noticed in seconds rather than the product's minutes.
    protocol = ProtocolConfig(max_messages_per_key=args.max_per_key)
    if args.fast_timeouts:
        protocol = dataclasses.replace(
            protocol, keepalive_interval=3.0, idle_timeout=10.0, handshake_timeout=5.0
        )
    # Rules-only monitor (no scikit-learn on two shared cores); a small reserve of free
    # space so a few-MiB tmpfs can still receive, until the soak fills it on purpose.
    files = dataclasses.replace(config.files, min_free_after=256 * 1024)
    return dataclasses.replace(config, monitor_models=False, protocol=protocol, files=files)


async def dump(node: Node, downloads: Path | None) -> dict[str, Any]:
    messages = []
    for peer in await node.peers():
        for m in await node.conversation(peer.fingerprint, limit=10**7):
            messages.append(
                {"id": m.id, "peer": m.peer, "dir": m.direction, "text": m.text, "status": m.status}
            )
    # Every transfer, not the newest 100 that NodeAPI.transfers() shows a user.
    transfers = [dataclasses.asdict(t) for t in await node.files.transfers(None, limit=10**7)]
    partial: list[str] = []
    if downloads is not None and (downloads / PARTIAL_DIR).is_dir():
        partial = sorted(p.name for p in (downloads / PARTIAL_DIR).iterdir())
    return {
        "messages": messages,
        "transfers": transfers,
        "partial": partial,
        "connected": node.directory.connected(),
    }


async def execute(node: Node, cmd: dict[str, Any], downloads: Path | None) -> dict[str, Any]:
    kind = cmd["cmd"]
    if kind == "send":
        view = await node.send_text(cmd["to"], cmd["text"])
        return {"id": view.id}
    if kind == "file":
        transfer = await node.send_file(cmd["to"], cmd["path"])
        return {"id": transfer.id, "sha256": transfer.sha256}
    if kind == "suite":
        await node.set_suite(cmd["to"], cmd["suite"])
        return {}
    if kind == "rotate":
        await node.rotate(cmd["to"])
        return {}
    if kind == "rekey":
        await node.rekey(cmd["to"])
        return {}
    if kind == "add_peer":
        await node.add_peer(cmd["host"], int(cmd["port"]))
        return {}
    if kind == "dump":
        return await dump(node, downloads)
    if kind == "status":  # cheap enough to poll while the LAN settles
        waiting = await node._store.run(Store.peers_with_outbox)
        busy = [t.id for t in await node.files.transfers(None, limit=10**7) if t.state not in FINAL]
        return {
            "outbox_peers": waiting,
            "busy_transfers": busy,
            "connected": node.directory.connected(),
        }
    raise P2PMsgError(f"unknown command {kind!r}")


async def steer(node: Node, commands: asyncio.Queue[str | None], downloads: Path | None) -> None:
    while (line := await commands.get()) is not None:
        cmd = json.loads(line)
        reply: dict[str, Any] = {"event": "reply", "req": cmd.get("req"), "cmd": cmd.get("cmd")}
        try:
            reply.update(await execute(node, cmd, downloads), ok=True)
        except (P2PMsgError, OSError, ValueError, KeyError) as exc:
            reply.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        reply["at"] = time.time()
        emit(reply)


async def report(node: Node) -> None:
    async for event in node.subscribe():
        if isinstance(event, MessageReceived):
            m = event.message
            emit(
                {
                    "event": "recv",
                    "id": m.id,
                    "peer": m.peer,
                    "text": m.text,
                    "replayed": event.replayed,
                }
            )
        elif isinstance(event, PeerConnected):
            emit(
                {
                    "event": "connected",
                    "peer": event.peer.fingerprint,
                    "suite": event.session.send.suite,
                }
            )
        elif isinstance(event, PeerDisconnected):
            emit({"event": "disconnected", "peer": event.fingerprint, "reason": event.reason})
        elif isinstance(event, TransferUpdated) and event.transfer.state in FINAL:
            emit({"event": "transfer", **dataclasses.asdict(event.transfer)})
        elif isinstance(event, SecurityEventLogged) and event.record["event"] not in ROUTINE:
            emit({"event": "security", "record": event.record})


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    for line in sys.stdin:
        if line.strip():
            loop.call_soon_threadsafe(queue.put_nowait, line)
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def main(args: argparse.Namespace) -> None:
    unlocked = await asyncio.to_thread(open_profile, args, command="chaos driver")
    downloads = Path(args.downloads) if args.downloads else None
    try:
        node = await Node.open(
            unlocked.identity,
            unlocked.display_name,
            unlocked.profile.db_path,
            unlocked.data_key,
            _config(args),
        )
        await node.start()
        try:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            commands: asyncio.Queue[str | None] = asyncio.Queue()
            threading.Thread(target=_stdin_lines, args=(loop, commands), daemon=True).start()
            reporter = asyncio.create_task(report(node))
            steering = asyncio.create_task(steer(node, commands, downloads))
            emit(
                {
                    "event": "ready",
                    "fingerprint": node.fingerprint,
                    "port": node.listen_port,
                    "pid": os.getpid(),
                }
            )
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait(
                {steering, stopper}, timeout=args.lifetime, return_when=asyncio.FIRST_COMPLETED
            )
            for task in (reporter, steering, stopper):
                task.cancel()
            if steering.done() and not steering.cancelled() and steering.exception():
                raise steering.exception()  # type: ignore[misc]
        finally:
            await node.stop()
    finally:
        unlocked.close()
    emit({"event": "stopped"})


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--profile", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--interface", action="append", default=[])
    p.add_argument("--no-discovery", action="store_true")
    p.add_argument("--downloads")
    p.add_argument("--fast-timeouts", action="store_true")
    p.add_argument("--max-per-key", type=int, default=1000)
    p.add_argument("--lifetime", type=float, default=4 * 3600.0)
    args = p.parse_args(argv)
    args.accept_files = args.downloads is not None
    args.password_file = None
    args.max_file_size = None
    args.allow_ext = None
    return args


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse()))

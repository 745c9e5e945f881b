"""The far end of the two-node scenarios: a real Node in its own process.

    python -m p2pmsg.bench.peer [--suite NAME ...] [--models] [--downloads DIR]

Why a process of its own: one Python process is one core, so with both nodes
in one process the figures would measure two nodes sharing a core, not a
sender and a receiver. This one runs the product's `Node` exactly as the TUI
would (real TCP listener on 127.0.0.1, encrypted SQLite store in a temporary
directory, delivery receipts, security log and monitor), with mDNS off: the
sender adds it by 127.0.0.1:port.

Its store key is random, not derived from a password: profile unlocking is
not what is measured, and everything after it is the same code.

Speaks JSON lines. Out: `ready` {port, fingerprint, pid}, then one reply per
command. In (stdin): {"cmd": "stored", "peer": FP} -> `stored` {n} (incoming
messages from FP in the store); {"cmd": "contact", "peer": FP} -> `contact` (FP is
named: a contact, not a stranger); {"cmd": "transfers"} -> `transfers` {items};
{"cmd": "security", "addr": A, "since": TS} -> `security` {counts} (security
events from address A since wall time TS, by type, refusals and closes by reason).
EOF on stdin stops the node, deletes the directory and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from p2pmsg.bench.netutil import LOOPBACK, emit, run_child
from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.suites import SUITE_NAMES
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.node.transfers.settings import TransferSettings
from p2pmsg.protocol.limits import ProtocolConfig

#: Longest a helper lives, whatever happens to its parent.
MAX_LIFETIME = 900.0
#: Upper bound for the conversation read back to count stored messages.
MAX_COUNT = 1_000_000
#: Upper bound for the security events read back to count them.
MAX_EVENTS = 50_000


def bench_config(
    *, suites: tuple[str, ...] = SUITE_NAMES, models: bool, downloads: Path | None = None
) -> NodeConfig:
    """The product's defaults, except: loopback only, no mDNS, and the suites under test."""
    files = TransferSettings(downloads=downloads, accept_files=downloads is not None)
    return NodeConfig(
        interfaces=(LOOPBACK,),
        discovery=False,
        monitor=True,
        monitor_models=models,
        protocol=ProtocolConfig(suites=suites),
        files=files,
    )


async def wait_monitor_ready(node: Node, models: bool, timeout: float = 60.0) -> str:
    """With models on, wait until they are loaded (or refused) so loading is not measured."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        mode = (await node.monitor_status()).mode
        loading = mode.startswith("rules-only: starting") or "not loaded" in mode
        if not models or not loading or loop.time() > deadline:
            return mode
        await asyncio.sleep(0.05)


async def _security_counts(node: Node, command: dict[str, Any]) -> dict[str, int]:
    """Security events from one address since a time: by type, refusals and closes by reason."""
    counts: dict[str, int] = {}
    for event in await node.security_events(MAX_EVENTS):
        if event["addr"] != command["addr"] or event["ts"] < command["since"]:
            continue
        key, reason = event["event"], event["detail"].get("reason")
        if key in ("rate_limited", "conn_close") and reason:
            key += f"/{reason}"
        counts[key] = counts.get(key, 0) + 1
    return counts


async def _commands(node: Node) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        try:
            command = json.loads(line)
            if command.get("cmd") == "stored":
                history = await node.conversation(command["peer"], limit=MAX_COUNT)
                emit("stored", n=sum(1 for m in history if m.direction == "in"))
            elif command.get("cmd") == "contact":
                # The sender is someone this user knows (a named contact), as between
                # colleagues: a stranger's chats would stop at the stranger quota.
                await node.rename_peer(command["peer"], "bench sender")
                emit("contact")
            elif command.get("cmd") == "transfers":
                emit("transfers", items=[asdict(t) for t in await node.transfers()])
            elif command.get("cmd") == "security":
                emit("security", counts=await _security_counts(node, command))
            else:
                emit("error", message=f"unknown command {command!r}")
        except Exception as exc:  # report to the parent, keep serving
            emit("error", message=f"{type(exc).__name__}: {exc}")


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="p2pmsg-bench-peer-") as tmp:
        downloads = Path(tmp) / "downloads" if args.downloads else None
        if downloads is not None:
            downloads.mkdir()
        config = bench_config(
            suites=tuple(args.suite) or SUITE_NAMES, models=args.models, downloads=downloads
        )
        node = await Node.open(
            Identity.generate(os.urandom),
            "bench-receiver",
            Path(tmp) / "receiver.db",
            os.urandom(32),
            config,
        )
        await node.start()
        try:
            mode = await wait_monitor_ready(node, args.models)
            emit(
                "ready",
                port=node.listen_port,
                fingerprint=node.fingerprint,
                pid=os.getpid(),
                monitor=mode,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_commands(node), MAX_LIFETIME)
        finally:
            await node.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="p2pmsg bench: receiving node")
    parser.add_argument("--suite", action="append", default=[], choices=SUITE_NAMES)
    parser.add_argument("--models", action="store_true", help="load the monitor's models")
    parser.add_argument(
        "--downloads", action="store_true", help="accept incoming files into a temporary folder"
    )
    args = parser.parse_args(argv)
    return run_child(lambda: _main(args))


if __name__ == "__main__":
    sys.exit(main())

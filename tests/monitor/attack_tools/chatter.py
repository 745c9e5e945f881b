"""An honest peer that chats at a human pace, for the "ordinary life raises no alert" test.

    python -m tests.monitor.attack_tools.chatter --data-dir D --profile P --to NAME
        --seconds S [--seed N] [--downloads DIR] [--file PATH]

It runs a real `Node` with the product's configuration (mDNS discovery,
auto-connect, the live monitor with its models, the profile's unlock log),
finds NAME, and for S seconds sends it messages the way a person does: a
pause of a few seconds between most messages, now and then a burst of
quick ones, texts of varied length; with `--file` it also sends that file
once, half-way through. Everything it receives is counted. The password
comes from P2PMSG_PASSWORD; the process has a hard lifetime of S + 60 s.

Output, one JSON object per line: {"ready"}, {"connected"}, {"finished",
"sent", "delivered"} once its last message was acknowledged; it then keeps
listening until SIGTERM and prints {"done": true, "sent", "received",
"delivered", "monitor_mode", "recent_scores", "alerts"}, where `alerts` are
the ones the node raised while it ran (the test also reads them back with
`p2pmsg alerts --json`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import string
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from p2pmsg.errors import UnknownPeerError
from p2pmsg.node.api import AlertRaised, MessageReceived
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.node.transfers.settings import TransferSettings
from p2pmsg.profile import Profile, UnlockedProfile

WORDS = (
    "ok",
    "sure",
    "lunch?",
    "the build is green again",
    "see the diff I sent",
    "can you review this",
    "meeting moved to 3",
    "thanks!",
    "on my way",
    "did the tests pass on your side",
    "ship it",
    "one sec",
)


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def human_text(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(WORDS)
    length = rng.randint(20, 400)
    return (
        "".join(rng.choice(string.ascii_letters + "     .,") for _ in range(length)).strip() or "hm"
    )


def pauses(rng: random.Random) -> list[float]:
    """The gaps before the next message(s): mostly seconds, sometimes a quick burst."""
    if rng.random() < 0.15:
        return [rng.uniform(0.2, 0.7) for _ in range(rng.randint(2, 5))]
    return [min(8.0, max(0.4, rng.expovariate(1 / 2.5)))]


async def find(node: Node, name: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fingerprint = (await node.resolve_peer(name)).fingerprint
            if node.directory.session(fingerprint) is not None:
                return fingerprint
        except UnknownPeerError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not connected within {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def open_node(
    data_dir: str, profile: str, command: str, files: TransferSettings | None = None
) -> tuple[UnlockedProfile, Node]:
    """The profile unlocked (password from P2PMSG_PASSWORD) and a node with the product's
    configuration (mDNS, auto-connect, the live monitor with its models, the unlock log)."""
    unlocked = Profile(Path(data_dir), profile).open(os.environ["P2PMSG_PASSWORD"], command=command)
    config = NodeConfig(
        files=files or TransferSettings(), profile_events=unlocked.profile.events_path
    )
    node = await Node.open(
        unlocked.identity,
        unlocked.display_name,
        unlocked.profile.db_path,
        unlocked.data_key,
        config,
    )
    return unlocked, node


async def delivered_count(node: Node, ids: list[str], timeout: float) -> int:
    """How many of these messages were acknowledged (each waited for up to `timeout`)."""
    delivered = 0
    for message_id in ids:
        delivered += await node.wait_delivered(message_id, timeout) in ("delivered", "read")
    return delivered


async def monitor_report(node: Node) -> dict[str, Any]:
    """What the monitor did: its mode and the anomaly scores of the windows it scored."""
    monitor = await node.monitor_status()
    return {"monitor_mode": monitor.mode, "recent_scores": list(monitor.recent_scores)}


async def chat(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)  # noqa: S311 - pacing a simulated person, not crypto
    files = TransferSettings(
        downloads=Path(args.downloads) if args.downloads else None,
        accept_files=args.downloads is not None,
    )
    unlocked, node = await open_node(args.data_dir, args.profile, "chatter", files)
    received = 0
    raised: list[dict[str, Any]] = []

    async def count(events: Any) -> None:
        nonlocal received
        async for event in events:
            if isinstance(event, MessageReceived):
                received += 1
            elif isinstance(event, AlertRaised):
                raised.append(asdict(event.alert))

    events = node.subscribe()
    await node.start()
    counter = asyncio.create_task(count(events))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        emit({"ready": True, "fingerprint": node.fingerprint})
        peer = await find(node, args.to, 30.0)
        emit({"connected": peer})
        ids: list[str] = []
        started = time.monotonic()
        file_sent = args.file is None
        while time.monotonic() - started < args.seconds and not stop.is_set():
            for pause in pauses(rng):
                await asyncio.sleep(pause)
                ids.append((await node.send_text(peer, human_text(rng))).id)
            if not file_sent and time.monotonic() - started > args.seconds / 2:
                await node.send_file(peer, args.file)
                file_sent = True
        delivered = await delivered_count(node, ids, 10.0)  # everything said was heard
        emit({"finished": True, "sent": len(ids), "delivered": delivered})
        await stop.wait()  # the peer may still be talking: the test says when both are done
        emit(
            {
                "done": True,
                "sent": len(ids),
                "received": received,
                "delivered": delivered,
                **(await monitor_report(node)),
                "alerts": raised,
            }
        )
    finally:
        counter.cancel()
        await node.stop()
        unlocked.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--downloads")
    parser.add_argument("--file")
    args = parser.parse_args()

    async def bounded() -> None:
        await asyncio.wait_for(chat(args), args.seconds + 60)

    asyncio.run(bounded())
    return 0


if __name__ == "__main__":
    sys.exit(main())

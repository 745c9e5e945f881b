"""A person's ordinary working day on the LAN, compressed: the benign side of the monitor.

    python -m tests.monitor.attack_tools.ordinary_day --data-dir D --profile P
        --to NAME [--to NAME...] [--verify NAME...] [--send NAME:PATH...]
        --seconds S [--seed N]

It runs a real `Node` with the product's configuration (mDNS, auto-connect, the
live monitor with its models, the profile's unlock log) and does what people
do, all of which must raise no alert:
- finds every `--to` peer and marks the `--verify` ones verified (the others stay
  first-seen);
- sends the `--send` files one after the other (large ones included), waiting for
  each to complete; a receiver may be killed and restarted meanwhile, and the
  transfer resumes;
- chats with every peer at a human pace, with bursts;
- switches the cipher suite with one peer and rotates keys with another.
The password comes from P2PMSG_PASSWORD; the process has a hard lifetime of
S + 600 s (large transfers on a slow machine).

Output, one JSON object per line: {"ready"}, {"connected": [fingerprints]},
{"progress": name, "done", "size"} about twice a second while a file moves,
{"finished", "sent", "delivered", "transfers": {name: state}} once every message
was acknowledged and every file ended; then, on SIGTERM, {"done": true,
"monitor_mode", "recent_scores", "alerts"}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from p2pmsg.node.api import AlertRaised, TransferView
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.profile import Profile
from tests.monitor.attack_tools.chatter import emit, find, human_text, pauses

#: A transfer in one of these states will not move again by itself.
ENDED = ("completed", "failed", "declined", "expired", "cancelled")


async def send_files(
    node: Node, sends: list[tuple[str, Path]], peers: dict[str, str], deadline: float
) -> dict[str, str]:
    """Each file in turn, to completion (or the deadline); their end states by name."""
    outcome: dict[str, str] = {}
    for name, path in sends:
        offered = await node.send_file(peers[name], str(path))
        view: TransferView = offered
        while time.monotonic() < deadline:
            [view] = [t for t in await node.transfers(peers[name]) if t.id == offered.id]
            emit({"progress": path.name, "peer": name, "done": view.bytes_done, "size": view.size})
            if view.state in ENDED:
                break
            await asyncio.sleep(0.5)
        outcome[path.name] = view.state
    return outcome


async def chat(node: Node, peers: list[str], rng: random.Random, seconds: float) -> list[str]:
    ids: list[str] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for pause in pauses(rng):
            await asyncio.sleep(pause)
            try:
                ids.append((await node.send_text(rng.choice(peers), human_text(rng))).id)
            except Exception as exc:  # a person sees the error and goes on
                emit({"send_error": str(exc)})
    return ids


async def day(args: argparse.Namespace) -> None:
    unlocked = Profile(Path(args.data_dir), args.profile).open(
        os.environ["P2PMSG_PASSWORD"], command="ordinary_day"
    )
    rng = random.Random(args.seed)  # noqa: S311 - pacing a simulated person, not crypto
    config = NodeConfig(profile_events=unlocked.profile.events_path)
    node = await Node.open(
        unlocked.identity,
        unlocked.display_name,
        unlocked.profile.db_path,
        unlocked.data_key,
        config,
    )
    raised: list[dict[str, Any]] = []

    async def collect(events: Any) -> None:
        async for event in events:
            if isinstance(event, AlertRaised):
                raised.append(asdict(event.alert))

    events = node.subscribe()
    await node.start()
    collector = asyncio.create_task(collect(events))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        emit({"ready": True, "fingerprint": node.fingerprint})
        peers = {name: await find(node, name, 45.0) for name in args.to}
        for name in args.verify:
            await node.set_verified(peers[name], True)
        emit({"connected": sorted(peers.values())})
        sends = [(name, Path(path)) for name, _, path in (s.partition(":") for s in args.send)]
        deadline = time.monotonic() + args.seconds + 540
        files = asyncio.create_task(send_files(node, sends, peers, deadline))
        talk = asyncio.create_task(chat(node, list(peers.values()), rng, args.seconds))
        await asyncio.sleep(min(10.0, args.seconds / 4))
        first, *rest = list(peers.values())
        await node.set_suite(first, "chacha20-poly1305")  # a person trying another cipher
        await node.rotate(rest[0] if rest else first)  # and rotating keys by hand
        ids = await talk
        transfers = await files
        delivered = 0
        for message_id in ids:
            outcome = await node.wait_delivered(message_id, 30.0)
            delivered += outcome in ("delivered", "read")
        emit({"finished": True, "sent": len(ids), "delivered": delivered, "transfers": transfers})
        await stop.wait()
        monitor = await node.monitor_status()
        emit(
            {
                "done": True,
                "monitor_mode": monitor.mode,
                "recent_scores": list(monitor.recent_scores),
                "alerts": raised,
            }
        )
    finally:
        collector.cancel()
        await node.stop()
        unlocked.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--to", action="append", required=True)
    parser.add_argument("--verify", action="append", default=[])
    parser.add_argument("--send", action="append", default=[])
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    async def bounded() -> None:
        await asyncio.wait_for(day(args), args.seconds + 600)

    asyncio.run(bounded())
    return 0


if __name__ == "__main__":
    sys.exit(main())

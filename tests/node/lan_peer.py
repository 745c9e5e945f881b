"""A scripted p2pmsg peer for the LAN tests, run as a process inside a namespace host.

    python -m tests.node.lan_peer send-many --data-dir D --profile P --to NAME --count N
    python -m tests.node.lan_peer drain --data-dir D --profile P
    python -m tests.node.lan_peer impostor --data-dir D --profile P --claim-fp FP --claim-name N
    python -m tests.node.lan_peer fake-adverts --data-dir D --profile P --claim-name N --count K

`send-many` stores and sends N numbered messages at a steady pace, printing
`{"stored": i, "id": ...}` as each is committed, then waits until its outbox
is empty (`{"drained": true}`). `drain` sends nothing new: it only runs the
node until the outbox left by an earlier (killed) run is delivered.
`impostor` advertises someone else's fingerprint and name over mDNS while
listening with its own key, and prints what reaches it. `fake-adverts` advertises K
random fingerprints that nobody can prove, all under the name N. The password comes
from P2PMSG_PASSWORD. Every mode has a hard lifetime (`--lifetime`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

from p2pmsg.errors import UnknownPeerError
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.profile import Profile, UnlockedProfile
from p2pmsg.store import Store


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _node(unlocked: UnlockedProfile, **config: Any) -> Node:
    node = await Node.open(
        unlocked.identity,
        unlocked.display_name,
        unlocked.profile.db_path,
        unlocked.data_key,
        NodeConfig(monitor=False, **config),
    )
    await node.start()
    return node


async def _outbox_empty(node: Node) -> bool:
    return not await node._store.run(Store.peers_with_outbox)


async def send_many(args: argparse.Namespace, unlocked: UnlockedProfile) -> None:
    node = await _node(unlocked, auto_connect=False)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            try:
                fingerprint = (await node.resolve_peer(args.to)).fingerprint
                break
            except UnknownPeerError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)
        emit({"target": fingerprint})
        for i in range(args.count):
            view = await node.send_text(fingerprint, f"{args.prefix} {i}")
            emit({"stored": i, "id": view.id})
            await asyncio.sleep(args.interval)
        while not await _outbox_empty(node):
            await asyncio.sleep(0.05)
        emit({"drained": True})
    finally:
        await node.stop()


async def drain(args: argparse.Namespace, unlocked: UnlockedProfile) -> None:
    node = await _node(unlocked, auto_connect=False)
    try:
        while not await _outbox_empty(node):
            await asyncio.sleep(0.05)
        emit({"drained": True})
    finally:
        await node.stop()


async def impostor(args: argparse.Namespace, unlocked: UnlockedProfile) -> None:
    """An attacker does not use our Discovery class (it refuses to advertise an identity
    another host already advertises): it registers its own instance name whose TXT
    record claims the victim's fingerprint and name."""
    import socket

    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    from p2pmsg.node.net.advert import SERVICE_TYPE
    from p2pmsg.node.net.discovery import local_addresses
    from p2pmsg.node.net.netguard import assert_mdns_allowed

    assert_mdns_allowed()
    node = await _node(unlocked, discovery=False)
    received = node.subscribe()
    zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        f"evil-{node.fingerprint[:12]}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(a) for a in local_addresses()],
        port=node.listen_port,
        properties={"v": "1", "fp": args.claim_fp, "name": args.claim_name},
        server=f"evil-{node.fingerprint[:12]}.local.",
    )
    await (await zc.async_register_service(info))
    emit({"ready": True, "fingerprint": node.fingerprint, "port": node.listen_port})
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def report() -> None:
        async for event in received:
            emit({"event": type(event).__name__})

    reporter = asyncio.create_task(report())
    try:
        await stop.wait()
    finally:
        reporter.cancel()
        await zc.async_unregister_all_services()
        await zc.async_close()
        await node.stop()


async def fake_adverts(args: argparse.Namespace, unlocked: UnlockedProfile) -> None:
    """Adverts anyone on the LAN can send: made-up fingerprints under someone's name,
    with no key behind them (the port is closed)."""
    import hashlib
    import socket

    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    from p2pmsg.node.net.advert import SERVICE_TYPE
    from p2pmsg.node.net.discovery import local_addresses
    from p2pmsg.node.net.netguard import assert_mdns_allowed

    assert_mdns_allowed()
    zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    fingerprints = []
    for i in range(args.count):
        fp = hashlib.sha256(os.urandom(32)).hexdigest()
        fingerprints.append(fp)
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"fake{i}-{fp[:12]}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in local_addresses()],
            port=9,
            properties={"v": "1", "fp": fp, "name": args.claim_name},
            server=f"fake{i}-{fp[:12]}.local.",
        )
        await (await zc.async_register_service(info))
    emit({"ready": True, "fingerprints": fingerprints})
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await zc.async_unregister_all_services()
        await zc.async_close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("send-many", "drain", "impostor", "fake-adverts"))
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--to")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--prefix", default="message")
    parser.add_argument("--claim-fp")
    parser.add_argument("--claim-name")
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()
    unlocked = Profile(args.data_dir, args.profile).open(
        os.environ["P2PMSG_PASSWORD"], command=f"lan_peer {args.mode}"
    )
    mode = {
        "send-many": send_many,
        "drain": drain,
        "impostor": impostor,
        "fake-adverts": fake_adverts,
    }[args.mode]

    async def bounded() -> None:
        await asyncio.wait_for(mode(args, unlocked), args.lifetime)

    try:
        asyncio.run(bounded())
    finally:
        unlocked.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run p2pmsg discovery in a LAN-harness host and print what it sees.

    python -m p2pmsg.bench.discovery_probe --fp HEX --name NAME --port N [--duration S]

One JSON object per line on stdout: `ready` (with the announced addresses),
then `advertised` / `withdrawn` for each discovery event, `ignored` (the
counters of rejected advertisements) when they change, then `stopped`.
`t` is seconds since the probe started. SIGTERM or SIGINT ends it cleanly (our record is
withdrawn with goodbye packets); `--duration` bounds it regardless.

`--hostile-txt KEY=VALUE ...` instead advertises a raw, unchecked record
(for tests of what an attacker can put on the LAN); it still refuses to run
in the host namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from typing import Any

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.net.advert import SERVICE_TYPE, PeerAdvertised
from p2pmsg.node.net.discovery import Discovery, DiscoveryEvent, local_addresses
from p2pmsg.node.net.netguard import assert_mdns_allowed

_START = time.monotonic()


def emit(event: str, **fields: Any) -> None:
    print(
        json.dumps({"event": event, "t": round(time.monotonic() - _START, 3), **fields}), flush=True
    )


def report(event: DiscoveryEvent) -> None:
    if isinstance(event, PeerAdvertised):
        emit(
            "advertised",
            fp=event.fingerprint_hex,
            name=event.name,
            addresses=list(event.addresses),
            port=event.port,
            version=event.version,
        )
    else:
        emit("withdrawn", fp=event.fingerprint_hex)


async def run_discovery(args: argparse.Namespace, stop: asyncio.Event) -> None:
    discovery = Discovery(
        fingerprint_hex=args.fp,
        name=args.name,
        port=args.port,
        interfaces=args.interface,
        address_check_interval=args.check_interval,
    )
    await discovery.start()
    try:
        emit("ready", announced=list(discovery.announced_addresses))
        # The queue (not a callback) is what a Node consumes, so exercise that path.
        reporters = [
            asyncio.create_task(report_events(discovery)),
            asyncio.create_task(report_ignored(discovery)),
        ]
        await wait_or_timeout(stop, args.duration)
        for task in reporters:
            task.cancel()
    finally:
        await discovery.stop()
    emit("stopped", ignored=dict(discovery.ignored))


async def report_events(discovery: Discovery) -> None:
    while True:
        report(await discovery.events.get())


async def report_ignored(discovery: Discovery) -> None:
    """Emit `ignored` with the counters whenever they change (polled: they are plain ints)."""
    last: dict[str, int] = {}
    while True:
        await asyncio.sleep(0.2)
        current = dict(discovery.ignored)
        if current != last:
            last = current
            emit("ignored", counts=current)


async def run_hostile(args: argparse.Namespace, stop: asyncio.Event) -> None:
    assert_mdns_allowed()
    properties: dict[str, str] = {}
    for item in args.hostile_txt:
        key, _, value = item.partition("=")
        properties[key] = value
    aiozc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        f"{args.instance}.{SERVICE_TYPE}",
        port=args.port,
        properties=properties,
        server=f"{args.instance}.local.",
        parsed_addresses=list(local_addresses()),
    )
    try:
        await (await aiozc.async_register_service(info))
        emit("ready", announced=list(local_addresses()))
        await wait_or_timeout(stop, args.duration)
    finally:
        await aiozc.async_close()
    emit("stopped")


async def wait_or_timeout(stop: asyncio.Event, duration: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=duration)


async def main_async(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if args.hostile_txt:
            await run_hostile(args, stop)
        else:
            await run_discovery(args, stop)
    except P2PMsgError as exc:
        emit("error", error=type(exc).__name__, message=str(exc))
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp", default="", help="fingerprint, 64 lowercase hex digits")
    parser.add_argument("--name", default="probe")
    parser.add_argument("--port", type=int, default=40000)
    parser.add_argument("--interface", action="append", default=[])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--check-interval", type=float, default=1.0)
    parser.add_argument("--hostile-txt", nargs="*", default=[])
    parser.add_argument("--instance", default="hostile")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

"""`p2pmsg listen [--json]`: run the node headless and print what happens, until stopped.

One line per event on stdout (a JSON object with `--json`, for scripts and
tests; a readable line otherwise), starting with a `ready` line that says who
and where we are. SIGINT or SIGTERM stops it in order: bye to every peer,
queued work flushed, exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator

from p2pmsg.commands._files import add_receive_options
from p2pmsg.commands._node import add_network_options, event_json, event_text, running_node
from p2pmsg.node.api import NodeEvent
from p2pmsg.sanitize import printable


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "listen",
        parents=[common],
        help="run headless, printing one line per event",
        description="Run the node without the terminal app: discover peers, accept "
        "connections, receive and acknowledge messages, and print one line per "
        "event until interrupted (SIGINT/SIGTERM).",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--no-monitor", action="store_true", help="do not run the live security monitor")
    add_network_options(p)
    add_receive_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_listen(args))


def _emit(line: str) -> None:
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away; keep serving peers
        pass


async def _listen(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    subscriptions: list[AsyncIterator[NodeEvent]] = []
    async with running_node(
        args,
        "p2pmsg listen",
        monitor=not args.no_monitor,
        prepare=lambda n: subscriptions.append(n.subscribe()),
    ) as node:
        events = subscriptions[-1]  # subscribed before start: nothing is missed
        discovery = node.discovery
        ready = {
            "event": "ready",
            "fingerprint": node.fingerprint,
            "name": node.display_name,
            "port": node.listen_port,
            "addresses": list(discovery.announced_addresses) if discovery else [],
            "discovery": discovery is not None,
        }
        if args.json:
            _emit(json.dumps(ready))
        else:
            _emit(
                f"listening as {printable(node.display_name)} on port {node.listen_port} "
                f"(fingerprint {node.fingerprint[:16]}); Ctrl-C to stop"
            )
        names: dict[str, str] = {r.fingerprint: r.name for r in node.directory.records()}
        pump = asyncio.create_task(_print_events(events, args.json, names))
        await stop.wait()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    _emit(json.dumps({"event": "stopped"}) if args.json else "stopped")
    return 0


async def _print_events(
    events: AsyncIterator[NodeEvent], as_json: bool, names: dict[str, str]
) -> None:
    async for event in events:
        line = event_json(event) if as_json else event_text(event, names)
        if line is not None:
            _emit(line)

"""`p2pmsg listen [--json]`: run the node headless and print what happens, until stopped.

One line per event on stdout (a JSON object with `--json`, for scripts and
tests; a readable line otherwise), starting with a `ready` line that says who
and where we are. SIGINT or SIGTERM stops it in order: bye to every peer,
queued work flushed, exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from p2pmsg.commands._files import add_receive_options
from p2pmsg.commands._node import (
    add_network_options,
    event_json,
    event_text,
    json_line,
    running_node,
)
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


class _Printer:
    """Prints each node event as it is published (see `EventBus.watch`): a message's
    line is on stdout before its delivery receipt is written. Events published while
    the node starts are held until the `ready` line, which scripts expect first."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.names: dict[str, str] = {}  # fingerprint -> claimed name (raw; sanitised)
        self._held: list[NodeEvent] | None = []

    def __call__(self, event: NodeEvent) -> None:
        if self._held is not None:
            self._held.append(event)
            return
        line = event_json(event) if self.as_json else event_text(event, self.names)
        if line is not None:
            _emit(line)

    def ready(self, line: str, names: dict[str, str]) -> None:
        _emit(line)
        self.names.update(names)
        held, self._held = self._held or [], None
        for event in held:
            self(event)


async def _listen(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    printer = _Printer(args.json)
    async with running_node(
        args,
        "p2pmsg listen",
        monitor=not args.no_monitor,
        prepare=lambda n: n.bus.watch(printer),  # before start: nothing is missed
    ) as node:
        discovery = node.discovery
        ready = {
            "event": "ready",
            "fingerprint": node.fingerprint,
            "name": node.display_name,
            "port": node.listen_port,
            "addresses": list(discovery.announced_addresses) if discovery else [],
            "discovery": discovery is not None,
        }
        printer.ready(
            json_line(ready)
            if args.json
            else f"listening as {printable(node.display_name)} on port {node.listen_port} "
            f"(fingerprint {node.fingerprint[:16]}); Ctrl-C to stop",
            {r.fingerprint: r.name for r in node.directory.records()},
        )
        await stop.wait()
    _emit(json_line({"event": "stopped"}) if args.json else "stopped")
    return 0

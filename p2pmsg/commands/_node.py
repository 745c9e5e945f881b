"""What the headless network commands share: starting a node, and printing its events.

`running_node` opens the profile (taking its lock, so a second process on the
same profile fails with a message naming the holder), starts a `Node` with
the common options (`--port`, `--interface`), and always stops it in order:
bye to every peer, queued work flushed, store closed, lock released.
`event_json` and `event_text` turn a `NodeEvent` into the forms `listen`
prints: JSON (ensure_ascii, so any character a peer sends is an escape) or a
human line in which every peer-controlled string (names, chat text, reasons,
alert and event details) went through `p2pmsg.sanitize` first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from p2pmsg.commands._files import receive_settings
from p2pmsg.commands._password import open_profile
from p2pmsg.errors import ConfigError, DiscoveryError, UnknownPeerError
from p2pmsg.node import api
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.sanitize import continuation, printable

EXIT_QUEUED = 3  # `send`: stored and queued, not (yet) delivered


def add_network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-discovery",
        action="store_true",
        help="do not use mDNS; reach peers only by their added host:port",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log what the node does (dials, sessions) to stderr",
    )


def node_config(
    args: argparse.Namespace,
    *,
    auto_connect: bool = True,
    monitor: bool = True,
    monitor_models: bool = True,
) -> NodeConfig:
    port = int(getattr(args, "port", 0) or 0)
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0-65535, got {port}")
    return NodeConfig(
        interfaces=tuple(getattr(args, "interface", ()) or ()),
        port=port,
        discovery=not getattr(args, "no_discovery", False),
        auto_connect=auto_connect,
        monitor=monitor,
        monitor_models=monitor_models,
        files=receive_settings(args),
    )


@contextlib.asynccontextmanager
async def running_node(
    args: argparse.Namespace,
    command: str,
    *,
    auto_connect: bool = True,
    monitor: bool = True,
    monitor_models: bool = True,
    prepare: Callable[[Node], None] | None = None,
) -> AsyncIterator[Node]:
    """`monitor_models=False`: the monitor runs on its rules alone (short-lived commands,
    which should not pay for loading scikit-learn but must not go unwatched either).
    `prepare(node)` runs before the node starts (e.g. to subscribe to its events, so
    nothing that happens during start-up is missed)."""
    if getattr(args, "verbose", False):
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s"
        )
        for noisy in ("asyncio", "zeroconf"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    unlocked = await asyncio.to_thread(open_profile, args, command=command)
    try:
        config = dataclasses.replace(
            node_config(
                args, auto_connect=auto_connect, monitor=monitor, monitor_models=monitor_models
            ),
            profile_events=unlocked.profile.events_path,
        )
        node = await Node.open(
            unlocked.identity,
            unlocked.display_name,
            unlocked.profile.db_path,
            unlocked.data_key,
            config,
        )
        if prepare is not None:
            prepare(node)
        try:
            try:
                await node.start()
            except DiscoveryError as exc:
                # Host:port peers still work without multicast; say so and go on.
                print(f"p2pmsg: warning: discovery is off: {exc}", file=sys.stderr)
                await node.stop()
                node = await Node.open(
                    unlocked.identity,
                    unlocked.display_name,
                    unlocked.profile.db_path,
                    unlocked.data_key,
                    dataclasses.replace(config, discovery=False),
                )
                if prepare is not None:
                    prepare(node)
                await node.start()
            yield node
        finally:
            await node.stop()
    finally:
        unlocked.close()


async def find_peer(node: Node, query: str, wait: float) -> str:
    """Resolve PEER to a fingerprint, giving discovery up to `wait` seconds to find a
    peer this profile has not met yet (a one-shot command starts with an empty view)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            return (await node.resolve_peer(query)).fingerprint
        except UnknownPeerError:
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(0.1)


# --- printing events -----------------------------------------------------------------------


def event_name(event: api.NodeEvent) -> str:
    """`PeerDiscovered` -> `peer_discovered`; `SecurityEventLogged` -> `security_event`."""
    if isinstance(event, api.SecurityEventLogged):
        return "security_event"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def event_json(event: api.NodeEvent) -> str:
    record: dict[str, Any] = {"event": event_name(event)}
    record.update(dataclasses.asdict(event))
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True, default=str)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _who(view: api.PeerView) -> str:
    return f"{printable(view.name)} ({printable(view.short_fingerprint)})"


#: The continuation lines of a multi-line message start under its first line's text
#: column of "[12:00:00] ", never at column 0: every other line `listen` prints starts
#: at column 0, so a peer's "\n[12:00:00] alice: pay bob" cannot pass for one of them.
MESSAGE_INDENT = " " * len("[00:00:00] ")


def event_text(event: api.NodeEvent, names: dict[str, str]) -> str | None:
    """A human line (a message may continue on indented lines), or None for events not
    worth a line (status churn). `names` (fingerprint -> display name) holds what
    peers claimed, raw; it is sanitised here, where it is printed."""

    def name(fp: str) -> str:
        return printable(names.get(fp, fp[:16]))

    if isinstance(event, api.MessageReceived):
        m = event.message
        text = "(disappeared)" if m.text is None else continuation(m.text, MESSAGE_INDENT)
        again = " (again: stored before a crash here)" if event.replayed else ""
        return f"[{_clock(m.created)}] {name(m.peer)}{again}: {text}"
    if isinstance(event, api.MessageStatusChanged):
        return None
    if isinstance(event, api.PeerDiscovered | api.PeerUpdated):
        names[event.peer.fingerprint] = event.peer.name
        return (
            f"-- discovered {_who(event.peer)}" if isinstance(event, api.PeerDiscovered) else None
        )
    if isinstance(event, api.PeerConnected):
        names[event.peer.fingerprint] = event.peer.name
        badge = "verified" if event.peer.verified else "not verified"
        return f"-- connected to {_who(event.peer)}, {badge}, suite {event.session.send.suite}"
    if isinstance(event, api.PeerDisconnected):
        return f"-- disconnected from {name(event.fingerprint)} ({printable(event.reason)})"
    if isinstance(event, api.PeerLost):
        return f"-- {name(event.fingerprint)} stopped advertising"
    if isinstance(event, api.AddressDialed):
        where = f"{printable(event.host)}:{event.port}"
        if event.peer is not None:
            return f"-- reached {where}: {_who(event.peer)}"
        return f"-- could not reach {where}: {printable(event.problem or '?')}; trying again later"
    if isinstance(event, api.NameClashed):
        return f"!! WARNING: {printable(event.detail)} See `p2pmsg trust {event.fingerprint[:16]}`."
    if isinstance(event, api.PairingFinished):
        outcome = "verified each other" if event.ok else f"failed ({printable(event.reason)})"
        return f"-- pairing with {name(event.peer)}: {outcome}"
    if isinstance(event, api.AlertRaised):
        a = event.alert
        return f"!! alert [{printable(a.severity)}] {printable(a.kind)}: {printable(a.message)}"
    if isinstance(event, api.SecurityEventLogged):
        record = event.record
        if record["event"] in (
            "conn_open",
            "conn_close",
            "handshake_ok",
            "msg_sent",
            "msg_recv",
            "key_rotated",
            "peer_discovered",
            "peer_lost",
        ):
            return None
        who = (
            name(str(record["peer"]))
            if record.get("peer")
            else printable(str(record.get("addr") or "-"))
        )
        detail = record.get("detail")
        reason = printable(str(detail.get("reason", ""))) if isinstance(detail, dict) else ""
        return f"!! security: {printable(str(record['event']))} from {who} {reason}".rstrip()
    if isinstance(event, api.SessionChanged):
        return None
    if isinstance(event, api.MessagesExpired):
        return f"-- {len(event.ids)} disappearing message(s) from {name(event.peer)} deleted"
    return None


def parse_host_port(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\s\[\]]+):(\d{1,5})", text.strip())
    if match is None:
        raise ConfigError(f"expected HOST:PORT (or [IPv6]:PORT), got {text!r}")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise ConfigError(f"port must be 1-65535, got {port}")
    return host, port

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

from p2pmsg.commands._alert_text import evidence_text
from p2pmsg.commands._files import receive_settings
from p2pmsg.commands._password import open_profile
from p2pmsg.errors import ConfigError, DiscoveryError, UnknownPeerError
from p2pmsg.node import api
from p2pmsg.node.config import NodeConfig
from p2pmsg.node.node import Node
from p2pmsg.node.transfers.receiver import human_size
from p2pmsg.sanitize import clip, continuation, printable

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


def json_line(record: dict[str, Any]) -> str:
    """One JSON line as every command prints it: compact, ASCII only (a peer's characters
    become escapes), so all the lines of one stream look alike to a script."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True, default=str)


def event_json(event: api.NodeEvent) -> str:
    record: dict[str, Any] = {"event": event_name(event)}
    record.update(dataclasses.asdict(event))
    return json_line(record)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _who(view: api.PeerView) -> str:
    return f"{printable(view.name)} ({printable(view.short_fingerprint)})"


def introduction_text(view: api.PeerView) -> str:
    """ "introduced by Bob in 'team'" (the first note; "+N more" for the rest), or "".
    Both names are peer text (a group's claims): clipped and made inert here."""
    if not view.introduced_by:
        return ""
    first = view.introduced_by[0]
    who = printable(clip(first.introducer_name, 24)) or first.introducer[:16]
    group = printable(clip(first.group_name, 32)) or first.group[:8]
    more = len(view.introduced_by) - 1
    return f"introduced by {who} in '{group}'" + (f" (+{more} more)" if more else "")


#: The continuation lines of a multi-line message start under its first line's text
#: column of "[12:00:00] ", never at column 0: every other line `listen` prints starts
#: at column 0, so a peer's "\n[12:00:00] alice: pay bob" cannot pass for one of them.
MESSAGE_INDENT = " " * len("[00:00:00] ")


#: The security events that deserve a `!!` line, in words. The others (unlock_ok,
#: connections, handshakes, messages, files, rotations, discovery) are ordinary use: a
#: file's outcome has its own line (from its transfer), the rest none.
SECURITY_WORDS = {
    "unlock_fail": "wrong password for this profile",
    "handshake_fail": "handshake failed",
    "identity_changed": "a known name or key changed",
    "downgrade_rejected": "cipher downgrade refused",
    "decrypt_fail": "a record failed to decrypt",
    "replay_rejected": "a replayed record was refused",
    "frame_rejected": "a malformed frame was refused",
    "rate_limited": "a peer hit a limit",
    "file_integrity_fail": "a received file failed its SHA-256 check",
}


def _transfer_text(view: api.TransferView, name: Callable[[str], str]) -> str | None:
    """One line when a transfer ends (its progress is the sending command's business).
    A folder offer has a line when it is offered too (its count and total size, before
    it is accepted) and when it ends; the files inside it have none of their own."""
    if view.bundle_id is not None:
        return None
    if view.files:
        return _folder_text(view, name)
    file = f"{printable(view.name)} ({human_size(view.size)})"
    if view.state == "completed" and view.direction == "in":
        saved = f", saved as {printable(view.path)}" if view.path else ""
        return f"-- received {file} from {name(view.peer)}, SHA-256 verified{saved}"
    if view.state == "completed":
        return f"-- sent {file} to {name(view.peer)}, verified by the receiver"
    if view.state in ("failed", "declined", "expired", "cancelled"):
        way = f"from {name(view.peer)}" if view.direction == "in" else f"to {name(view.peer)}"
        why = f": {printable(view.error)}" if view.error else ""
        return f"-- {file} {way} not delivered ({view.state}){why}"
    return None


def _folder_text(view: api.TransferView, name: Callable[[str], str]) -> str | None:
    what = f"folder {printable(view.name)} ({view.files} files, {human_size(view.size)})"
    if view.state == "offered" and view.direction == "in":
        return f"-- {name(view.peer)} offers the {what}, id {view.id}"
    if view.state == "completed" and view.direction == "in":
        saved = f", saved in {printable(view.path)}" if view.path else ""
        return f"-- received {what} from {name(view.peer)}, each SHA-256 verified{saved}"
    if view.state == "completed":
        return f"-- sent {what} to {name(view.peer)}, verified by the receiver"
    if view.state in ("failed", "declined", "expired", "cancelled"):
        way = f"from {name(view.peer)}" if view.direction == "in" else f"to {name(view.peer)}"
        why = f": {printable(view.error)}" if view.error else ""
        done = f", {view.files_done} of {view.files} files arrived" if view.files_done else ""
        return f"-- {what} {way} not delivered ({view.state}{done}){why}"
    return None


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
        intro = "" if event.peer.verified else introduction_text(event.peer)
        return (
            f"-- connected to {_who(event.peer)}, {badge}{f', {intro}' if intro else ''}, "
            f"suite {event.session.send.suite}"
        )
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
        who = name(a.peer) if a.peer else printable(a.addr or "this device")
        why = evidence_text(a.evidence)
        return (
            f"!! alert [{printable(a.severity)}] {printable(a.kind)} ({who}): "
            f"{printable(a.message)}{f' [why: {why}]' if why else ''}"
        )
    if isinstance(event, api.AlertStateChanged):
        said = {"acknowledged": "acknowledged", "dismissed": "dismissed"}
        by_state: dict[str, list[str]] = {}
        for a in event.alerts:
            by_state.setdefault(said.get(a.state, "marked a false alarm"), []).append(str(a.id))
        parts = [f"{', '.join(ids)} {what}" for what, ids in by_state.items()]
        return f"-- alerts: {'; '.join(parts)} ({event.counts.unread} unread)"
    if isinstance(event, api.SecurityEventLogged):
        record = event.record
        what = SECURITY_WORDS.get(str(record["event"]))
        if what is None:  # ordinary use, said elsewhere (or not worth a line)
            return None
        if record.get("peer"):
            who = f" from {name(str(record['peer']))}"
        elif record.get("addr"):
            who = f" from {printable(str(record['addr']))}"
        else:
            who = ""
        detail = record.get("detail")
        reason = printable(str(detail.get("reason", ""))) if isinstance(detail, dict) else ""
        line = f"!! security: {what}{who} ({printable(str(record['event']))})"
        return f"{line}: {reason}" if reason else line
    if isinstance(event, api.TransferUpdated):
        return _transfer_text(event.transfer, name)
    if isinstance(event, api.SessionChanged):
        return None
    if isinstance(event, api.MessagesExpired):
        return f"-- {len(event.ids)} disappearing message(s) from {name(event.peer)} deleted"
    if isinstance(event, api.GroupMessageReceived):
        post = event.message
        body = continuation(post.text or "", MESSAGE_INDENT)
        author = f"{printable(post.author_name)} in {printable(post.group_name)}"
        return f"[{_clock(post.created)}] {author}: {body}"
    if isinstance(event, api.GroupMessagesExpired):
        return f"-- {len(event.ids)} disappearing group message(s) deleted here"
    if isinstance(event, api.GroupChanged):
        g = event.group
        members = ", ".join(printable(member.name) for member in g.members)
        state = "" if g.member else " (you are not a member any more)"
        return f"-- group {printable(g.name)}: {members}{state}"
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

"""Slash commands typed in the composer: parsed here, executed by the main screen.

Parsing is pure so every command (and every way to get one wrong) is tested
without an app; the error messages are what the user reads, so they say what
to type instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from p2pmsg.ui.paths import PathError, parse_paths
from p2pmsg.ui.timefmt import parse_duration


@dataclass(frozen=True)
class SlashSpec:
    name: str
    usage: str
    help: str


COMMANDS: tuple[SlashSpec, ...] = (
    SlashSpec(
        "file",
        "/file PATH",
        "offer a file to this peer; several PATHs or a folder: one offer, a new folder there",
    ),
    SlashSpec("accept", "/accept", "accept the newest file offer in this conversation"),
    SlashSpec("decline", "/decline", "decline the newest file offer in this conversation"),
    SlashSpec("cipher", "/cipher NAME", "switch the cipher you send with (next epoch)"),
    SlashSpec("rotate", "/rotate", "move to a fresh key now (forward secrecy)"),
    SlashSpec("rekey", "/rekey", "run a fresh key agreement now"),
    SlashSpec("verify", "/verify", "compare safety numbers with this peer"),
    SlashSpec(
        "pair",
        "/pair [CODE]",
        "verify each other by a short code: show one, or enter the one they show",
    ),
    SlashSpec("name", "/name [NAME]", "your own name for this peer (/name alone removes it)"),
    SlashSpec("trust", "/trust", "this key's state, and decide about a flagged key"),
    SlashSpec("block", "/block", "refuse this key from now on"),
    SlashSpec("unblock", "/unblock", "allow a blocked key again"),
    SlashSpec(
        "ttl",
        "/ttl DURATION|off|default",
        "disappearing messages in this conversation or group (default: as in Settings)",
    ),
    SlashSpec("add", "/add HOST:PORT", "connect to a peer by address"),
    SlashSpec(
        "group",
        "/group ACTION",
        "groups: create [NAME] (ctrl+g), add PEER, remove PEER, rename NAME, leave, members (F7), "
        "receipts (who has your last post, who read it)",
    ),
    SlashSpec("search", "/search [TEXT]", "find in this conversation (ctrl+f)"),
    SlashSpec("copy", "/copy", "copy the message search is on, else their newest (c in the chat)"),
    SlashSpec("help", "/help", "list these commands"),
)
_BY_NAME = {spec.name: spec for spec in COMMANDS}
SUITES = ("aes-256-gcm", "chacha20-poly1305", "twofish-cbc-hmac-sha256")


class SlashError(ValueError):
    """A malformed slash command; the message is shown to the user as is."""


@dataclass(frozen=True)
class Slash:
    name: str
    arg: str = ""
    ttl: float | None = None
    host: str = ""
    port: int = 0
    #: /file with several paths (one folder offer); a single path is `arg` alone
    paths: tuple[str, ...] = ()
    #: /group's action (create, add, remove, leave, members); `arg` is the rest
    action: str = ""


def is_slash(text: str) -> bool:
    """A leading "/" makes a command; "//text" sends "/text" literally."""
    return text.startswith("/") and not text.startswith("//")


def unescape(text: str) -> str:
    return text[1:] if text.startswith("//") else text


def parse(text: str) -> Slash:
    """Parse a composer text that `is_slash` (a command is one line)."""
    head, _, rest = text[1:].strip().partition(" ")
    name = head.lower()
    arg = rest.strip()
    spec = _BY_NAME.get(name)
    if spec is None:
        close = [s.usage for s in COMMANDS if s.name.startswith(name[:1])] if name else []
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SlashError(
            f"Unknown command /{name}.{hint} Type /help for the list "
            "(start with // to send a message beginning with /)."
        )
    if name == "file":
        if not arg:
            raise SlashError("Usage: /file PATH... (files or folders to offer)")
        try:
            paths = [str(p) for p in parse_paths(arg)]
        except PathError as exc:
            raise SlashError(f"/file: {exc}") from None
        return Slash(name, arg=paths[0], paths=tuple(paths) if len(paths) > 1 else ())
    if name == "cipher":
        if arg not in SUITES:
            raise SlashError(f"Usage: /cipher NAME, one of: {', '.join(SUITES)}")
        return Slash(name, arg=arg)
    if name == "ttl":
        if not arg:
            raise SlashError(
                "Usage: /ttl DURATION|off|default, e.g. /ttl 5m, /ttl 1h, /ttl off, /ttl default"
            )
        if arg.lower() == "off":  # never, here: even when Settings has a default timer
            return Slash(name, arg="off", ttl=math.inf)
        if arg.lower() == "default":  # no timer of its own: the Settings default applies
            return Slash(name, arg="default", ttl=None)
        try:
            return Slash(name, arg=arg, ttl=parse_duration(arg))
        except ValueError as exc:
            raise SlashError(f"/ttl: {exc}") from None
    if name == "add":
        return _parse_add(arg)
    if name == "group":
        return _parse_group(arg)
    if name == "search":  # free text; empty opens the search box
        return Slash(name, arg=arg)
    if name == "name":  # free text (the store checks it); empty removes the petname
        return Slash(name, arg=arg)
    if name == "pair":
        if arg and not all(ch.isdigit() or ch in "- " for ch in arg):
            raise SlashError(
                "Usage: /pair to show a code, or /pair 123-456 to enter the "
                "code the other person shows"
            )
        return Slash(name, arg=arg)
    if arg:
        raise SlashError(f"{spec.usage} takes no arguments")
    return Slash(name)


def _parse_add(arg: str) -> Slash:
    usage = "Usage: /add HOST:PORT, e.g. /add 192.168.1.20:47000 or /add [fe80::1]:47000"
    if not arg:
        raise SlashError(usage)
    if arg.startswith("["):
        host, sep, port_text = arg[1:].partition("]:")
    else:
        host, sep, port_text = arg.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise SlashError(usage)
    port = int(port_text)
    if not 0 < port < 65536:
        raise SlashError(f"/add: port {port} is out of range (1-65535)")
    return Slash("add", arg=arg, host=host, port=port)


GROUP_ACTIONS = ("create", "add", "remove", "rename", "leave", "members", "receipts")
_GROUP_USAGE = (
    "Usage: /group create [NAME] (then pick members), /group add PEER, "
    "/group remove PEER, /group rename NAME, /group leave, /group members, /group receipts"
)


def _parse_group(arg: str) -> Slash:
    """`/group ACTION [ARG]`: create takes an optional name (the dialog asks for the
    rest), add and remove a peer, rename the new name, leave, members and receipts
    nothing."""
    head, _, rest = arg.partition(" ")
    action, rest = head.lower(), rest.strip()
    if action not in GROUP_ACTIONS:
        raise SlashError(_GROUP_USAGE)
    if action in ("add", "remove") and not rest:
        raise SlashError(f"Usage: /group {action} PEER (a name or fingerprint prefix)")
    if action == "rename" and not rest:
        raise SlashError("Usage: /group rename NAME (the open group's new name; admins only)")
    if action in ("leave", "members", "receipts") and rest:
        raise SlashError(f"/group {action} takes no arguments (it acts on the open group)")
    return Slash("group", arg=rest, action=action)


def help_lines() -> list[tuple[str, str]]:
    return [(spec.usage, spec.help) for spec in COMMANDS]

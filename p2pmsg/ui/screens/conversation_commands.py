"""What the user types in the open conversation, turned into node calls: messages,
slash commands, and the commands the keys and the palette share with them.

`ConversationCommands` belongs to `MainScreen` (which renders state and applies
node events) and sees it only through `CommandsHost`. Every action is reachable
three ways: a key (footer), the command palette (`p2pmsg.ui.commands`) and,
where it makes sense, a slash command in the composer.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Protocol

from textual.worker import Worker

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import AddressDialed, NodeAPI, PeerView
from p2pmsg.ui import slash
from p2pmsg.ui.safe_text import clip, printable
from p2pmsg.ui.screens.dialogs import MainDialogs
from p2pmsg.ui.screens.disappearing import DisappearingTimers
from p2pmsg.ui.screens.group_commands import GroupCommands, GroupHost
from p2pmsg.ui.timefmt import duration
from p2pmsg.ui.widgets.peer_list import group_key


def describe_unsendable(peer: PeerView) -> str:
    """Why nothing goes to this key, and what to do about it (the composer's placeholder,
    and the note when a message or file is refused)."""
    if peer.state == "flagged":
        return (
            f"this key claims to be {printable(clip(peer.clash_with_name, 24))} but is "
            "not their key; decide who it is first (F3)"
        )
    if peer.state == "blocked":
        return "you blocked this key (/unblock to allow it again)"
    return f"this key is {peer.state}"


class CommandsHost(GroupHost, Protocol):
    """What the commands need of the main screen: what the group commands need (the
    log, composer, peer list, header and notices), and the one-to-one side."""

    @property
    def selected(self) -> str | None: ...

    def peer(self, fingerprint: str | None) -> PeerView | None: ...

    def action_search(self, text: str | None = None) -> None: ...

    def run_worker(
        self,
        work: Callable[[], Coroutine[None, None, None]] | Awaitable[None],
        *,
        group: str = "default",
    ) -> Worker[None]: ...


class ConversationCommands:
    """Sends what the composer gives, runs slash commands, and says in the conversation
    what came of each. Node calls run in the main screen's workers."""

    def __init__(
        self,
        node: NodeAPI,
        host: CommandsHost,
        dialogs: MainDialogs,
        timers: DisappearingTimers,
    ) -> None:
        self._node = node
        self._host = host
        self._dialogs = dialogs
        self._timers = timers
        self._send_lock = asyncio.Lock()  # messages reach the node in the order they were sent
        self._adding: set[tuple[str, int]] = set()  # /add addresses, first outcome not known
        self.groups = GroupCommands(node, host, self._send_lock, timers)

    # --- composer -------------------------------------------------------------------

    def sent(self, text: str) -> None:
        """What the composer gave: a slash command, or a message to the selected peer."""
        log = self._host.message_log
        composer = self._host.composer
        if slash.is_slash(text):
            try:
                if "\n" in text.strip():
                    raise slash.SlashError(
                        "A command is one line; start with // to send a message beginning with /."
                    )
                command = slash.parse(text)
            except slash.SlashError as exc:
                log.add_note(str(exc), error=True)
                composer.give_back(text)  # to fix the typo, not to type it all again
                return
            self.run_slash(command)
            return
        if self.groups.post(slash.unescape(text)):
            return
        peer = self._host.peer(self._host.selected)
        if peer is None:
            log.add_note("Not sent: pick a peer first (left column, or ctrl+n).", error=True)
            composer.give_back(text)
            return
        if not peer.sendable:
            log.add_note(f"Not sent: {describe_unsendable(peer)}", error=True)
            composer.give_back(text)
            if peer.state == "flagged":
                self._dialogs.prompt_key_decision(peer.fingerprint, again=True)
            return
        fingerprint, message = peer.fingerprint, slash.unescape(text)
        self._host.run_worker(partial(self._send_text, fingerprint, message), group="send")

    def address_dialed(self, event: AddressDialed) -> None:
        """The first outcome of an /add: a toast (it outlives a switch of conversation)
        and a note. Later attempts at that address stay quiet."""
        key = (event.host, event.port)
        if key not in self._adding:
            return
        self._adding.discard(key)
        where = f"{printable(event.host)}:{event.port}"
        log = self._host.message_log
        if event.peer is not None:
            who = f"{printable(event.peer.name)} ({event.peer.short_fingerprint})"
            text = f"/add: reached {where}: {who}"
            log.add_note(text)
            self._host.notify(text, title="Connected", markup=False)
        else:
            text = (
                f"/add: could not reach {where}: {printable(event.problem or '?')}. "
                "The address is kept; p2pmsg tries it again in the background."
            )
            log.add_note(text, error=True)
            self._host.notify(
                text, title="Not connected", severity="warning", timeout=10, markup=False
            )

    async def _send_text(self, fingerprint: str, text: str) -> None:
        ttl, _ = self._timers.effective(fingerprint)
        try:
            # Workers start in order and the lock is first come, first served: a message
            # whose peer lookup awaits the store cannot be overtaken by the next one.
            async with self._send_lock:
                message = await self._node.send_text(fingerprint, text, ttl=ttl)
        except P2PMsgError as exc:
            self._host.message_log.add_note(f"Not sent: {exc}", error=True)
            self._host.composer.give_back(f"/{text}" if text.startswith("/") else text)
            return
        if message.peer == self._host.selected:
            self._host.message_log.add_messages([message])

    # --- slash commands ---------------------------------------------------------------

    def run_slash(self, command: slash.Slash) -> None:
        log = self._host.message_log
        if command.name == "help":
            for usage, text in slash.help_lines():
                log.add_note(f"{usage:<20} {text}")
            log.add_note(
                "F1 help · F2 security · F3 verify · F4 settings · F5 rotate · ctrl+p all commands"
            )
            return
        if command.name == "group":
            self.groups.run(command)
            return
        if command.name in ("search", "copy") and self._host.selected_group is not None:
            if command.name == "search":
                self._host.action_search(command.arg or None)
            else:
                log.action_copy_message()
            return
        if command.name == "add":
            # The outcome arrives as an AddressDialed event (see `address_dialed`).
            self._adding.add((command.host, command.port))
            self._node_call(
                self._node.add_peer(command.host, command.port),
                f"connecting to {command.host}:{command.port}…",
            )
            return
        if command.name == "ttl" and self._host.selected_group is not None:
            group_id = self._host.selected_group
            self._host.run_worker(partial(self._set_group_ttl, group_id, command.ttl), group="ttl")
            return
        peer = self._host.peer(self._host.selected)
        if peer is None:
            where = "a one-to-one conversation" if self._host.selected_group else "a conversation"
            log.add_note(f"/{command.name} needs {where}: pick a peer first.", error=True)
            return
        fp = peer.fingerprint
        if command.name == "file":
            if not peer.sendable:
                log.add_note(f"/file: {describe_unsendable(peer)}", error=True)
                return
            paths = command.paths or (command.arg,)
            self._host.run_worker(partial(self._send_file, fp, paths), group="send")
        elif command.name in ("accept", "decline"):
            log.action_decide_latest(command.name == "accept")
        elif command.name == "cipher":
            self._node_call(
                self._node.set_suite(fp, command.arg),
                f"switching to {command.arg} at the next epoch…",
            )
        elif command.name == "rotate":
            self.rotate()
        elif command.name == "rekey":
            self._node_call(self._node.rekey(fp), "starting a fresh key agreement…")
        elif command.name == "verify":
            self._dialogs.verify()
        elif command.name == "ttl":
            self._host.run_worker(partial(self._set_ttl, fp, command.ttl), group="ttl")
        elif command.name == "pair":
            self._dialogs.pair(command.arg)
        elif command.name == "search":
            self._host.action_search(command.arg or None)
        elif command.name == "copy":
            log.action_copy_message()
        elif command.name == "name":
            self._decide(
                self._node.rename_peer(fp, command.arg or None),
                f"named it {printable(command.arg)}" if command.arg else "your name for it removed",
            )
        elif command.name == "trust":
            self._dialogs.verify()
        elif command.name == "block":
            self._decide(self._node.block_peer(fp), "blocked: this key is refused from now on")
        elif command.name == "unblock":
            self._decide(self._node.unblock_peer(fp), "unblocked")

    def _decide(self, call: Awaitable[PeerView], done: str) -> None:
        """A trust decision: apply it, show the peer as the node now has it, or say why not."""
        log = self._host.message_log

        async def run() -> None:
            try:
                view = await call
            except P2PMsgError as exc:
                log.add_note(printable(str(exc)), error=True)
                return
            self._host.peer_list.upsert(view)
            log.add_note(done)
            self._host.render_header()

        self._host.run_worker(run(), group="trust-decision")

    async def _set_ttl(self, fingerprint: str, ttl: float | None) -> None:
        await self._store_ttl(
            self._node.set_conversation_ttl(fingerprint, ttl),
            partial(self._node.conversation_ttl, fingerprint),
            fingerprint,
            "conversation",
            lambda: fingerprint == self._host.selected,
        )

    async def _set_group_ttl(self, group_id: str, ttl: float | None) -> None:
        """/ttl in a group: the timer this profile's new posts there get (the other
        members choose their own; each member's copy disappears `ttl` after it is shown
        there, docs/PROTOCOL.md "Groups")."""
        await self._store_ttl(
            self._node.set_group_ttl(group_id, ttl),
            partial(self._node.group_ttl, group_id),
            group_key(group_id),
            "group",
            lambda: group_id == self._host.selected_group,
        )

    async def _store_ttl(
        self,
        store: Awaitable[None],
        read: Callable[[], Awaitable[float | None]],
        key: str,
        where: str,
        shown: Callable[[], bool],
    ) -> None:
        """Store the timer, then show what the node now holds (not what we asked for)."""
        try:
            await store
            stored = await read()
        except P2PMsgError as exc:
            self._host.message_log.add_note(f"/ttl: {printable(str(exc))}", error=True)
            return
        self._timers.own[key] = stored
        self._announce_ttl(stored, where)
        if shown():  # still the open one after the awaits
            self._host.render_header()

    def _announce_ttl(self, stored: float | None, where: str) -> None:
        log = self._host.message_log
        default = self._timers.default
        if stored is not None and math.isinf(stored):
            log.add_note(
                f"disappearing messages: off in this {where}"
                + (
                    f" (the Settings default of {duration(default)} does not apply "
                    "here; /ttl default to follow it)"
                    if default
                    else ""
                )
            )
        elif stored is not None:
            log.add_note(f"disappearing messages: {duration(stored)}")
        elif default is not None:
            log.add_note(
                f"disappearing messages: the default from Settings, {duration(default)}"
                " (F4 to change it)"
            )
        else:
            log.add_note("disappearing messages: off")

    async def _send_file(self, fingerprint: str, paths: tuple[str, ...]) -> None:
        """One file: a file offer; several paths or a folder: one folder offer."""
        log = self._host.message_log
        try:
            if len(paths) == 1 and not os.path.isdir(paths[0]):
                transfer = await self._node.send_file(fingerprint, paths[0])
            else:
                transfer = await self._node.send_files(fingerprint, list(paths))
        except (P2PMsgError, OSError) as exc:
            log.add_note(f"/file: {exc}", error=True)
            return
        if transfer.files and transfer.error:  # symlinks and special files left out
            log.add_note(f"/file: {transfer.error}")
        if transfer.peer == self._host.selected:
            log.upsert_transfer(transfer)

    def _node_call(self, call: Awaitable[Any], note: str | None) -> None:
        log = self._host.message_log
        if note is not None:
            log.add_note(note)

        async def run() -> None:
            try:
                await call
            except P2PMsgError as exc:
                log.add_note(str(exc), error=True)

        self._host.run_worker(run(), group="node-call")

    # --- what keys and the palette share with the commands ----------------------------

    def decide_transfer(self, transfer_id: str, accept: bool) -> None:
        call = (
            self._node.accept_file(transfer_id) if accept else self._node.decline_file(transfer_id)
        )
        self._node_call(call, None)  # the card itself shows what happens next

    def rotate(self) -> None:
        peer = self._host.peer(self._host.selected)
        if peer is None:
            self._host.notify("Pick a peer first.", severity="warning")
            return
        self._node_call(self._node.rotate(peer.fingerprint), "rotating to a fresh key…")

    def set_suite(self, suite: str) -> None:
        if suite in slash.SUITES:
            self.run_slash(slash.Slash("cipher", arg=suite))

    def start_rename(self) -> None:
        """Put `/name ` in the composer: the user types the name there."""
        composer = self._host.composer
        composer.set_text("/name ")
        composer.focus()

    def accept_latest_offer(self) -> None:
        self._host.message_log.action_decide_latest(True)

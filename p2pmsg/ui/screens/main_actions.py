"""What the user can do from the main screen: send, slash commands, actions.

Kept apart from `MainScreen` (which renders state and applies node events) so
each file stays small. Every action is reachable three ways: a key (footer),
the command palette (`p2pmsg.ui.commands`) and, where it makes sense, a slash
command in the composer.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import Any

from textual import work
from textual.screen import Screen

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import AddressDialed, NodeAPI, PeerView, SessionStatusView
from p2pmsg.ui import slash
from p2pmsg.ui.safe_text import clip, printable
from p2pmsg.ui.timefmt import Clock, duration
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.peer_list import PeerList
from p2pmsg.ui.widgets.threat_panel import ThreatPanel


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


class ConversationActions(Screen[None]):
    """Base of `MainScreen`: user intents turned into node calls.

    `MainScreen` owns the state and the rendering; the declarations below are
    the part of it these actions use.
    """

    node: NodeAPI
    clock: Clock
    selected: str | None
    sessions: dict[str, SessionStatusView]
    conversation_ttl: dict[str, float | None]
    default_disappearing_ttl: float | None
    _key_prompted: set[str]
    _send_lock: asyncio.Lock  # messages reach the node in the order they were sent
    bell: bool
    _adding: set[tuple[str, int]]  # /add addresses whose first outcome is not known yet

    def peer(self, fingerprint: str | None) -> PeerView | None:
        raise NotImplementedError

    def action_search(self, text: str | None = None) -> None:
        raise NotImplementedError

    def peer_name(self, fingerprint: str | None) -> str:
        raise NotImplementedError

    def open_conversation(self, fingerprint: str) -> None:
        raise NotImplementedError

    def _render_header(self) -> None:
        raise NotImplementedError

    def _render_session(self) -> None:
        raise NotImplementedError

    # --- composer -------------------------------------------------------------------

    def on_composer_sent(self, event: Composer.Sent) -> None:
        text = event.text
        log = self.query_one(MessageLog)
        composer = self.query_one(Composer)
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
        peer = self.peer(self.selected)
        if peer is None:
            log.add_note("Not sent: pick a peer first (left column, or ctrl+n).", error=True)
            composer.give_back(text)
            return
        if not peer.sendable:
            log.add_note(f"Not sent: {describe_unsendable(peer)}", error=True)
            composer.give_back(text)
            if peer.state == "flagged":
                self._key_prompted.discard(peer.fingerprint)
                self.prompt_key_decision(peer.fingerprint)
            return
        self._send_text(peer.fingerprint, slash.unescape(text))

    def address_dialed(self, event: AddressDialed) -> None:
        """The first outcome of an /add: a toast (it outlives a switch of conversation)
        and a note. Later attempts at that address stay quiet."""
        key = (event.host, event.port)
        if key not in self._adding:
            return
        self._adding.discard(key)
        where = f"{printable(event.host)}:{event.port}"
        log = self.query_one(MessageLog)
        if event.peer is not None:
            who = f"{printable(event.peer.name)} ({event.peer.short_fingerprint})"
            text = f"/add: reached {where}: {who}"
            log.add_note(text)
            self.notify(text, title="Connected", markup=False)
        else:
            text = (
                f"/add: could not reach {where}: {printable(event.problem or '?')}. "
                "The address is kept; p2pmsg tries it again in the background."
            )
            log.add_note(text, error=True)
            self.notify(text, title="Not connected", severity="warning", timeout=10, markup=False)

    def on_composer_refused(self, event: Composer.Refused) -> None:
        self.query_one(MessageLog).add_note(event.reason, error=True)

    def effective_ttl(self, fingerprint: str) -> tuple[float | None, bool]:
        """The timer new messages get, and whether it is the Settings default.

        The conversation's own setting (stored by the node) wins: a timer, or
        `math.inf` for `/ttl off` (never, whatever the default); without one
        (`/ttl default`, or never set) the profile's default applies.
        """
        own = self.conversation_ttl.get(fingerprint)
        if own is not None:
            return (None if math.isinf(own) else own), False
        return self.default_disappearing_ttl, self.default_disappearing_ttl is not None

    @work(group="send")
    async def _send_text(self, fingerprint: str, text: str) -> None:
        ttl, _ = self.effective_ttl(fingerprint)
        try:
            # Workers start in order and the lock is first come, first served: a message
            # whose peer lookup awaits the store cannot be overtaken by the next one.
            async with self._send_lock:
                message = await self.node.send_text(fingerprint, text, ttl=ttl)
        except P2PMsgError as exc:
            self.query_one(MessageLog).add_note(f"Not sent: {exc}", error=True)
            self.query_one(Composer).give_back(f"/{text}" if text.startswith("/") else text)
            return
        if message.peer == self.selected:
            self.query_one(MessageLog).add_messages([message])

    def run_slash(self, command: slash.Slash) -> None:
        log = self.query_one(MessageLog)
        if command.name == "help":
            for usage, text in slash.help_lines():
                log.add_note(f"{usage:<20} {text}")
            log.add_note(
                "F1 help · F2 security · F3 verify · F4 settings · F5 rotate · ctrl+p all commands"
            )
            return
        if command.name == "add":
            # The outcome arrives as an AddressDialed event (see `address_dialed`).
            self._adding.add((command.host, command.port))
            self._node_call(
                self.node.add_peer(command.host, command.port),
                f"connecting to {command.host}:{command.port}…",
            )
            return
        peer = self.peer(self.selected)
        if peer is None:
            log.add_note(f"/{command.name} needs a conversation: pick a peer first.", error=True)
            return
        fp = peer.fingerprint
        if command.name == "file":
            if not peer.sendable:
                log.add_note(f"/file: {describe_unsendable(peer)}", error=True)
                return
            self._send_file(fp, command.arg)
        elif command.name in ("accept", "decline"):
            log.action_decide_latest(command.name == "accept")
        elif command.name == "cipher":
            self._node_call(
                self.node.set_suite(fp, command.arg),
                f"switching to {command.arg} at the next epoch…",
            )
        elif command.name == "rotate":
            self.action_rotate()
        elif command.name == "rekey":
            self._node_call(self.node.rekey(fp), "starting a fresh key agreement…")
        elif command.name == "verify":
            self.action_verify()
        elif command.name == "ttl":
            self._set_ttl(fp, command.ttl)
        elif command.name == "pair":
            self.action_pair(command.arg)
        elif command.name == "search":
            self.action_search(command.arg or None)
        elif command.name == "copy":
            self.query_one(MessageLog).action_copy_message()
        elif command.name == "name":
            self._decide(
                self.node.rename_peer(fp, command.arg or None),
                f"named it {printable(command.arg)}" if command.arg else "your name for it removed",
            )
        elif command.name == "trust":
            self.action_verify()
        elif command.name == "block":
            self._decide(self.node.block_peer(fp), "blocked: this key is refused from now on")
        elif command.name == "unblock":
            self._decide(self.node.unblock_peer(fp), "unblocked")

    def _decide(self, call: Awaitable[PeerView], done: str) -> None:
        """A trust decision: apply it, show the peer as the node now has it, or say why not."""
        log = self.query_one(MessageLog)

        async def run() -> None:
            try:
                view = await call
            except P2PMsgError as exc:
                log.add_note(printable(str(exc)), error=True)
                return
            self.query_one(PeerList).upsert(view)
            log.add_note(done)
            self._render_header()

        self.run_worker(run(), group="trust-decision")

    @work(group="ttl")
    async def _set_ttl(self, fingerprint: str, ttl: float | None) -> None:
        """Store the timer, then show what the node now holds (not what we asked for)."""
        log = self.query_one(MessageLog)
        try:
            await self.node.set_conversation_ttl(fingerprint, ttl)
            stored = await self.node.conversation_ttl(fingerprint)
        except P2PMsgError as exc:
            log.add_note(f"/ttl: {exc}", error=True)
            return
        self.conversation_ttl[fingerprint] = stored
        default = self.default_disappearing_ttl
        if stored is not None and math.isinf(stored):
            log.add_note(
                "disappearing messages: off in this conversation"
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
        if fingerprint == self.selected:
            self._render_header()

    @work(group="send")
    async def _send_file(self, fingerprint: str, path: str) -> None:
        log = self.query_one(MessageLog)
        try:
            transfer = await self.node.send_file(fingerprint, path)
        except (P2PMsgError, OSError) as exc:
            log.add_note(f"/file: {exc}", error=True)
            return
        if transfer.peer == self.selected:
            log.upsert_transfer(transfer)

    def _node_call(self, call: Awaitable[Any], note: str | None) -> None:
        log = self.query_one(MessageLog)
        if note is not None:
            log.add_note(note)

        async def run() -> None:
            try:
                await call
            except P2PMsgError as exc:
                log.add_note(str(exc), error=True)

        self.run_worker(run(), group="node-call")

    def on_message_log_transfer_decision(self, event: MessageLog.TransferDecision) -> None:
        call = (
            self.node.accept_file(event.transfer_id)
            if event.accept
            else self.node.decline_file(event.transfer_id)
        )
        self._node_call(call, None)  # the card itself shows what happens next

    # --- actions (keys and palette) -------------------------------------------------

    def action_focus_composer(self) -> None:
        self.query_one(Composer).focus()

    def action_next_peer(self, step: int) -> None:
        options = self.query_one(PeerList).options
        if not options:
            return
        ids = [option.id for option in options]
        index = ids.index(self.selected) if self.selected in ids else -1
        target = ids[(index + step) % len(ids)]
        if target is not None:
            self.open_conversation(target)
            self.query_one(Composer).focus()  # a keyboard jump is followed by typing

    def action_help(self) -> None:
        from p2pmsg.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_dashboard(self) -> None:
        from p2pmsg.ui.screens.dashboard import DashboardScreen

        self.app.push_screen(DashboardScreen(self.node, self.clock, self.peer_name))

    def action_settings(self) -> None:
        from p2pmsg.ui.screens.settings import SettingsScreen

        def saved(values: dict[str, Any] | None) -> None:
            if values and "bell" in values:
                self.bell = bool(values["bell"])
            if values and "default_disappearing_ttl" in values:
                ttl = values["default_disappearing_ttl"]
                self.default_disappearing_ttl = float(ttl) if ttl else None
                self._render_header()

        self.app.push_screen(SettingsScreen(self.node), saved)

    def action_rotate(self) -> None:
        peer = self.peer(self.selected)
        if peer is None:
            self.notify("Pick a peer first.", severity="warning")
            return
        self._node_call(self.node.rotate(peer.fingerprint), "rotating to a fresh key…")

    def action_set_suite(self, suite: str) -> None:
        if suite in slash.SUITES:
            self.run_slash(slash.Slash("cipher", arg=suite))

    def action_verify(self) -> None:
        """F3: a flagged key gets the decision screen, any other key the verify screen."""
        from p2pmsg.ui.screens.verify import VerifyScreen

        peer = self.peer(self.selected)
        if peer is None:
            self.notify("Pick a peer to verify first.", severity="warning")
            return
        if peer.state == "flagged":
            self._key_prompted.discard(peer.fingerprint)
            self.prompt_key_decision(peer.fingerprint)
            return
        self.app.push_screen(VerifyScreen(self.node, peer), self._after_verify)

    def action_pair(self, code: str = "") -> None:
        """Pair by a short code with the selected peer: show one, or enter theirs."""
        from p2pmsg.ui.screens.pairing import PairingScreen

        peer = self.peer(self.selected)
        if peer is None:
            self.notify("Pick a peer to pair with first.", severity="warning")
            return
        self.app.push_screen(PairingScreen(self.node, peer, code), self._after_verify)

    def action_rename(self) -> None:
        """Put `/name ` in the composer: the user types the name there."""
        composer = self.query_one(Composer)
        composer.set_text("/name ")
        composer.focus()

    def _after_verify(self, verified: bool | None) -> None:
        self.run_worker(self._refresh_peer(), group="refresh-peer")

    async def _refresh_peer(self) -> None:
        try:
            peers = await self.node.peers()
        except P2PMsgError:
            return
        plist = self.query_one(PeerList)
        for peer in peers:
            plist.upsert(peer)
        self._render_header()
        if self.selected is not None:
            session = await self.node.session_status(self.selected)
            if session is not None:
                self.sessions[self.selected] = session
            self._render_session()

    def prompt_key_decision(self, fingerprint: str) -> None:
        """The decision screen for a flagged key, once per flag (again on F3, or when the
        user tries to send to it)."""
        from p2pmsg.ui.screens.key_decision import KeyDecisionScreen

        if fingerprint in self._key_prompted:
            return
        peer = self.peer(fingerprint)
        if peer is None or peer.state != "flagged":
            return
        self._key_prompted.add(fingerprint)
        contact = self.peer(peer.clash_with)

        def decided(outcome: str | None) -> None:
            if outcome == "changed" and peer.clash_with is not None:
                # The contact (and its conversation) is now on this key.
                self.query_one(PeerList).discard(peer.clash_with)
                self.open_conversation(fingerprint)
            self.run_worker(self._refresh_peer(), group="refresh-peer")

        self.app.push_screen(KeyDecisionScreen(self.node, peer, contact), decided)

    def on_threat_panel_alert_chosen(self, event: ThreatPanel.AlertChosen) -> None:
        from p2pmsg.ui.screens.alert_detail import AlertDetailScreen

        self.app.push_screen(
            AlertDetailScreen(event.alert, self.peer_name(event.alert.peer), self.clock)
        )

    def accept_latest_offer(self) -> None:
        self.query_one(MessageLog).action_decide_latest(True)

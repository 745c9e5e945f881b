"""The main screen: peers, the open conversation, session keys and threats.

Node events arrive in batches (`NodeEvents`) and are applied here in one
pass, so a flood costs one layout per frame. Everything that talks to the node
runs in async workers; the node itself keeps blocking work off the loop.
The screen owns the objects that act for the user and hands each the narrow
view of itself it needs: `ConversationCommands` runs what the user types (and the
commands keys and palette share with it), `MainDialogs` opens the screens shown
over this one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Static

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import (
    AddressDialed,
    AlertRaised,
    AlertStateChanged,
    AlertView,
    GroupChanged,
    GroupMemberView,
    GroupMessageReceived,
    GroupMessagesExpired,
    GroupMessageView,
    GroupReceiptsChanged,
    GroupView,
    MessageReceived,
    MessagesExpired,
    MessageStatusChanged,
    MessageView,
    MonitorChanged,
    NameClashed,
    NodeAPI,
    NodeEvent,
    PeerConnected,
    PeerDisconnected,
    PeerDiscovered,
    PeerLost,
    PeerUpdated,
    PeerView,
    SessionChanged,
    SessionStatusView,
    TransferUpdated,
)
from p2pmsg.ui.alert_actions import set_alert_state
from p2pmsg.ui.palette import DANGER, MUTED, OK, WARN
from p2pmsg.ui.safe_text import clip, literal_content, printable
from p2pmsg.ui.screens.conversation_commands import ConversationCommands, describe_unsendable
from p2pmsg.ui.screens.dialogs import MainDialogs
from p2pmsg.ui.screens.disappearing import DisappearingTimers
from p2pmsg.ui.screens.group_commands import labelled
from p2pmsg.ui.screens.groups import member_label
from p2pmsg.ui.timefmt import Clock, duration, format_bytes
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.peer_list import GROUP_PREFIX, PeerList, group_key, is_group_key
from p2pmsg.ui.widgets.rotation_pane import RotationPane
from p2pmsg.ui.widgets.search_input import SearchInput
from p2pmsg.ui.widgets.threat_panel import SEVERITY_RANK, SHOWN_STATES, ThreatPanel, unread_title

NOTIFY_INTERVAL = 3.0  # at most one new-message toast per peer per this many seconds


#: Messages loaded when a conversation opens, and when it is searched.
HISTORY_SHOWN = 200
HISTORY_SEARCHED = 2000

ResultT = TypeVar("ResultT")


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("f2", "dashboard", "Security"),
        Binding("f3", "verify", "Verify"),
        Binding("f4", "settings", "Settings"),
        Binding("f5", "rotate", "Rotate"),
        Binding("f7", "members", "Members", show=False, priority=True),
        Binding("ctrl+g", "new_group", "New group", show=False),
        # Priority: the composer (a TextArea) binds F6 to "select line" itself.
        Binding("f6", "cycle_panes", "Panes", show=False, priority=True),
        Binding("ctrl+r", "rename", "Rename", show=False),
        Binding("ctrl+f", "search", "Search", show=False, priority=True),
        Binding("ctrl+n", "next_peer(1)", "Next peer", show=False),
        Binding("ctrl+b", "next_peer(-1)", "Prev peer", show=False),
        Binding("escape", "focus_composer", "Compose", show=False),
    ]

    #: What F6 steps through at each width (the breakpoint classes set in app.py; the
    #: stylesheet shows the panes): what is on screen in each state.
    PANES: ClassVar[dict[str, tuple[str, ...]]] = {
        "-wide": ("peers, chat, keys and threats", "peers and chat"),
        "-narrow": ("peers and chat", "chat, keys and threats"),
        "-tiny": ("the chat", "peers and chat", "chat, keys and threats"),
    }

    def __init__(self, node: NodeAPI, clock: Clock) -> None:
        super().__init__()
        self._pane = 0  # index into PANES[the current width]
        self.node = node
        self.clock = clock
        self.selected: str | None = None  # the open one-to-one conversation's peer
        self.selected_group: str | None = None  # or the open group's id (never both)
        self.sessions: dict[str, SessionStatusView] = {}
        self.timers = DisappearingTimers()
        self._last_toast: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._mark_read_timer: Timer | None = None
        self.bell = True  # the terminal bell for a message in another conversation (Settings)
        self._loaded: dict[str, tuple[int, int]] = {}  # messages shown, and the limit asked
        # The timer of each peer's latest message to us: a change is said in the chat
        # (their /ttl reaches us only as the timer on their messages).
        self._their_ttl: dict[str, float | None] = {}
        self._clash_pending: set[str] = set()
        self.unread_alerts = 0  # the header's count (the node's, then its events)
        self.dialogs = MainDialogs(node, clock, self)
        self.commands = ConversationCommands(node, self, self.dialogs, self.timers)

    def compose(self) -> ComposeResult:
        yield Header(icon="⛨")
        with Horizontal(id="main-body"):
            yield PeerList(id="peers")
            with Vertical(id="conversation"):
                yield Static(id="conv-header")
                with Horizontal(id="search-bar"):
                    yield SearchInput(id="search")
                    yield Static(id="search-count")
                yield MessageLog(self.clock, id="log")
                yield Composer(id="composer")
            with Vertical(id="side"):
                yield RotationPane(self.clock, id="rotation")
                yield ThreatPanel(self.clock, self.peer_name, id="threats")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "p2pmsg"
        self.sub_title = (
            f"{printable(clip(self.node.display_name, 24))} · "
            f"{_short(self.node.fingerprint)} · port {self.node.listen_port}"
        )
        self.query_one(MessageLog).me_name = self.node.display_name
        self.render_header()
        self.query_one(Composer).focus()
        self._apply_panes()
        self._load_initial()
        # Message counts under the current key change with every message, but the node
        # only publishes SessionChanged on rotations and cipher switches: poll the
        # selected session's (in-memory) status once a second so the bar stays true.
        self.set_interval(1.0, self._refresh_session)

    # --- search in the conversation ---------------------------------------------------

    def action_search(self, text: str | None = None) -> None:
        if self.selected is None and self.selected_group is None:
            self.notify("Pick a conversation to search first.", severity="warning")
            return
        self.add_class("-searching")
        box = self.query_one(SearchInput)
        if text is not None:
            box.value = text
        box.focus()
        shown, limit = self._loaded.get(self.selected or "", (0, HISTORY_SHOWN))
        if self.selected is not None and shown >= limit and limit < HISTORY_SEARCHED:
            self._load_conversation(self.selected, HISTORY_SEARCHED)  # searches more of it
        self._search_changed()

    @on(Input.Changed, "#search")
    def _search_changed(self) -> None:
        query = self.query_one(SearchInput).value
        count = self.query_one(MessageLog).search(query)
        self._search_count(None if not query else (0, count))

    def on_search_input_step(self, event: SearchInput.Step) -> None:
        found = self.query_one(MessageLog).next_match(event.step)
        if found is not None:
            self._search_count(found)

    def on_search_input_closed(self, _event: SearchInput.Closed) -> None:
        self._close_search()
        self.query_one(Composer).focus()

    def _close_search(self) -> None:
        self.remove_class("-searching")
        self.query_one(SearchInput).value = ""
        self.query_one("#search-count", Static).update("")
        self.query_one(MessageLog).end_search()

    def _search_count(self, found: tuple[int, int] | None) -> None:
        """ "3 matches", "2 of 3", "no match"; and how far back it looked."""
        label = ""
        if found is not None:
            number, count = found
            if not count:
                label = "no match"
            elif number:
                label = f"{number} of {count}"
            else:
                label = f"{count} match" + ("es" if count != 1 else "")
            shown, limit = self._loaded.get(self.selected or "", (0, HISTORY_SHOWN))
            if shown >= limit:
                label += f" in the last {shown:,} messages"
        self.query_one("#search-count", Static).update(Content(label))

    # --- panes by width ------------------------------------------------------------

    def _width_class(self) -> str:
        return next((c for c in self.PANES if self.has_class(c)), "-wide")

    def action_cycle_panes(self) -> None:
        states = self.PANES[self._width_class()]
        self._pane = (self._pane + 1) % len(states)
        self._apply_panes()

    def on_resize(self) -> None:
        self.call_after_refresh(self._apply_panes)  # after Textual set the width class

    def _apply_panes(self) -> None:
        states = self.PANES[self._width_class()]
        self._pane %= len(states)
        for index in (1, 2):
            self.set_class(self._pane == index, f"-pane-{index}")
        following = states[(self._pane + 1) % len(states)]
        self.query_one(MessageLog).border_subtitle = f"F6: {following}"

    @work(exclusive=True, group="session-refresh")
    async def _refresh_session(self) -> None:
        fingerprint = self.selected
        if fingerprint is None:
            return
        try:
            session = await self.node.session_status(fingerprint)
        except P2PMsgError:
            return
        if fingerprint != self.selected:
            return
        if session is None:
            self.sessions.pop(fingerprint, None)
        else:
            self.sessions[fingerprint] = session
        self._render_session()

    @work(group="initial")
    async def _load_initial(self) -> None:
        try:
            peers = await self.node.peers()
            self.query_one(PeerList).set_peers(peers)
            settings = await self.node.get_settings()
            ttl = settings.get("default_disappearing_ttl")
            self.timers.default = float(ttl) if ttl else None
            self.bell = bool(settings.get("bell", True))
            threats = self.query_one(ThreatPanel)
            threats.set_status(await self.node.monitor_status())
            threats.set_alerts(await self.node.alerts(100, SHOWN_STATES))
            self._set_unread_alerts((await self.node.alert_counts()).unread)
        except P2PMsgError as exc:
            self.notify(str(exc), title="Could not load state", severity="error", markup=False)
            return
        plist = self.query_one(PeerList)
        try:
            for group in await self.node.groups():
                plist.upsert_group(group)
        except P2PMsgError as exc:
            self.notify(str(exc), title="Could not load groups", severity="error", markup=False)
        if self.selected is None and self.selected_group is None:
            first = plist.first_id()
            if first is not None:
                self.open_conversation(first)

    # --- helpers --------------------------------------------------------------------

    def peer_name(self, fingerprint: str | None) -> str:
        if fingerprint is None:
            return "-"
        peer = self.query_one(PeerList).peers.get(fingerprint)
        return peer.name if peer is not None else fingerprint[:8]

    def peer(self, fingerprint: str | None) -> PeerView | None:
        if fingerprint is None:
            return None
        return self.query_one(PeerList).peers.get(fingerprint)

    # --- what the user does: keys, composer, cards (the palette: p2pmsg.ui.commands) -----

    def on_composer_sent(self, event: Composer.Sent) -> None:
        self.commands.sent(event.text)

    def on_composer_refused(self, event: Composer.Refused) -> None:
        self.message_log.add_note(event.reason, error=True)

    def on_message_log_transfer_decision(self, event: MessageLog.TransferDecision) -> None:
        self.commands.decide_transfer(event.transfer_id, event.accept)

    def on_threat_panel_alert_chosen(self, event: ThreatPanel.AlertChosen) -> None:
        self.dialogs.alert_detail(event.alert)

    def on_threat_panel_action_requested(self, event: ThreatPanel.ActionRequested) -> None:
        self.set_alert_state(event.alert, event.state)

    @work(group="alert-state")
    async def set_alert_state(self, alert: AlertView, state: str) -> None:
        """Ask the node; its `AlertStateChanged` updates the panel, the dashboard, the
        header (and, for an alert already past `state`, nothing changes)."""
        await set_alert_state(self.node, alert, state, self.notify, self.peer_name(alert.peer))

    def _set_unread_alerts(self, unread: int) -> None:
        self.unread_alerts = max(unread, 0)
        self.title = unread_title("p2pmsg", self.unread_alerts)

    def action_help(self) -> None:
        self.dialogs.help()

    def action_dashboard(self) -> None:
        self.dialogs.dashboard()

    def action_verify(self) -> None:
        self.dialogs.verify()

    def action_settings(self) -> None:
        self.dialogs.settings()

    def action_rotate(self) -> None:
        self.commands.rotate()

    def action_rename(self) -> None:
        self.commands.start_rename()

    def action_members(self) -> None:
        self.commands.groups.members()

    def action_new_group(self) -> None:
        self.commands.groups.create()

    def action_focus_composer(self) -> None:
        self.composer.focus()

    def action_next_peer(self, step: int) -> None:
        ids = self.peer_list.conversation_ids()
        if not ids:
            return
        current = group_key(self.selected_group) if self.selected_group else self.selected
        index = ids.index(current) if current in ids else -1
        self.open_conversation(ids[(index + step) % len(ids)])
        self.composer.focus()  # a keyboard jump is followed by typing

    # --- what the commands and dialogs see of this screen ------------------------------

    @property
    def message_log(self) -> MessageLog:
        return self.query_one(MessageLog)

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    @property
    def peer_list(self) -> PeerList:
        return self.query_one(PeerList)

    def push_screen(
        self, screen: Screen[ResultT], callback: Callable[[ResultT | None], None] | None = None
    ) -> None:
        self.app.push_screen(screen, callback)

    def settings_saved(self, values: dict[str, Any] | None) -> None:
        if values and "bell" in values:
            self.bell = bool(values["bell"])
        if values and "default_disappearing_ttl" in values:
            ttl = values["default_disappearing_ttl"]
            self.timers.default = float(ttl) if ttl else None
            self.render_header()

    def reload_peers(self) -> None:
        """Show the peers (and the selected session) as the node has them now: after a
        decision made in another screen."""
        self.run_worker(self._reload_peers(), group="refresh-peer")

    async def _reload_peers(self) -> None:
        try:
            peers = await self.node.peers()
        except P2PMsgError:
            return
        plist = self.peer_list
        for peer in peers:
            plist.upsert(peer)
        self.render_header()
        if self.selected is not None:
            session = await self.node.session_status(self.selected)
            if session is not None:
                self.sessions[self.selected] = session
            self._render_session()

    # --- selection ------------------------------------------------------------------

    @on(PeerList.PeerChosen)
    def _chosen(self, event: PeerList.PeerChosen) -> None:
        self.open_conversation(event.fingerprint)
        self.query_one(Composer).focus()

    def open_conversation(self, fingerprint: str) -> None:
        """Open a peer's conversation (a fingerprint) or a group's (`group_key`)."""
        if self.has_class("-searching"):
            self._close_search()
        if is_group_key(fingerprint):
            self.open_group(fingerprint[len(GROUP_PREFIX) :])
            return
        self.selected_group = None
        self.selected = fingerprint
        self.query_one(PeerList).select_fingerprint(fingerprint)
        log = self.query_one(MessageLog)
        log.peer_name = self.peer_name(fingerprint)
        log.clear_conversation()
        self.render_header()
        self._load_conversation(fingerprint)
        peer = self.peer(fingerprint)
        if peer is not None and peer.state == "flagged":
            self.dialogs.prompt_key_decision(fingerprint)

    @work(exclusive=True, group="conversation")
    async def _load_conversation(self, fingerprint: str, limit: int = HISTORY_SHOWN) -> None:
        try:
            messages = await self.node.conversation(fingerprint, limit)
            transfers = await self.node.transfers(fingerprint)
            session = await self.node.session_status(fingerprint)
            self.timers.own[fingerprint] = await self.node.conversation_ttl(fingerprint)
        except P2PMsgError as exc:
            self.query_one(MessageLog).add_note(f"could not load: {exc}", error=True)
            return
        if fingerprint != self.selected:
            return
        if session is not None:
            self.sessions[fingerprint] = session
        else:
            self.sessions.pop(fingerprint, None)
        self.query_one(MessageLog).load(messages, transfers)
        self._loaded[fingerprint] = (len(messages), limit)
        if self.has_class("-searching"):
            self._search_changed()
        last_in = next((m for m in reversed(messages) if m.direction == "in"), None)
        self._their_ttl[fingerprint] = last_in.ttl if last_in is not None else None
        self.render_header()
        self._render_session()
        await self._mark_read(fingerprint)

    async def _mark_read(self, fingerprint: str) -> None:
        try:
            await self.node.mark_read(fingerprint)
        except P2PMsgError:
            return  # a failed read receipt is harmless; the next one covers it
        peer = self.peer(fingerprint)
        if peer is not None and peer.unread:
            self.query_one(PeerList).upsert(PeerView(**{**peer.__dict__, "unread": 0}))

    def _schedule_mark_read(self) -> None:
        if self._mark_read_timer is None:
            self._mark_read_timer = self.set_timer(0.5, self._mark_read_now)

    def _mark_read_now(self) -> None:
        self._mark_read_timer = None
        if self.selected is not None:
            self.run_worker(self._mark_read(self.selected), group="mark-read", exclusive=True)
        elif self.selected_group is not None:
            self.run_worker(
                self._mark_group_read(self.selected_group), group="mark-read", exclusive=True
            )

    def render_header(self) -> None:
        header = self.query_one("#conv-header", Static)
        peer = self.peer(self.selected)
        composer = self.query_one(Composer)
        group = self.group(self.selected_group)
        if group is not None:
            self._render_group_header(header, composer, group)
            return
        if peer is None:
            header.update(
                Content.styled(
                    "No conversation selected: pick a peer on the left (or /add HOST:PORT)", MUTED
                )
            )
            composer.set_target(None)
            return
        parts: list[str | Content | tuple[str, str]] = [
            literal_content(clip(peer.name, 32), "bold")
        ]
        if peer.local_name and peer.claimed_name and peer.claimed_name != peer.local_name:
            parts += [(" · says ", MUTED), literal_content(clip(peer.claimed_name, 24), MUTED)]
        parts.append("  ")
        if peer.state == "flagged":
            parts += [
                ("⚠ claims to be ", f"bold {DANGER}"),
                literal_content(clip(peer.clash_with_name or "a contact", 24), f"bold {DANGER}"),
                (", not their key (F3 to decide)", f"bold {DANGER}"),
            ]
        elif peer.state == "blocked":
            parts.append(("⛔ blocked (/unblock)", f"bold {DANGER}"))
        elif peer.verified:
            parts.append(("✔ verified", f"bold {OK}"))
        elif peer.state == "discovered":
            parts.append(("not met yet", WARN))
        else:
            parts.append(("first seen, not verified (F3)", WARN))
        parts += [" · ", ("online", OK) if peer.online else ("offline", MUTED)]
        ttl, is_default = self.timers.effective(peer.fingerprint)
        if ttl is not None:
            parts.append((f" · ⏱ {duration(ttl)}" + (" (default)" if is_default else ""), WARN))
        parts.append((f" · {peer.short_fingerprint}", MUTED))
        header.update(Content.assemble(*parts))
        composer.set_target(
            peer.name,
            blocked_reason=None if peer.sendable else f"Not sending: {describe_unsendable(peer)}",
        )

    def _render_session(self) -> None:
        pane = self.query_one(RotationPane)
        if self.selected_group is not None:
            pane.show(
                None,
                offline_reason="A group: its posts travel in each member's own session. "
                "F7: its members, who is online and verified.",
            )
            return
        peer = self.peer(self.selected)
        if peer is None:
            pane.show(None, offline_reason="Select a peer to see its session.")
            return
        reason = "No live session: the peer is offline." if not peer.online else "Connecting…"
        pane.show(self.sessions.get(peer.fingerprint), peer.name, offline_reason=reason)

    # --- groups ---------------------------------------------------------------------

    def group(self, group_id: str | None) -> GroupView | None:
        return None if group_id is None else self.query_one(PeerList).groups.get(group_id)

    def open_group(self, group_id: str) -> None:
        self.selected = None
        self.selected_group = group_id
        plist = self.query_one(PeerList)
        plist.select_fingerprint(group_key(group_id))
        plist.clear_group_unread(group_id)
        log = self.query_one(MessageLog)
        group = self.group(group_id)
        # The nick column is as wide as the longest label (within its cap).
        labels = [m.name for m in group.members] if group is not None else []
        log.peer_name = max(labels, key=len, default="") + "~"
        log.clear_conversation()
        self.render_header()
        self._render_session()
        self._load_group(group_id)

    @work(exclusive=True, group="conversation")
    async def _load_group(self, group_id: str) -> None:
        try:
            posts = await self.node.group_messages(group_id, HISTORY_SHOWN)
            self.timers.own[group_key(group_id)] = await self.node.group_ttl(group_id)
        except P2PMsgError as exc:
            self.query_one(MessageLog).add_note(f"could not load: {exc}", error=True)
            return
        if group_id != self.selected_group:
            return
        self.render_header()
        peers = self.query_one(PeerList).peers
        self.query_one(MessageLog).load([labelled(p, peers) for p in posts], in_given_order=True)
        if self.has_class("-searching"):
            self._search_changed()
        await self._mark_group_read(group_id)

    async def _mark_group_read(self, group_id: str) -> None:
        """What the open group shows is read (the chats' rule): the node raises its read
        marks and tells the members."""
        with contextlib.suppress(P2PMsgError):  # harmless: the next one covers it
            await self.node.mark_group_read(group_id)

    @work(exclusive=True, group="group-shown")
    async def _group_shown(self) -> None:
        """Disappearing posts that arrived in the open group are shown now: the node
        starts their timers when it hands them out (as opening the group does), and the
        rows get their countdown."""
        group_id = self.selected_group
        if group_id is None:
            return
        try:
            posts = await self.node.group_messages(group_id, HISTORY_SHOWN)
        except P2PMsgError:
            return
        if group_id == self.selected_group:
            peers = self.query_one(PeerList).peers
            timed = [labelled(p, peers) for p in posts if p.deadline is not None]
            if timed:
                self.query_one(MessageLog).add_messages(timed)

    def group_posted(self, message: GroupMessageView) -> None:
        """Our own post, signed and stored by the node."""
        if message.group != self.selected_group:
            return
        self.query_one(MessageLog).add_messages([message])

    def _render_group_header(self, header: Static, composer: Composer, group: GroupView) -> None:
        peers = self.query_one(PeerList).peers
        others = [m for m in group.members if not m.me]
        online = sum(1 for m in others if (p := peers.get(m.fingerprint)) is not None and p.online)
        parts: list[str | Content | tuple[str, str]] = [
            ("# ", MUTED),
            literal_content(clip(group.name, 32), "bold"),
            (f"  {len(group.members)} members · {online} online", MUTED),
        ]
        if not group.member:
            parts.append((" · you are no longer a member", f"bold {DANGER}"))
        elif group.admin:
            parts.append((" · admin", MUTED))
        ttl, is_default = self.timers.effective(group_key(group.id))
        if ttl is not None and group.member:
            parts.append((f" · ⏱ {duration(ttl)}" + (" (default)" if is_default else ""), WARN))
        parts.append((" · F7 members", MUTED))
        header.update(Content.assemble(*parts))
        composer.set_target(
            f"# {group.name}",
            blocked_reason=None if group.member else "Not sending: you are no longer a member",
        )

    def _group_changed(self, group: GroupView) -> None:
        plist = self.query_one(PeerList)
        before = plist.groups.get(group.id)
        plist.upsert_group(group)
        if group.id != self.selected_group or before is None:
            if before is None:
                self.notify(
                    f"You are in the group {printable(clip(group.name, 40))}",
                    title="Group",
                    markup=False,
                )
            return
        log = self.query_one(MessageLog)
        was = {m.fingerprint: m for m in before.members}
        now = {m.fingerprint: m for m in group.members}
        for fp in now.keys() - was.keys():
            log.add_note(f"{printable(self._member_name(now[fp]))} joined the group")
        for fp in was.keys() - now.keys():
            log.add_note(f"{printable(self._member_name(was[fp]))} is no longer a member")
        if before.name != group.name:
            log.add_note(f"the group is now called {printable(group.name)}")

    def _member_name(self, member: GroupMemberView) -> str:
        if member.me:
            return "you"
        return member_label(member.fingerprint, member.name, self.peer(member.fingerprint))

    def _count_group_unread(self, message: GroupMessageView) -> None:
        plist = self.query_one(PeerList)
        plist.count_group_unread(message.group)
        key = group_key(message.group)
        now = time.monotonic()
        if now - self._last_toast.get(key, -NOTIFY_INTERVAL) < NOTIFY_INTERVAL:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last_toast[key] = now
        more = self._suppressed.pop(key, 0)
        author = labelled(message, plist.peers).author_name
        suffix = f"\n(+{more} more)" if more else ""
        self.notify(
            f"{printable(clip(author, 24))}: {printable(clip(message.text or '', 80))}{suffix}",
            title=f"New in # {printable(clip(message.group_name, 32))}",
            markup=False,
        )
        if self.bell:
            self.app.bell()

    # --- node events ----------------------------------------------------------------

    def apply_events(self, events: tuple[NodeEvent, ...]) -> None:
        peers = self.query_one(PeerList)
        log = self.query_one(MessageLog)
        incoming: list[MessageView] = []
        incoming_group: list[GroupMessageView] = []
        new_alerts: list[AlertView] = []
        header_dirty = session_dirty = False
        for event in events:
            if isinstance(event, (PeerDiscovered, PeerUpdated)):
                peers.upsert(event.peer)
                header_dirty = header_dirty or event.peer.fingerprint == self.selected
            elif isinstance(event, PeerConnected):
                peers.upsert(event.peer)
                self.sessions[event.peer.fingerprint] = event.session
                if event.peer.fingerprint == self.selected:
                    header_dirty = session_dirty = True
            elif isinstance(event, (PeerLost, PeerDisconnected)):
                peers.set_online(event.fingerprint, False)
                if isinstance(event, PeerDisconnected):
                    self.sessions.pop(event.fingerprint, None)
                if event.fingerprint == self.selected:
                    header_dirty = session_dirty = True
            elif isinstance(event, MessageReceived) and not event.replayed:
                # (a replay is already in the history and in the store's unread count)
                message = event.message
                if message.peer == self.selected:
                    self._their_timer(message)
                    incoming.append(message)
                else:
                    self._count_unread(message)
            elif isinstance(event, MessageStatusChanged) and event.peer == self.selected:
                log.set_status(event.ids, event.status)
            elif (isinstance(event, MessagesExpired) and event.peer == self.selected) or (
                isinstance(event, GroupMessagesExpired) and event.group == self.selected_group
            ):
                log.expire(event.ids)
            elif isinstance(event, SessionChanged):
                self._session_changed(event)
                session_dirty = session_dirty or event.session.peer == self.selected
            elif isinstance(event, TransferUpdated):
                self._transfer_updated(event)
            elif isinstance(event, NameClashed):
                self._name_clashed(event)
                header_dirty = True
            elif isinstance(event, AlertRaised):
                new_alerts.append(event.alert)
            elif isinstance(event, AlertStateChanged):
                self.query_one(ThreatPanel).update_states(event.alerts)
                self._set_unread_alerts(event.counts.unread)
            elif isinstance(event, AddressDialed):
                self.commands.address_dialed(event)
            elif isinstance(event, MonitorChanged):
                self.query_one(ThreatPanel).set_status(event.status)
            elif isinstance(event, GroupMessageReceived):
                if event.group == self.selected_group:
                    incoming_group.append(labelled(event.message, peers.peers))
                else:
                    self._count_group_unread(event.message)
            elif isinstance(event, GroupReceiptsChanged):
                if event.group == self.selected_group:
                    log.update_messages(event.messages)  # "◷ 0/3" -> "✓✓ 3/3 read 1/3"
            elif isinstance(event, GroupChanged):
                self._group_changed(event.group)
                header_dirty = header_dirty or event.group.id == self.selected_group
        if self.selected is None and self.selected_group is None and peers.option_count:
            # As at start-up: the first peer to show up opens, so what the user types next
            # goes to someone instead of needing a trip to the peer list first.
            first = peers.first_id()
            if first is not None:
                self.open_conversation(first)
        if incoming_group:
            log.add_messages(incoming_group)
            self._schedule_mark_read()
            if any(m.ttl is not None for m in incoming_group):
                self._group_shown()
        for fingerprint in list(self._clash_pending):
            if self.peer(fingerprint) is not None:
                self._clash_pending.discard(fingerprint)
                self.dialogs.prompt_key_decision(fingerprint)
        if incoming:
            log.add_messages(incoming)
            self._schedule_mark_read()
        if new_alerts:
            self._alerts_raised(new_alerts)
        if header_dirty:
            self.render_header()
        if session_dirty:
            self._render_session()

    def _their_timer(self, message: MessageView) -> None:
        """Say so when the peer's messages start or stop disappearing (or change timer)."""
        before = self._their_ttl.get(message.peer, None)
        self._their_ttl[message.peer] = message.ttl
        if message.ttl == before:
            return
        who = printable(clip(self.peer_name(message.peer), 24))
        if message.ttl is None:
            note = f"{who}'s messages no longer disappear."
        else:
            note = (
                f"{who}'s messages now disappear {duration(message.ttl)} after you read them "
                "(their /ttl)."
            )
        self.query_one(MessageLog).add_note(note)

    def _count_unread(self, message: MessageView) -> None:
        peer = self.peer(message.peer)
        if peer is None:
            return
        self.query_one(PeerList).upsert(PeerView(**{**peer.__dict__, "unread": peer.unread + 1}))
        now = time.monotonic()
        if now - self._last_toast.get(peer.fingerprint, -NOTIFY_INTERVAL) < NOTIFY_INTERVAL:
            self._suppressed[peer.fingerprint] = self._suppressed.get(peer.fingerprint, 0) + 1
            return
        self._last_toast[peer.fingerprint] = now
        more = self._suppressed.pop(peer.fingerprint, 0)
        body = "(disappeared)" if message.text is None else clip(message.text, 80)
        suffix = f"\n(+{more} more)" if more else ""
        self.notify(
            printable(body) + suffix, title=f"New message from {printable(peer.name)}", markup=False
        )
        if self.bell:  # a terminal (or tmux) can turn the bell into a desktop notification
            self.app.bell()

    def _session_changed(self, event: SessionChanged) -> None:
        session = event.session
        self.sessions[session.peer] = session
        if session.peer != self.selected:
            return
        if event.what == "cipher_changed":
            note = f"cipher now {session.send.suite} (send) / {session.recv.suite} (recv)"
        elif event.what == "rekeyed":
            note = "fresh key agreement completed"
        else:
            note = f"keys rotated: send epoch {session.send.epoch}, recv epoch {session.recv.epoch}"
        self.query_one(MessageLog).add_note(note)

    def _transfer_updated(self, event: TransferUpdated) -> None:
        transfer = event.transfer
        if transfer.bundle_id is not None:
            return  # a file inside a folder offer: the offer's own card shows its progress
        if transfer.peer == self.selected:
            self.query_one(MessageLog).upsert_transfer(transfer)
        elif transfer.direction == "in" and transfer.state == "offered":
            what = printable(transfer.name)
            if transfer.files:
                what = f"the folder {what} ({transfer.files} files, {format_bytes(transfer.size)})"
            self.notify(
                f"{printable(self.peer_name(transfer.peer))} offers {what}",
                title="Folder offered" if transfer.files else "File offered",
                markup=False,
            )

    def _name_clashed(self, event: NameClashed) -> None:
        """A new key claims a contact's name: it is its own, flagged entry (the node sends
        its view too); say so where the user is looking, and ask once what it is."""
        if event.fingerprint == self.selected:
            self.query_one(MessageLog).add_note(
                f"this key claims to be {printable(clip(event.contact_name, 32))} but is not "
                "that contact's key: nothing is sent to it until you decide (F3)",
                error=True,
            )
        self.dialogs.ask_again(event.fingerprint)
        # The flagged key's own view may arrive later in this batch or the next one
        # (the node announces the clash before the connection): ask once it is here.
        self._clash_pending.add(event.fingerprint)

    def _alerts_raised(self, alerts: list[AlertView]) -> None:
        panel = self.query_one(ThreatPanel)
        panel.add_alerts(alerts)
        self._set_unread_alerts(self.unread_alerts + sum(a.state == "unread" for a in alerts))
        for alert in alerts:
            if SEVERITY_RANK.get(alert.severity, 0) >= SEVERITY_RANK["high"]:
                # Who it is about (the peer's name, or the address of one that proved no
                # key) is in the title: the message alone may not say it.
                who = printable(clip(panel.source_of(alert), 40))
                self.notify(
                    printable(clip(alert.message, 120)),
                    title=f"{alert.severity.upper()} alert: {alert.kind} ({who})",
                    severity="error",
                    markup=False,
                    timeout=8,
                )


def _short(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, 16, 4))

"""Group screens: create a group with members picked from contacts, the member pane
(who is in, online, verified or first seen; add, remove, leave), and the one
confirmation both remove and leave ask for.

Names here are claims unless the user gave them: a member's label is the user's
petname for that key when there is one, else the name the group's history gives
it, marked "~" as a claim (`member_label`). A name never decides who anyone is:
every action names a member by fingerprint. Every peer-supplied string is
literal text through `safe_text` (never markup).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, SelectionList, Static
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import (
    GroupChanged,
    GroupMemberView,
    GroupView,
    NodeAPI,
    NodeEvent,
    PeerConnected,
    PeerDisconnected,
    PeerLost,
    PeerUpdated,
    PeerView,
)
from p2pmsg.ui.palette import DANGER, MUTED, OK, WARN
from p2pmsg.ui.safe_text import clip, literal_content, printable
from p2pmsg.ui.widgets.choice_list import ChoiceList

#: The marker of a claimed name (no petname of the user's for that key).
CLAIM_MARK = "~"

Peers = Callable[[], Mapping[str, PeerView]]


def member_label(fingerprint: str, claimed: str, peer: PeerView | None) -> str:
    """The user's petname for the key, else `claimed` marked as a claim (raw: the
    caller sanitises where it prints)."""
    if peer is not None and peer.local_name:
        return peer.local_name
    return CLAIM_MARK + (claimed or fingerprint[:8])


def trust_text(peer: PeerView | None) -> tuple[str, str]:
    """What this profile knows of a member's key, and its style."""
    if peer is None:
        return "not a contact (never met)", WARN
    if peer.state == "flagged":
        return "⚠ claims a contact's name", f"bold {DANGER}"
    if peer.state == "blocked":
        return "⛔ blocked", f"bold {DANGER}"
    if peer.verified:
        return "✔ verified", f"bold {OK}"
    if peer.state == "discovered":
        return "not met yet", WARN
    if peer.introduced_by:  # a group's hint, peer text: made inert
        note = peer.introduced_by[0]
        who = printable(clip(note.introducer_name, 20)) or note.introducer[:8]
        return f"first seen, not verified, introduced by {who}", WARN
    return "first seen, not verified", WARN


def member_row(member: GroupMemberView, peer: PeerView | None, me_name: str) -> Content:
    if member.me:
        name = me_name + " (you)"
        online: tuple[str, str] = ("● ", OK)
    else:
        name = member_label(member.fingerprint, member.name, peer)
        online = ("● ", OK) if peer is not None and peer.online else ("○ ", MUTED)
    parts: list[str | Content | tuple[str, str]] = [online, literal_content(clip(name, 28), "bold")]
    if member.admin:
        parts.append((" admin", MUTED))
    if not member.me:
        text, style = trust_text(peer)
        parts += ["  ", (text, style)]
    short = " ".join(member.fingerprint[i : i + 4] for i in range(0, 16, 4))
    parts += ["\n  ", (short, MUTED)]
    return Content.assemble(*parts)


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no before something that cannot be undone from here (remove, leave)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, title: str, body: str, confirm: str) -> None:
        super().__init__()
        self._title, self._body, self._confirm = title, body, confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -danger", id="confirm-box"):
            yield Static(Content.styled(self._title, "bold"), id="confirm-title")
            yield Static(Content(self._body), id="confirm-body")
            with Horizontal(classes="buttons"):
                yield Button(self._confirm, id="confirm", variant="error")
                yield Button("Cancel", id="cancel", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _no(self) -> None:
        self.dismiss(False)


def pickable(peers: Mapping[str, PeerView], exclude: set[str] | None = None) -> list[PeerView]:
    """Contacts a group may name: a key met before (pinned) with nothing held against it."""
    return sorted(
        (
            p
            for p in peers.values()
            if p.state == "pinned" and p.fingerprint not in (exclude or set())
        ),
        key=lambda p: (not p.online, p.name.casefold()),
    )


def _pick_label(peer: PeerView) -> Content:
    return Content.assemble(
        ("● ", OK) if peer.online else ("○ ", MUTED),
        literal_content(clip(peer.name, 24)),
        ("  ✔" if peer.verified else "", OK),
        (f"  {peer.short_fingerprint}", MUTED),
    )


class CreateGroupScreen(ModalScreen[tuple[str, list[str]] | None]):
    """A name and members picked from contacts; returns (name, fingerprints)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, peers: Mapping[str, PeerView], name: str = "") -> None:
        super().__init__()
        self._candidates = pickable(peers)
        self._name = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="group-create-box"):
            yield Static(Content.styled("New group", "bold"), id="group-create-title")
            yield Input(self._name, placeholder="group name", id="group-name", max_length=128)
            if self._candidates:
                yield Static(
                    Content.styled("Members (space picks; only contacts you have met):", MUTED)
                )
                yield ChoiceList(
                    *(Selection(_pick_label(p), p.fingerprint) for p in self._candidates),
                    id="group-members",
                )
            else:
                yield Static(
                    Content.styled(
                        "No contacts to add yet: meet someone first (/add HOST:PORT).", WARN
                    )
                )
            yield Static(id="group-create-error")
            with Horizontal(classes="buttons"):
                yield Button("Create", id="create", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if self._name and self._candidates:
            self.query_one(SelectionList).focus()
        else:
            self.query_one("#group-name", Input).focus()

    @on(Input.Submitted, "#group-name")
    def _name_entered(self) -> None:
        if self._candidates:
            self.query_one(SelectionList).focus()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        name = self.query_one("#group-name", Input).value.strip()
        chosen = list(self.query_one(SelectionList).selected) if self._candidates else []
        error = self.query_one("#group-create-error", Static)
        if not name:
            error.update(Content.styled("Give the group a name.", f"bold {DANGER}"))
            self.query_one("#group-name", Input).focus()
            return
        if not chosen:
            error.update(Content.styled("Pick at least one member (space).", f"bold {DANGER}"))
            return
        self.dismiss((name, chosen))


class AddMemberScreen(ModalScreen[str | None]):
    """Pick one contact who is not a member yet; returns its fingerprint."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, group: GroupView, peers: Mapping[str, PeerView]) -> None:
        super().__init__()
        self._group = group
        members = {m.fingerprint for m in group.members}
        self._candidates = pickable(peers, members)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="group-add-box"):
            yield Static(
                Content.assemble(
                    ("Add to ", "bold"), literal_content(clip(self._group.name, 40), "bold")
                )
            )
            if self._candidates:
                yield OptionList(
                    *(Option(_pick_label(p), id=p.fingerprint) for p in self._candidates),
                    id="group-add-list",
                )
                yield Static(Content.styled("Enter adds · esc cancels", MUTED))
            else:
                yield Static(Content.styled("Every contact you have met is a member.", WARN))
                with Horizontal(classes="buttons"):
                    yield Button("Close", id="cancel")

    @on(OptionList.OptionSelected, "#group-add-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class GroupMembersScreen(ModalScreen[None]):
    """The member pane of one group: kept current by the node's events."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f7", "dismiss(None)", "Close"),
        Binding("a", "add", "Add"),
        Binding("r,delete", "remove", "Remove"),
        Binding("l", "leave", "Leave"),
    ]

    def __init__(self, node: NodeAPI, group: GroupView, peers: Peers) -> None:
        super().__init__()
        self._node = node
        self.group = group
        self._peers = peers

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="members-box"):
            yield Static(id="members-title")
            yield OptionList(id="members-list")
            yield Static(id="members-status")
            yield Static(
                Content.styled(
                    "a add · r remove (admins) · l leave · esc close   "
                    f"{CLAIM_MARK}name: the name they claim (no name of yours for them)",
                    MUTED,
                ),
                id="members-keys",
            )

    def on_mount(self) -> None:
        self._show()
        self.query_one("#members-list", OptionList).focus()

    def apply_events(self, events: tuple[NodeEvent, ...]) -> None:
        dirty = False
        for event in events:
            if isinstance(event, GroupChanged) and event.group.id == self.group.id:
                self.group = event.group
                dirty = True
            elif isinstance(event, (PeerUpdated, PeerConnected, PeerDisconnected, PeerLost)):
                dirty = True  # the main screen's peer list (read through _peers) moved
        if dirty:
            self.call_after_refresh(self._show)

    def _show(self) -> None:
        group = self.group
        peers = self._peers()
        online = sum(
            1
            for m in group.members
            if not m.me and (p := peers.get(m.fingerprint)) is not None and p.online
        )
        title: list[str | Content | tuple[str, str]] = [
            ("Members of ", "bold"),
            literal_content(clip(group.name, 40), "bold"),
            (f"  {len(group.members)} in, {online} online", MUTED),
        ]
        if not group.member:
            title.append(("  you are no longer a member", f"bold {DANGER}"))
        elif group.admin:
            title.append(("  you are an admin", MUTED))
        self.query_one("#members-title", Static).update(Content.assemble(*title))
        listing = self.query_one("#members-list", OptionList)
        highlighted = listing.highlighted
        me_name = printable(self._node.display_name)
        listing.clear_options()
        listing.add_options(
            Option(member_row(m, peers.get(m.fingerprint), me_name), id=m.fingerprint)
            for m in group.members
        )
        if group.members:
            listing.highlighted = min(highlighted or 0, len(group.members) - 1)

    def _status(self, text: str, *, error: bool = False) -> None:
        style = f"bold {DANGER}" if error else MUTED
        self.query_one("#members-status", Static).update(Content.styled(text, style))

    def _chosen(self) -> GroupMemberView | None:
        option = self.query_one("#members-list", OptionList).highlighted_option
        if option is None:
            return None
        return next((m for m in self.group.members if m.fingerprint == option.id), None)

    def action_add(self) -> None:
        if not self.group.member:
            self._status("You are no longer a member of this group.", error=True)
            return
        self.app.push_screen(AddMemberScreen(self.group, self._peers()), self._add_picked)

    def _add_picked(self, fingerprint: str | None) -> None:
        if fingerprint is not None:
            self._act("add", fingerprint)

    def action_remove(self) -> None:
        member = self._chosen()
        if member is None:
            return
        if member.me:
            self._status("That is you: l leaves the group.", error=True)
            return
        name = printable(
            member_label(member.fingerprint, member.name, self._peers().get(member.fingerprint))
        )
        body = (
            f"Remove {name} ({member.fingerprint[:16]}) from {printable(self.group.name)}? "
            "They stop getting the group's messages; what they already have stays with them. "
            "Only admins may remove, and nobody may remove the group's creator."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._act("remove", member.fingerprint)

        self.app.push_screen(ConfirmScreen("Remove a member", body, "Remove"), confirmed)

    def action_leave(self) -> None:
        if not self.group.member:
            self._status("You are no longer a member of this group.", error=True)
            return
        body = (
            f"Leave {printable(self.group.name)}? You stop getting its messages and cannot "
            "post; a member has to add you again to come back. Its history stays here."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._act("leave", "")

        self.app.push_screen(ConfirmScreen("Leave the group", body, "Leave"), confirmed)

    @work(group="group-member-action")
    async def _act(self, action: str, fingerprint: str) -> None:
        group = self.group.id
        self._status(f"{action}…")
        try:
            if action == "add":
                view = await self._node.add_member(group, fingerprint)
            elif action == "remove":
                view = await self._node.remove_member(group, fingerprint)
            else:
                view = await self._node.leave_group(group)
        except P2PMsgError as exc:
            self._status(f"Not done: {printable(str(exc))}", error=True)
            return
        self.group = view
        done = {"add": "added", "remove": "removed", "leave": "you left the group"}[action]
        self._status(done)
        self._show()

"""What the user does with groups from the main screen: post to the open group, and
`/group create|add|remove|leave|members|receipts` (create also on ctrl+g, members on F7).

`GroupCommands` belongs to `ConversationCommands` (the composer's path) and sees
the main screen only through `GroupHost`. Every node call runs in a worker and
ends in a note in the conversation: done, or why not (the node's `P2PMsgError`
messages are written to be shown). Remove and leave ask first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from functools import partial
from typing import Protocol, TypeVar

from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import GroupMessageView, GroupView, NodeAPI, PeerView
from p2pmsg.ui import slash
from p2pmsg.ui.safe_text import clip, printable
from p2pmsg.ui.screens.disappearing import DisappearingTimers
from p2pmsg.ui.screens.groups import (
    ConfirmScreen,
    CreateGroupScreen,
    GroupMembersScreen,
    member_label,
)
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.message_row import group_delivery
from p2pmsg.ui.widgets.peer_list import PeerList, group_key

ResultT = TypeVar("ResultT")


class GroupHost(Protocol):
    @property
    def selected_group(self) -> str | None: ...

    @property
    def message_log(self) -> MessageLog: ...

    @property
    def composer(self) -> Composer: ...

    @property
    def peer_list(self) -> PeerList: ...

    def open_conversation(self, fingerprint: str) -> None: ...

    def render_header(self) -> None: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...

    def group_posted(self, message: GroupMessageView) -> None: ...

    def push_screen(
        self,
        screen: Screen[ResultT],
        callback: Callable[[ResultT | None], None] | None = None,
    ) -> None: ...

    def run_worker(
        self,
        work: Callable[[], Coroutine[None, None, None]] | Awaitable[None],
        *,
        group: str = "default",
    ) -> Worker[None]: ...


def labelled(message: GroupMessageView, peers: dict[str, PeerView]) -> GroupMessageView:
    """The post with its author shown as the user knows them: the petname, else the
    claimed name marked as a claim (the nick column prints `author_name`)."""
    if message.direction == "out":
        return message
    label = member_label(message.author, message.author_name, peers.get(message.author))
    return replace(message, author_name=label)


class GroupCommands:
    def __init__(
        self,
        node: NodeAPI,
        host: GroupHost,
        send_lock: asyncio.Lock,
        timers: DisappearingTimers | None = None,
    ) -> None:
        self._node = node
        self._host = host
        self._send_lock = send_lock  # shared with one-to-one sends: posts keep their order
        # /ttl in a group (its own timer, else the Settings default), as in a chat.
        self._timers = timers if timers is not None else DisappearingTimers()

    def group(self, group_id: str | None) -> GroupView | None:
        return None if group_id is None else self._host.peer_list.groups.get(group_id)

    # --- posting ----------------------------------------------------------------------

    def post(self, text: str) -> bool:
        """Post to the open group; False when no group is open (not for us)."""
        group = self.group(self._host.selected_group)
        if group is None:
            return False
        if not group.member:
            self._host.message_log.add_note(
                "Not sent: you are no longer a member of this group.", error=True
            )
            self._host.composer.give_back(text)
            return True
        self._host.run_worker(partial(self._post, group.id, text), group="send")
        return True

    async def _post(self, group_id: str, text: str) -> None:
        ttl, _ = self._timers.effective(group_key(group_id))
        try:
            async with self._send_lock:
                message = await self._node.send_group(group_id, text, ttl=ttl)
        except P2PMsgError as exc:
            self._host.message_log.add_note(f"Not sent: {printable(str(exc))}", error=True)
            self._host.composer.give_back(f"/{text}" if text.startswith("/") else text)
            return
        self._host.group_posted(message)

    # --- /group -----------------------------------------------------------------------

    def run(self, command: slash.Slash) -> None:
        log = self._host.message_log
        if command.action == "create":
            self.create(command.arg)
            return
        group = self.group(self._host.selected_group)
        if group is None:
            log.add_note(
                f"/group {command.action} acts on the open group: pick a group first "
                "(the Groups section of the list, or ctrl+n).",
                error=True,
            )
            return
        if command.action == "members":
            self.members()
        elif command.action == "receipts":
            self._host.run_worker(self._receipts(group), group="group-receipts")
        elif command.action == "add":
            self._call(
                self._node.add_member(group.id, command.arg),
                f"added {printable(command.arg)} to {printable(group.name)}",
            )
        elif command.action == "remove":
            self._confirm_remove(group, command.arg)
        elif command.action == "rename":
            self._call(
                self._node.rename_group(group.id, command.arg),
                f"renamed {printable(group.name)} to {printable(command.arg)}",
            )
        elif command.action == "leave":
            self.leave()

    def create(self, name: str = "") -> None:
        def chosen(result: tuple[str, list[str]] | None) -> None:
            if result is not None:
                self._host.run_worker(self._create(*result), group="group-create")

        self._host.push_screen(CreateGroupScreen(self._host.peer_list.peers, name), chosen)

    async def _create(self, name: str, members: list[str]) -> None:
        try:
            view = await self._node.create_group(name, members)
        except P2PMsgError as exc:
            self._host.message_log.add_note(f"Group not created: {printable(str(exc))}", error=True)
            return
        self._host.peer_list.upsert_group(view)
        self._host.open_conversation(group_key(view.id))
        # A toast, not a note: opening the group reloads (and so clears) the log.
        self._host.notify(
            f"created {printable(view.name)} with {len(view.members) - 1} other member(s); "
            "members who are offline get it when they meet any member (F7: members)",
            title="Group created",
            markup=False,
        )

    def members(self) -> None:
        group = self.group(self._host.selected_group)
        if group is None:
            self._host.message_log.add_note("Open a group first to see its members.", error=True)
            return
        peers = self._host.peer_list
        self._host.push_screen(GroupMembersScreen(self._node, group, lambda: peers.peers))

    async def _receipts(self, group: GroupView) -> None:
        """The list on demand: who holds, and who has read, our last post."""
        log = self._host.message_log
        try:
            post, receipts = await self._node.group_receipts(group.id)
        except P2PMsgError as exc:
            log.add_note(printable(str(exc)), error=True)
            return
        peers = self._host.peer_list.peers
        said: dict[str, list[str]] = {"read": [], "holds it, not read": [], "waiting": []}
        for r in receipts:
            label = member_label(r.fingerprint, r.name, peers.get(r.fingerprint))
            what = "read" if r.read else "holds it, not read" if r.delivered else "waiting"
            said[what].append(printable(clip(label, 24)))
        marks = group_delivery(post) or "nobody else is in the group"
        # A disappearing post is not quoted: this note would outlive its text in the log.
        if post.text is None or post.ttl is not None:
            shown = "(disappeared)" if post.text is None else "(disappearing)"
        else:
            shown = f'"{printable(clip(post.text, 30))}"'
        log.add_note(f"your last post {shown}: {marks}")
        for what, names in said.items():
            if names:
                log.add_note(f"{what}: {', '.join(names)}")

    def leave(self) -> None:
        group = self.group(self._host.selected_group)
        if group is None:
            return
        body = (
            f"Leave {printable(group.name)}? You stop getting its messages and cannot post; "
            "a member has to add you again to come back. Its history stays here."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._call(self._node.leave_group(group.id), f"you left {printable(group.name)}")

        self._host.push_screen(ConfirmScreen("Leave the group", body, "Leave"), confirmed)

    def _confirm_remove(self, group: GroupView, who: str) -> None:
        body = (
            f"Remove {printable(clip(who, 40))} from {printable(group.name)}? They stop getting "
            "the group's messages. Only admins may remove, and nobody may remove the creator."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._call(
                    self._node.remove_member(group.id, who),
                    f"removed {printable(who)} from {printable(group.name)}",
                )

        self._host.push_screen(ConfirmScreen("Remove a member", body, "Remove"), confirmed)

    def _call(self, call: Awaitable[GroupView], done: str) -> None:
        log = self._host.message_log

        async def run() -> None:
            try:
                view = await call
            except P2PMsgError as exc:
                log.add_note(f"Not done: {printable(str(exc))}", error=True)
                return
            self._host.peer_list.upsert_group(view)
            log.add_note(done)
            self._host.render_header()

        self._host.run_worker(run(), group="group-call")

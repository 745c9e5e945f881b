"""The main screen's parts on their own: `ConversationCommands` and `MainDialogs` see
the screen only through a narrow host, so a recording stand-in drives them here,
with no app running. (The screen itself, with both, is tested in test_main_screen.py.)"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from p2pmsg.node.api import AddressDialed, PeerView
from p2pmsg.ui.screens.conversation_commands import ConversationCommands
from p2pmsg.ui.screens.dialogs import MainDialogs
from p2pmsg.ui.screens.disappearing import DisappearingTimers
from p2pmsg.ui.screens.key_decision import KeyDecisionScreen
from p2pmsg.ui.screens.verify import VerifyScreen
from tests.ui.conftest import FIXED_CLOCK
from tests.ui.fake_node import FakeNode


class Log:
    def __init__(self) -> None:
        self.notes: list[tuple[str, bool]] = []
        self.shown: list[str] = []

    def add_note(self, text: str, error: bool = False) -> None:
        self.notes.append((text, error))

    def add_messages(self, messages: list[Any]) -> None:
        self.shown += [m.text for m in messages]


class Composer:
    def __init__(self) -> None:
        self.given_back: list[str] = []

    def give_back(self, text: str) -> None:
        self.given_back.append(text)


class Host:
    """Records what the parts ask of the screen."""

    def __init__(self, node: FakeNode, selected: str | None) -> None:
        self.node = node
        self.selected = selected
        self.selected_group: str | None = None
        self.message_log = Log()
        self.composer = Composer()
        self.peer_list: Any = None
        self.toasts: list[tuple[str, str]] = []
        self.workers: list[tuple[str, Any]] = []
        self.pushed: list[Any] = []
        self.callbacks: list[Callable[[Any], None] | None] = []
        self.reloads = 0

    def peer(self, fingerprint: str | None) -> PeerView | None:
        return None if fingerprint is None else self.node.peer_views.get(fingerprint)

    def peer_name(self, fingerprint: str | None) -> str:
        peer = self.peer(fingerprint)
        return "-" if peer is None else peer.name

    def notify(self, message: str, *, severity: str = "information", **_: Any) -> None:
        self.toasts.append((message, severity))

    def run_worker(self, work: Any, *, group: str = "default") -> None:
        self.workers.append((group, work))

    async def run_workers(self) -> None:
        while self.workers:
            _, work = self.workers.pop(0)
            await (work() if callable(work) else work)

    def push_screen(self, screen: Any, callback: Callable[[Any], None] | None = None) -> None:
        self.pushed.append(screen)
        self.callbacks.append(callback)

    def reload_peers(self) -> None:
        self.reloads += 1

    def render_header(self) -> None:
        pass


def parts(
    selected: str | None = None,
) -> tuple[FakeNode, Host, ConversationCommands, MainDialogs, DisappearingTimers]:
    node = FakeNode("alice")
    node.make_peer("bob")
    host = Host(node, selected)
    timers = DisappearingTimers()
    dialogs = MainDialogs(node, FIXED_CLOCK, host)  # type: ignore[arg-type]
    commands = ConversationCommands(node, host, dialogs, timers)  # type: ignore[arg-type]
    return node, host, commands, dialogs, timers


def test_a_conversations_own_timer_wins_over_the_default() -> None:
    timers = DisappearingTimers(default=3600.0)
    assert timers.effective("bob") == (3600.0, True)
    timers.own["bob"] = 300.0
    assert timers.effective("bob") == (300.0, False)
    timers.own["bob"] = math.inf  # /ttl off: never, whatever the default
    assert timers.effective("bob") == (None, False)
    assert DisappearingTimers().effective("bob") == (None, False)


async def test_messages_go_out_in_order_with_the_conversations_timer() -> None:
    node, host, commands, _, timers = parts()
    bob = next(iter(node.peer_views))
    host.selected = bob
    timers.own[bob] = 300.0
    for text in ("one", "two", "//three"):
        commands.sent(text)
    assert [group for group, _ in host.workers] == ["send"] * 3
    await host.run_workers()
    sent = [c for c in node.calls if c[0] == "send_text"]
    assert [c[2] for c in sent] == ["one", "two", "/three"]
    assert host.message_log.shown == ["one", "two", "/three"]
    assert all(c[3] == 300.0 for c in sent)


def test_nothing_is_sent_without_a_peer_and_the_text_comes_back() -> None:
    _, host, commands, _, _ = parts()
    commands.sent("hello?")
    assert host.message_log.notes == [
        ("Not sent: pick a peer first (left column, or ctrl+n).", True)
    ]
    assert host.composer.given_back == ["hello?"] and not host.workers


def test_writing_to_a_flagged_key_asks_again_who_it_is() -> None:
    node, host, commands, dialogs, _ = parts()
    bob = next(iter(node.peer_views))
    impostor = node.impostor(bob)
    host.selected = impostor.fingerprint
    dialogs.prompt_key_decision(impostor.fingerprint)
    dialogs.prompt_key_decision(impostor.fingerprint)  # once per flag
    assert [type(s) for s in host.pushed] == [KeyDecisionScreen]
    commands.sent("is that you?")
    assert host.composer.given_back == ["is that you?"]
    assert "decide who it is first (F3)" in host.message_log.notes[-1][0]
    assert [type(s) for s in host.pushed] == [KeyDecisionScreen] * 2  # asked again
    dialogs.verify()  # F3 on a flagged key: the decision, not the safety number
    assert [type(s) for s in host.pushed] == [KeyDecisionScreen] * 3


def test_verify_needs_a_peer_and_reloads_the_peers_after() -> None:
    node, host, _, dialogs, _ = parts()
    dialogs.verify()
    assert host.toasts == [("Pick a peer to verify first.", "warning")] and not host.pushed
    host.selected = next(iter(node.peer_views))
    dialogs.verify()
    assert [type(s) for s in host.pushed] == [VerifyScreen]
    after = host.callbacks[-1]
    assert after is not None
    after(True)
    assert host.reloads == 1


async def test_only_the_first_outcome_of_an_add_is_said() -> None:
    _, host, commands, _, _ = parts()
    commands.sent("/add 192.0.2.7:47001")
    assert host.message_log.notes == [("connecting to 192.0.2.7:47001…", False)]
    await host.run_workers()
    failed = AddressDialed("192.0.2.7", 47001, None, "connection refused")
    commands.address_dialed(failed)
    commands.address_dialed(failed)  # later attempts stay quiet
    assert host.toasts == [
        (
            "/add: could not reach 192.0.2.7:47001: connection refused. The address is kept; "
            "p2pmsg tries it again in the background.",
            "warning",
        )
    ]
    assert len(host.message_log.notes) == 2

"""A group made in the app, between three real nodes on loopback: real TCP, Noise,
record layer, signed group items, anti-entropy and SQLite; nothing faked below the
app. Alice creates "team" with bob and carol from the dialog; bob's app lists the
group as it arrives and shows alice's post under her claimed name; bob's reply
reaches alice; alice's delivery count reaches ✓✓ 2/2, read 1/2 (bob has the group
open, carol has no app); carol is removed from the
member pane and bob's app says so; bob's attempt to remove the creator is
refused and said."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Button

from p2pmsg.crypto.identity import Identity
from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.screens.groups import ConfirmScreen, CreateGroupScreen, GroupMembersScreen
from p2pmsg.ui.screens.main import MainScreen
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.peer_list import PeerList, group_key

node_module = pytest.importorskip("p2pmsg.node.node")
from tests.node.conftest import connect, loopback_config  # noqa: E402 - after the skip check


async def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_group_made_in_the_app_reaches_real_members(tmp_path: Path) -> None:
    nodes = {}
    for name in ("alice", "bob", "carol"):
        nodes[name] = await node_module.Node.open(
            Identity.generate(os.urandom),
            name,
            tmp_path / f"{name}.db",
            os.urandom(32),
            loopback_config(),
        )
        await nodes[name].start()
    alice, bob, carol = nodes["alice"], nodes["bob"], nodes["carol"]
    app_a, app_b = P2PMsgApp(node=alice), P2PMsgApp(node=bob)
    try:
        await connect(alice, bob)
        await connect(alice, carol)
        await connect(bob, carol)
        async with app_a.run_test(size=(120, 40)) as pa, app_b.run_test(size=(80, 24)) as pb:
            await pa.pause(0.3)
            await pb.pause(0.3)
            main_a, main_b = app_a.screen, app_b.screen
            assert isinstance(main_a, MainScreen) and isinstance(main_b, MainScreen)
            peers_a = main_a.query_one(PeerList)
            await _until(
                lambda: {bob.fingerprint, carol.fingerprint} <= peers_a.peers.keys(),
                "alice lists bob and carol",
            )
            await pa.press("ctrl+g")
            await _until(lambda: isinstance(app_a.screen, CreateGroupScreen), "the dialog")
            dialog = app_a.screen
            dialog.query_one("#group-name").value = "team"  # type: ignore[attr-defined]
            picker = dialog.query_one("#group-members")
            picker.select(bob.fingerprint)  # type: ignore[attr-defined]
            picker.select(carol.fingerprint)  # type: ignore[attr-defined]
            # (Buttons are pressed, not clicked: with two apps under test at once the
            # pilots' mouse events do not land.)
            dialog.query_one("#create", Button).press()
            await _until(lambda: main_a.selected_group is not None, "alice's group opens")
            gid = main_a.selected_group
            assert gid is not None

            # Bob's app lists the group once its history reached his node.
            peers_b = main_b.query_one(PeerList)
            await _until(lambda: gid in peers_b.groups, "bob's app lists the group")
            assert len(peers_b.groups[gid].members) == 3

            composer_a = main_a.query_one(Composer)
            composer_a.focus()
            composer_a.text = "hello team [b]x[/b]"
            await pa.press("enter")
            await _until(lambda: peers_b.group_unread.get(gid) == 1, "bob's unread count")
            main_b.open_conversation(group_key(gid))
            log_b = main_b.query_one(MessageLog)
            await _until(
                lambda: any("hello team [b]x[/b]" in line for line in log_b.plain_lines()),
                "bob's log",
            )
            # Bob has no name of his own for alice: her claim, marked as one.
            assert any("~alice │ hello team" in line for line in log_b.plain_lines())
            log_a = main_a.query_one(MessageLog)
            await _until(
                lambda: any(
                    line.endswith("[b]x[/b] ✓✓ 2/2 read 1/2") for line in log_a.plain_lines()
                ),
                f"alice's receipts {log_a.plain_lines()[-3:]}",
            )

            composer_b = main_b.query_one(Composer)
            composer_b.focus()
            composer_b.text = "hi alice"
            await pb.press("enter")
            await _until(
                lambda: any("~bob │ hi alice" in line for line in log_a.plain_lines()),
                "alice sees bob's reply",
            )

            # Alice (the creator, an admin) removes carol from the member pane.
            await pa.press("f7")
            await _until(lambda: isinstance(app_a.screen, GroupMembersScreen), "member pane")
            pane = app_a.screen
            assert isinstance(pane, GroupMembersScreen)
            names = [m.fingerprint for m in pane.group.members]
            pane.query_one("#members-list").highlighted = names.index(carol.fingerprint)  # type: ignore[attr-defined]
            await pa.press("r")
            await _until(lambda: isinstance(app_a.screen, ConfirmScreen), "confirmation")
            app_a.screen.query_one("#confirm", Button).press()
            await _until(lambda: len(pane.group.members) == 2, "carol removed")
            await _until(
                lambda: len(peers_b.groups[gid].members) == 2, "bob's app sees the removal"
            )
            await _until(
                lambda: any("~carol is no longer a member" in n for n in log_b.notes()),
                "bob is told in the conversation",
            )
            # Bob is an admin (the creator added him) but nobody may remove the creator:
            # his attempt is refused by the node, said in the conversation, not crashed.
            composer_b.text = f"/group remove {alice.fingerprint[:12]}"
            await pb.press("enter")
            await _until(lambda: isinstance(app_b.screen, ConfirmScreen), "bob's confirmation")
            app_b.screen.query_one("#confirm", Button).press()
            await _until(
                lambda: any(n.startswith("Not done:") for n in log_b.notes()),
                "bob is told why not",
            )
            assert len(peers_b.groups[gid].members) == 2
    finally:
        for node in nodes.values():
            await node.stop()

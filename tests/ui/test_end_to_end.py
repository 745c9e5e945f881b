"""Two app instances chatting over two real nodes on loopback.

Real TCP on 127.0.0.1, real Noise handshake, real record layer, real SQLite:
nothing is faked below the app. Discovery is off (peers are added with
`/add 127.0.0.1:PORT` in the composer, as a user on a routed network would).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from p2pmsg.crypto.identity import Identity
from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.screens.main import MainScreen
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.peer_list import PeerList
from p2pmsg.ui.widgets.rotation_pane import RotationPane

node_module = pytest.importorskip("p2pmsg.node.node")
from tests.node.conftest import loopback_config  # noqa: E402 - after the skip check


async def _until(check: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _submit(app: P2PMsgApp, pilot, line: str) -> None:  # type: ignore[no-untyped-def]
    composer = app.screen.query_one(Composer)
    composer.focus()
    composer.text = line
    await pilot.press("enter")


async def test_two_apps_chat_over_real_nodes(tmp_path: Path) -> None:
    nodes = []
    for name in ("alice", "bob"):
        node = await node_module.Node.open(
            Identity.generate(os.urandom),
            name,
            tmp_path / f"{name}.db",
            os.urandom(32),
            loopback_config(),
        )
        await node.start()
        nodes.append(node)
    alice, bob = nodes
    app_a, app_b = P2PMsgApp(node=alice), P2PMsgApp(node=bob)
    try:
        async with app_a.run_test(size=(120, 40)) as pa, app_b.run_test(size=(120, 40)) as pb:
            await pa.pause(0.2)
            await pb.pause(0.2)
            main_a, main_b = app_a.screen, app_b.screen
            assert isinstance(main_a, MainScreen) and isinstance(main_b, MainScreen)
            await _submit(app_a, pa, f"/add 127.0.0.1:{bob.listen_port}")
            peers_a, peers_b = main_a.query_one(PeerList), main_b.query_one(PeerList)
            await _until(
                lambda: bob.fingerprint in peers_a.peers and peers_a.peers[bob.fingerprint].online,
                "alice sees bob online",
            )
            await _until(lambda: alice.fingerprint in peers_b.peers, "bob sees alice")
            # The outcome of /add is said, in a toast that outlives the conversation switch.
            await _until(
                lambda: any(
                    n.title == "Connected"
                    and n.message.startswith(f"/add: reached 127.0.0.1:{bob.listen_port}: bob (")
                    for n in app_a._notifications
                ),
                "alice is told the /add worked",
            )

            main_a.open_conversation(bob.fingerprint)
            await _until(
                lambda: main_a.sessions.get(bob.fingerprint) is not None, "alice's session pane"
            )
            await pa.pause(0.1)
            assert (
                "chacha20-poly1305" in main_a.query_one(RotationPane).plain
                or "aes-256-gcm" in main_a.query_one(RotationPane).plain
            )
            await _submit(app_a, pa, "hello bob, [red]literally[/red]")
            # Bob had no conversation open: the first peer to show up opened by itself.
            await _until(lambda: main_b.selected == alice.fingerprint, "bob's conversation")
            log_b = main_b.query_one(MessageLog)
            await _until(
                lambda: any(
                    "hello bob, [red]literally[/red]" in line for line in log_b.plain_lines()
                ),
                "bob's log",
            )
            await _submit(app_b, pb, "hi alice")
            log_a = main_a.query_one(MessageLog)
            await _until(
                lambda: any("bob │ hi alice" in line for line in log_a.plain_lines()), "alice's log"
            )
            # Bob read alice's message: her tick turns into a read receipt.
            await _until(
                lambda: any(
                    line.endswith("[red]literally[/red] ✓✓") for line in log_a.plain_lines()
                ),
                "alice's receipt",
            )
            # A file offer's card carries the transfer manager's timestamp on both sides.
            offered = tmp_path / "notes.txt"
            offered.write_bytes(b"minutes of the meeting\n")
            before = time.time()
            await _submit(app_a, pa, f"/file {offered}")
            await _until(
                lambda: any("⇣ incoming file  notes.txt" in line for line in log_b.plain_lines()),
                "bob's file card",
            )
            for node, peer in ((alice, bob), (bob, alice)):
                (transfer,) = await node.transfers(peer.fingerprint)
                assert before - 1 <= transfer.created <= time.time()
            # The conversation's timer is stored by the real node and read back.
            await _submit(app_a, pa, "/ttl 5m")
            await _until(lambda: "disappearing messages: 5m" in log_a.notes(), "ttl note")
            assert await alice.conversation_ttl(bob.fingerprint) == 300.0
            assert "⏱ 5m" in str(main_a.query_one("#conv-header").render())
            # Settings go through the real node into the profile's store.
            await pa.press("f4")
            await _until(
                lambda: app_a.screen.query_one("#max_messages_per_key").value == "1000",
                "settings loaded",
            )
            app_a.screen.query_one("#max_messages_per_key").value = "250"
            await pa.press("ctrl+s")
            await _until(lambda: isinstance(app_a.screen, MainScreen), "settings saved")
            assert (await alice.get_settings())["max_messages_per_key"] == 250
    finally:
        for node in nodes:
            await node.stop()


async def test_an_impostor_is_flagged_and_kept_apart_in_the_app(tmp_path: Path) -> None:
    """The crash this replaces, through real nodes: a new key takes a known name; the
    app shows it as a flagged entry beside the real contact, and deciding "someone else"
    from the decision screen works, with nothing thrown and the contact untouched."""
    from textual.widgets import Input

    from p2pmsg.ui.screens.key_decision import KeyDecisionScreen
    from tests.node.conftest import connect

    made = {}
    for name, shown in (("alice", "alice"), ("carol", "carol"), ("mallory", "carol")):
        made[name] = await node_module.Node.open(
            Identity.generate(os.urandom),
            shown,
            tmp_path / f"{name}.db",
            os.urandom(32),
            loopback_config(),
        )
        await made[name].start()
    alice, carol, mallory = made["alice"], made["carol"], made["mallory"]
    app = P2PMsgApp(node=alice)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            await connect(carol, alice)
            main = app.screen
            assert isinstance(main, MainScreen)
            peers = main.query_one(PeerList)
            await _until(lambda: carol.fingerprint in peers.peers, "alice sees carol")
            await connect(mallory, alice)
            await _until(lambda: isinstance(app.screen, KeyDecisionScreen), "the decision")
            await _until(
                lambda: (
                    mallory.fingerprint in peers.peers
                    and peers.peers[mallory.fingerprint].state == "flagged"
                ),
                "the flag",
            )
            assert peers.peers[carol.fingerprint].state == "pinned"
            await pilot.click("#apart")
            await pilot.pause(0.1)
            entry = app.screen.query_one("#apart-name", Input)
            entry.value = "carol from the bus"
            entry.focus()
            await pilot.press("enter")
            await _until(
                lambda: isinstance(app.screen, MainScreen),
                f"back to the chat {[n.message for n in app._notifications]}",
            )
            await _until(lambda: peers.peers[mallory.fingerprint].state == "pinned", "kept apart")
            assert peers.peers[mallory.fingerprint].name == "carol from the bus"
            main.open_conversation(carol.fingerprint)
            await _submit(app, pilot, "only for the real carol")
            got = []

            async def carol_got() -> bool:
                got[:] = [m.text for m in await carol.conversation(alice.fingerprint)]
                return "only for the real carol" in got

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 8
            while not await carol_got():
                assert loop.time() < deadline, got
                await asyncio.sleep(0.05)
            assert await mallory.conversation(alice.fingerprint) == []
    finally:
        for node in made.values():
            await node.stop()


async def test_an_alert_is_acted_on_from_its_detail_screen_on_a_real_node(tmp_path: Path) -> None:
    """The dashboard and the detail screen over a real node and its real store: the alerts
    table has the focus, Enter opens the alert, `a` and `f` change its stored state (the
    screen follows the node's event), and the states are what a restart reads."""
    from textual.widgets import DataTable

    from p2pmsg.security_events import Alert
    from p2pmsg.store import Store
    from p2pmsg.ui.screens.alert_detail import AlertDetailScreen
    from p2pmsg.ui.screens.dashboard import DashboardScreen
    from tests.ui.conftest import screen_text

    key = os.urandom(32)
    identity = Identity.generate(os.urandom)
    node = await node_module.Node.open(
        identity, "alice", tmp_path / "alice.db", key, loopback_config()
    )
    await node.start()
    now = time.time()
    for offset, kind in ((60.0, "replay"), (30.0, "flood")):
        alert = Alert(now - offset, kind, "high", None, "10.0.0.9", "rule:test", 1.0, kind)
        await node._store.run(Store.add_alert, alert)
    app = P2PMsgApp(node=node)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("f2")
            await _until(lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
            dash = app.screen
            table = dash.query_one("#alert-table", DataTable)
            await _until(lambda: table.row_count == 2, "the stored alerts")
            assert app.focused is table
            await pilot.press("enter")  # the newest: the flood
            await _until(lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
            detail = app.screen
            assert isinstance(detail, AlertDetailScreen) and detail.alert.kind == "flood"
            await pilot.press("a")
            await _until(lambda: detail.alert.state == "acknowledged", "acknowledged")
            await pilot.press("f")
            await _until(lambda: detail.alert.state == "false_alarm", "a false alarm")
            await pilot.pause(0.1)
            assert "marked a false alarm" in screen_text(app)
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert app.screen is dash
            assert [str(table.get_cell_at((r, 1))) for r in range(2)] == ["false alarm", "unread"]
    finally:
        await node.stop()
    again = await node_module.Node.open(
        identity, "alice", tmp_path / "alice.db", key, loopback_config()
    )
    try:
        states = {a.kind: a.state for a in await again.alerts()}
        assert states == {"flood": "false_alarm", "replay": "unread"}
    finally:
        await again.stop()

"""Verify, the flagged-key decision, pairing, dashboard, settings, help and the palette."""

from __future__ import annotations

from textual.widgets import Checkbox, DataTable, Input

from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.screens.alert_detail import AlertDetailScreen
from p2pmsg.ui.screens.dashboard import DashboardScreen
from p2pmsg.ui.screens.help import HelpScreen
from p2pmsg.ui.screens.key_decision import KeyDecisionScreen
from p2pmsg.ui.screens.main import MainScreen
from p2pmsg.ui.screens.pairing import PairingScreen
from p2pmsg.ui.screens.settings import SettingsScreen
from p2pmsg.ui.screens.verify import VerifyScreen
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.peer_list import PeerList
from tests.ui.conftest import FIXED_CLOCK, screen_text, settle
from tests.ui.fake_node import FakeNode, fp_for

BOB, DAVE = fp_for("bob"), fp_for("dave")


async def test_verify_screen_shows_safety_number_and_marks_verified(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        await pilot.press("ctrl+n")  # dave: online, not verified
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, VerifyScreen)
        expected = await node.safety_number(DAVE)
        rows = str(app.screen.query_one("#safety-number").render()).splitlines()
        assert len(rows) == 3 and all(len(row.split()) == 4 for row in rows)
        assert "".join("".join(rows).split()) == expected
        text = screen_text(app)
        assert "Read the safety number aloud" in text
        assert " ".join(DAVE[i : i + 4] for i in range(0, 32, 4)) in text
        assert " ".join(node.fingerprint[i : i + 4] for i in range(0, 32, 4)) in text
        await pilot.press("v")
        await settle(pilot)
        assert ("set_verified", DAVE, True) in node.calls
        assert isinstance(app.screen, MainScreen)
        assert app.screen.query_one(PeerList).peers[DAVE].verified
        assert "✔ verified" in screen_text(app)


async def _flagged(pilot, node: FakeNode):  # type: ignore[no-untyped-def]
    """An impostor claims bob's name: the decision screen comes up by itself."""
    await settle(pilot, 0.2)
    impostor = node.impostor(BOB)
    await settle(pilot)
    return impostor


async def test_a_flagged_key_sits_beside_the_contact_and_sends_nothing(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        impostor = await _flagged(pilot, node)
        assert isinstance(app.screen, KeyDecisionScreen)
        text = screen_text(app)
        assert "A new key claims to be bob" in text
        assert " ".join(BOB[i : i + 4] for i in range(0, 32, 4)) in text  # both keys shown
        assert " ".join(impostor.fingerprint[i : i + 4] for i in range(0, 32, 4)) in text
        await pilot.press("escape")  # decide later
        await settle(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        peers = main.query_one(PeerList).peers
        assert peers[BOB].state == "pinned" and peers[impostor.fingerprint].state == "flagged"
        assert "claims to be" in screen_text(app)
        # bob himself is untouched and sendable.
        main.open_conversation(BOB)
        composer = main.query_one(Composer)
        composer.text = "still you?"
        await pilot.press("enter")
        await settle(pilot)
        assert ("send_text", BOB, "still you?", None) in node.calls
        # The flagged key: the composer says why, nothing is sent, the screen asks again.
        main.open_conversation(impostor.fingerprint)  # asked once per flag, not per visit
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert composer.has_class("-blocked")
        composer.text = "are you really bob?"
        await pilot.press("enter")
        await settle(pilot)
        assert not any(c[0] == "send_text" and c[1] == impostor.fingerprint for c in node.calls)
        assert "Not sent: this key claims to be bob" in "\n".join(
            main.query_one(MessageLog).notes()
        )
        assert isinstance(app.screen, KeyDecisionScreen)  # asked again


async def test_someone_else_names_the_key_and_makes_it_a_contact(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        impostor = await _flagged(pilot, node)
        await pilot.click("#apart")
        await settle(pilot)
        name = app.screen.query_one("#apart-name", Input)
        assert name.value == "bob (2)"  # a suggestion that tells the two apart
        name.value = "Bob"  # reads like the contact: refused, the screen stays
        await pilot.click("#apart-save")
        await settle(pilot)
        assert isinstance(app.screen, KeyDecisionScreen)
        name.value = "bob from the lab"
        await pilot.click("#apart-save")
        await settle(pilot)
        assert ("keep_apart", impostor.fingerprint, "bob from the lab") in node.calls
        main = app.screen
        assert isinstance(main, MainScreen)
        assert main.query_one(PeerList).peers[impostor.fingerprint].state == "pinned"
        main.open_conversation(impostor.fingerprint)
        composer = main.query_one(Composer)
        composer.text = "hi other bob"
        await pilot.press("enter")
        await settle(pilot)
        assert ("send_text", impostor.fingerprint, "hi other bob", None) in node.calls


async def test_the_new_key_of_a_contact_only_after_a_confirmation(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        impostor = await _flagged(pilot, node)
        await pilot.click("#change")
        await settle(pilot)
        assert not any(c[0] == "change_key" for c in node.calls)  # not yet: confirm first
        assert "will be retired" in screen_text(app)
        await pilot.click("#change-confirm")
        await settle(pilot)
        assert ("change_key", BOB, impostor.fingerprint) in node.calls
        main = app.screen
        assert isinstance(main, MainScreen)
        peers = main.query_one(PeerList).peers
        assert BOB not in peers  # retired keys are not listed
        assert peers[impostor.fingerprint].state == "pinned"
        assert main.selected == impostor.fingerprint


async def test_block_from_the_decision_screen_and_unblock_by_slash(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        impostor = await _flagged(pilot, node)
        await pilot.click("#block")
        await settle(pilot)
        assert ("block_peer", impostor.fingerprint) in node.calls
        main = app.screen
        assert isinstance(main, MainScreen)
        main.open_conversation(impostor.fingerprint)
        await settle(pilot)
        assert "blocked (/unblock)" in screen_text(app)
        composer = main.query_one(Composer)
        composer.text = "/unblock"
        await pilot.press("enter")
        await settle(pilot)
        assert ("unblock_peer", impostor.fingerprint) in node.calls
        assert main.query_one(PeerList).peers[impostor.fingerprint].state == "flagged"


async def test_pairing_by_code_right_and_wrong(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        await pilot.press("ctrl+n")  # dave: not verified
        await settle(pilot)
        composer = app.screen.query_one(Composer)
        composer.text = "/pair 999-999"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PairingScreen)
        assert ("enter_pairing_code", DAVE, "999-999") in node.calls
        assert "Not verified: the code did not match" in screen_text(app)
        assert not node.peer_views[DAVE].verified
        entry = app.screen.query_one("#pairing-input", Input)
        entry.value = "123 456"
        entry.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert "Paired" in screen_text(app)
        assert ("set_verified", DAVE, True) in node.calls
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "✔ verified" in screen_text(app)
        # Showing a code: it is displayed, and the other side typing it verifies.
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, VerifyScreen)
        await pilot.click("#pair")
        await settle(pilot)
        assert isinstance(app.screen, PairingScreen), app.screen
        await pilot.click("#show")
        await settle(pilot)
        assert ("pairing_code", DAVE) in node.calls
        assert "Paired" in screen_text(app)


async def test_rename_by_slash_shows_the_petname_and_the_claim(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        main = app.screen
        assert isinstance(main, MainScreen)
        main.open_conversation(DAVE)
        composer = main.query_one(Composer)
        composer.text = "/name Dave from accounts"
        await pilot.press("enter")
        await settle(pilot)
        assert ("rename_peer", DAVE, "Dave from accounts") in node.calls
        text = screen_text(app)
        assert "Dave from accounts" in text and "says dave" in text


async def test_dashboard_tables_filters_trends_and_model_card(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        await pilot.press("f2")
        await settle(pilot, 0.3)
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        alerts = dash.query_one("#alert-table", DataTable)
        assert alerts.row_count == 2
        dash.query_one("#alert-filter", Input).value = "replay"
        await settle(pilot)
        assert alerts.row_count == 1
        dash.query_one("#alert-severity").value = "high"  # type: ignore[attr-defined]
        dash.query_one("#alert-filter", Input).value = ""
        await settle(pilot)
        assert alerts.row_count == 1  # only the high flood
        node.raise_alert("brute_force", "critical", None, "42 failed unlocks")
        node.log_event("unlock_fail")
        await settle(pilot)
        assert alerts.row_count == 2
        await pilot.press("2")
        await settle(pilot)
        events = dash.query_one("#event-table", DataTable)
        assert events.row_count == 3
        dash.query_one("#event-filter", Input).value = "decrypt"
        await settle(pilot)
        assert events.row_count == 1
        await pilot.press("3")
        await settle(pilot)
        trends = screen_text(app)
        assert "Alerts per kind" in trends and "Alerts per peer" in trends
        assert "monitor: models" in trends
        await pilot.press("4")
        await settle(pilot, 0.3)
        card = str(dash.query_one("#model-card").render())
        assert card != "loading…"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


async def test_settings_validate_then_save_through_the_node(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        assert screen.query_one("#key_rotation_interval", Input).value == "1h"
        assert screen.query_one("#max_messages_per_key", Input).value == "1000"
        screen.query_one("#key_rotation_interval", Input).value = "soon"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "rotation interval: not a duration" in str(
            screen.query_one("#settings-errors").render()
        )
        assert not any(call[0] == "update_settings" for call in node.calls)
        screen.query_one("#key_rotation_interval", Input).value = "30m"
        screen.query_one("#max_messages_per_key", Input).value = "500"
        screen.query_one("#default_disappearing_ttl", Input).value = "1d"
        assert screen.query_one("#bell", Checkbox).value  # on unless turned off
        screen.query_one("#bell", Checkbox).value = False
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert node.settings["bell"] is False and app.screen.bell is False  # type: ignore[attr-defined]
        assert node.settings["key_rotation_interval"] == 1800.0
        assert node.settings["max_messages_per_key"] == 500
        assert node.settings["default_disappearing_ttl"] == 86400.0
        assert isinstance(app.screen, MainScreen)
        assert "⏱ 1d" in screen_text(app)


async def test_help_and_command_palette(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 50)) as pilot:  # the whole help fits at 50 rows
        await settle(pilot, 0.2)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert "/ttl DURATION|off|default" in screen_text(app)
        assert "/pair [CODE]" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        app.screen.query_one(Input).value = "security dash"
        await settle(pilot, 0.4)
        await pilot.press("enter")
        await settle(pilot, 0.3)
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        app.screen.query_one(Input).value = "chat with dave"
        await settle(pilot, 0.4)
        await pilot.press("enter")
        await settle(pilot, 0.3)
        assert isinstance(app.screen, MainScreen)
        assert app.screen.selected == DAVE


async def test_dashboard_alert_row_opens_its_details(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        await pilot.press("f2")
        await settle(pilot, 0.3)
        dash = app.screen
        table = dash.query_one("#alert-table", DataTable)
        table.focus()
        await pilot.press("down")  # the older replay alert
        node.raise_alert("brute_force", "critical", None, "42 failed unlocks")
        await settle(pilot)
        assert table.row_count == 3 and table.cursor_row == 2  # still on the replay alert
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertDetailScreen)
        detail = screen_text(app)
        assert "replayed record counter 17" in detail and "dave" in detail
        assert "An attacker on the network may be replaying" in detail
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is dash
        # The mouse: a click highlights a row (DataTable's way), a second click opens it.
        await pilot.click(table, offset=(4, 1))  # the first data row: the newest alert
        await settle(pilot)
        assert app.screen is dash and table.cursor_row == 0
        await pilot.click(table, offset=(4, 1))
        await settle(pilot)
        assert isinstance(app.screen, AlertDetailScreen)
        assert "42 failed unlocks" in screen_text(app)

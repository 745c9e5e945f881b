"""Main-screen flows: peers, sending and receiving, slash commands, files, live panes."""

from __future__ import annotations

import math
from dataclasses import replace

from textual.widgets import OptionList

from p2pmsg.node.api import AddressDialed, MonitorStatus, TransferUpdated
from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.screens.confirm_quit import ConfirmQuitScreen
from p2pmsg.ui.screens.main import MainScreen
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.peer_list import PeerList
from p2pmsg.ui.widgets.rotation_pane import RotationPane
from p2pmsg.ui.widgets.threat_panel import ThreatPanel
from tests.ui.conftest import FIXED_CLOCK, screen_text, settle
from tests.ui.fake_node import T0, FakeNode, fp_for

BOB, CAROL, DAVE = fp_for("bob"), fp_for("carol"), fp_for("dave")


def log_lines(app: P2PMsgApp) -> list[str]:
    return app.screen.query_one(MessageLog).plain_lines()


def notes(app: P2PMsgApp) -> str:
    return "\n".join(app.screen.query_one(MessageLog).notes())


def rotation_text(app: P2PMsgApp) -> str:
    return app.screen.query_one(RotationPane).plain


async def submit(pilot, line: str) -> None:  # type: ignore[no-untyped-def]
    """Type a composer line (set at once: pressing 150 keys one by one is slow)."""
    composer = pilot.app.screen.query_one(Composer)
    composer.focus()
    composer.text = line
    await pilot.press("enter")
    await settle(pilot, 0.05)


async def start(pilot) -> MainScreen:  # type: ignore[no-untyped-def]
    await settle(pilot, 0.2)
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    return screen


async def test_a_peer_discovered_after_start_opens_when_none_is_selected() -> None:
    node = FakeNode()
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        assert screen.selected is None
        node.make_peer("bob", emit=True)
        await settle(pilot, 0.2)
        assert screen.selected == BOB
        assert screen.query_one(Composer).has_focus
        node.make_peer("carol", emit=True)  # a second one does not steal the conversation
        await settle(pilot, 0.2)
        assert screen.selected == BOB


async def test_first_peer_opens_and_history_shows_with_day_separators(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        assert screen.selected == BOB
        lines = log_lines(app)
        assert any("Fri 21 Nov 2025" in line for line in lines)
        assert any("Sat 22 Nov 2025" in line for line in lines)
        assert any("08:22 alice │ send it over please ✓✓" in line for line in lines)
        assert any("this one disappears ⏱5m" in line for line in lines)
        assert ("mark_read", BOB) in node.calls


async def test_selecting_a_peer_with_keys_and_mouse(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        peers = screen.query_one(PeerList)
        peers.focus()
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert screen.selected == DAVE  # online peers first, then by name
        assert screen.query_one(Composer).has_focus  # from anywhere: next comes typing
        peers.focus()
        await pilot.press("down", "enter")
        await settle(pilot)
        assert screen.selected == CAROL
        assert "No live session: the peer is offline." in rotation_text(app)
        assert "offline" in screen_text(app)


async def test_send_then_delivery_receipts_update_the_icon(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        await pilot.press(*"hello bob", "enter")
        await settle(pilot)
        assert ("send_text", BOB, "hello bob", None) in node.calls
        assert any(line.endswith("hello bob ✓") for line in log_lines(app))
        node.deliver(BOB, "read")
        await settle(pilot)
        assert any(line.endswith("hello bob ✓✓") for line in log_lines(app))


async def test_receiving_in_open_and_other_conversations(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        node.receive(BOB, "ping from bob")
        node.receive(DAVE, "psst, from dave")
        node.receive(DAVE, "second from dave")
        await settle(pilot, 0.7)  # past the read-receipt debounce
        assert any("bob │ ping from bob" in line for line in log_lines(app))
        assert not any("dave" in line for line in log_lines(app))
        assert screen.query_one(PeerList).peers[DAVE].unread == 2
        toasts = [n.message for n in app._notifications]
        assert any("psst, from dave" in message for message in toasts)
        assert sum("from dave" in message for message in toasts) == 1  # rate-limited
        assert node.calls.count(("mark_read", BOB)) >= 2


async def test_slash_commands(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        for line in (
            "/help",
            "/frobnicate",
            "/ttl 5m",
            "/add 127.0.0.1:47002",
            "/file /etc/hostname",
            "/file relative.txt",
            "/cipher rot13",
            "//not a command",
        ):
            await submit(pilot, line)
        await settle(pilot)
        text = notes(app)
        assert "/file PATH" in text and "/ttl DURATION|off|default" in text  # /help
        assert "Unknown command /frobnicate. Did you mean /file PATH?" in text
        assert "disappearing messages: 5m" in text
        assert ("set_conversation_ttl", BOB, 300.0) in node.calls
        assert ("add_peer", "127.0.0.1", 47002) in node.calls
        assert ("send_file", BOB, "/etc/hostname") in node.calls
        assert "/file: no such file: relative.txt" in text
        assert "Usage: /cipher NAME, one of: aes-256-gcm" in text
        assert ("send_text", BOB, "/not a command", 300.0) in node.calls
        assert "⏱ 5m" in screen_text(app)


async def test_accepting_a_file_offer_shows_progress_and_result(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        offer = node.offer_file(BOB, "report[red].pdf")
        await settle(pilot)
        text = "\n".join(log_lines(app))
        assert "⇣ incoming file  report[red].pdf  2.4 MiB" in text
        assert "Accept (a)" in text and "Decline (x)" in text and "/accept /decline" in text
        app.screen.query_one(MessageLog).focus()
        await pilot.press("a")
        await settle(pilot)
        assert ("accept_file", offer.id) in node.calls
        text = "\n".join(log_lines(app))
        assert "✓ received and verified · saved as" in text
        assert "/home/alice/Downloads/report[red].pdf" in text
        assert "accepting" not in notes(app)  # the card says it; no note lingers below it


async def test_a_folder_offer_is_one_card_with_its_count_and_size(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        offer = node.offer_file(BOB, "photos", size=3 * 1024 * 1024, files=40)
        # a file inside another folder offer: no card of its own
        inner = replace(offer, id="ee" * 16, name="inner.jpg", files=0, bundle_id="dd" * 16)
        node.emit(TransferUpdated(inner))
        await settle(pilot)
        text = "\n".join(log_lines(app))
        assert "⇣ incoming folder  photos  40 files · 3.0 MiB" in text
        assert "Accept (a)" in text and "inner.jpg" not in text
        app.screen.query_one(MessageLog).focus()
        await pilot.press("a")
        await settle(pilot)
        assert ("accept_file", offer.id) in node.calls  # the whole offer, by its id
        assert "✓ received and verified · saved in" in "\n".join(log_lines(app))


async def test_declining_a_file_by_clicking_the_card(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        offer = node.offer_file(BOB, "notes.txt", size=10)
        await settle(pilot)
        log = app.screen.query_one(MessageLog)
        row = next(
            i for i, line in enumerate(screen_text(app).splitlines()) if "Decline (x)" in line
        )
        column = screen_text(app).splitlines()[row].index("Decline (x)")
        await pilot.click(offset=(column + 2, row))
        await settle(pilot)
        assert ("decline_file", offer.id) in node.calls
        assert any("✗ declined" in line for line in log.plain_lines())


async def test_rotation_pane_follows_rotation_and_cipher_switch(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        before = rotation_text(app)
        assert "chacha20-poly1305" in before and "epoch 3 · 412/1000" in before
        assert "rotates in 40m" in before and "handshake 3f2a91bc0d4e77aa" in before
        await pilot.press("f5")
        await settle(pilot)
        after = rotation_text(app)
        assert "epoch 4 · 0/1000" in after and "rotates in 1h" in after
        await submit(pilot, "/cipher twofish-cbc-hmac-sha256")
        await settle(pilot)
        switched = rotation_text(app)
        assert "▲ twofish-cbc-hmac-sha256" in switched and "epoch 5" in switched
        assert "keys rotated: send epoch 4" in notes(app)
        assert "cipher now twofish-cbc-hmac-sha256 (send)" in notes(app)


async def test_rotation_pane_counts_follow_plain_sends(node: FakeNode) -> None:
    """Messages under the key change without any SessionChanged: the pane polls."""
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        assert "epoch 3 · 412/1000" in rotation_text(app)
        session = node.sessions[BOB]
        node.sessions[BOB] = replace(session, send=replace(session.send, messages_under_key=415))
        await pilot.pause(1.3)
        await settle(pilot)
        assert "epoch 3 · 415/1000" in rotation_text(app)


async def test_alerts_reach_the_threat_panel_and_notify_when_high(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        panel = screen.query_one(ThreatPanel)
        assert len(panel.alerts) == 2
        node.raise_alert("impersonation", "critical", BOB, "bob's key changed mid-session")
        node.raise_alert("flood", "low", DAVE, "slightly chatty")
        node.set_monitor(
            MonitorStatus(mode="rules-only: models/manifest.json missing", recent_scores=(0.2, 0.9))
        )
        await settle(pilot)
        assert len(panel.alerts) == 4
        assert panel.query_one("#alerts", OptionList).option_count == 4
        assert "Threats · rules only" in str(panel.border_title)
        options = panel.query_one("#alerts", OptionList)
        first = str(options.get_option_at_index(0).prompt)
        assert first.startswith("● CRIT impersonation bob")  # ● unread
        assert "flood 2" in str(panel.query_one("#threat-counts").render())
        toasts = [(n.title, n.message) for n in app._notifications]
        assert ("CRITICAL alert: impersonation (bob)", "bob's key changed mid-session") in toasts
        assert not any("slightly chatty" in m for _, m in toasts)
        panel.query_one("#alerts", OptionList).focus()
        await pilot.press("home", "enter")
        await settle(pilot)
        detail = screen_text(app)
        assert "Security alert" in detail and "bob's key changed mid-session" in detail
        assert "Compare safety numbers" in detail  # the advice for impersonation
        await pilot.press("escape")
        # No key proven (a flood of connections): the alert names the address, not "-".
        node.raise_alert("brute_force", "high", None, "12 failed handshakes within 60 s")
        await settle(pilot)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        [unproven] = [label for label in labels if label.startswith("● HIGH brute-force")]
        assert "127.0.0.1" in unproven
        toasts = [(n.title, n.message) for n in app._notifications]
        assert ("HIGH alert: brute_force (127.0.0.1)", "12 failed handshakes within 60 s") in toasts
        # Neither key nor address: wrong passwords at this device's unlock, said so.
        node.raise_alert("brute_force", "medium", None, "5 wrong passwords", addr=None)
        await settle(pilot)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        [local] = [x for x in labels if x.startswith("● MED") and "brute-force" in x]
        assert "this device" in local


async def test_peer_events_update_the_list(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        node.make_peer("erin", emit=True)
        node.connect(fp_for("carol"))
        await settle(pilot)
        peers = screen.query_one(PeerList).peers
        assert fp_for("erin") in peers and peers[fp_for("carol")].online
        assert "Peers 4/4" in str(screen.query_one(PeerList).border_title)


def header_text(app: P2PMsgApp) -> str:
    return str(app.screen.query_one("#conv-header").render())


async def test_conversation_timer_comes_from_the_node_and_persists(node: FakeNode) -> None:
    node.ttls[BOB] = 600.0  # set in an earlier session
    node.settings["default_disappearing_ttl"] = 3600.0
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        assert "⏱ 10m" in header_text(app) and "(default)" not in header_text(app)
        await submit(pilot, "still here?")
        assert ("send_text", BOB, "still here?", 600.0) in node.calls
        await submit(pilot, "/ttl default")
        await settle(pilot)
        assert node.ttls[BOB] is None
        assert "⏱ 1h (default)" in header_text(app)
        assert "disappearing messages: the default from Settings, 1h" in notes(app)
        await submit(pilot, "/ttl off")  # off here, although Settings has a default
        await settle(pilot)
        assert node.ttls[BOB] == math.inf and "⏱" not in header_text(app)
        assert "off in this conversation (the Settings default of 1h does not apply" in notes(app)
        await submit(pilot, "no timer on this one")
        assert ("send_text", BOB, "no timer on this one", None) in node.calls
        await submit(pilot, "/ttl 2h")
        await settle(pilot)
        assert node.ttls[BOB] == 7200.0 and "⏱ 2h" in header_text(app)
        screen.open_conversation(DAVE)
        await settle(pilot)
        assert "⏱ 1h (default)" in header_text(app)
    again = P2PMsgApp(node=node, clock=FIXED_CLOCK)  # a restart: only the node remembers
    async with again.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        assert "⏱ 2h" in header_text(again)


async def test_history_interleaves_transfer_cards_with_messages_in_time(node: FakeNode) -> None:
    day = 86400.0
    node.past_transfer(BOB, "train-tickets.pdf", created=T0 - day - 500)
    legacy = node.past_transfer(BOB, "undated.bin", created=T0 - 60)
    node.transfer_views[legacy.id] = replace(legacy, created=0.0)  # an older node's view
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        lines = log_lines(app)

        def at(fragment: str) -> int:
            return next(i for i, line in enumerate(lines) if fragment in line)

        assert (
            at("yes, on the train")
            < at("train-tickets.pdf")
            < at("Sat 22 Nov 2025")
            < at("the report is ready")
        )
        assert at("this one disappears") < at("undated.bin")


async def test_add_says_how_it_went_once_in_a_toast_that_outlives_the_conversation(
    node: FakeNode,
) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        await submit(pilot, "/add 10.0.0.9:47000")
        assert "connecting to 10.0.0.9:47000…" in notes(app)
        screen.open_conversation(CAROL)  # the user moves on; the outcome still reaches them
        await settle(pilot)
        refused = AddressDialed("10.0.0.9", 47000, None, "no route to host")
        node.emit(refused)
        node.emit(AddressDialed("10.0.0.8", 47000, None, "not ours to report"))
        await settle(pilot, 0.2)
        toasts = [(n.title, n.message) for n in app._notifications]
        assert toasts == [
            (
                "Not connected",
                "/add: could not reach 10.0.0.9:47000: no route to host. The address is "
                "kept; p2pmsg tries it again in the background.",
            )
        ]
        assert "could not reach 10.0.0.9:47000" in notes(app)
        node.emit(refused)  # the background retries stay quiet
        await settle(pilot, 0.2)
        assert len(app._notifications) == 1


async def test_ctrl_q_while_a_file_moves_asks_and_a_second_ctrl_q_quits(node: FakeNode) -> None:
    moving = replace(
        node.past_transfer(BOB, "holiday.tar", created=T0, state="transferring"),
        bytes_done=1024,
    )
    node.transfer_views[moving.id] = moving
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmQuitScreen)
        text = screen_text(app)
        assert "1 file is still moving. Quit?" in text
        assert "holiday.tar from bob, 25%" in text
        assert "resumes where it stopped" in text
        await pilot.press("escape")  # stay: nothing stopped
        await settle(pilot)
        assert isinstance(app.screen, MainScreen) and not node.stopped
        await pilot.press("ctrl+q")
        await settle(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert node.stopped
    assert app.return_code == 0


async def test_ctrl_q_with_nothing_moving_quits_at_once(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert node.stopped


async def test_panes_fit_the_width_and_f6_steps_through_the_rest(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(60, 18)) as pilot:
        screen = await start(pilot)
        peers, side = screen.query_one("#peers"), screen.query_one("#side")
        log = screen.query_one(MessageLog)

        def shown() -> tuple[bool, bool, int]:
            return peers.display, side.display, log.size.width

        assert shown()[:2] == (False, False) and shown()[2] >= 56  # the chat alone
        assert log.border_subtitle == "F6: peers and chat"  # says which key and what for
        await pilot.press("f6")
        await settle(pilot)
        assert shown()[:2] == (True, False)
        await pilot.press("f6")
        await settle(pilot)
        assert shown()[:2] == (False, True)
        await pilot.press("f6")
        await settle(pilot)
        assert shown()[:2] == (False, False)

        await pilot.resize_terminal(80, 24)
        await settle(pilot, 0.2)
        assert shown()[:2] == (True, False) and shown()[2] >= 54  # not ~29 any more
        assert log.border_subtitle == "F6: chat, keys and threats"
        await pilot.press("f6")
        await settle(pilot)
        assert shown()[:2] == (False, True)

        await pilot.resize_terminal(140, 45)
        await settle(pilot, 0.2)
        await pilot.press("f6")  # from any state: the wide layout's own steps
        await settle(pilot)
        states = {shown()[:2]}
        await pilot.press("f6")
        await settle(pilot)
        states.add(shown()[:2])
        assert states == {(True, True), (True, False)}


async def test_the_theme_picked_is_remembered_for_the_next_start(node: FakeNode) -> None:
    node.settings["theme"] = "nord"
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        assert app.theme == "nord"  # restored from the profile's settings
        app.theme = "gruvbox"  # as the palette's theme picker sets it
        await settle(pilot, 0.2)
        assert node.settings["theme"] == "gruvbox"
    node.settings["theme"] = "no-such-theme"  # e.g. removed from Textual since
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        assert app.theme == "textual-dark"


async def test_the_receiver_is_told_when_the_peer_turns_disappearing_messages_on_and_off(
    node: FakeNode,
) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot)
        # bob's last message in the history had a 5m timer.
        node.receive(BOB, "this one stays")
        await settle(pilot)
        node.receive(BOB, "from now on this vanishes", ttl=3600)
        await settle(pilot)
        node.receive(BOB, "and so does this", ttl=3600)
        await settle(pilot)
        said = [n for n in app.screen.query_one(MessageLog).notes() if "disappear" in n]
        assert said == [
            "bob's messages no longer disappear.",
            "bob's messages now disappear 1h after you read them (their /ttl).",
        ]


async def test_search_marks_matches_and_jumps_between_them(node: FakeNode) -> None:
    for i in range(60):
        node.receive(BOB, f"filler {i}" if i % 20 else f"the Report, part {i // 20}")
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start(pilot)
        log = screen.query_one(MessageLog)
        await pilot.press("ctrl+f")
        await settle(pilot)
        box = screen.query_one("#search")
        assert box.has_focus and screen.has_class("-searching")
        await pilot.press(*"report")
        await settle(pilot)
        count = screen.query_one("#search-count")
        # "the report is ready" (history) and three "the Report, part N": any case.
        assert str(count.render()) == "4 matches"
        await pilot.press("enter")  # the newest match first
        await settle(pilot)
        assert str(count.render()) == "1 of 4"
        assert "the Report, part 2" in screen_text(app)
        await pilot.press("up", "up")  # older
        await settle(pilot)
        assert str(count.render()) == "3 of 4"
        assert "the Report, part 0" in screen_text(app)
        assert "filler 59" not in screen_text(app)  # the view moved back in time
        await pilot.press("down")  # newer
        await settle(pilot)
        assert str(count.render()) == "2 of 4"
        await pilot.press("escape")
        await settle(pilot)
        assert not screen.has_class("-searching")
        assert screen.query_one(Composer).has_focus
        assert "filler 59" in screen_text(app)  # back at the newest
        assert log.search("zzz") == 0


async def test_slash_search_opens_the_box_with_the_text(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        await submit(pilot, "/search train")
        await settle(pilot)
        assert screen.query_one("#search").value == "train"
        assert str(screen.query_one("#search-count").render()) == "1 match"


async def test_copy_takes_the_search_match_else_the_peers_newest_message(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        log = screen.query_one(MessageLog)
        log.focus()
        await pilot.press("c")
        await settle(pilot)
        assert app.clipboard == "this one disappears"  # bob's newest
        assert any(n.message.startswith("Copied: this one disappears") for n in app._notifications)
        await submit(pilot, "/search train")
        await pilot.press("enter")
        await settle(pilot)
        await submit(pilot, "/copy")
        assert app.clipboard == "yes, on the train"  # the match search is on (ours)


async def test_the_bell_rings_for_another_conversation_unless_turned_off(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    rang: list[bool] = []
    app.bell = lambda: rang.append(True)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        node.receive(BOB, "on screen: no bell")
        node.receive(DAVE, "elsewhere: bell")
        await settle(pilot, 0.2)
        assert rang == [True]
        screen.bell = False  # as Settings sets it
        node.receive(CAROL, "elsewhere, bell off")
        await settle(pilot, 0.2)
        assert rang == [True]

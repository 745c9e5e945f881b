"""The composer as a terminal user meets it: fast typing, pastes, newlines, limits.

Keys are posted to the app the way the terminal driver posts them (all at once,
without waiting for each to be handled), which is what a person typing fast or
a terminal replaying a burst does; `pilot.press` waits after every key and
would hide an ordering bug.
"""

from __future__ import annotations

from pathlib import Path

from textual import events

from p2pmsg.protocol.limits import MAX_TEXT_BYTES
from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.widgets.composer import Composer
from p2pmsg.ui.widgets.message_log import MessageLog
from tests.ui.conftest import FIXED_CLOCK, settle
from tests.ui.fake_node import FakeNode, fp_for

BOB = fp_for("bob")


def sent(node: FakeNode) -> list[str]:
    return [call[2] for call in node.calls if call[0] == "send_text"]


def burst(app: P2PMsgApp, keys: list[str]) -> None:
    """Post key events back to back, as the driver does for a burst of input."""
    for key in keys:
        if key == "enter":
            app.post_message(events.Key("enter", "\r"))
        elif key == "ctrl+j":
            app.post_message(events.Key("ctrl+j", "\n"))
        else:
            app.post_message(events.Key(key if key != " " else "space", key))


def typed(text: str) -> list[str]:
    return [*text, "enter"]


async def opened(pilot) -> Composer:  # type: ignore[no-untyped-def]
    await settle(pilot, 0.2)
    composer = pilot.app.screen.query_one(Composer)
    assert pilot.app.screen.selected == BOB
    assert composer.has_focus
    return composer


async def test_messages_typed_fast_arrive_whole_and_in_order(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await opened(pilot)
        texts = [f"burst {i}" for i in range(25)]
        burst(app, [key for text in texts for key in typed(text)])
        await settle(pilot, 0.5)
        assert sent(node) == texts
        assert composer.text == ""


async def test_a_pasted_multi_line_text_is_one_message_with_its_newlines(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await opened(pilot)
        app.post_message(events.Paste("first line\nsecond line\n\nfourth, after a gap"))
        await settle(pilot, 0.1)
        assert composer.text == "first line\nsecond line\n\nfourth, after a gap"
        await pilot.press("enter")
        await settle(pilot, 0.1)
        assert sent(node) == ["first line\nsecond line\n\nfourth, after a gap"]
        lines = app.screen.query_one(MessageLog).plain_lines()
        assert any("second line" in line for line in lines)


async def test_ctrl_j_starts_a_new_line_and_enter_sends_both(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await opened(pilot)
        burst(app, [*"one", "ctrl+j", *"two", "enter"])
        await settle(pilot, 0.2)
        assert sent(node) == ["one\ntwo"]


async def test_a_text_over_the_limit_is_refused_and_stays_in_the_composer(
    node: FakeNode,
) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await opened(pilot)
        big = "x" * 20_000 + "é" * 8_000  # 36,000 UTF-8 bytes: over by 3,232
        app.post_message(events.Paste(big))
        await settle(pilot, 0.2)
        assert composer.text == big  # nothing dropped on the way in
        await pilot.press("enter")
        await settle(pilot, 0.1)
        assert sent(node) == []
        assert composer.text == big
        notes = "\n".join(app.screen.query_one(MessageLog).notes())
        over = 36_000 - MAX_TEXT_BYTES
        assert f"36,000 bytes, {over:,} over the limit of {MAX_TEXT_BYTES:,}" in notes
        assert "/file" in notes
        composer.text = big[: MAX_TEXT_BYTES // 2]  # trimmed: now it goes
        await pilot.press("enter")
        await settle(pilot, 0.1)
        assert sent(node) == [big[: MAX_TEXT_BYTES // 2]]


async def test_a_mistyped_command_or_a_refused_message_is_given_back(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await opened(pilot)
        burst(app, typed("/ttl 5 parsecs"))
        await settle(pilot, 0.2)
        assert composer.text == "/ttl 5 parsecs"  # to fix, not to type again
        assert "/ttl" in "\n".join(app.screen.query_one(MessageLog).notes())
        composer.text = "/rotate\nand a message"
        await pilot.press("enter")
        await settle(pilot, 0.1)
        assert composer.text == "/rotate\nand a message"
        assert "A command is one line" in "\n".join(app.screen.query_one(MessageLog).notes())


async def test_slash_commands_suggest_and_file_paths_complete_on_tab(
    node: FakeNode, tmp_path: Path
) -> None:
    (tmp_path / "holiday photos").mkdir()
    (tmp_path / "holiday photos" / "beach.jpg").write_bytes(b"x")
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        composer = await opened(pilot)
        burst(app, list("/ro"))
        await settle(pilot, 0.1)
        assert composer.suggestion == "tate"
        await pilot.press("tab")
        assert composer.text == "/rotate"
        composer.clear()
        burst(app, list(f"/file {tmp_path}/hol"))
        await settle(pilot, 0.1)
        await pilot.press("tab")
        assert composer.text == f"/file {tmp_path}/holiday\\ photos/"
        await pilot.press("tab")
        assert composer.text == f"/file {tmp_path}/holiday\\ photos/beach.jpg"
        assert composer.has_focus  # Tab completed; it did not move focus away
        await pilot.press("enter")
        await settle(pilot, 0.2)
        assert ("send_file", BOB, f"{tmp_path}/holiday photos/beach.jpg") in [
            call[:3] for call in node.calls
        ]
        # a folder, or several paths, is one folder offer
        composer.clear()
        burst(app, list(f"/file {tmp_path}/holiday\\ photos"))
        await settle(pilot, 0.1)
        await pilot.press("enter")
        await settle(pilot, 0.2)
        assert ("send_files", BOB, (f"{tmp_path}/holiday photos",)) in node.calls

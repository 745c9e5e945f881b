"""Peer-controlled text renders inert: no markup, no ANSI, no control characters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.safe_text import literal, printable
from p2pmsg.ui.widgets.message_log import MessageLog
from p2pmsg.ui.widgets.peer_list import PeerList, peer_label
from tests.ui.conftest import FIXED_CLOCK, screen_text, settle
from tests.ui.fake_node import FakeNode

HOSTILE_NAME = "[bold red]root[/]\x1b[2J\x1b]0;pwned\x07"
HOSTILE_TEXT = "[link=http://evil]click[/link] \x1b[31mred\x1b[0m \u202egnp.exe\u202c end\rX"


def test_printable_replaces_every_terminal_control() -> None:
    assert printable("a\x1b[31mb") == "a␛[31mb"
    assert printable("bell\x07") == "bell␇"
    assert printable("del\x7f") == "del␡"
    assert printable("c1\x9b31m") == "c1<U+009B>31m"
    assert printable("rtl\u202eexe") == "rtl<U+202E>exe"
    assert printable("zero\u200bwidth") == "zero<U+200B>width"
    assert printable("two\nlines") == "two␊lines"
    assert printable("two\nlines", multiline=True) == "two\nlines"
    assert printable("tab\there") == "tab␉here"
    assert printable("plain café [ok]") == "plain café [ok]"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_printable_output_never_contains_controls(text: str) -> None:
    out = printable(text, multiline=True)
    assert not any(ord(c) < 0x20 and c != "\n" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F for c in out)
    assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in out)


def test_literal_does_not_parse_markup() -> None:
    text = literal("[red]alarm[/red]")
    assert text.plain == "[red]alarm[/red]"
    assert not text.spans


async def test_hostile_peer_renders_literally_everywhere() -> None:
    node = FakeNode("alice")
    evil = node.make_peer(HOSTILE_NAME)
    node.history(evil.fingerprint, HOSTILE_TEXT, created=node.clock() - 60)
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, 0.2)
        node.offer_file(evil.fingerprint, "[blink]x[/]\x1b[8m.pdf")
        node.receive(evil.fingerprint, "[reverse]again[/]")
        await settle(pilot)
        log = app.screen.query_one(MessageLog)
        lines = "\n".join(log.plain_lines())
        assert "[link=http://evil]click[/link] ␛[31mred␛[0m <U+202E>gnp.exe<U+202C>" in lines
        assert "end␍X" in lines
        assert "[reverse]again[/]" in lines
        assert "[blink]x[/]␛[8m.pdf" in lines
        screen = screen_text(app)
        assert "[bold red]root[/]␛[2J␛]0;pwned␇" in screen  # peer list and header
        assert "\x1b" not in screen and "\x07" not in screen
        # No span carries a link or a style the text asked for.
        for strip_line in log._entry_strips(log._entries[-1]):
            for segment in strip_line:
                assert segment.style is None or segment.style.link is None
        label = peer_label(app.screen.query_one(PeerList).peers[evil.fingerprint])
        assert label.plain.startswith("● [bold red]root[/]")
        assert {span.style for span in label.spans} == {"$text-success", "bold", "dim"}
        # The toast for a message in another conversation is literal too.
        app.screen.open_conversation(node.make_peer("bob", emit=False).fingerprint)
        await settle(pilot)
        node.receive(evil.fingerprint, "[b]toast[/b]\x1b[5m")
        await settle(pilot)
        toast = app._notifications
        assert any(n.message == "[b]toast[/b]␛[5m" and not n.markup for n in toast)

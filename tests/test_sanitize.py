"""The one shared sanitiser for peer-controlled text (p2pmsg.sanitize), byte for byte."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pmsg.sanitize import clip, continuation, printable

#: What must never reach a terminal from a peer: every control (Cc), format (Cf),
#: line/paragraph separator (Zl, Zp) and surrogate (Cs) character. Computed from
#: unicodedata, independently of the module's written-out table.
HOSTILE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def hostile(char: str) -> bool:
    return unicodedata.category(char) in HOSTILE_CATEGORIES


#: The characters attacks are built from, so hypothesis meets them often.
ATTACK_CHARS = (
    "\x1b",
    "\x07",
    "\x9b",
    "\x9d",
    "\x9c",
    "\r",
    "\n",
    "\x0b",
    "\x0c",
    "\x85",
    "\x08",
    "\x7f",
    "\x00",
    "\t",
    "\u202e",
    "\u202d",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u2028",
    "\u2029",
    "\udcff",
    "\U000e0041",
    "\xad",
    "[",
    "]",
    ";",
    " ",
    "a",
    "é",
    "日",
    "👍",
)
hostile_text = st.text(st.one_of(st.sampled_from(ATTACK_CHARS), st.characters()), max_size=60)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        # ESC, CSI and OSC sequences (7-bit and C1 forms) become inert, visible text.
        ("\x1b[2J\x1b[H", "␛[2J␛[H"),
        ("\x1b[31mred\x1b[0m", "␛[31mred␛[0m"),
        ("\x1b]0;pwned\x07", "␛]0;pwned␇"),
        ("\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "␛]8;;http://evil␛\\click␛]8;;␛\\"),
        ("\x1b]52;c;cHduZWQ=\x07", "␛]52;c;cHduZWQ=␇"),  # clipboard write
        ("\x9b2J", "<U+009B>2J"),
        ("\x9d0;t\x9c", "<U+009D>0;t<U+009C>"),
        # Everything that breaks or rewinds a line.
        ("two\nlines", "two␊lines"),
        ("pay alice\rpay bob", "pay alice␍pay bob"),
        ("a\r\nb", "a␍␊b"),
        ("v\x0bf\x0cn\x85", "v␋f␌n<U+0085>"),
        ("ls\u2028ps\u2029", "ls<U+2028>ps<U+2029>"),
        ("back\x08\x08space\x7f", "back␈␈space␡"),
        ("nul\x00tab\t", "nul␀tab␉"),
        # Bidi overrides, embeddings, isolates and marks ("Trojan Source").
        ("invoice\u202efdp.exe", "invoice<U+202E>fdp.exe"),
        ("\u2066a\u2067b\u2068c\u2069", "<U+2066>a<U+2067>b<U+2068>c<U+2069>"),
        ("\u202a\u202b\u202c\u202d", "<U+202A><U+202B><U+202C><U+202D>"),
        ("\u200e\u200f\u061c", "<U+200E><U+200F><U+061C>"),
        # Zero-width and other invisible format characters.
        ("al\u200bice", "al<U+200B>ice"),
        ("\u200c\u200d\u2060\ufeff\u180e\xad", "<U+200C><U+200D><U+2060><U+FEFF><U+180E><U+00AD>"),
        ("tag\U000e0041\U000e0042", "tag<U+E0041><U+E0042>"),
        # A lone surrogate (a file name decoded with surrogateescape) would make print raise.
        ("name\udcff", "name<U+DCFF>"),
        # Ordinary text, markup-looking text included, is untouched.
        ("plain café 日本語 👍 [bold]x[/] <b>", "plain café 日本語 👍 [bold]x[/] <b>"),
        ("", ""),
    ],
)
def test_printable_shows_every_hostile_character_as_a_stand_in(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    printable(raw).encode("utf-8")  # always encodable for output (never raises)


def test_multiline_keeps_only_the_newline() -> None:
    assert printable("a\nb\rc\u2028d", multiline=True) == "a\nb␍c<U+2028>d"


def test_continuation_indents_every_following_line() -> None:
    forged = "hi\n[12:00:00] alice: pay bob\x1b[2J"
    assert continuation(forged, "    ") == "hi\n    [12:00:00] alice: pay bob␛[2J"
    assert continuation("one line", "  ") == "one line"
    assert continuation("a\n\nb\n", " | ") == "a\n | \n | b\n | "
    # CR, U+2028 and friends cannot start a line of their own: they are stand-ins.
    assert continuation("x\r[12:00:00] bob: hi", "  ") == "x␍[12:00:00] bob: hi"
    assert continuation("x\u2028y\x85z", "  ") == "x<U+2028>y<U+0085>z"


@pytest.mark.parametrize("indent", ["", "\n", " \n ", "\x1b", "\r"])
def test_continuation_refuses_an_indent_that_is_not_printable(indent: str) -> None:
    with pytest.raises(ValueError, match="indent"):
        continuation("a\nb", indent)


def test_clip() -> None:
    assert clip("abcdef", 4) == "abc…"
    assert clip("abc", 4) == "abc"
    assert clip("abc", 0) == "…"


@settings(max_examples=500, deadline=None)
@given(hostile_text)
def test_printable_never_lets_a_hostile_character_through(text: str) -> None:
    one_line = printable(text)
    assert not any(hostile(c) for c in one_line)  # "\n" is Cc: never in one-line output
    several = printable(text, multiline=True)
    assert not any(hostile(c) for c in several if c != "\n")
    assert several.count("\n") == text.count("\n")
    one_line.encode("utf-8")
    several.encode("utf-8")


@settings(max_examples=500, deadline=None)
@given(hostile_text, st.sampled_from(["  ", "    ", " | ", "> "]))
def test_continuation_lines_always_start_with_the_indent(text: str, indent: str) -> None:
    out = continuation(text, indent)
    lines = out.split("\n")
    assert len(lines) == text.count("\n") + 1
    assert all(line.startswith(indent) for line in lines[1:])
    assert not any(hostile(c) for c in out if c != "\n")
    # "\n" is the only line break left: str.splitlines (which also breaks at CR, VT, FF,
    # FS..RS, NEL, U+2028/2029) finds exactly the same lines.
    assert (out + ".").splitlines() == (out + ".").split("\n")


def test_the_written_out_table_matches_unicodedata() -> None:
    """Every Cc/Cf/Zl/Zp/Cs character of this Python's Unicode database but LF is a
    stand-in, and no assigned character outside those categories is touched (the table
    also covers a few code points this database leaves unassigned: later format
    characters and the unassigned holes of the tag block)."""
    missed = [
        f"U+{cp:04X}"
        for cp in range(0x110000)
        if cp != 0x0A and hostile(chr(cp)) and printable(chr(cp)) == chr(cp)
    ]
    assert missed == []
    touched = [
        f"U+{cp:04X}"
        for cp in range(0x110000)
        if not hostile(chr(cp))
        and unicodedata.category(chr(cp)) != "Cn"
        and printable(chr(cp)) != chr(cp)
    ]
    assert touched == []


def test_the_sanitiser_imports_no_ui_toolkit() -> None:
    """Every output path imports it, the headless commands included: no textual/rich."""
    probe = (
        "import sys, p2pmsg.sanitize\n"
        "print(','.join(m for m in ('textual', 'rich') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == ""

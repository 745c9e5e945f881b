"""Peer-controlled text, made inert for the terminal.

Names, messages and file names come from other people's machines. They are
shown *literally*: Rich markup such as ``[red]`` is never parsed (we build
`rich.text.Text` objects and never markup strings), and characters that would
steer the terminal or reorder what the user reads (C0/C1 controls, ESC, DEL,
bidirectional overrides, zero-width characters) are replaced with a visible
stand-in, so an attacker can neither hide text nor paint over the screen.
"""

from __future__ import annotations

import re

from rich.style import Style
from rich.text import Text
from textual.content import Content

# C0 controls except \n (handled per call), DEL, C1 controls, zero-width and
# bidi formatting characters (the "Trojan Source" set), line/paragraph separators,
# the BOM, and the interlinear annotation characters.
_HOSTILE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ufff9-\ufffb]"
)
_CONTROL_PICTURES = 0x2400  # U+2400..U+241F: visible symbols for C0 controls


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(_CONTROL_PICTURES + code)  # ESC -> "␛", NUL -> "␀"
    if code == 0x7F:
        return "\u2421"  # "␡"
    return f"<U+{code:04X}>"


def printable(text: str, *, multiline: bool = False) -> str:
    """`text` with every terminal-affecting character replaced by a visible stand-in.

    With `multiline`, newlines are kept (message bodies); otherwise they become
    "␊" (names and file names are one line by definition).
    """
    cleaned = _HOSTILE.sub(_visible, text)
    if not multiline:
        cleaned = cleaned.replace("\n", "\u240a")
    return cleaned


def literal(text: str, style: str | Style = "", *, multiline: bool = False) -> Text:
    """A `Text` that shows `text` exactly, with no markup and no control effects."""
    return Text(printable(text, multiline=multiline), style=style)


def literal_content(text: str, style: str = "", *, multiline: bool = False) -> Content:
    """`literal` for Textual's `Content`: plain text (never markup) with a theme-aware
    style such as "bold $text-accent"."""
    return Content.styled(printable(text, multiline=multiline), style)


def clip(text: str, limit: int) -> str:
    """Shorten `text` to `limit` characters with an ellipsis (for previews and lists)."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "\u2026"

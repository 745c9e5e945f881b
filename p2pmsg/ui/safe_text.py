"""Peer-controlled text, made inert for the TUI.

Names, messages and file names come from other people's machines. They are
shown *literally*: Rich markup such as ``[red]`` is never parsed (we build
`rich.text.Text` / Textual `Content` objects and never markup strings), and
characters that would steer the terminal or reorder what the user reads are
replaced with a visible stand-in by the one shared sanitiser,
`p2pmsg.sanitize.printable` (re-exported here with `clip` for the widgets).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.content import Content

from p2pmsg.sanitize import clip, printable

__all__ = ["clip", "literal", "literal_content", "printable"]


def literal(text: str, style: str | Style = "", *, multiline: bool = False) -> Text:
    """A `Text` that shows `text` exactly, with no markup and no control effects."""
    return Text(printable(text, multiline=multiline), style=style)


def literal_content(text: str, style: str = "", *, multiline: bool = False) -> Content:
    """`literal` for Textual's `Content`: plain text (never markup) with a theme-aware
    style such as "bold $text-accent"."""
    return Content.styled(printable(text, multiline=multiline), style)

"""How one chat message is laid out: time, nick, body; and how many lines it takes.

`height` must equal `len(rows(...))` for every message and width: the log lays
out thousands of messages by height alone and renders only what is painted.
Both come from `_body_parts`, and the wrap depends only on the body's text,
so `height` wraps the plain text (or, for the usual short message, just
measures it) without building styled rows.

A group post (`GroupMessageView`) is laid out the same way; its nick is its
author's label (the screen puts the user's petname there, or the claimed name
marked as a claim) and an own post ends with how many members hold it and how many
have read it ("✓✓ 3/4 read 2/4"; coloured once all have read, as a chat's read ✓✓).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.cells import cell_len
from rich.console import Console
from rich.style import Style
from rich.text import Text

from p2pmsg.node.api import GroupMessageView, MessageView
from p2pmsg.ui.safe_text import printable
from p2pmsg.ui.timefmt import Clock, duration

STATUS_ICON: dict[str, str] = {
    "queued": "◷",
    "sent": "✓",
    "delivered": "✓✓",
    "read": "✓✓",
    "failed": "✗",
}
_SEPARATOR = " │ "

#: A line of a conversation: a one-to-one message or a group post.
ChatMessage = MessageView | GroupMessageView


def group_delivery(message: GroupMessageView) -> str:
    """ "✓✓ 3/4": how many of the other members hold the post (their anti-entropy
    summaries say so), then " read 2/4" once any has read it; "◷ 0/4" while none is
    known to hold it; "" when nobody else is in it."""
    if not message.recipients:
        return ""
    icon = "✓✓" if message.delivered else "◷"
    read = f" read {message.read}/{message.recipients}" if message.read else ""
    return f"{icon} {message.delivered}/{message.recipients}{read}"


class MessageRows:
    """Lays out messages of one conversation (the two names set the nick column)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.me_name = "me"
        self.peer_name = ""
        self.highlight: re.Pattern[str] | None = None  # what a search marks in bodies

    def height(self, console: Console, message: ChatMessage, width: int) -> int:
        plain = "".join(text for text, _ in self._body_parts(message))
        body_width = self._body_width(message, width)
        if "\n" not in plain and cell_len(plain) <= body_width:
            return 1  # the usual short message: no wrapping needed to know
        return len(Text(plain).wrap(console, body_width, overflow="fold"))

    def rows(
        self,
        console: Console,
        message: ChatMessage,
        width: int,
        style: Callable[[str], Style],
        *,
        current: bool = False,
    ) -> list[Text]:
        """The message's lines; `style` maps the log's component classes to styles.
        `current`: the search match the user is on (marked apart from the others)."""
        mine = message.direction == "out"
        time_style = style("message-log--time")
        # Styles as spans, not a row's base style: the time's muted colour must not
        # bleed into the body, which is read in the theme's normal foreground.
        head = Text()
        head.append(self.clock.hhmm(message.created) + " ", style=time_style)
        head.append(
            self._nick(message, width),
            style=style("message-log--me" if mine else "message-log--peer"),
        )
        head.append(_SEPARATOR, style=time_style)
        pad = Text()
        pad.append(" " * (head.cell_len - 2) + "│ ", style=time_style)
        body = Text()
        for text, component in self._body_parts(message):
            body.append(text, style=style(component) if component else "")
        if self.highlight is not None and message.text is not None:
            mark = style("message-log--match-current" if current else "message-log--match")
            shown = printable(message.text, multiline=True)  # the body's first part
            for found in self.highlight.finditer(shown):
                body.stylize(mark, found.start(), found.end())
        body_width = self._body_width(message, width)
        lines: list[Text]
        if "\n" in body.plain or body.cell_len > body_width:
            lines = list(body.wrap(console, body_width, overflow="fold"))
        else:
            lines = [body]  # fits: no wrap (half the cost of a short message)
        rows: list[Text] = []
        for number, line in enumerate(lines):
            row = head.copy() if number == 0 else pad.copy()
            row.append_text(line)
            rows.append(row)
        return rows

    def _nick(self, message: ChatMessage, width: int) -> str:
        longest = max(len(self.me_name), len(self.peer_name), 3)
        nick_width = min(longest, 8 if width < 60 else 12)
        if message.direction == "out":
            name = self.me_name
        elif isinstance(message, GroupMessageView):
            name = message.author_name
        else:
            name = self.peer_name
        return printable(name[:nick_width].rjust(nick_width))

    def _body_width(self, message: ChatMessage, width: int) -> int:
        indent = (
            cell_len(self.clock.hhmm(message.created))
            + 1
            + cell_len(self._nick(message, width))
            + cell_len(_SEPARATOR)
        )
        return max(width - indent, 8)

    def _body_parts(self, message: ChatMessage) -> list[tuple[str, str | None]]:
        """The body as (text, component class) pieces."""
        if isinstance(message, GroupMessageView):
            return self._group_parts(message)
        parts = self._text_parts(message)
        if message.direction == "out":
            component = {"read": "message-log--read", "failed": "message-log--failed"}.get(
                message.status, "message-log--status"
            )
            parts.append((" " + STATUS_ICON.get(message.status, "?"), component))
        return parts

    def _text_parts(self, message: MessageView | GroupMessageView) -> list[tuple[str, str | None]]:
        """The text, or "message disappeared" (here, or where a group copy came from),
        and the disappearing timer while the text is there."""
        if message.text is None:
            parts: list[tuple[str, str | None]] = [("message disappeared", "message-log--gone")]
        else:
            parts = [(printable(message.text, multiline=True), None)]
        if message.ttl is not None and message.text is not None:
            left = (
                f" ⏱{duration(message.deadline - self.clock.now())}"
                if message.deadline is not None
                else f" ⏱{duration(message.ttl)}"
            )
            parts.append((left, "message-log--ttl"))
        return parts

    def _group_parts(self, message: GroupMessageView) -> list[tuple[str, str | None]]:
        parts = self._text_parts(message)
        delivery = group_delivery(message) if message.direction == "out" else ""
        if delivery:
            everyone = message.read >= message.recipients
            parts.append(
                (" " + delivery, "message-log--read" if everyone else "message-log--status")
            )
        return parts

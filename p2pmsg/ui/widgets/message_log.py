"""The conversation: messages, day separators, notes and file-transfer cards.

A line-API widget (like Textual's `Log`), not one widget per message: a busy
peer can send hundreds of messages a second, and mounting a widget for each
would stall the UI. Entries are rendered to strips once per width and cached;
only the visible lines are painted. File-transfer cards carry clickable
"Accept"/"Decline" spans (click meta), and `a`/`x` act on the newest offer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from p2pmsg.node.api import MessageStatus, MessageView, TransferView
from p2pmsg.ui.safe_text import literal
from p2pmsg.ui.timefmt import Clock, duration, format_bytes

EntryKind = Literal["message", "transfer", "day", "note"]
_HEX_ID = re.compile(r"[0-9a-f]{1,64}")
MAX_ENTRIES = 2000  # older entries are dropped from the view (history stays in the store)

STATUS_ICON: dict[str, str] = {
    "queued": "◷", "sent": "✓", "delivered": "✓✓", "read": "✓✓", "failed": "✗",
}


@dataclass
class _Entry:
    key: str
    kind: EntryKind
    payload: MessageView | TransferView | str
    style: str = ""  # notes: "info" or "error"
    cache_width: int = -1
    strips: list[Strip] = field(default_factory=list)


class MessageLog(ScrollView, can_focus=True):
    """Scrollable, append-mostly view of one conversation."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "message-log--time", "message-log--me", "message-log--peer", "message-log--status",
        "message-log--read", "message-log--failed", "message-log--ttl", "message-log--day",
        "message-log--note", "message-log--error", "message-log--card", "message-log--button",
        "message-log--gone", "message-log--bar", "message-log--bar-empty",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide_latest(True)", "Accept file", show=False),
        Binding("x", "decide_latest(False)", "Decline file", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
        Binding("pageup", "page_up", show=False),
        Binding("pagedown", "page_down", show=False),
        Binding("up", "scroll_up", show=False),
        Binding("down", "scroll_down", show=False),
    ]

    class TransferDecision(Message):
        """The user accepted or declined an incoming file offer."""

        def __init__(self, transfer_id: str, accept: bool) -> None:
            super().__init__()
            self.transfer_id = transfer_id
            self.accept = accept

    def __init__(self, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._entries: list[_Entry] = []
        self._index: dict[str, int] = {}
        self._line_map: list[tuple[int, int]] = []
        self._wrap_width = 0
        self._last_day: tuple[int, int] | None = None
        self._note_seq = 0
        self.me_name = "me"
        self.peer_name = ""

    # --- content --------------------------------------------------------------------

    def clear_conversation(self) -> None:
        self._entries.clear()
        self._index.clear()
        self._line_map.clear()
        self._last_day = None
        self.virtual_size = Size(self._wrap_width, 0)
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def load(self, messages: list[MessageView], transfers: list[TransferView]) -> None:
        """Show history: messages and transfer cards interleaved in time order.

        A transfer without a timestamp (`created` 0, from an older node) goes last,
        where it would have been shown before transfers had one.
        """
        self.clear_conversation()
        timeline: list[tuple[float, int, MessageView | TransferView]] = [
            (m.created, 0, m) for m in messages]
        timeline += [(t.created if t.created > 0 else float("inf"), 1, t) for t in transfers]
        timeline.sort(key=lambda item: (item[0], item[1]))
        for _, _, item in timeline:
            if isinstance(item, MessageView):
                self._append_message(item)
            else:
                self._append_transfer(item)
        self._relayout(scroll_end=True)

    def add_messages(self, messages: list[MessageView]) -> None:
        """Append new messages (or update ones already shown) in one layout pass."""
        at_end = self.is_vertical_scroll_end
        start = len(self._entries)
        touched = False
        for message in messages:
            key = f"m:{message.id}"
            if key in self._index:
                self._replace(key, message)
                touched = True
            else:
                self._append_message(message)
        self._extend_lines(start)
        if touched:
            self._relayout(scroll_end=at_end)
        elif at_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def set_status(self, ids: tuple[str, ...], status: MessageStatus) -> None:
        changed = False
        for message_id in ids:
            entry = self._get(f"m:{message_id}")
            if entry is not None and isinstance(entry.payload, MessageView):
                payload = entry.payload
                entry.payload = MessageView(**{**payload.__dict__, "status": status})
                entry.cache_width = -1
                changed = True
        if changed:
            self._relayout()

    def expire(self, ids: tuple[str, ...]) -> None:
        changed = False
        for message_id in ids:
            entry = self._get(f"m:{message_id}")
            if entry is not None and isinstance(entry.payload, MessageView):
                entry.payload = MessageView(**{**entry.payload.__dict__, "text": None})
                entry.cache_width = -1
                changed = True
        if changed:
            self._relayout()

    def upsert_transfer(self, transfer: TransferView) -> None:
        key = f"t:{transfer.id}"
        if key in self._index:
            self._replace(key, transfer)
            self._relayout()
        else:
            at_end = self.is_vertical_scroll_end
            start = len(self._entries)
            self._append_transfer(transfer)
            self._extend_lines(start)
            if at_end:
                self.scroll_end(animate=False, immediate=True, x_axis=False)

    def add_note(self, text: str | Text, *, error: bool = False) -> None:
        """A local, non-message line: command results, errors, session changes."""
        self._note_seq += 1
        start = len(self._entries)
        self._append(_Entry(f"n:{self._note_seq}", "note",
                            text.plain if isinstance(text, Text) else text,
                            style="error" if error else "info"))
        self._extend_lines(start)
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def latest_offer(self) -> TransferView | None:
        for entry in reversed(self._entries):
            payload = entry.payload
            if (isinstance(payload, TransferView) and payload.direction == "in"
                    and payload.state == "offered"):
                return payload
        return None

    @property
    def entry_count(self) -> int:
        return len(self._entries)

    def notes(self) -> list[str]:
        """The local notes (command results, errors) as unwrapped text."""
        return [str(e.payload) for e in self._entries if e.kind == "note"]

    def plain_lines(self) -> list[str]:
        """The rendered text, for tests and accessibility tools."""
        return [strip.text.rstrip() for entry in self._entries
                for strip in self._entry_strips(entry)]

    # --- actions --------------------------------------------------------------------

    def action_transfer(self, transfer_id: str, accept: bool) -> None:
        self.post_message(self.TransferDecision(transfer_id, accept))

    def action_decide_latest(self, accept: bool) -> None:
        offer = self.latest_offer()
        if offer is None:
            self.notify("No file offer waiting in this conversation.", severity="warning")
            return
        self.post_message(self.TransferDecision(offer.id, accept))

    # --- layout ---------------------------------------------------------------------

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._wrap_width:
            self._wrap_width = width
            self._relayout(scroll_end=self.is_vertical_scroll_end)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self._line_map):
            return Strip.blank(width, self.rich_style)
        entry_index, line = self._line_map[index]
        strips = self._entry_strips(self._entries[entry_index])
        strip = strips[line] if line < len(strips) else Strip.blank(width)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        for entry in self._entries:
            entry.cache_width = -1

    # --- internals ------------------------------------------------------------------

    def _get(self, key: str) -> _Entry | None:
        index = self._index.get(key)
        return None if index is None else self._entries[index]

    def _replace(self, key: str, payload: MessageView | TransferView) -> None:
        entry = self._entries[self._index[key]]
        entry.payload = payload
        entry.cache_width = -1

    def _append_message(self, message: MessageView) -> None:
        self._day_separator(message.created)
        self._append(_Entry(f"m:{message.id}", "message", message))

    def _append_transfer(self, transfer: TransferView) -> None:
        if transfer.created > 0:
            self._day_separator(transfer.created)
        self._append(_Entry(f"t:{transfer.id}", "transfer", transfer))

    def _day_separator(self, when: float) -> None:
        day = self._clock.day_key(when)
        if day != self._last_day:
            self._last_day = day
            self._append(_Entry(f"d:{day}", "day", self._clock.day(when)))

    def _append(self, entry: _Entry) -> None:
        self._index[entry.key] = len(self._entries)
        self._entries.append(entry)
        if len(self._entries) > MAX_ENTRIES + MAX_ENTRIES // 4:
            self._entries = self._entries[-MAX_ENTRIES:]
            self._index = {e.key: i for i, e in enumerate(self._entries)}
            self._line_map = []  # forces a full relayout below
            self._relayout()

    def _extend_lines(self, start: int) -> None:
        if self._wrap_width <= 0:
            return
        if len(self._line_map) == 0 and start > 0:
            self._relayout()
            return
        for entry_index in range(start, len(self._entries)):
            count = len(self._entry_strips(self._entries[entry_index]))
            self._line_map.extend((entry_index, line) for line in range(count))
        self.virtual_size = Size(self._wrap_width, len(self._line_map))
        self.refresh()

    def _relayout(self, scroll_end: bool = False) -> None:
        self._line_map = []
        if self._wrap_width > 0:
            for entry_index, entry in enumerate(self._entries):
                count = len(self._entry_strips(entry))
                self._line_map.extend((entry_index, line) for line in range(count))
        self.virtual_size = Size(self._wrap_width, len(self._line_map))
        if scroll_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def _entry_strips(self, entry: _Entry) -> list[Strip]:
        width = max(self._wrap_width, 10)
        if entry.cache_width == width:
            return entry.strips
        console = self.app.console
        if entry.kind == "message":
            assert isinstance(entry.payload, MessageView)
            strips = self._render_message(console, entry.payload, width)
        elif entry.kind == "transfer":
            assert isinstance(entry.payload, TransferView)
            strips = self._render_transfer(console, entry.payload, width)
        elif entry.kind == "day":
            label = f" {entry.payload} "
            side = max((width - len(label)) // 2, 1)
            text = Text("─" * side + label + "─" * side,
                        style=self.get_component_rich_style("message-log--day"))
            strips = _wrap(console, text, width)
        else:
            component = "message-log--error" if entry.style == "error" else "message-log--note"
            text = Text("· ", style=self.get_component_rich_style(component))
            text.append_text(literal(str(entry.payload),
                                     style=self.get_component_rich_style(component)))
            strips = _wrap(console, text, width)
        # Unstyled text (message bodies) takes the widget's theme colours, not the
        # terminal's defaults (which would show as a dark bar in a light theme).
        base = self.rich_style
        strips = [strip.apply_style(base) for strip in strips]
        entry.cache_width = width
        entry.strips = strips
        return strips

    def _render_message(self, console: Console, message: MessageView, width: int) -> list[Strip]:
        longest = max(len(self.me_name), len(self.peer_name), 3)
        nick_width = min(longest, 8 if width < 60 else 12)
        mine = message.direction == "out"
        name = self.me_name if mine else self.peer_name
        style = self.get_component_rich_style
        # Styles as spans, not a row's base style: the time's muted colour must not
        # bleed into the body, which is read in the theme's normal foreground.
        head = Text()
        head.append(self._clock.hhmm(message.created) + " ", style=style("message-log--time"))
        nick = literal(name[:nick_width].rjust(nick_width),
                       style=style("message-log--me" if mine else "message-log--peer"))
        head.append_text(nick)
        head.append(" │ ", style=style("message-log--time"))
        indent = head.cell_len
        if message.text is None:
            body = Text()
            body.append("message disappeared", style=style("message-log--gone"))
        else:
            body = literal(message.text, multiline=True)
        if message.ttl is not None:
            left = (f" ⏱{duration(message.deadline - self._clock.now())}"
                    if message.deadline is not None else f" ⏱{duration(message.ttl)}")
            body.append(left, style=style("message-log--ttl"))
        if mine:
            component = {"read": "message-log--read", "failed": "message-log--failed"}.get(
                message.status, "message-log--status")
            body.append(" " + STATUS_ICON.get(message.status, "?"), style=style(component))
        body_width = max(width - indent, 8)
        lines = body.wrap(console, body_width, overflow="fold")
        strips: list[Strip] = []
        pad = Text()
        pad.append(" " * (indent - 2) + "│ ", style=style("message-log--time"))
        for number, line in enumerate(lines):
            row = head.copy() if number == 0 else pad.copy()
            row.append_text(line)
            strips.append(Strip(list(row.render(console)), row.cell_len))
        return strips

    def _render_transfer(self, console: Console, transfer: TransferView, width: int) -> list[Strip]:
        style = self.get_component_rich_style
        card = style("message-log--card")
        arrow = "⇣ incoming" if transfer.direction == "in" else "⇡ outgoing"
        top = Text(f"┌ {arrow} file  ", style=card)
        top.append_text(literal(transfer.name, style=card + Style(bold=True)))
        top.append(f"  {format_bytes(transfer.size)}", style=card)
        rows = [top]
        if transfer.state in ("transferring", "paused", "verifying"):
            fraction = transfer.bytes_done / transfer.size if transfer.size else 1.0
            bar_width = max(min(width - 24, 30), 6)
            filled = round(fraction * bar_width)
            bar = Text("│ ", style=card)
            bar.append("█" * filled, style=style("message-log--bar"))
            bar.append("░" * (bar_width - filled), style=style("message-log--bar-empty"))
            bar.append(f" {fraction:4.0%}", style=card)
            if transfer.state == "transferring":
                bar.append(f" {format_bytes(transfer.rate_bps)}/s", style=card)
            else:
                bar.append(f" {transfer.state}", style=card)
            rows.append(bar)
        elif transfer.state == "offered" and transfer.direction == "in":
            line = Text("│ ", style=card)
            if _HEX_ID.fullmatch(transfer.id):
                button = style("message-log--button")
                line.append(" Accept (a) ", style=button + Style.from_meta(
                    {"@click": f"transfer('{transfer.id}', True)"}))
                line.append("  ")
                line.append(" Decline (x) ", style=button + Style.from_meta(
                    {"@click": f"transfer('{transfer.id}', False)"}))
            else:
                line.append("offer with a malformed id: ignored", style=style("message-log--error"))
            rows.append(line)
        else:
            rows.append(self._transfer_result(transfer, card))
        bottom = Text("└ sha256 " + transfer.sha256[:16], style=card)
        rows.append(bottom)
        strips: list[Strip] = []
        for row in rows:
            strips.extend(_wrap(console, row, width))
        return strips

    def _transfer_result(self, transfer: TransferView, card: Style) -> Text:
        style = self.get_component_rich_style
        line = Text("│ ", style=card)
        state = transfer.state
        if state == "completed":
            line.append("✓ completed", style=style("message-log--read"))
            if transfer.path:
                line.append(" → ", style=card)
                line.append_text(literal(transfer.path, style=card))
        elif state in ("failed", "cancelled", "expired", "declined"):
            line.append(f"✗ {state}", style=style("message-log--failed"))
            if transfer.error:
                line.append(": ", style=card)
                line.append_text(literal(transfer.error, style=card))
        elif state == "offered":
            line.append("waiting for the peer to accept…", style=card)
        else:
            line.append(state, style=card)
        return line


def _wrap(console: Console, text: Text, width: int) -> list[Strip]:
    if text.style:  # wrap() drops a base style on lines without spans: make it a span
        text.stylize_before(text.style)
        text.style = ""
    return [Strip(list(line.render(console)), line.cell_len)
            for line in text.wrap(console, width, overflow="fold")]

"""The conversation: messages, day separators, notes and file-transfer cards.

A line-API widget (like Textual's `Log`), not one widget per message: a busy
peer can send hundreds of messages a second, and mounting a widget for each
would stall the UI. An entry is rendered to strips only when one of its lines
is painted (then cached per width, for the last few hundred entries); appending
needs only its height, which `MessageRows` measures without rendering (for the
usual one-line message, from its length alone). So a flood costs a string
length or a plain wrap per message, plus one screenful of rendering per frame.
Messages are laid out by `message_row`, transfer cards by `transfer_card`
(clickable "Accept"/"Decline" spans); `a`/`x` act on the newest offer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from p2pmsg.node.api import GroupMessageView, MessageStatus, MessageView, TransferView
from p2pmsg.ui.safe_text import literal, printable
from p2pmsg.ui.timefmt import Clock
from p2pmsg.ui.widgets.message_row import ChatMessage, MessageRows
from p2pmsg.ui.widgets.transfer_card import card_rows

EntryKind = Literal["message", "transfer", "day", "note"]
MAX_ENTRIES = 2000  # older entries are dropped from the view (history stays in the store)
MAX_RENDERED = 200  # entries whose rendered strips are kept (a few screens' worth)


@dataclass
class _Entry:
    key: str
    kind: EntryKind
    payload: MessageView | GroupMessageView | TransferView | str
    style: str = ""  # notes: "info" or "error"
    cache_width: int = -1  # the width `strips` were rendered at (-1: stale)
    strips: list[Strip] = field(default_factory=list)
    height_width: int = -1  # the width `height` was measured at, without rendering
    height: int = 0

    def invalidate(self) -> None:
        self.cache_width = self.height_width = -1
        self.strips = []


class MessageLog(ScrollView, can_focus=True):
    """Scrollable, append-mostly view of one conversation."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "message-log--time",
        "message-log--me",
        "message-log--peer",
        "message-log--status",
        "message-log--read",
        "message-log--failed",
        "message-log--ttl",
        "message-log--day",
        "message-log--note",
        "message-log--error",
        "message-log--card",
        "message-log--button",
        "message-log--gone",
        "message-log--bar",
        "message-log--bar-empty",
        "message-log--match",
        "message-log--match-current",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide_latest(True)", "Accept file", show=False),
        Binding("x", "decide_latest(False)", "Decline file", show=False),
        Binding("c", "copy_message", "Copy message", show=False),
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
        self._view_height = 0  # the height the view had at the last resize
        self._last_day: tuple[int, int] | None = None
        self._note_seq = 0
        self.message_rows = MessageRows(clock)
        self._base_style: Style | None = None
        self._rendered: dict[str, _Entry] = {}  # insertion order = render order (FIFO)
        # Search: entry keys of the matching messages, oldest first, and the one shown.
        self._matches: list[str] = []
        self._match = -1

    @property
    def me_name(self) -> str:
        return self.message_rows.me_name

    @me_name.setter
    def me_name(self, name: str) -> None:
        self.message_rows.me_name = name

    @property
    def peer_name(self) -> str:
        return self.message_rows.peer_name

    @peer_name.setter
    def peer_name(self, name: str) -> None:
        self.message_rows.peer_name = name

    def on_mount(self) -> None:
        # A read disappearing message shows the time it has left: count it down.
        self.set_interval(1.0, self._tick_countdowns)

    def _tick_countdowns(self) -> None:
        """Re-render the counting-down messages that have been rendered (the visible
        ones, and a few screens around them); the rest show the right time when drawn."""
        ticking = [
            entry
            for entry in self._rendered.values()
            if isinstance(entry.payload, MessageView)
            and entry.payload.deadline is not None
            and entry.payload.text is not None
        ]
        for entry in ticking:
            entry.invalidate()
        if ticking:
            self._relayout()

    # --- content --------------------------------------------------------------------

    def clear_conversation(self) -> None:
        self._entries.clear()
        self._index.clear()
        self._line_map.clear()
        self._rendered.clear()
        self._last_day = None
        self.virtual_size = Size(self._wrap_width, 0)
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def load(
        self,
        messages: Sequence[ChatMessage],
        transfers: Sequence[TransferView] = (),
        *,
        in_given_order: bool = False,
    ) -> None:
        """Show history: messages and transfer cards interleaved in time order.

        A transfer without a timestamp (`created` 0, from an older node) goes last,
        where it would have been shown before transfers had one. `in_given_order`: a
        group's posts, already in the group's causal display order (their authors'
        clocks need not agree with it).
        """
        self.clear_conversation()
        timeline: list[tuple[float, int, ChatMessage | TransferView]] = [
            (m.created, 0, m) for m in messages
        ]
        timeline += [(t.created if t.created > 0 else float("inf"), 1, t) for t in transfers]
        if not in_given_order:
            timeline.sort(key=lambda item: (item[0], item[1]))
        for _, _, item in timeline:
            if isinstance(item, TransferView):
                self._append_transfer(item)
            else:
                self._append_message(item)
        self._relayout(scroll_end=True)

    def add_messages(self, messages: Sequence[ChatMessage]) -> None:
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
        if touched or self._trim():
            self._relayout(scroll_end=at_end)
            return
        self._extend_lines(start)
        if at_end:
            self._follow_end()

    # --- search ---------------------------------------------------------------------

    def update_messages(self, messages: Sequence[ChatMessage]) -> None:
        """Redraw messages shown already (their receipts moved); others stay out: a post
        older than the loaded history must not turn up at the end."""
        shown = [m for m in messages if self._get(f"m:{m.id}") is not None]
        if shown:
            self.add_messages(shown)

    def search(self, query: str) -> int:
        """Mark the messages containing `query` (any case); returns how many. The view
        stays put until `next_match` moves to one."""
        pattern = re.compile(re.escape(query), re.IGNORECASE) if query else None
        self.message_rows.highlight = pattern
        self._matches = [
            entry.key
            for entry in self._entries
            if pattern is not None
            and isinstance(entry.payload, (MessageView, GroupMessageView))
            and entry.payload.text is not None
            and pattern.search(printable(entry.payload.text, multiline=True))
        ]
        self._match = len(self._matches)  # past the newest: the first step goes to it
        self._invalidate_messages()
        return len(self._matches)

    def next_match(self, step: int) -> tuple[int, int] | None:
        """Show the next match, older (`step` -1) or newer (+1), wrapping around;
        returns (its number counted from the newest, how many), or None if none."""
        if not self._matches:
            return None
        self._match = (self._match + step) % len(self._matches)
        self._invalidate_messages()
        index = self._index.get(self._matches[self._match])
        if index is not None:
            first = next((y for y, (i, _) in enumerate(self._line_map) if i == index), None)
            if first is not None:
                self.scroll_to(y=max(0, first - self.size.height // 3), animate=False)
        return len(self._matches) - self._match, len(self._matches)

    def end_search(self) -> None:
        self.search("")
        self._follow_end()

    def _invalidate_messages(self) -> None:
        for entry in self._entries:  # restyled, not re-measured: heights do not change
            if entry.kind == "message":
                entry.cache_width = -1
                entry.strips = []
        self.refresh()

    def set_status(self, ids: tuple[str, ...], status: MessageStatus) -> None:
        changed = False
        for message_id in ids:
            entry = self._get(f"m:{message_id}")
            if entry is not None and isinstance(entry.payload, MessageView):
                payload = entry.payload
                entry.payload = MessageView(**{**payload.__dict__, "status": status})
                entry.invalidate()
                changed = True
        if changed:
            self._relayout()

    def expire(self, ids: tuple[str, ...]) -> None:
        changed = False
        for message_id in ids:
            entry = self._get(f"m:{message_id}")
            if entry is not None and isinstance(entry.payload, MessageView):
                entry.payload = MessageView(**{**entry.payload.__dict__, "text": None})
                entry.invalidate()
                changed = True
            elif entry is not None and isinstance(entry.payload, GroupMessageView):
                entry.payload = replace(entry.payload, text=None, deadline=None)
                entry.invalidate()
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
            if self._trim():
                self._relayout(scroll_end=at_end)
                return
            self._extend_lines(start)
            if at_end:
                self._follow_end()

    def add_note(self, text: str | Text, *, error: bool = False) -> None:
        """A local, non-message line: command results, errors, session changes."""
        self._note_seq += 1
        start = len(self._entries)
        self._append(
            _Entry(
                f"n:{self._note_seq}",
                "note",
                text.plain if isinstance(text, Text) else text,
                style="error" if error else "info",
            )
        )
        if self._trim():
            self._relayout()
        else:
            self._extend_lines(start)
        self._follow_end()

    def latest_offer(self) -> TransferView | None:
        for entry in reversed(self._entries):
            payload = entry.payload
            if (
                isinstance(payload, TransferView)
                and payload.direction == "in"
                and payload.state == "offered"
            ):
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
        return [
            strip.text.rstrip() for entry in self._entries for strip in self._entry_strips(entry)
        ]

    # --- actions --------------------------------------------------------------------

    def action_transfer(self, transfer_id: str, accept: bool) -> None:
        self.post_message(self.TransferDecision(transfer_id, accept))

    def message_to_copy(self) -> ChatMessage | None:
        """The search match being shown, else the newest message from the peer, else the
        newest message (disappeared ones have no text to copy)."""
        if 0 <= self._match < len(self._matches):
            entry = self._get(self._matches[self._match])
            if entry is not None and isinstance(entry.payload, (MessageView, GroupMessageView)):
                return entry.payload
        messages = [
            e.payload
            for e in reversed(self._entries)
            if isinstance(e.payload, (MessageView, GroupMessageView)) and e.payload.text is not None
        ]
        return next((m for m in messages if m.direction == "in"), messages[0] if messages else None)

    def action_copy_message(self) -> None:
        """Copy to the terminal's clipboard (OSC 52: most terminals, tmux with
        set-clipboard on, also over ssh)."""
        message = self.message_to_copy()
        if message is None or message.text is None:
            self.notify("No message to copy in this conversation.", severity="warning")
            return
        self.app.copy_to_clipboard(message.text)
        lines = message.text.count("\n") + 1
        size = f"{len(message.text):,} characters" + (f", {lines} lines" if lines > 1 else "")
        self.notify(
            f"Copied: {printable(message.text[:40])}{'…' if len(message.text) > 40 else ''}"
            f" ({size})",
            markup=False,
        )

    def action_decide_latest(self, accept: bool) -> None:
        offer = self.latest_offer()
        if offer is None:
            self.notify("No file offer waiting in this conversation.", severity="warning")
            return
        self.post_message(self.TransferDecision(offer.id, accept))

    # --- layout ---------------------------------------------------------------------

    def on_resize(self) -> None:
        # Was the newest line in view before this resize? (Asked after it, a view that
        # just got shorter is never at the end, and stopped following the chat.)
        was_at_end = self.scroll_offset.y >= len(self._line_map) - self._view_height
        region = self.scrollable_content_region
        self._view_height = region.height
        if region.width != self._wrap_width:
            self._wrap_width = region.width
            self._relayout(scroll_end=was_at_end)
        elif was_at_end:
            self.call_after_refresh(self._follow_end)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        base = self._base
        if index >= len(self._line_map):
            return Strip.blank(width, base)
        entry_index, line = self._line_map[index]
        strips = self._entry_strips(self._entries[entry_index])  # rendered on first paint
        strip = strips[line] if line < len(strips) else Strip.blank(width)
        if scroll_x == 0 and strip.cell_length == width:
            return strip  # rendered at this width already: no per-frame copy to cache
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base_style = None
        for entry in self._entries:
            entry.invalidate()

    @property
    def _base(self) -> Style:
        """The widget's own style (theme colours), looked up once per style change:
        `rich_style` walks the ancestors, too slow to ask for every painted line."""
        if self._base_style is None:
            self._base_style = self.rich_style
        return self._base_style

    # --- internals ------------------------------------------------------------------

    def _get(self, key: str) -> _Entry | None:
        index = self._index.get(key)
        return None if index is None else self._entries[index]

    def _replace(self, key: str, payload: ChatMessage | TransferView) -> None:
        entry = self._entries[self._index[key]]
        entry.payload = payload
        entry.invalidate()

    def _append_message(self, message: ChatMessage) -> None:
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

    def _trim(self) -> bool:
        """Drop the oldest entries past the cap (in steps, so the rebuild is rare).

        The caller relayouts when this returns True: every index has moved.
        """
        if len(self._entries) <= MAX_ENTRIES + MAX_ENTRIES // 4:
            return False
        self._entries = self._entries[-MAX_ENTRIES:]
        self._index = {e.key: i for i, e in enumerate(self._entries)}
        self._rendered = {k: e for k, e in self._rendered.items() if k in self._index}
        return True

    def _extend_lines(self, start: int) -> None:
        if self._wrap_width <= 0:
            return
        if len(self._line_map) == 0 and start > 0:
            self._relayout()
            return
        for entry_index in range(start, len(self._entries)):
            count = self._entry_height(self._entries[entry_index])
            self._line_map.extend((entry_index, line) for line in range(count))
        self.virtual_size = Size(self._wrap_width, len(self._line_map))
        self.refresh()

    def _follow_end(self) -> None:
        """Show the newest line now. `force`: the scrollbar that permits scrolling
        appears only at the next layout, and without it the scroll was refused, so
        a conversation that had just outgrown the view stopped following it."""
        self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def _relayout(self, scroll_end: bool = False) -> None:
        self._line_map = []
        if self._wrap_width > 0:
            for entry_index, entry in enumerate(self._entries):
                count = self._entry_height(entry)
                self._line_map.extend((entry_index, line) for line in range(count))
        self.virtual_size = Size(self._wrap_width, len(self._line_map))
        if scroll_end:
            self._follow_end()
        self.refresh()

    def _entry_height(self, entry: _Entry) -> int:
        """How many lines `entry` takes, rendering it only when that is the only way."""
        width = max(self._wrap_width, 10)
        if entry.cache_width == width:
            return len(entry.strips)
        if entry.height_width != width:
            if entry.kind == "message" and isinstance(
                entry.payload, (MessageView, GroupMessageView)
            ):
                entry.height = self.message_rows.height(self.app.console, entry.payload, width)
            else:  # cards, notes, day lines: rare, rendered now
                entry.height = len(self._entry_strips(entry))
            entry.height_width = width
        return entry.height

    def _remember_rendered(self, entry: _Entry) -> None:
        """Keep strips for the most recently rendered entries only.

        A flood scrolls thousands of entries past; holding their strips (each
        with its own caches) would grow the heap and make every full garbage
        collection slower, which the user feels as stalls. Evicted entries keep
        their height and are rendered again if they come back into view.
        """
        self._rendered[entry.key] = entry
        if len(self._rendered) > MAX_RENDERED:
            oldest = next(iter(self._rendered))
            evicted = self._rendered.pop(oldest)
            if evicted is not entry:
                evicted.cache_width = -1
                evicted.strips = []

    def _entry_strips(self, entry: _Entry) -> list[Strip]:
        width = max(self._wrap_width, 10)
        if entry.cache_width == width:
            return entry.strips
        console = self.app.console
        # Unstyled text (message bodies) takes the widget's theme colours, not the
        # terminal's defaults (which would show as a dark bar in a light theme).
        base = self._base
        if entry.kind == "message":
            assert isinstance(entry.payload, (MessageView, GroupMessageView))
            strips = self._render_message(console, entry.payload, width, base)
        elif entry.kind == "transfer":
            assert isinstance(entry.payload, TransferView)
            strips = self._render_transfer(console, entry.payload, width, base)
        elif entry.kind == "day":
            label = f" {entry.payload} "
            side = max((width - len(label)) // 2, 1)
            text = Text(
                "─" * side + label + "─" * side,
                style=self.get_component_rich_style("message-log--day"),
            )
            strips = _wrap(console, text, width, base)
        else:
            component = "message-log--error" if entry.style == "error" else "message-log--note"
            text = Text("· ", style=self.get_component_rich_style(component))
            text.append_text(
                literal(str(entry.payload), style=self.get_component_rich_style(component))
            )
            strips = _wrap(console, text, width, base, Text("  "))
        entry.cache_width = width
        entry.strips = strips
        self._remember_rendered(entry)
        if entry.height_width == width and entry.height != len(strips):
            # the measured height disagrees with the render (it must not): fix the layout
            entry.height = len(strips)
            self.call_later(self._relayout)
        return strips

    def _render_message(
        self, console: Console, message: ChatMessage, width: int, base: Style
    ) -> list[Strip]:
        current = 0 <= self._match < len(self._matches) and (
            self._matches[self._match] == f"m:{message.id}"
        )
        rows = self.message_rows.rows(
            console, message, width, self.get_component_rich_style, current=current
        )
        return [_strip(console, row, base, width) for row in rows]

    def _render_transfer(
        self, console: Console, transfer: TransferView, width: int, base: Style
    ) -> list[Strip]:
        strips: list[Strip] = []
        hang = Text("│   ", style=self.get_component_rich_style("message-log--card"))
        for row in card_rows(transfer, width, self.get_component_rich_style):
            strips.extend(_wrap(console, row, width, base, hang))
        return strips


def _strip(console: Console, line: Text, base: Style, width: int) -> Strip:
    """One rendered line on the widget's base style, padded to the full width."""
    segments = list(Segment.apply_style(line.render(console), base))
    length = line.cell_len
    if length < width:
        segments.append(Segment(" " * (width - length), base))
    return Strip(segments, max(length, width))


def _wrap(
    console: Console, text: Text, width: int, base: Style, hang: Text | None = None
) -> list[Strip]:
    """`text` wrapped to `width`; lines after the first start with `hang` (a card's
    "│   ", a note's indent), so a long path or reason never runs back to column 0
    outside the card or note it belongs to."""
    if text.style:  # wrap() drops a base style on lines without spans: make it a span
        text.stylize_before(text.style)
        text.style = ""
    lines = list(text.wrap(console, width, overflow="fold"))
    if hang is None or len(lines) < 2 or hang.cell_len >= width // 2:
        return [_strip(console, line, base, width) for line in lines]
    first = lines[0]
    rest = text[len(first.plain) :]
    skip = len(rest.plain) - len(rest.plain.lstrip(" "))  # the space the wrap broke at
    rest = rest[skip:]
    strips = [_strip(console, first, base, width)]
    for line in rest.wrap(console, width - hang.cell_len, overflow="fold"):
        strips.append(_strip(console, Text.assemble(hang, line), base, width))
    return strips

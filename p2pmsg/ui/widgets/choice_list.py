"""A pick-several list whose boxes say their state in text, not in colour alone.

Textual's `SelectionList` draws the same "X" in every box and tells chosen from
not chosen by colour only; on a monochrome terminal, with NO_COLOR, or to a
colour-blind user every member looks picked. Here an unchosen box is blank.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets.option_list import OptionDoesNotExist


class ChoiceList(SelectionList[str]):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        # The stock line is [left edge, "X", right edge, " ", prompt...]: only the box's
        # inner cell changes, so its colours (and its click target) stay as they are.
        if len(segments) < 3 or segments[1].text != Checkbox.BUTTON_INNER:
            return strip
        try:
            option = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        if option.value in self.selected:
            return strip
        inner = segments[1]
        segments[1] = Segment(" " * len(inner.text), inner.style, inner.control)
        return Strip(segments, strip.cell_length)

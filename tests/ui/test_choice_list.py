"""The member picker says in text which members are picked (not by colour alone)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Checkbox
from textual.widgets.selection_list import Selection

from p2pmsg.ui.widgets.choice_list import ChoiceList


class _Picker(App[None]):
    def compose(self) -> ComposeResult:
        yield ChoiceList(
            Selection("bob", "b"), Selection("carol", "c", True), Selection("dave", "d")
        )


def _boxes(picker: ChoiceList) -> list[str]:
    """Each row's box, as text: its inner cell between the two edges."""
    return [picker.render_line(y).text[:3] for y in range(3)]


async def test_only_picked_rows_show_a_mark_and_toggling_moves_it() -> None:
    app = _Picker()
    async with app.run_test(size=(40, 8)) as pilot:
        picker = app.query_one(ChoiceList)
        mark = Checkbox.BUTTON_INNER
        assert [box[1] for box in _boxes(picker)] == [" ", mark, " "]
        assert [picker.render_line(y).text[4:].strip() for y in range(3)] == [
            "bob",
            "carol",
            "dave",
        ]
        picker.focus()
        await pilot.press("space")  # the highlighted first row
        picker.deselect("c")
        await pilot.pause()
        assert [box[1] for box in _boxes(picker)] == [mark, " ", " "]
        assert picker.selected == ["b"]

"""At 80x24 every dialog's actions are on screen without scrolling, and tables fit."""

from __future__ import annotations

import pytest
from textual.geometry import Region
from textual.widgets import Button, DataTable

from p2pmsg.ui.app import P2PMsgApp
from tests.ui.conftest import FIXED_CLOCK, FakeLauncher, populated_node, settle
from tests.ui.fake_node import fp_for

SIZE = (80, 24)


async def _open(pilot, what: str) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot, 0.3)
    if what in ("f3", "f4"):
        await pilot.press(what)
    elif what == "key decision":
        pilot.app.node.impostor(fp_for("bob"), claimed="bob")
    await settle(pilot, 0.4)


@pytest.mark.parametrize("what", ["create", "f3", "f4", "key decision"])
async def test_every_button_of_a_dialog_is_on_screen(what: str) -> None:
    node = populated_node()
    launcher = FakeLauncher(node, exists=False) if what == "create" else None
    app = P2PMsgApp(launcher, clock=FIXED_CLOCK) if launcher else P2PMsgApp(node=node)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, what)
        screen_region = Region(0, 0, *SIZE)
        buttons = list(app.screen.query(Button))
        assert buttons, f"no buttons on {app.screen!r}"
        for button in buttons:
            if not all(node.display for node in button.ancestors_with_self[:-1]):
                continue  # in a part of the dialog that is not open
            assert screen_region.contains_region(button.region) and button.region.area, (
                f"{what}: {button.label} is off screen at {SIZE} ({button.region})"
            )
            visible = app.screen.find_widget(button).visible_region
            assert visible.area == button.region.area, f"{what}: {button.label} is cut"


async def test_the_dashboard_tables_fit_the_width() -> None:
    app = P2PMsgApp(node=populated_node(), clock=FIXED_CLOCK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, 0.3)
        await pilot.press("f2")
        await settle(pilot, 0.5)
        table = app.screen.query_one("#alert-table", DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert not table.show_horizontal_scrollbar or table.max_scroll_x == 0

"""The security dashboard from the keyboard (Textual's run_test, keys pressed as a user
would): the alerts table has the focus on open, the tab keys work wherever they cannot
be text (not in a filter box), `/` and escape move between a filter and its table, the
footer and F1 say so; event details read as `key: value`; the Trends chart is drawn on fixed axes
with the model's threshold."""

from __future__ import annotations

from textual.widgets import DataTable, Input, TabbedContent

from p2pmsg.node.api import MonitorChanged, MonitorStatus
from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.model_card import load_model_card
from p2pmsg.ui.screens.dashboard import DashboardScreen, anomaly_threshold, detail_text
from p2pmsg.ui.screens.help import HelpScreen
from p2pmsg.ui.screens.main import MainScreen
from p2pmsg.ui.widgets.score_chart import ScoreChart, x_ticks, y_ticks
from tests.ui.conftest import FIXED_CLOCK, screen_text, settle
from tests.ui.fake_node import FakeNode, fp_for


async def _dashboard(pilot) -> DashboardScreen:  # type: ignore[no-untyped-def]
    await settle(pilot, 0.2)
    await pilot.press("f2")
    await settle(pilot, 0.3)
    dash = pilot.app.screen
    assert isinstance(dash, DashboardScreen)
    return dash


def _footer(app: P2PMsgApp) -> str:
    return screen_text(app).splitlines()[-1]


async def test_the_alerts_table_has_the_focus_when_the_dashboard_opens(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await _dashboard(pilot)
        assert app.focused is dash.query_one("#alert-table", DataTable)
        # ... so the alert keys act at once, and the footer (80 columns) names them all.
        footer = _footer(app)
        for shown in ("esc Back", "1…4 Tabs", "/ Filter", "a Acknowledge", "f False alarm"):
            assert shown in footer, (shown, footer)
        await pilot.press("a")
        await settle(pilot)
        assert node.alert_views[0].state == "acknowledged"


async def test_tab_keys_never_type_into_nor_leave_a_filter_box_unasked(node: FakeNode) -> None:
    """Digits switch tabs wherever the focus is not in a filter box; in one they are text
    (a filter like "10.0.0.2"), and the footer offers escape (back to the table) instead
    of the tab keys, so it never shows a key that would do something else."""
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        dash = await _dashboard(pilot)
        tabs = dash.query_one(TabbedContent)
        box = dash.query_one("#alert-filter", Input)
        await pilot.press("slash")
        await settle(pilot)
        assert app.focused is box
        footer = _footer(app)
        assert "esc Table" in footer and "Tabs" not in footer and "esc Back" not in footer
        assert "Filter" not in footer  # already there

        await pilot.press("2")  # a digit in a text box is text: the filter, not a tab
        await settle(pilot)
        assert box.value == "2" and tabs.active == "alerts"

        await pilot.press("escape")  # to the table, keeping the filter
        await settle(pilot)
        assert app.focused is dash.query_one("#alert-table", DataTable) and box.value == "2"
        footer = _footer(app)
        assert "1…4 Tabs" in footer and "esc Back" in footer and "esc Table" not in footer

        await pilot.press("2")
        await settle(pilot)
        assert tabs.active == "events"
        assert app.focused is dash.query_one("#event-table", DataTable)
        for key, tab in (("3", "trends"), ("4", "model"), ("1", "alerts")):
            await pilot.press(key)
            await settle(pilot)
            assert tabs.active == tab
        assert app.focused is dash.query_one("#alert-table", DataTable)
        await pilot.press("2", "slash")  # `/` goes to the filter of the tab shown
        await settle(pilot)
        assert app.focused is dash.query_one("#event-filter", Input)


async def test_escape_leaves_the_filter_box_first_then_the_dashboard(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        dash = await _dashboard(pilot)
        table = dash.query_one("#alert-table", DataTable)
        await pilot.press("slash", "r", "e", "p")
        await settle(pilot)
        assert table.row_count == 1  # only the replay alert matches "rep"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is dash and app.focused is table
        assert dash.query_one("#alert-filter", Input).value == "rep"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


async def test_f1_on_the_dashboard_shows_its_keys(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(160, 60)) as pilot:  # tall enough to need no scrolling
        await _dashboard(pilot)
        await pilot.press("f1")
        await settle(pilot, 0.3)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "1…4" in text and "F2 dashboard tabs: alerts, events, trends," in text
        assert "/ · esc · r" in text and "F2 dashboard: filter this tab · back to" in text
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)


async def test_event_details_read_as_key_value_text_and_stay_inert(node: FakeNode) -> None:
    node.log_event("unlock_fail", None, count=1, new=1)
    node.log_event("frame_rejected", fp_for("dave"), reason="bad\x1b[31m [b]x[/b]", sizes=[1, 2])
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(160, 40)) as pilot:
        dash = await _dashboard(pilot)
        await pilot.press("2")
        await settle(pilot)
        table = dash.query_one("#event-table", DataTable)
        details = {str(table.get_cell_at((r, 1))): str(table.get_cell_at((r, 5))) for r in range(4)}
        assert details["unlock_fail"] == "count: 1 · new: 1"
        assert details["frame_rejected"] == "reason: bad␛[31m [b]x[/b] · sizes: 1, 2"
        text = screen_text(app)
        assert "count: 1 · new: 1" in text and "{'count'" not in text


def test_detail_text_flattens_one_readable_line() -> None:
    assert detail_text({"count": 1, "new": 1}) == "count: 1 · new: 1"
    assert detail_text({"frame": {"kind": "hello", "len": 9}}) == "frame.kind: hello · frame.len: 9"
    assert detail_text({}) == "" and detail_text(None) == ""
    assert detail_text("plain\x07text") == "plain␇text"
    assert detail_text({"k\x1b": ["a\nb"]}) == "k␛: a␊b"


async def test_trends_draws_the_scores_against_the_models_threshold(node: FakeNode) -> None:
    manifest, _ = load_model_card()
    threshold = anomaly_threshold(manifest)
    assert threshold is not None and 0.0 < threshold < 1.0  # the shipped model card has one
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        dash = await _dashboard(pilot)
        await pilot.press("3")
        await settle(pilot, 0.3)
        chart = dash.query_one(ScoreChart)
        assert chart.threshold == threshold and chart.scores == (0.1, 0.2, 0.15, 0.7, 0.3)
        text = screen_text(app)
        assert f"red line: threshold {threshold:.2f}" in text
        assert f"{threshold:.2f}├" in text  # the line, labelled on the y axis
        assert "1.0┤" in text and "0┤" in text and "now" in text  # fixed axes
        assert "scored windows" in text and "anomaly" in text
        above = sum(s > threshold for s in chart.scores)
        assert f"5 windows · min 0.10 · max 0.70 · latest 0.30 · {above} above" in text

        node.emit(MonitorChanged(MonitorStatus(mode="rules-only: models refused")))
        await settle(pilot, 0.3)
        assert not chart.display
        assert "no windows scored yet" in screen_text(app)


def test_chart_ticks() -> None:
    assert x_ticks(1) == ([0.0], ["now"])
    assert x_ticks(5) == ([-4.0, -2.0, 0.0], ["-4", "-2", "now"])
    assert x_ticks(2) == ([-1.0, 0.0], ["-1", "now"])
    # The threshold's tick replaces a round one on the same row; the rest stay.
    assert y_ticks(0.62, 1.0) == ([0.0, 0.62, 1.0], ["0", "0.62", "1.0"])
    assert y_ticks(0.3, 1.0) == ([0.0, 0.3, 0.5, 1.0], ["0", "0.30", "0.5", "1.0"])
    assert y_ticks(None, 2.0) == ([0.0, 1.0, 2.0], ["0", "1.0", "2.0"])

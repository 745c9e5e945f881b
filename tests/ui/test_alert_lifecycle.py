"""Acting on alerts in the TUI (Textual's run_test, keys pressed as a user would): `a`,
`d`, `f` in the threat panel, on the dashboard's alerts table and in an alert's detail
screen, the footer and F1 help naming them, and the unread count in the header."""

from __future__ import annotations

from textual.widgets import DataTable, OptionList

from p2pmsg.node.api import Evidence
from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.screens.alert_detail import AlertDetailScreen
from p2pmsg.ui.screens.dashboard import DashboardScreen
from p2pmsg.ui.screens.main import MainScreen
from p2pmsg.ui.widgets.threat_panel import ThreatPanel
from tests.ui.conftest import FIXED_CLOCK, screen_text, settle
from tests.ui.fake_node import FakeNode

# populated_node(): alert 1 (high flood from dave, newest) and alert 2 (medium replay)


async def _main(pilot) -> MainScreen:  # type: ignore[no-untyped-def]
    await settle(pilot, 0.2)
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    return screen


def _labels(panel: ThreatPanel) -> list[str]:
    options = panel.query_one("#alerts", OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


def _states(node: FakeNode) -> dict[int | None, str]:
    return {a.id: a.state for a in node.alert_views}


async def test_threat_panel_keys_acknowledge_dismiss_and_mark_false_alarms(
    node: FakeNode,
) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _main(pilot)
        panel = screen.query_one(ThreatPanel)
        assert screen.title == "p2pmsg · ⚠ 2 unread alerts"
        assert "⚠ 2 unread alerts" in screen_text(app)  # in the header
        assert [label[:2] for label in _labels(panel)] == ["● ", "● "]

        panel.query_one("#alerts", OptionList).focus()
        await pilot.press("home")
        await settle(pilot)
        footer = screen_text(app).splitlines()[-1]
        assert "Acknowledge" in footer and "Dismiss" in footer and "False alarm" in footer

        await pilot.press("a")  # the highlighted (newest) alert: 1
        await settle(pilot)
        assert _states(node) == {1: "acknowledged", 2: "unread"}
        assert _labels(panel)[0].startswith("✓ HIGH flood")  # looks seen
        assert _labels(panel)[1].startswith("● MED  replay")
        assert screen.title == "p2pmsg · ⚠ 1 unread alert"

        await pilot.press("d")  # dismissed: it leaves the panel
        await settle(pilot)
        assert _states(node) == {1: "dismissed", 2: "unread"}
        assert len(panel.alerts) == 1 and _labels(panel)[0].startswith("● MED  replay")

        await pilot.press("f")  # now on alert 2
        await settle(pilot)
        assert _states(node) == {1: "dismissed", 2: "false_alarm"}
        assert panel.alerts == [] and screen.title == "p2pmsg"
        toasts = [(n.title, n.message) for n in app._notifications]
        assert any(
            title == "Marked a false alarm" and "one severity lower for 7 days" in message
            for title, message in toasts
        )


async def test_a_change_made_elsewhere_updates_the_panel_and_header(node: FakeNode) -> None:
    """`p2pmsg alerts --dismiss` in another terminal: the node publishes the change."""
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _main(pilot)
        await node.dismiss_alerts([2])
        await node.acknowledge_alerts([1])
        await settle(pilot)
        panel = screen.query_one(ThreatPanel)
        assert [a.id for a in panel.alerts] == [1] and panel.alerts[0].state == "acknowledged"
        assert screen.title == "p2pmsg"
        node.raise_alert("flood", "low", None, "one more")
        await settle(pilot)
        assert screen.title == "p2pmsg · ⚠ 1 unread alert"


async def test_dashboard_keys_act_on_the_row_and_keep_put_away_alerts(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await _main(pilot)
        await pilot.press("f2")
        await settle(pilot, 0.3)
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        assert dash.title == "Security dashboard · ⚠ 2 unread alerts"
        table = dash.query_one("#alert-table", DataTable)
        table.focus()
        await settle(pilot)
        assert "Acknowledge" in screen_text(app).splitlines()[-1]

        await pilot.press("a")  # row 0: alert 1
        await settle(pilot)
        assert _states(node)[1] == "acknowledged"
        assert str(table.get_cell_at((0, 1))) == "seen"
        await pilot.press("down", "f")  # alert 2: a false alarm, still listed here
        await settle(pilot)
        assert _states(node) == {1: "acknowledged", 2: "false_alarm"}
        assert table.row_count == 2 and str(table.get_cell_at((1, 1))) == "false alarm"
        assert dash.sub_title == "local monitor of this profile · 1 false alarm"
        assert dash.title == "Security dashboard"
        await pilot.press("up", "d")
        await settle(pilot)
        assert _states(node)[1] == "dismissed" and table.row_count == 2

        await pilot.press("3")  # Trends: the counts, false alarms among them
        await settle(pilot)
        assert (
            "alerts: 0 unread · 0 acknowledged · 1 dismissed · 1 marked false alarm"
            in screen_text(app)
        )
        assert "Acknowledge" not in screen_text(app).splitlines()[-1]  # alerts tab only

        await pilot.press("escape")  # back: the panel lost both (dismissed, false alarm)
        await settle(pilot)
        assert app.screen.query_one(ThreatPanel).alerts == []


async def test_f1_help_names_the_alert_keys(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await _main(pilot)
        await pilot.press("f1")
        await settle(pilot, 0.3)
        text = screen_text(app)
        assert "a / d / f        on an alert (threat panel, F2" in text
        assert "dashboard): acknowledge /" in text and "dismiss / false alarm" in text


async def _detail_from_panel(pilot) -> AlertDetailScreen:  # type: ignore[no-untyped-def]
    screen = await _main(pilot)
    screen.query_one(ThreatPanel).query_one("#alerts", OptionList).focus()
    await pilot.press("home", "enter")  # the newest alert: 1, the flood
    await settle(pilot, 0.2)
    detail = pilot.app.screen
    assert isinstance(detail, AlertDetailScreen)
    return detail


async def test_the_detail_screen_shows_the_state_and_its_keys_move_it(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        detail = await _detail_from_panel(pilot)
        text = screen_text(app)
        assert "state        unread" in text
        footer = text.splitlines()[-1]
        assert "a Acknowledge" in footer and "d Dismiss" in footer and "f False alarm" in footer

        await pilot.press("a")
        await settle(pilot)
        assert _states(node) == {1: "acknowledged", 2: "unread"}
        text = screen_text(app)
        assert "state        acknowledged just now" in text
        assert "Acknowledge" not in text.splitlines()[-1]  # forward only: not offered again
        assert app.screen is detail  # still reading it

        await pilot.press("d")
        await settle(pilot)
        assert _states(node)[1] == "dismissed" and "state        dismissed" in screen_text(app)
        assert "Dismiss" not in screen_text(app).splitlines()[-1]

        await pilot.press("f")
        await settle(pilot)
        assert _states(node)[1] == "false_alarm"
        text = screen_text(app)
        assert (
            "state        marked a false alarm" in text
            and "False alarm" not in text.splitlines()[-1]
        )
        assert any(n.title == "Marked a false alarm" for n in app._notifications)
        await pilot.press("a", "d")  # no longer bound here: nothing is asked of the node
        await settle(pilot)
        assert [c for c in node.calls if c[0] == "alert_state"] == [
            ("alert_state", "acknowledged", (1,)),
            ("alert_state", "dismissed", (1,)),
            ("alert_state", "false_alarm", (1,)),
        ]

        await pilot.press("escape")  # back: the panel lost it (put away)
        await settle(pilot)
        assert [a.id for a in app.screen.query_one(ThreatPanel).alerts] == [2]


async def test_the_detail_screen_follows_a_change_made_elsewhere(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await _detail_from_panel(pilot)
        await node.mark_false_alarms([1])  # e.g. `p2pmsg alerts --false-alarm 1` elsewhere
        await settle(pilot)
        text = screen_text(app)
        assert "marked a false alarm" in text
        assert "Acknowledge" not in text.splitlines()[-1]


async def test_the_dashboard_opens_the_same_detail_with_the_same_keys(node: FakeNode) -> None:
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await _main(pilot)
        await pilot.press("f2")
        await settle(pilot, 0.3)
        dash = app.screen
        await pilot.press("down", "enter")  # the table has the focus: alert 2
        await settle(pilot, 0.2)
        assert isinstance(app.screen, AlertDetailScreen) and app.screen.alert.id == 2
        await pilot.press("d")
        await settle(pilot)
        assert _states(node) == {1: "unread", 2: "dismissed"}
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is dash
        table = dash.query_one("#alert-table", DataTable)
        assert str(table.get_cell_at((1, 1))) == "dismissed"


async def test_the_detail_screen_shows_the_evidence_above_the_advice(node: FakeNode) -> None:
    node.raise_alert(
        "brute_force",
        "high",
        None,
        "failed unlocks",
        evidence=(Evidence("failed unlocks in 5 min\x1b[31m [b]x[/b]", 7, "alert at 5"),),
    )
    app = P2PMsgApp(node=node, clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await _main(pilot)
        await pilot.press("f2")
        await settle(pilot, 0.3)
        await pilot.press("enter")  # the newest: the brute force
        await settle(pilot, 0.2)
        lines = screen_text(app).splitlines()
        row = next(i for i, line in enumerate(lines) if "failed unlocks in 5 min" in line)
        assert "␛[31m [b]x[/b]" in lines[row]  # literal, inert
        assert " 7  alert at 5" in lines[row]
        assert "why" in lines[row - 1] and "observed  normal or threshold" in lines[row - 1]
        advice = next(i for i, line in enumerate(lines) if "Repeated failed unlocks" in line)
        assert advice > row
        await pilot.press("escape", "down", "down", "enter")  # the replay: no evidence stored
        await settle(pilot, 0.2)
        assert isinstance(app.screen, AlertDetailScreen) and app.screen.alert.kind == "replay"
        assert "no evidence recorded" in screen_text(app)

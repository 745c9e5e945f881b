"""Snapshot tests (pytest-textual-snapshot): main screen, dashboard (its alerts and its
Trends), an alert's detail, verify, key decision, settings and create-profile screens at
120x40 and 80x24 (the main screen also at 60x18), with the clock pinned (UTC) and the
fake node's data fixed.

Regenerate after a deliberate visual change with
`pytest tests/ui/test_snapshots.py --snapshot-update` and review the SVG diff.
"""

from __future__ import annotations

import pytest

from p2pmsg.ui.app import P2PMsgApp
from tests.ui.conftest import FIXED_CLOCK, FakeLauncher, populated_node
from tests.ui.fake_node import fp_for

SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]


def _app() -> P2PMsgApp:
    return P2PMsgApp(node=populated_node(), clock=FIXED_CLOCK)


async def _loaded(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", [*SIZES, pytest.param((60, 18), id="60x18")])
def test_main_screen(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_app(), terminal_size=size, run_before=_loaded)


@pytest.mark.parametrize("size", SIZES)
def test_settings_screen(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def open_settings(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("f4")
        await pilot.pause(0.3)

    assert snap_compare(_app(), terminal_size=size, run_before=open_settings)


@pytest.mark.parametrize("size", SIZES)
def test_create_profile_screen(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = P2PMsgApp(FakeLauncher(populated_node(), exists=False), clock=FIXED_CLOCK)
    assert snap_compare(app, terminal_size=size, run_before=_loaded)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def open_dashboard(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("f2")
        await pilot.pause(0.3)

    assert snap_compare(_app(), terminal_size=size, run_before=open_dashboard)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_trends(snap_compare, size, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The anomaly scores on fixed axes with the model's threshold line. The model card
    is a fixed one here (the monitor's own search order, P2PMSG_MODEL_DIR first), so that
    retraining the shipped models does not move this picture."""
    (tmp_path / "manifest.json").write_text('{"anomaly_threshold": 0.55}', encoding="utf-8")
    monkeypatch.setenv("P2PMSG_MODEL_DIR", str(tmp_path))

    async def open_trends(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("f2")
        await pilot.pause(0.3)
        await pilot.press("3")
        await pilot.pause(0.3)

    assert snap_compare(_app(), terminal_size=size, run_before=open_trends)


@pytest.mark.parametrize("size", SIZES)
def test_alert_detail(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The newest alert (the flood) opened from the dashboard: its state, what it is,
    its advice, and the lifecycle keys in the footer."""

    async def open_detail(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("f2")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)

    assert snap_compare(_app(), terminal_size=size, run_before=open_detail)


@pytest.mark.parametrize("size", SIZES)
def test_verify_screen(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def open_verify(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        await pilot.press("f3")
        await pilot.pause(0.3)

    assert snap_compare(_app(), terminal_size=size, run_before=open_verify)


@pytest.mark.parametrize("size", SIZES)
def test_key_decision_screen(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """A new key claiming bob's name, with a hostile claimed name shown inert."""

    async def flag(pilot) -> None:  # type: ignore[no-untyped-def]
        await _loaded(pilot)
        pilot.app.node.impostor(fp_for("bob"), claimed="b\x1b[31mob[b]x[/b]")
        await pilot.pause(0.4)

    assert snap_compare(_app(), terminal_size=size, run_before=flag)


def _group_app() -> P2PMsgApp:
    from tests.ui.test_groups import group_node

    node, _ = group_node()
    return P2PMsgApp(node=node, clock=FIXED_CLOCK)


async def _open_team(pilot) -> None:  # type: ignore[no-untyped-def]
    from p2pmsg.ui.widgets.peer_list import group_key
    from tests.ui.fake_node import T0

    await _loaded(pilot)
    node = pilot.app.node
    (gid,) = node.group_views
    node.group_history(gid, "dave", "a long line that wraps " * 3, created=T0 - 50)
    pilot.app.screen.open_conversation(group_key(gid))
    await pilot.pause(0.3)


def test_group_conversation(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The group "team" open at 80x24: authors by claimed name ("~bob"), our post with
    "✓✓ 2/3", the Groups section under the peers, the group header."""
    assert snap_compare(_group_app(), terminal_size=(80, 24), run_before=_open_team)


def test_group_member_pane(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """F7 over the group: who is in, online, admin, verified / first seen / never met."""

    async def open_members(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open_team(pilot)
        await pilot.press("f7")
        await pilot.pause(0.3)

    assert snap_compare(_group_app(), terminal_size=(80, 24), run_before=open_members)

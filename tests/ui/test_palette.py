"""Theme colours: semantic styles follow the active theme and stay readable in light ones."""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.markup import parse_style

from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.palette import ACCENT, DANGER, OK, SEVERITY_STYLE, WARN, rich_style
from tests.ui.conftest import FIXED_CLOCK, populated_node, settle

READABLE = 3.0  # WCAG's floor for large or bold text; these marks are bold or short


def _contrast(one: Color, two: Color) -> float:
    def luminance(colour: Color) -> float:
        def channel(value: int) -> float:
            v = value / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(colour.r) + 0.7152 * channel(colour.g) + 0.0722 * channel(colour.b)

    high, low = sorted((luminance(one), luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _segments_with(app: P2PMsgApp, mark: str, max_x: int) -> list[Segment]:
    found = []
    for strip in app.screen._compositor.render_strips():
        x = 0
        for segment in strip:
            if mark in segment.text and x < max_x:
                found.append(segment)
            x += segment.cell_length
    return found


async def test_semantic_styles_are_readable_in_every_builtin_theme() -> None:
    app = P2PMsgApp(node=populated_node(), clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        weak = []
        for theme in sorted(app.available_themes):
            if theme.startswith("ansi-"):
                continue  # the terminal's own 16 colours: nothing to compute
            app.theme = theme
            await pilot.pause()
            variables = app.theme_variables
            background = Color.parse(variables["background"])
            for spec in (OK, WARN, DANGER, ACCENT, SEVERITY_STYLE["critical"]):
                style = parse_style(spec, variables)
                behind = style.background or background
                assert style.foreground is not None
                ratio = _contrast(behind + style.foreground, behind)
                if ratio < READABLE:
                    weak.append(f"{theme}: {spec} {ratio:.1f}")
        assert not weak, weak


async def test_switching_theme_recolours_peer_badges_and_header() -> None:
    app = P2PMsgApp(node=populated_node(), clock=FIXED_CLOCK)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 0.2)
        colours = []
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            await settle(pilot)
            expected = rich_style(app, OK).color
            badges = _segments_with(app, "✔", max_x=26)  # bob's verified badge, peer list
            header = _segments_with(app, "✔ verified", max_x=120)
            assert badges and header
            assert all(
                s.style is not None and s.style.color == expected for s in badges + header
            ), theme
            colours.append(expected)
        assert colours[0] != colours[1]

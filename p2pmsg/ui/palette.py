"""Semantic colours, as theme variables, so every Textual theme applies (dark or light).

Widgets build `textual.content.Content` with these style strings; Textual
resolves "$text-error" and friends against the active theme when it paints,
so a theme switch recolours everything without rebuilding anything.

Foreground text uses the `$text-*` variants, which Textual derives for
reading on the theme's background: in textual-light, `$warning` on the
background has a contrast of 1.5:1 and `$text-warning` 3.3:1 (bold), while
`$text-error` is 7.3:1 (`tests/ui/test_palette.py` checks a floor in the
built-in themes). Plain `$success`/`$error` are for bars and backgrounds.

Rich renderables (tables) cannot hold variables: `rich_style` resolves a
spec against the running app's theme when they are built.
"""

from __future__ import annotations

from rich.style import Style as RichStyle
from textual.app import App
from textual.markup import parse_style

OK = "$text-success"
WARN = "$text-warning"
DANGER = "$text-error"
ACCENT = "$text-accent"
MUTED = "dim"  # dims whatever the theme's foreground is: readable in every theme

SEVERITY_STYLE: dict[str, str] = {
    "low": MUTED,
    "medium": f"bold {WARN}",
    "high": f"bold {DANGER}",
    "critical": "bold $background on $text-error",  # the one that must jump out
}


def rich_style(app: App[object], spec: str) -> RichStyle:
    """`spec` (e.g. "bold $text-accent") as a Rich style in the app's current theme."""
    return parse_style(spec, app.theme_variables).rich_style  # explicit: safe in threads

"""Settings saved in the profile through `NodeAPI.update_settings`.

Values are validated here before they are sent, with the error next to the
field, so a typo never reaches the node as a half-applied setting.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import NodeAPI
from p2pmsg.ui.palette import DANGER
from p2pmsg.ui.slash import SUITES
from p2pmsg.ui.timefmt import duration, parse_duration

MIN_ROTATION_S = 10.0
MAX_MESSAGES = 1_000_000


def parse_settings(raw: dict[str, str], suite: str | None) -> tuple[dict[str, Any], list[str]]:
    """Form strings to typed settings; returns (values, errors)."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    try:
        interval = parse_duration(raw["key_rotation_interval"])
        if interval < MIN_ROTATION_S:
            raise ValueError(f"at least {MIN_ROTATION_S:.0f}s")
        values["key_rotation_interval"] = interval
    except ValueError as exc:
        errors.append(f"rotation interval: {exc}")
    count = raw["max_messages_per_key"].strip()
    if count.isdigit() and 1 <= int(count) <= MAX_MESSAGES:
        values["max_messages_per_key"] = int(count)
    else:
        errors.append(f"messages per key: a whole number from 1 to {MAX_MESSAGES}")
    if suite is not None:
        values["preferred_suite"] = suite
    folder = raw["downloads_dir"].strip()
    values["downloads_dir"] = folder or None  # None: the per-user downloads folder
    ttl = raw["default_disappearing_ttl"].strip().lower()
    if ttl in ("", "off", "none"):
        values["default_disappearing_ttl"] = None
    else:
        try:
            values["default_disappearing_ttl"] = parse_duration(ttl)
        except ValueError as exc:
            errors.append(f"disappearing timer: {exc}")
    return values, errors


def _shown(value: Any, *, seconds: bool = False) -> str:
    if value is None:
        return "off" if seconds else ""
    return duration(float(value)).replace(" ", "") if seconds else str(value)


class SettingsScreen(ModalScreen[dict[str, Any] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, node: NodeAPI) -> None:
        super().__init__()
        self.node = node

    def compose(self) -> ComposeResult:
        with Vertical(id="settings-box", classes="dialog"):
            yield Static(Text("Settings", style="bold"))
            # Compact fields (one row each): the whole dialog, buttons included, fits
            # an 80x24 terminal.
            yield Label("Rotate keys every (e.g. 1h, 30m)")
            yield Input(id="key_rotation_interval", compact=True)
            yield Label("Messages per key")
            yield Input(id="max_messages_per_key", type="integer", compact=True)
            yield Label("Preferred cipher suite")
            yield Select(
                [(s, s) for s in SUITES], id="preferred_suite", allow_blank=True, compact=True
            )
            yield Label("Downloads folder (leave empty for your usual downloads folder)")
            yield Input(id="downloads_dir", compact=True)
            yield Label("Disappearing timer for new conversations (off, 5m, 1d)")
            yield Input(id="default_disappearing_ttl", compact=True)
            yield Checkbox(
                "Ring the terminal bell for a message in another conversation",
                id="bell",
                compact=True,
            )
            yield Static(id="settings-errors")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self._load()

    @work(exclusive=True)
    async def _load(self) -> None:
        try:
            settings = await self.node.get_settings()
        except P2PMsgError as exc:
            self._errors([str(exc)])
            return
        self.query_one("#key_rotation_interval", Input).value = _shown(
            settings.get("key_rotation_interval", 3600), seconds=True
        )
        self.query_one("#max_messages_per_key", Input).value = _shown(
            settings.get("max_messages_per_key", 1000)
        )
        suite = settings.get("preferred_suite")
        if suite in SUITES:
            self.query_one("#preferred_suite", Select).value = suite
        downloads = self.query_one("#downloads_dir", Input)
        downloads.value = _shown(settings.get("downloads_dir"))
        usual = settings.get("default_downloads_dir")
        if usual:
            downloads.placeholder = f"{usual} (your usual downloads folder)"
        self.query_one("#default_disappearing_ttl", Input).value = _shown(
            settings.get("default_disappearing_ttl"), seconds=True
        )
        self.query_one("#bell", Checkbox).value = bool(settings.get("bell", True))
        self.query_one("#key_rotation_interval", Input).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        names = (
            "key_rotation_interval",
            "max_messages_per_key",
            "downloads_dir",
            "default_disappearing_ttl",
        )
        raw = {name: self.query_one(f"#{name}", Input).value for name in names}
        suite_value = self.query_one("#preferred_suite", Select).value
        suite = suite_value if isinstance(suite_value, str) else None
        values, errors = parse_settings(raw, suite)
        values["bell"] = self.query_one("#bell", Checkbox).value
        if errors:
            self._errors(errors)
            return
        self._save(values)

    @work(exclusive=True, group="save")
    async def _save(self, values: dict[str, Any]) -> None:
        try:
            await self.node.update_settings(**values)
        except P2PMsgError as exc:
            self._errors([str(exc)])
            return
        self.notify("Settings saved.")
        self.dismiss(values)

    def _errors(self, errors: list[str]) -> None:
        self.query_one("#settings-errors", Static).update(
            Content.styled("\n".join(errors), f"bold {DANGER}")
        )

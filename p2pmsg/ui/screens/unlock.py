"""First screen: create the profile, or unlock it.

The KDF (PBKDF2, ~0.5 s) runs in a thread via `asyncio.to_thread`, so the
spinner keeps turning. Failed unlocks show the back-off the keystore enforces
as a live countdown, and the form stays disabled until it ends.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, LoadingIndicator, Static

from p2pmsg.errors import P2PMsgError, UnlockThrottledError, WrongPasswordError
from p2pmsg.node.api import NodeAPI
from p2pmsg.ui.launcher import Launcher, Rule
from p2pmsg.ui.messages import NodeReady
from p2pmsg.ui.safe_text import printable
from p2pmsg.ui.widgets.password_rules import PasswordRules

MEET_THE_RULES = "Meet every rule above first."


class UnlockScreen(Screen[None]):
    """Create-profile or unlock form; posts `NodeReady` to the app when done."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "app.quit", "Quit")]

    def __init__(self, launcher: Launcher) -> None:
        super().__init__()
        self._launcher = launcher
        self._creating = not launcher.profile_exists()
        self._retry_at = 0.0
        self._busy = False
        self._shown_status = ""

    def compose(self) -> ComposeResult:
        name = printable(self._launcher.profile_name)
        with Center(), Vertical(id="unlock-box"):
            yield Static("p2pmsg", id="unlock-logo")
            if self._creating:
                yield Label(Text(f"Create profile “{name}”"), id="unlock-title")
                yield Input(
                    placeholder="Display name (what peers see)", id="display-name", max_length=64
                )
                yield Input(placeholder="Password", password=True, id="password")
                yield Input(placeholder="Confirm password", password=True, id="confirm")
                yield PasswordRules(id="rules")
                yield Button("Create profile", variant="primary", id="submit")
            else:
                yield Label(Text(f"Unlock profile “{name}”"), id="unlock-title")
                yield Input(placeholder="Password", password=True, id="password")
                yield Button("Unlock", variant="primary", id="submit")
            yield LoadingIndicator(id="unlock-spinner")
            yield Static(id="unlock-status")

    def on_mount(self) -> None:
        self.query_one("#unlock-spinner").display = False
        self.set_interval(0.25, self._tick_countdown)
        if not self._creating:
            try:  # "in use by …" before the password is typed, not after
                self._launcher.claim()
            except P2PMsgError as exc:
                self._status(
                    f"{exc}. Quit it first, or use another profile (p2pmsg --profile NAME).",
                    error=True,
                )
                self.query_one("#password", Input).focus()
                return
        preset = self._launcher.preset_password
        if preset is not None and not self._creating:
            self._attempt(preset, preset=True)
        else:
            self.query_one("#display-name" if self._creating else "#password", Input).focus()
            self._refresh_rules()

    # --- live policy feedback ---------------------------------------------------------

    @on(Input.Changed)
    def _refresh_rules(self) -> None:
        if not self._creating:
            return
        name = self.query_one("#display-name", Input).value
        password = self.query_one("#password", Input).value
        confirm = self.query_one("#confirm", Input).value
        rules = self._launcher.password_rules(password, name)
        rules = [*rules, Rule("both passwords match", bool(password) and password == confirm)]
        if not name.strip():
            rules.insert(0, Rule("a display name", False))
        hint = self._launcher.strength_hint(password) if password else ""
        self.query_one(PasswordRules).show(rules, hint)
        met = all(r.met for r in rules)
        self.query_one("#submit", Button).disabled = not met
        if met and self._shown_status == MEET_THE_RULES:
            self._status("")  # the reminder is answered

    # --- submit -----------------------------------------------------------------------

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        if self._creating and event.input.id != "confirm":
            self.focus_next()
            return
        self._submit()

    @on(Button.Pressed, "#submit")
    def _submit(self) -> None:
        if self._busy or time.monotonic() < self._retry_at:
            return
        password = self.query_one("#password", Input).value
        if self._creating:
            if self.query_one("#submit", Button).disabled:
                self._status(MEET_THE_RULES, error=True)
                return
            name = self.query_one("#display-name", Input).value.strip()
            self._create(name, password)
        elif password:
            self._attempt(password)

    @work(exclusive=True, group="unlock")
    async def _create(self, name: str, password: str) -> None:
        self._set_busy(True, "Creating keys and deriving the storage key…")
        try:
            unlocked = await asyncio.to_thread(self._launcher.create, name, password)
        except P2PMsgError as exc:
            self._set_busy(False)
            self._status(str(exc), error=True)
            return
        await self._start(unlocked)

    @work(exclusive=True, group="unlock")
    async def _attempt(self, password: str, *, preset: bool = False) -> None:
        self._set_busy(True, "Unlocking…")
        try:
            unlocked = await asyncio.to_thread(self._launcher.unlock, password)
        except UnlockThrottledError as exc:
            self._set_busy(False)
            self._retry_at = time.monotonic() + exc.retry_after
            self._tick_countdown()
            return
        except WrongPasswordError:
            self._set_busy(False)
            source = " (from P2PMSG_PASSWORD / --password-file)" if preset else ""
            self._status(f"Wrong password{source}.", error=True)
            password_input = self.query_one("#password", Input)
            password_input.value = ""
            password_input.focus()
            return
        except P2PMsgError as exc:
            self._set_busy(False)
            self._status(str(exc), error=True)
            return
        await self._start(unlocked)

    async def _start(self, unlocked: Any) -> None:
        self._status("Starting the node…")
        node: NodeAPI | None = None
        try:
            node = await self._launcher.open_node(unlocked)
            await node.start()
        except (P2PMsgError, OSError) as exc:
            if node is not None:
                await node.stop()
            self._launcher.close()
            self._set_busy(False)
            self._status(f"Could not start: {exc}", error=True)
            return
        self.app.post_message(NodeReady(node))

    # --- feedback ---------------------------------------------------------------------

    def _set_busy(self, busy: bool, message: str = "") -> None:
        self._busy = busy
        self.query_one("#unlock-spinner").display = busy
        for widget in self.query(Input):
            widget.disabled = busy
        self.query_one("#submit", Button).disabled = busy
        if busy:
            self._status(message)
        elif self._creating:
            self._refresh_rules()

    def _tick_countdown(self) -> None:
        left = self._retry_at - time.monotonic()
        submit = self.query_one("#submit", Button)
        password_input = self.query_one("#password", Input)
        if left > 0:
            submit.disabled = True
            password_input.disabled = True
            self._status(f"Too many failed attempts. Try again in {left:.0f} s.", error=True)
        elif self._retry_at:
            self._retry_at = 0.0
            submit.disabled = False
            password_input.disabled = False
            password_input.focus()
            self._status("You can try again now.")

    def _status(self, message: str, *, error: bool = False) -> None:
        self._shown_status = message
        status = self.query_one("#unlock-status", Static)
        status.update(Text(message))
        status.set_class(error, "-error")

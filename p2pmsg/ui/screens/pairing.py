"""Pair by a short code: the quick way to verify a key with the person in front of you.

One side shows a one-time code, the other types it; the nodes run SPAKE2 in
their session, bound to both fingerprints and to that session, so a relay in
the middle learns nothing and fails. A wrong code burns it; a code lives two
minutes. On success each side marks the other verified. The screen says
plainly what happened and what to do next; it never marks anything itself.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Static

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import OUTCOME_TEXT, NodeAPI, PairingOutcome, PeerView
from p2pmsg.ui.palette import DANGER, OK
from p2pmsg.ui.safe_text import clip, literal_content, printable

#: How long to wait for the other person after the code expires (their typing, the round trip).
GRACE = 35.0
#: How long entering a code may take (connecting first, then three messages).
ENTER_TIMEOUT = 30.0


class PairingScreen(ModalScreen[bool | None]):
    """Returns True once both sides are verified, else None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, node: NodeAPI, peer: PeerView, code: str = "") -> None:
        super().__init__()
        self.node = node
        self.peer = peer
        self.initial_code = code
        self._expires_at: float | None = None
        self._countdown: Timer | None = None
        self._ok = False

    def compose(self) -> ComposeResult:
        name = clip(self.peer.name, 32)
        with VerticalScroll(id="pairing-box", classes="dialog"):
            yield Static(
                Content.assemble(
                    ("Pair with ", "bold"),
                    literal_content(name, "bold"),
                    (" by a short code", "bold"),
                ),
                id="pairing-title",
            )
            yield Static(
                Text(
                    "One of you shows a code, the other types it. Say the code aloud, in person or "
                    "on a call where you recognise the voice; never send it through p2pmsg. A code "
                    "is good for one try within two minutes.",
                    style="italic",
                ),
                id="pairing-body",
            )
            with Horizontal(classes="buttons", id="pairing-choice"):
                yield Button("Show a code", variant="primary", id="show")
                yield Button("Close (esc)", id="close")
            yield Input(
                placeholder="or type their code, e.g. 123-456, then Enter",
                id="pairing-input",
                restrict=r"[0-9\- ]*",
                max_length=11,
            )
            yield Static("", id="pairing-code")
            yield Static("", id="pairing-status")

    def on_mount(self) -> None:
        self.query_one("#pairing-code").display = False
        if self.initial_code:
            self.query_one("#pairing-input", Input).value = self.initial_code
            self._enter(self.initial_code)
        else:
            self.query_one("#show", Button).focus()

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#pairing-status", Static).update(Content.styled(printable(text), style))

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(True if self._ok else None)

    @on(Button.Pressed, "#show")
    @work(exclusive=True, group="pairing")
    async def _show(self) -> None:
        try:
            code = await self.node.pairing_code(self.peer.fingerprint)
        except P2PMsgError as exc:
            self._status(f"No code: {exc}", DANGER)
            return
        self._expires_at = code.expires_at
        shown = self.query_one("#pairing-code", Static)
        shown.display = True
        shown.update(Text(code.code, style="bold"))
        self._tick()
        if self._countdown is None:
            self._countdown = self.set_interval(1.0, self._tick)
        remaining = max(code.expires_at - time.time(), 0.0)
        outcome = await self.node.wait_pairing(self.peer.fingerprint, remaining + GRACE)
        self._finished(outcome)

    def _tick(self) -> None:
        if self._expires_at is None or self._ok:
            return
        left = int(self._expires_at - time.time())
        if left > 0:
            self._status(
                f"Read this code to them; it expires in {left} s. Waiting for them to type it…"
            )
        else:
            self._status("The code expired. Show a new one to try again.", DANGER)

    @on(Input.Submitted, "#pairing-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self._enter(event.value)

    @work(exclusive=True, group="pairing")
    async def _enter(self, code: str) -> None:
        self._status("Checking the code with them…")
        try:
            outcome = await self.node.enter_pairing_code(self.peer.fingerprint, code, ENTER_TIMEOUT)
        except P2PMsgError as exc:
            self._status(f"Could not pair: {exc}", DANGER)
            return
        self._finished(outcome)

    def _finished(self, outcome: PairingOutcome) -> None:
        self._expires_at = None
        if outcome.ok:
            self._ok = True
            self._status("✔ Paired: you have verified each other's keys.", f"bold {OK}")
            self.query_one("#pairing-code").display = False
            self.query_one("#close", Button).focus()
            return
        why = OUTCOME_TEXT.get(outcome.reason, outcome.reason)
        self._status(f"Not verified: {why}.", DANGER)

"""Asked on ctrl+q while files are moving: quitting pauses them, so say so first.

Transfers survive a quit (both sides keep the partial file and resume where it
stopped when they meet again), but a person who pressed ctrl+q mid-transfer
may not know that, or may have forgotten the transfer. A second ctrl+q quits.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pmsg.node.api import TransferView
from p2pmsg.ui.safe_text import clip, literal_content

#: States in which bytes are moving or about to (quitting interrupts them).
ACTIVE_STATES = frozenset({"accepted", "transferring", "verifying"})


def describe(transfer: TransferView, peer_name: str) -> str:
    done = 100.0 * transfer.bytes_done / transfer.size if transfer.size else 100.0
    arrow = "to" if transfer.direction == "out" else "from"
    return f"{clip(transfer.name, 40)} {arrow} {clip(peer_name, 24)}, {done:.0f}%"


class ConfirmQuitScreen(ModalScreen[bool]):
    """Returns True to quit."""

    # ctrl+q is the app's priority binding: pressed again here, it quits.
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(False)", "Stay")]

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        count = len(self.lines)
        files = "1 file is" if count == 1 else f"{count} files are"
        with Vertical(classes="dialog", id="quit-box"):
            yield Static(f"{files} still moving. Quit?", classes="title")
            for line in self.lines:
                yield Static(literal_content(f"  • {line}"))
            yield Static(
                "Quitting pauses them; each resumes where it stopped the next time "
                "you and the other person are both online.\nctrl+q again quits, esc stays."
            )
            with Horizontal(classes="buttons"):
                yield Button("Quit", id="quit", variant="error")
                yield Button("Stay", id="stay", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    @on(Button.Pressed, "#quit")
    def _quit(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#stay")
    def _stay(self) -> None:
        self.dismiss(False)

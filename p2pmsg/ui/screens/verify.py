"""Verify a peer: compare fingerprints and the 60-digit safety number out loud.

Verification is the only defence against a man in the middle on first
contact (trust on first use), so the screen says exactly what to do and what
a mismatch means, and shows the number in the 12 groups of 5 people read.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import NodeAPI, PeerView
from p2pmsg.ui.palette import DANGER, OK, WARN
from p2pmsg.ui.safe_text import clip, literal, literal_content, printable


def group_fingerprint(hex_fp: str) -> str:
    """64 hex digits as two lines of 8 groups of 4 (the `format_fingerprint` form)."""
    groups = [hex_fp[i : i + 4] for i in range(0, len(hex_fp), 4)]
    return " ".join(groups[:8]) + "\n" + " ".join(groups[8:])


def group_safety_number(number: str) -> list[str]:
    """The 60 digits as 3 rows of 4 groups of 5 (12 groups in all)."""
    digits = "".join(ch for ch in number if ch.isdigit())
    groups = [digits[i : i + 5] for i in range(0, len(digits), 5)]
    return [" ".join(groups[i : i + 4]) for i in range(0, len(groups), 4)]


async def show_safety_number(node: NodeAPI, fingerprint: str, widget: Static) -> None:
    """Fill `widget` with the pair's safety number in its 12 groups, or say why not."""
    try:
        number = await node.safety_number(fingerprint)
    except P2PMsgError as exc:
        widget.update(Content.styled(printable(f"unavailable: {exc}"), DANGER))
        return
    widget.update(Text("\n".join(group_safety_number(number)), style="bold"))


class VerifyScreen(ModalScreen[bool | None]):
    """Returns True (marked verified), False (marked not verified) or None (closed).

    Also the place for the other decisions about a known key: pairing by code,
    a petname (rename: back in the composer with `/name `), block/unblock."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "mark(True)", "Verified"),
        Binding("u", "mark(False)", "Not verified"),
        Binding("p", "pair", "Pair by code"),
        Binding("r", "rename", "Rename"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, node: NodeAPI, peer: PeerView) -> None:
        super().__init__()
        self.node = node
        self.peer = peer

    def compose(self) -> ComposeResult:
        name = clip(self.peer.name, 40)
        with VerticalScroll(id="verify-box", classes="dialog"):
            title = Content.assemble(
                ("Verify ", "bold"),
                literal_content(name, "bold"),
                ("  (currently ", "dim"),
                ("verified", f"bold {OK}")
                if self.peer.verified
                else ("not verified", f"bold {WARN}"),
                (")", "dim"),
            )
            yield Static(title, id="verify-title")
            yield Static(Text("Your fingerprint", style="dim"))
            yield Static(
                Text(group_fingerprint(self.node.fingerprint)), classes="fingerprint", id="own-fp"
            )
            label = literal(name, style="dim")
            label.append("'s fingerprint", style="dim")
            yield Static(label)
            yield Static(
                Text(group_fingerprint(self.peer.fingerprint)), classes="fingerprint", id="peer-fp"
            )
            yield Static(Text("Safety number", style="dim"))
            yield Static(Text("computing…", style="dim"), id="safety-number")
            how = Text(
                "Read the safety number aloud to each other, in person or on a call where "
                "you recognise the voice. It must match digit for digit on both screens. "
                "If it does not, someone may be in the middle: do not mark verified.",
                style="italic",
            )
            yield Static(how, id="verify-how")
            with Horizontal(classes="buttons"):
                if self.peer.state == "pinned":  # only a pinned key can be verified
                    yield Button("Mark verified (v)", variant="success", id="mark-verified")
                    yield Button("Not verified (u)", variant="warning", id="mark-unverified")
                yield Button("Pair by code (p)", variant="primary", id="pair")
            with Horizontal(classes="buttons"):
                yield Button("Rename (r)", id="rename")
                if self.peer.state == "blocked":
                    yield Button("Unblock", id="unblock")
                else:
                    yield Button("Block", variant="error", id="block")
                yield Button("Close (esc)", id="close")

    def on_mount(self) -> None:
        self._load()

    @work(exclusive=True)
    async def _load(self) -> None:
        await show_safety_number(
            self.node, self.peer.fingerprint, self.query_one("#safety-number", Static)
        )

    @on(Button.Pressed, "#mark-verified")
    def _verified(self) -> None:
        self.action_mark(True)

    @on(Button.Pressed, "#mark-unverified")
    def _unverified(self) -> None:
        self.action_mark(False)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#pair")
    def action_pair(self) -> None:
        from p2pmsg.ui.screens.pairing import PairingScreen

        def paired(ok: bool | None) -> None:
            if ok:
                self.dismiss(True)

        self.app.push_screen(PairingScreen(self.node, self.peer), paired)

    @on(Button.Pressed, "#rename")
    def action_rename(self) -> None:
        self.dismiss(None)
        self.app.call_later(self.app.run_action, "screen.rename")

    @on(Button.Pressed, "#block")
    @work(exclusive=True, group="mark")
    async def _block(self) -> None:
        await self._apply(self.node.block_peer(self.peer.fingerprint), "Blocked.")

    @on(Button.Pressed, "#unblock")
    @work(exclusive=True, group="mark")
    async def _unblock(self) -> None:
        await self._apply(self.node.unblock_peer(self.peer.fingerprint), "Unblocked.")

    async def _apply(self, call: Awaitable[PeerView], note: str) -> None:
        try:
            await call
        except P2PMsgError as exc:
            self.notify(printable(str(exc)), severity="error", markup=False)
            return
        self.notify(note)
        self.dismiss(None)

    @work(exclusive=True, group="mark")
    async def action_mark(self, verified: bool) -> None:
        if self.peer.state != "pinned":
            self.notify(
                "Only a pinned key (met in a handshake, not flagged or blocked) can "
                "be marked verified.",
                severity="warning",
            )
            return
        try:
            await self.node.set_verified(self.peer.fingerprint, verified)
        except P2PMsgError as exc:
            self.notify(printable(str(exc)), severity="error", markup=False)
            return
        self.notify("Marked verified." if verified else "Marked not verified.")
        self.dismiss(verified)

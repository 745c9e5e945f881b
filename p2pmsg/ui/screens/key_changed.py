"""Key changed: a known peer presented a different identity key.

This is what an impersonation looks like (and also what a reinstall looks
like). Sending stays blocked until the user decides; the safe path —
compare safety numbers first — is one key away.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import IdentityChanged, NodeAPI, PeerView
from p2pmsg.ui.palette import DANGER
from p2pmsg.ui.safe_text import clip, literal, literal_content


class KeyChangedScreen(ModalScreen[bool | None]):
    """Returns True once the new key is accepted, False/None to keep blocking."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f3", "verify", "Compare safety numbers"),
        Binding("escape", "keep_blocked", "Keep blocked"),
    ]

    def __init__(self, node: NodeAPI, peer: PeerView, event: IdentityChanged | None) -> None:
        super().__init__()
        self.node = node
        self.peer = peer
        self.event = event

    def compose(self) -> ComposeResult:
        name = clip(self.peer.name, 40)
        with Vertical(id="key-changed-box", classes="dialog -danger"):
            title = Content.assemble(("⚠ ", f"bold {DANGER}"), literal_content(name, "bold"),
                                     ("'s identity key has changed", f"bold {DANGER}"))
            yield Static(title, id="key-changed-title")
            body = Text("A peer using this name presented a different long-term key than the "
                        "one pinned on first contact. Either ")
            body.append_text(literal(name))
            body.append(" reinstalled or reset their profile, or someone is impersonating "
                        "them. Until you decide, nothing is sent to this peer.\n\n")
            body.append("Safe path: ask them, over a channel you trust, and compare safety "
                        "numbers (F3) before accepting.")
            yield Static(body, id="key-changed-body")
            if self.event is not None:
                detail = Text("detail: ", style="dim")
                detail.append_text(literal(clip(self.event.detail, 200), style="dim"))
                if self.event.old_fingerprint:
                    detail.append(f"\nold key {self.event.old_fingerprint[:16]}…", style="dim")
                detail.append(f"\nnew key {self.event.fingerprint[:16]}…", style="dim")
                yield Static(detail, id="key-changed-detail")
            with Horizontal(classes="buttons"):
                yield Button("Compare safety numbers (F3)", variant="primary", id="verify")
                yield Button("Accept new key", variant="error", id="accept")
                yield Button("Keep blocked (esc)", id="keep")

    def on_mount(self) -> None:
        self.query_one("#verify", Button).focus()

    @on(Button.Pressed, "#keep")
    def action_keep_blocked(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#verify")
    def action_verify(self) -> None:
        from p2pmsg.ui.screens.verify import VerifyScreen
        self.app.push_screen(VerifyScreen(self.node, self.peer))

    @on(Button.Pressed, "#accept")
    @work(exclusive=True)
    async def _accept(self) -> None:
        try:
            await self.node.accept_new_key(self.peer.fingerprint)
        except P2PMsgError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify("New key accepted. It is not verified yet.", severity="warning")
        self.dismiss(True)

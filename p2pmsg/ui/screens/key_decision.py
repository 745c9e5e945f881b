"""A flagged key: it claims a name that reads like a contact's. The user decides who it is.

This is what an impersonation attempt looks like, and also what a reinstall
or a second person with the same name looks like. Nothing here changes the
contact: Carol keeps working while this screen is open, and whatever is
chosen. The choices, each the user's explicit act:

* "Someone else": the key becomes a contact of its own, under a name that
  tells the two apart (a petname; "Carol (2)" is suggested).
* "Carol's new key": Carol and her history move to this key, her old key is
  retired and refused. Only after a confirmation that shows both
  fingerprints and recommends checking the safety number or pairing first.
* "Pair by code": verify this key with the person in front of you first.
* "Block": refuse this key from now on.

Dismisses with "apart", "changed", "blocked" or None (decide later).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import NodeAPI, PeerView
from p2pmsg.ui.palette import DANGER
from p2pmsg.ui.safe_text import clip, literal, literal_content, printable
from p2pmsg.ui.screens.verify import group_fingerprint, show_safety_number


class KeyDecisionScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "later", "Decide later"),
    ]

    def __init__(self, node: NodeAPI, peer: PeerView, contact: PeerView | None) -> None:
        super().__init__()
        self.node = node
        self.peer = peer
        self.contact = contact
        self.contact_name = clip(
            contact.name if contact is not None else peer.clash_with_name or "a contact", 32
        )

    def compose(self) -> ComposeResult:
        name = self.contact_name
        with VerticalScroll(id="key-decision-box", classes="dialog -danger"):
            yield Static(
                Content.assemble(
                    ("⚠ A new key claims to be ", f"bold {DANGER}"),
                    literal_content(name, f"bold {DANGER}"),
                ),
                id="key-decision-title",
            )
            body = Text("It is not the key you know for ")
            body.append_text(literal(name))
            body.append(
                ". It may be them on a new device or after a reinstall, another person "
                "with the same name, or someone pretending. "
            )
            body.append_text(literal(name))
            body.append(" is not affected. Nothing is sent to this new key until you decide.")
            yield Static(body, id="key-decision-body")
            label = literal(name, style="dim")
            label.append("'s pinned key", style="dim")
            yield Static(label)
            yield Static(
                Text(group_fingerprint(self.peer.clash_with or "?" * 64)),
                classes="fingerprint",
                id="contact-fp",
            )
            claimed = Text("This new key, which calls itself ", style="dim")
            claimed.append_text(literal(clip(self.peer.claimed_name, 32), style="dim"))
            yield Static(claimed)
            yield Static(
                Text(group_fingerprint(self.peer.fingerprint)), classes="fingerprint", id="new-fp"
            )
            yield Static(Text("Safety number with the new key", style="dim"))
            yield Static(Text("computing…", style="dim"), id="safety-number")
            with Horizontal(classes="buttons"):
                yield Button("Someone else…", variant="primary", id="apart")
                yield Button(
                    Content.assemble(literal_content(clip(name, 16)), "'s new key…"),
                    variant="warning",
                    id="change",
                )
            with Horizontal(classes="buttons"):
                yield Button("Pair by code", id="pair")
                yield Button("Block", variant="error", id="block")
                yield Button("Later (esc)", id="later")
            with Vertical(id="apart-form", classes="decision-step"):
                yield Static("A name of your own for this key, one that tells it apart:")
                yield Input(
                    value=f"{printable(clip(self.peer.claimed_name, 56))} (2)", id="apart-name"
                )
                with Horizontal(classes="buttons"):
                    yield Button("Keep apart under this name", variant="primary", id="apart-save")
            with Vertical(id="change-form", classes="decision-step"):
                confirm = Text("Move ", style="bold")
                confirm.append_text(literal(name, style="bold"))
                confirm.append(
                    " and the whole conversation to the new key above. The old key "
                    f"{(self.peer.clash_with or '?')[:16]}… will be retired and "
                    "refused from then on. Do this only after comparing the safety "
                    "number with them (in person or by voice) or pairing by code.",
                    style="bold",
                )
                yield Static(confirm)
                with Horizontal(classes="buttons"):
                    yield Button("Yes, it is their new key", variant="error", id="change-confirm")

    def on_mount(self) -> None:
        for step in self.query(".decision-step"):
            step.display = False
        self.query_one("#apart", Button).focus(scroll_visible=False)
        self._load()  # the title and the warning stay in view on a small terminal

    @work(exclusive=True, group="safety")
    async def _load(self) -> None:
        await show_safety_number(
            self.node, self.peer.fingerprint, self.query_one("#safety-number", Static)
        )

    def _show_step(self, step_id: str) -> None:
        for step in self.query(".decision-step"):
            step.display = step.id == step_id
        self.query_one(f"#{step_id}").scroll_visible()

    @on(Button.Pressed, "#apart")
    def _apart(self) -> None:
        self._show_step("apart-form")
        self.query_one("#apart-name", Input).focus()

    @on(Button.Pressed, "#change")
    def _change(self) -> None:
        self._show_step("change-form")
        self.query_one("#change-confirm", Button).focus()

    @on(Button.Pressed, "#pair")
    def _pair(self) -> None:
        from p2pmsg.ui.screens.pairing import PairingScreen

        self.app.push_screen(PairingScreen(self.node, self.peer))

    @on(Button.Pressed, "#later")
    def action_later(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#apart-save")
    @on(Input.Submitted, "#apart-name")
    def _apart_save(self) -> None:
        name = self.query_one("#apart-name", Input).value.strip()
        self._decide("apart", name)

    @on(Button.Pressed, "#change-confirm")
    def _change_confirm(self) -> None:
        self._decide("changed")

    @on(Button.Pressed, "#block")
    def _block(self) -> None:
        self._decide("blocked")

    @work(exclusive=True, group="decide")
    async def _decide(self, outcome: str, name: str = "") -> None:
        """Every refusal (a name that clashes too, a key that went away) is shown here;
        none of them closes the screen or the app."""
        fp = self.peer.fingerprint
        try:
            if outcome == "apart":
                await self.node.keep_apart(fp, name)
                note = f"Kept apart as {printable(clip(name, 32))}."
            elif outcome == "changed":
                if self.peer.clash_with is None:
                    raise ValueError("the contact this key claims to be is no longer known")
                await self.node.change_key(self.peer.clash_with, fp)
                note = (
                    f"{printable(self.contact_name)} is now on the new key; it is not verified yet."
                )
            else:
                await self.node.block_peer(fp)
                note = "This key is blocked."
        except (P2PMsgError, ValueError) as exc:
            self.notify(printable(str(exc)), severity="error", markup=False)
            return
        self.notify(note, markup=False)
        self.dismiss(outcome)

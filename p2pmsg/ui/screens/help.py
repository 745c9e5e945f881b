"""Help: keys, slash commands, and what the security marks mean."""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from p2pmsg.ui import slash
from p2pmsg.ui.palette import ACCENT, rich_style

KEYS = (
    ("F1", "this help"),
    ("F2", "security dashboard"),
    ("F3", "verify the selected peer / decide about a flagged key"),
    ("F4", "settings"),
    ("F5", "rotate to a fresh key now"),
    ("F6", "show the panes that do not fit: peers, keys, threats"),
    ("ctrl+p", "command palette: every action, peers, themes"),
    ("ctrl+n / ctrl+b", "next / previous peer or group"),
    ("ctrl+r", "rename the peer (your own name)"),
    ("enter / ctrl+j", "send / start a new line (in the composer)"),
    ("tab", "complete a command or /file path; elsewhere, next panel"),
    ("a / x / c", "in the conversation: accept / decline the newest file offer; copy a message"),
    ("ctrl+f", "search this conversation (enter/↑ older, ↓ newer, esc closes)"),
    ("a / d / f", "on an alert (threat panel, F2 dashboard): acknowledge / dismiss / false alarm"),
    ("enter", "on an alert: its details, what it rests on, and the same a / d / f"),
    ("1…4", "F2 dashboard tabs: alerts, events, trends, model card (in a filter: esc first)"),
    ("/ · esc · r", "F2 dashboard: filter this tab · back to its table · reload"),
    ("ctrl+g", "new group"),
    ("F7", "members of the open group"),
    ("esc", "back to the composer / close a dialog"),
    ("ctrl+q", "quit (asks first while files are moving)"),
)
MARKS = (
    ("● / ○", "peer online / offline"),
    ("✔", "verified: you compared safety numbers or paired by code"),
    ("⚠", "flagged: a new key claims a contact's name; nothing is sent until you decide"),
    ("⛔", "blocked: this key is refused"),
    ("◷ ✓ ✓✓", "queued, sent, delivered (coloured ✓✓: read)"),
    ("⏱", "disappearing message"),
    ("✓✓ 3/4 read 2/4", "group post: held by 3 of the 4 others, read by 2 (/group receipts)"),
    ("~name", "group member: the name they claim (you gave them none)"),
    ("● / ✓", "alert unread / acknowledged (a false alarm quiets its kind for that peer a week)"),
)


def _table(
    title: str, rows: tuple[tuple[str, str], ...] | list[tuple[str, str]], key_style: Style
) -> Table:
    table = Table(
        title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0)
    )
    table.add_column(style=key_style, no_wrap=True)
    table.add_column()
    for key, text in rows:
        table.add_row(key, text)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog"):
            yield Static(Text("p2pmsg: end-to-end encrypted chat on your LAN", style="bold"))
            key = rich_style(self.app, f"bold {ACCENT}")
            # Side by side on a wide terminal, one under the other on a narrow one (CSS).
            with Container(id="help-columns"):
                with Vertical(classes="help-column"):
                    yield Static(_table("Keys", KEYS, key))
                    yield Static(_table("Marks", MARKS, key))
                with Vertical(classes="help-column"):
                    yield Static(
                        _table(
                            "Composer commands (start a message with // to send a leading /)",
                            slash.help_lines(),
                            key,
                        )
                    )

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)

"""One alert in full: what the monitor saw, where, and how sure it is."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from p2pmsg.node.api import AlertView
from p2pmsg.ui.palette import SEVERITY_STYLE, rich_style
from p2pmsg.ui.safe_text import literal
from p2pmsg.ui.timefmt import Clock, ago

ADVICE = {
    "brute_force": "Repeated failed unlocks or handshakes. If it was not you, someone is "
    "guessing; keep the profile password long.",
    "flood": "A peer sent far more than usual. The node rate-limits it; block the peer if "
    "it continues.",
    "replay": "Old records were sent again. An attacker on the network may be replaying "
    "traffic; the records were rejected.",
    "integrity_violation": "Records or files failed their integrity checks and were "
    "dropped. The link or the peer is tampering with data.",
    "impersonation": "A known name appeared with a different key. Compare safety numbers "
    "before trusting it.",
    "exfiltration": "Unusually large or many outgoing transfers. Check what was sent.",
}


class AlertDetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, alert: AlertView, peer_name: str, clock: Clock) -> None:
        super().__init__()
        self.alert = alert
        self.peer_name = peer_name
        self.clock = clock

    def compose(self) -> ComposeResult:
        alert = self.alert
        table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        table.add_row(
            "severity",
            Text(
                f" {alert.severity} ",
                style=rich_style(self.app, SEVERITY_STYLE.get(alert.severity, "")),
            ),
        )
        table.add_row("kind", Text(alert.kind, style="bold"))
        table.add_row(
            "when", Text(f"{self.clock.stamp(alert.ts)} ({ago(self.clock.now() - alert.ts)} ago)")
        )
        table.add_row("peer", literal(self.peer_name))
        table.add_row("fingerprint", Text(alert.peer or "-"))
        table.add_row("address", literal(alert.addr or "-"))
        table.add_row("source", literal(alert.source))
        table.add_row("score", Text(f"{alert.score:.3f}"))
        table.add_row("message", literal(alert.message, multiline=True))
        with Vertical(id="alert-box", classes="dialog"):
            yield Static(Text("Security alert", style="bold"))
            yield Static(table)
            advice = ADVICE.get(alert.kind)
            if advice:
                yield Static(Text(advice, style="italic"), id="alert-advice")

    def action_close(self) -> None:
        self.dismiss(None)

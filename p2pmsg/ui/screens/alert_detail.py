"""One alert in full: what the monitor saw, where, how sure it is, what it rests on
(its evidence: each measure observed beside the rule's threshold or this profile's
normal range), what to do, and where the user stands with it (its lifecycle state),
with the threat panel's keys to move it on: `a` acknowledge, `d` dismiss, `f` false
alarm.

The screen follows the node's `AlertStateChanged` (the app hands every screen on the
stack its events), so a change made here, in the dashboard behind it or with
`p2pmsg alerts` in another terminal reads the same.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from p2pmsg.node.api import AlertStateChanged, AlertView, Evidence, NodeAPI, NodeEvent
from p2pmsg.ui.alert_actions import set_alert_state
from p2pmsg.ui.palette import SEVERITY_STYLE, rich_style
from p2pmsg.ui.safe_text import literal
from p2pmsg.ui.timefmt import Clock, ago
from p2pmsg.ui.widgets.threat_panel import ALERT_KEYS

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

#: How each state reads here, and which states each key moves an alert out of (the
#: node's lifecycle is forward only: a key that would change nothing is not offered).
STATE_WORDS = {
    "unread": "unread",
    "acknowledged": "acknowledged",
    "dismissed": "dismissed",
    "false_alarm": "marked a false alarm",
}
MOVES_FROM = {
    "acknowledged": ("unread",),
    "dismissed": ("unread", "acknowledged"),
    "false_alarm": ("unread", "acknowledged", "dismissed"),
}


def observed_text(value: float) -> str:
    """A count reads as a count (7, not 7.0); a measure keeps two decimals at most
    (as `p2pmsg alerts` writes it)."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def evidence_table(evidence: tuple[Evidence, ...]) -> Table | Text:
    """What the alert rests on, one measure a row: observed beside normal/threshold.
    The texts are the monitor's, but stored: shown literally like everything else."""
    if not evidence:
        return Text("no evidence recorded (raised before alerts explained themselves)", "dim")
    table = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, header_style="dim")
    table.add_column("why", overflow="fold")
    table.add_column("observed", justify="right", style="bold", no_wrap=True)
    table.add_column("normal or threshold", overflow="fold")
    for item in evidence:
        table.add_row(
            literal(item.name), Text(observed_text(item.observed)), literal(item.expected)
        )
    return table


class AlertDetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close"),
        *(Binding(key, f"set_state('{state}')", label) for key, _, label, state in ALERT_KEYS),
    ]

    def __init__(self, alert: AlertView, peer_name: str, clock: Clock, node: NodeAPI) -> None:
        super().__init__()
        self.alert = alert
        self.peer_name = peer_name
        self.clock = clock
        self.node = node

    def compose(self) -> ComposeResult:
        # Scrolls when six reasons and the advice do not fit (80x24).
        with VerticalScroll(id="alert-box", classes="dialog"):
            yield Static(Text("Security alert", style="bold"))
            yield Static(self._facts(), id="alert-facts")
            yield Static(evidence_table(self.alert.evidence), id="alert-evidence")
            advice = ADVICE.get(self.alert.kind)
            if advice:
                yield Static(Text(advice, style="italic"), id="alert-advice")
        yield Footer()

    def _facts(self) -> Table:
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
        table.add_row("state", self._state_text())
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
        return table

    def _state_text(self) -> Text:
        alert = self.alert
        text = Text(
            STATE_WORDS.get(alert.state, alert.state),
            style="bold" if alert.state == "unread" else "",
        )
        if alert.state_at is not None and alert.state != "unread":
            age = ago(self.clock.now() - alert.state_at)
            text.append(" just now" if age == "now" else f" {age} ago", style="dim")
        return text

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "set_state" and parameters:
            return self.alert.id is not None and self.alert.state in MOVES_FROM.get(
                str(parameters[0]), ()
            )
        return True

    def action_set_state(self, state: str) -> None:
        self._set_state(self.alert, state)

    @work(group="alert-state")
    async def _set_state(self, alert: AlertView, state: str) -> None:
        changed = await set_alert_state(self.node, alert, state, self.app.notify, self.peer_name)
        self._follow(changed)  # at once; the node's event then repeats it harmlessly

    def apply_events(self, events: tuple[NodeEvent, ...]) -> None:
        for event in events:
            if isinstance(event, AlertStateChanged):
                self._follow(event.alerts)

    def _follow(self, changed: tuple[AlertView, ...] | list[AlertView]) -> None:
        for alert in changed:
            if alert.id is not None and alert.id == self.alert.id:
                self.alert = alert
                self.query_one("#alert-facts", Static).update(self._facts())
                self.refresh_bindings()

    def action_close(self) -> None:
        self.dismiss(None)

"""The threat panel: what the local security monitor has seen lately.

A sparkline of recent anomaly scores, counts per alert kind, and the newest
alerts with severity colours, kind, who (the peer, or the address of one that never
proved a key) and age. The border title says the
monitor's mode (models loaded, or rules only), so a degraded monitor is
visible rather than silent. Choosing an alert posts `AlertChosen`.

Unread alerts are marked ● and bold; acknowledged ones are dimmed with a ✓.
Dismissed alerts and false alarms leave the panel (the dashboard keeps them).
On the highlighted alert, `a` acknowledges, `d` dismisses and `f` marks a false
alarm: the panel posts `ActionRequested` and the screen asks the node; the
node's `AlertStateChanged` then updates the panel (`update_states`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Sparkline, Static
from textual.widgets.option_list import Option

from p2pmsg.node.api import AlertState, AlertView, MonitorStatus
from p2pmsg.ui.palette import MUTED, SEVERITY_STYLE
from p2pmsg.ui.safe_text import clip, literal_content
from p2pmsg.ui.timefmt import Clock, ago

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
SEVERITY_TAG = {"low": "LOW ", "medium": "MED ", "high": "HIGH", "critical": "CRIT"}
MAX_ALERTS = 100
SHORT_KIND = {"integrity_violation": "integrity", "brute_force": "brute-force"}
#: What the panel lists: alerts not put away yet.
SHOWN_STATES: tuple[AlertState, ...] = ("unread", "acknowledged")
#: The lifecycle keys of the panel and the dashboard: key, action, footer label, state.
ALERT_KEYS = (
    ("a", "acknowledge", "Acknowledge", "acknowledged"),
    ("d", "dismiss", "Dismiss", "dismissed"),
    ("f", "false_alarm", "False alarm", "false_alarm"),
)


def alert_label(alert: AlertView, peer_name: str, now: float, width: int = 36) -> Content:
    kind_width = 13 if width >= 36 else 9
    kind = SHORT_KIND.get(alert.kind, alert.kind)
    peer_width = max(width - kind_width - 12, 4)
    seen = alert.state != "unread"
    return Content.assemble(
        ("✓ ", MUTED) if seen else ("● ", "bold $text-accent"),
        (
            SEVERITY_TAG.get(alert.severity, "????"),
            MUTED if seen else SEVERITY_STYLE.get(alert.severity, ""),
        ),
        (f" {kind:<{kind_width}.{kind_width}}", MUTED if seen else "bold"),
        " ",
        literal_content(clip(peer_name, peer_width), MUTED if seen else ""),
        (f" {ago(now - alert.ts)}", MUTED),
    )


def unread_title(base: str, unread: int) -> str:
    """A screen title with the unread-alert count, for the header."""
    if unread <= 0:
        return base
    return f"{base} · ⚠ {unread} unread alert{'s' if unread != 1 else ''}"


def mode_label(status: MonitorStatus) -> str:
    return "models" if status.mode == "models" else "rules only"


class ThreatPanel(Vertical):
    """Recent alerts, counts and the anomaly-score trend."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key, f"set_state('{state}')", label) for key, _, label, state in ALERT_KEYS
    ]

    class AlertChosen(Message):
        def __init__(self, alert: AlertView) -> None:
            super().__init__()
            self.alert = alert

    class ActionRequested(Message):
        """The user asked to move `alert` to `state` (acknowledged, dismissed, false_alarm)."""

        def __init__(self, alert: AlertView, state: str) -> None:
            super().__init__()
            self.alert = alert
            self.state = state

    def __init__(
        self, clock: Clock, peer_name: Callable[[str | None], str], *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._peer_name = peer_name
        self._alerts: list[AlertView] = []
        self._status = MonitorStatus(mode="rules-only: starting")
        self.border_title = "Threats"

    def compose(self) -> ComposeResult:
        yield Sparkline([], id="scores")
        yield Static(id="threat-counts")
        yield OptionList(id="alerts")

    def on_mount(self) -> None:
        self.set_interval(5.0, self._refresh_ages)
        self._render_all()

    def on_resize(self) -> None:
        self._refresh_ages()

    def source_of(self, alert: AlertView) -> str:
        """Who the alert is about: the peer's name once it proved a key, else the address
        it came from (a brute force or a flood before any handshake), never a bare "-"."""
        if alert.peer:
            return self._peer_name(alert.peer)
        return alert.addr or "-"

    @property
    def alerts(self) -> list[AlertView]:
        return list(self._alerts)

    def set_status(self, status: MonitorStatus) -> None:
        self._status = status
        scores = list(status.recent_scores[-60:])
        spark = self.query_one("#scores", Sparkline)
        spark.data = scores
        # A sparkline scales to its own min..max, so fewer than two scores would draw
        # as a solid bar that reads as "maximum anomaly": show nothing until there are two.
        spark.display = len(scores) >= 2
        self.border_title = f"Threats · {mode_label(status)}"
        self.border_subtitle = ""
        self.tooltip = status.mode

    def set_alerts(self, alerts: list[AlertView]) -> None:
        self._alerts = _shown(alerts)
        self._render_all()

    def add_alerts(self, alerts: list[AlertView]) -> None:
        self._alerts = _shown(self._alerts + alerts)
        self._render_all()

    def update_states(self, changed: Iterable[AlertView]) -> None:
        """Alerts whose state changed: acknowledged ones restyle, put-away ones leave."""
        by_id: dict[int | None, AlertView] = {a.id: a for a in changed if a.id is not None}
        if not any(a.id in by_id for a in self._alerts):
            return
        self._alerts = _shown([by_id.get(a.id, a) for a in self._alerts])
        self._render_all()

    @property
    def highlighted_alert(self) -> AlertView | None:
        index = self.query_one("#alerts", OptionList).highlighted
        if index is None or not 0 <= index < len(self._alerts):
            return None
        return self._alerts[index]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "set_state":
            return self.highlighted_alert is not None
        return True

    def action_set_state(self, state: str) -> None:
        alert = self.highlighted_alert
        if alert is not None:
            self.post_message(self.ActionRequested(alert, state))

    def _render_all(self) -> None:
        counts = Counter(alert.kind for alert in self._alerts)
        parts: list[str | tuple[str, str]] = []
        for kind, count in counts.most_common():
            if parts:
                parts.append((" · ", MUTED))
            parts += [kind, (f" {count}", "bold")]
        summary = Content.assemble(*parts) if parts else Content.styled("no alerts", MUTED)
        self.query_one("#threat-counts", Static).update(summary)
        self._refresh_ages()

    def _refresh_ages(self) -> None:
        now = self._clock.now()
        options = self.query_one("#alerts", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options(
            Option(
                alert_label(alert, self.source_of(alert), now, options.size.width or 36),
                id=str(index),
            )
            for index, alert in enumerate(self._alerts)
        )
        if highlighted is not None and highlighted < options.option_count:
            options.highlighted = highlighted

    def on_option_list_option_highlighted(self, _event: OptionList.OptionHighlighted) -> None:
        self.refresh_bindings()  # the lifecycle keys show once an alert is highlighted

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.AlertChosen(self._alerts[int(event.option.id)]))


def _shown(alerts: list[AlertView]) -> list[AlertView]:
    return sorted((a for a in alerts if a.state in SHOWN_STATES), key=lambda a: a.ts, reverse=True)[
        :MAX_ALERTS
    ]

"""Security dashboard: alerts, raw security events, trends and the model card.

It belongs to whoever unlocked the profile: no second password (a separate
"admin" login would protect nothing the profile password does not already).
Data comes from the node in workers and then follows the live event stream.
The alerts table lists every state (dismissed ones and false alarms too, which
the threat panel drops); `a`, `d` and `f` act on the row under the cursor, and
the header and the Trends tab count unread alerts and false alarms.

Keys: the alerts table has the focus when the screen opens, and again after each
tab key. The tabs are on 1..4 wherever the focus is not in a filter box: there a
digit is text (the filter may be "2026" or "10.0.0.2"), so the footer then offers
escape, back to the tab's table, instead. (alt+digit cannot serve: Textual reads
the ESC-digit that terminals send for it as a macOS Option character, e.g. "£".)
`/` goes to the tab's filter box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

from rich.style import Style as RichStyle
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import (
    AlertCounts,
    AlertRaised,
    AlertStateChanged,
    AlertView,
    MonitorChanged,
    MonitorStatus,
    NodeAPI,
    NodeEvent,
    SecurityEventLogged,
)
from p2pmsg.ui.alert_actions import set_alert_state
from p2pmsg.ui.model_card import load_model_card, render_model_card
from p2pmsg.ui.palette import MUTED, OK, SEVERITY_STYLE, WARN, rich_style
from p2pmsg.ui.safe_text import clip, literal, printable
from p2pmsg.ui.timefmt import Clock, ago
from p2pmsg.ui.widgets.score_chart import ScoreChart
from p2pmsg.ui.widgets.threat_panel import ALERT_KEYS, SEVERITY_RANK, unread_title

BUCKETS = 6
#: The tabs in order: id, label. Digit N shows the Nth.
TABS = (("alerts", "Alerts"), ("events", "Events"), ("trends", "Trends"), ("model", "Model card"))
#: What has the focus on each tab when it is shown by its key.
TAB_FOCUS = {
    "alerts": "#alert-table",
    "events": "#event-table",
    "trends": "#trends-scroll",
    "model": "#model-scroll",
}
FILTERS = {"alerts": "#alert-filter", "events": "#event-filter"}
SEVERITIES = ("low", "medium", "high", "critical")
#: How each lifecycle state reads in the table, and its style: unread stands out.
STATE_CELL = {
    "unread": ("unread", "bold $text-accent"),
    "acknowledged": ("seen", ""),
    "dismissed": ("dismissed", MUTED),
    "false_alarm": ("false alarm", MUTED),
}


def counts_line(counts: AlertCounts) -> str:
    return (
        f"alerts: {counts.unread} unread · {counts.acknowledged} acknowledged · "
        f"{counts.dismissed} dismissed · {counts.false_alarm} marked false alarm"
    )


def bucket_counts(
    items: list[tuple[float, str]], now: float, buckets: int = BUCKETS
) -> tuple[list[str], dict[str, list[int]]]:
    """Count (ts, key) pairs per key in equal time buckets ending now."""
    if not items:
        return [], {}
    oldest = min(ts for ts, _ in items)
    span = max(now - oldest, 3600.0)
    width = span / buckets
    labels = [f"-{ago(span - i * width)}" for i in range(buckets)]
    counts: dict[str, list[int]] = {}
    for ts, key in items:
        index = min(int((ts - (now - span)) / width), buckets - 1)
        counts.setdefault(key, [0] * buckets)[max(index, 0)] += 1
    return labels, counts


def detail_text(detail: object) -> str:
    """An event's detail as `key: value` pairs (`count: 1 · new: 1`), nested ones
    dotted (`frame.kind: hello`); every part made printable (peers' text is in it)."""
    if not isinstance(detail, dict):
        return printable(str(detail)) if detail not in (None, "") else ""
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict) and value:
            parts += [f"{printable(str(key))}.{part}" for part in detail_text(value).split(" · ")]
        elif isinstance(value, (list, tuple)):
            parts.append(f"{printable(str(key))}: {', '.join(printable(str(v)) for v in value)}")
        else:
            parts.append(f"{printable(str(key))}: {printable(str(value))}")
    return " · ".join(parts)


def counts_table(title: str, labels: list[str], counts: dict[str, list[int]]) -> Table:
    table = Table(title=title, title_justify="left", expand=True, box=None)
    table.add_column(title.split()[-1], no_wrap=True)
    for label in labels:
        table.add_column(label, justify="right")
    table.add_column("total", justify="right", style="bold")
    for key, row in sorted(counts.items(), key=lambda kv: -sum(kv[1])):
        table.add_row(literal(clip(key, 20)), *[str(v) if v else "·" for v in row], str(sum(row)))
    return table


def anomaly_threshold(manifest: dict[str, Any] | None) -> float | None:
    """The trained anomaly threshold a model card states, if it states a number."""
    value = (manifest or {}).get("anomaly_threshold")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def last_column_room(table: DataTable[Any], most: int, least: int = 8) -> int:
    """How many cells the last column can have without the table scrolling sideways
    (the other columns as wide as the rows they hold now need), within [least, most]."""
    columns = list(table.columns.values())[:-1]
    used = sum(c.get_render_width(table) for c in columns) + 2 * table.cell_padding
    room = table.scrollable_content_region.width - used  # (which excludes a scrollbar)
    return max(least, min(most, room))


class DashboardScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        # Escape: out of a filter box first (the first enabled binding of a key wins).
        Binding("escape", "to_table", "Table"),
        Binding("escape", "back", "Back"),
        Binding("f2", "app.pop_screen", "Back", show=False),
        Binding("f1", "help", "Help", show=False),
        # One footer entry stands for the four (the footer has no room for four).
        Binding("1", "tab('alerts')", "Tabs", key_display="1…4"),
        *(
            Binding(str(n), f"tab('{tab}')", label, show=False)
            for n, (tab, label) in enumerate(TABS[1:], start=2)
        ),
        Binding("slash", "filter", "Filter"),
        Binding("r", "reload", "Reload", show=False),
        *(Binding(key, f"set_state('{state}')", label) for key, _, label, state in ALERT_KEYS),
    ]
    AUTO_FOCUS = "#alert-table"

    def __init__(self, node: NodeAPI, clock: Clock, peer_name: Callable[[str | None], str]) -> None:
        super().__init__()
        self.node = node
        self.clock = clock
        self.peer_name = peer_name
        self.alerts: list[AlertView] = []
        self._alert_rows: dict[str, AlertView] = {}  # table row key -> the alert it shows
        self.events: list[dict[str, Any]] = []
        self.status = MonitorStatus(mode="rules-only: loading")
        self.counts = AlertCounts()
        self._alert_columns: tuple[str, ...] = ()
        # The trained anomaly threshold, from the model card (the manifest the monitor
        # loads: one search order, p2pmsg.monitor.model); None until read, or without one.
        self.threshold: float | None = None

    def compose(self) -> ComposeResult:
        yield Header(icon="⛨")
        with TabbedContent(id="dash-tabs"):
            with TabPane("Alerts", id="alerts"):
                with Horizontal(classes="filters"):
                    yield Input(placeholder="filter alerts", id="alert-filter")
                    yield Select(
                        [(f"{s}+", s) for s in SEVERITIES],
                        prompt="any severity",
                        id="alert-severity",
                    )
                yield DataTable(id="alert-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Events", id="events"):
                with Horizontal(classes="filters"):
                    yield Input(placeholder="filter events", id="event-filter")
                    yield Select([], prompt="any event", id="event-kind")
                yield DataTable(id="event-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Trends", id="trends"), VerticalScroll(id="trends-scroll"):
                yield Static(id="monitor-mode")
                yield Static(id="alert-counts")
                yield Static(id="score-caption")
                yield ScoreChart(id="dash-scores")
                yield Static(id="score-range")
                yield Static(id="kind-counts")
                yield Static(id="peer-counts")
            with TabPane("Model card", id="model"), VerticalScroll(id="model-scroll"):
                yield Static(Text("loading…", style="dim"), id="model-card")
        # Compact: the alert keys and the tab keys fit in 80 columns.
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Security dashboard"
        self.sub_title = "local monitor of this profile"
        events = self.query_one("#event-table", DataTable)
        events.add_columns("time", "event", "peer", "address", "bytes", "detail")
        self.action_reload()
        self._load_model_card()

    def on_resize(self) -> None:
        # The message and detail columns are clipped to the width there is (the whole
        # text is one Enter away): refill once the new width is laid out.
        self.call_after_refresh(self._refill)

    def _refill(self) -> None:
        self._fill_alerts()
        self._fill_events()

    def action_tab(self, tab: str) -> None:
        """Show the tab and give its table (or its page) the focus, so the arrows and
        the alert keys work at once."""
        self.query_one(TabbedContent).active = tab
        self.query_one(TAB_FOCUS[tab], Widget).focus()

    def action_help(self) -> None:
        from p2pmsg.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_filter(self) -> None:
        tab = self.query_one(TabbedContent).active
        if tab in FILTERS:
            self.query_one(FILTERS[tab], Input).focus()

    def _in_filter(self) -> bool:
        """Whether the focus is in a filter row (its text box or its choice)."""
        return isinstance(self.focused, (Input, Select))

    def action_to_table(self) -> None:
        """From a filter box (or the severity / kind choice) back to the tab's table,
        keeping what was typed."""
        self.query_one(TAB_FOCUS[self.query_one(TabbedContent).active], Widget).focus()

    def action_back(self) -> None:
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "to_table":
            return self._in_filter()
        if action in ("back", "tab"):  # in a filter, escape and digits are the box's
            return not self._in_filter()
        if action == "filter":
            try:
                return self.query_one(TabbedContent).active in FILTERS and not self._in_filter()
            except NoMatches:
                return False
        if action == "set_state":  # on the alerts tab, with an alert under the cursor
            try:
                tabs = self.query_one(TabbedContent)
                table = self.query_one("#alert-table", DataTable)
            except NoMatches:  # not composed yet
                return False
            return tabs.active == "alerts" and self._current_alert(table) is not None
        return True

    @on(TabbedContent.TabActivated)
    def _tab_shown(self) -> None:
        self.refresh_bindings()
        # A hidden tab's table has no width, so its last column was clipped to the least:
        # refill once the shown one is laid out.
        self.call_after_refresh(self._refill)

    @on(DataTable.RowHighlighted, "#alert-table")
    def _bindings_changed(self) -> None:
        self.refresh_bindings()

    def action_set_state(self, state: str) -> None:
        alert = self._current_alert(self.query_one("#alert-table", DataTable))
        if alert is not None:
            self._set_state(alert, state)

    @work(group="alert-state")
    async def _set_state(self, alert: AlertView, state: str) -> None:
        # The node's AlertStateChanged refreshes the table.
        await set_alert_state(self.node, alert, state, self.notify, self.peer_name(alert.peer))

    @work(exclusive=True, group="dash-load")
    async def action_reload(self) -> None:
        try:
            self.alerts = await self.node.alerts(500)
            self.events = await self.node.security_events(1000)
            self.status = await self.node.monitor_status()
            self.counts = await self.node.alert_counts()
        except P2PMsgError as exc:
            self.notify(str(exc), title="Dashboard", severity="error", markup=False)
            return
        kinds = sorted({str(e.get("event", "?")) for e in self.events})
        self.query_one("#event-kind", Select).set_options([(k, k) for k in kinds])
        self._refresh_all()

    def _load_model_card(self) -> None:
        self._build_model_card(
            rich_style(self.app, f"bold {WARN}"), rich_style(self.app, "bold $text-accent")
        )

    @work(thread=True, exclusive=True, group="model-card")
    def _build_model_card(self, warn: RichStyle, key: RichStyle) -> None:
        manifest, source = load_model_card()
        renderable = (
            render_model_card(manifest, source, key)
            if manifest is not None
            else Text(printable(source), style=warn)
        )
        self.app.call_from_thread(self.query_one("#model-card", Static).update, renderable)
        self.app.call_from_thread(self._set_threshold, anomaly_threshold(manifest))

    def _set_threshold(self, threshold: float | None) -> None:
        self.threshold = threshold
        self._fill_trends()

    def apply_events(self, events: tuple[NodeEvent, ...]) -> None:
        changed = False
        for event in events:
            if isinstance(event, AlertRaised):
                self.alerts.insert(0, event.alert)
                self.counts = replace(self.counts, unread=self.counts.unread + 1)
                changed = True
            elif isinstance(event, AlertStateChanged):
                by_id = {a.id: a for a in event.alerts}
                self.alerts = [by_id.get(a.id, a) for a in self.alerts]
                self.counts = event.counts
                changed = True
            elif isinstance(event, SecurityEventLogged):
                self.events.insert(0, dict(event.record))
                changed = True
            elif isinstance(event, MonitorChanged):
                self.status = event.status
                changed = True
        if changed:
            del self.events[2000:]
            self._refresh_all()

    @on(Input.Changed)
    @on(Select.Changed)
    def _refresh_all(self) -> None:
        self._fill_alerts()
        self._fill_events()
        self._fill_trends()
        self.title = unread_title("Security dashboard", self.counts.unread)
        false = self.counts.false_alarm
        self.sub_title = "local monitor of this profile" + (
            f" · {false} false alarm{'s' if false != 1 else ''}" if false else ""
        )

    @on(DataTable.RowSelected, "#alert-table")
    def _alert_selected(self, event: DataTable.RowSelected) -> None:
        """Enter or a click on an alert row: the same details view as the threat panel."""
        from p2pmsg.ui.screens.alert_detail import AlertDetailScreen

        alert = self._alert_rows.get(str(event.row_key.value))
        if alert is not None:
            self.app.push_screen(
                AlertDetailScreen(alert, self.peer_name(alert.peer), self.clock, self.node)
            )

    def _fill_alerts(self) -> None:
        table = self.query_one("#alert-table", DataTable)
        needle = self.query_one("#alert-filter", Input).value.casefold()
        minimum = self.query_one("#alert-severity", Select).value
        floor = SEVERITY_RANK.get(minimum, 0) if isinstance(minimum, str) else 0
        # Live alerts refill the table; keep the cursor on the alert the user was on.
        current = self._current_alert(table)
        wide = self._set_alert_columns(table)
        room = last_column_room(table, 80)
        self._alert_rows = {}
        for alert in sorted(self.alerts, key=lambda a: a.ts, reverse=True):
            if SEVERITY_RANK.get(alert.severity, 0) < floor:
                continue
            peer = self.peer_name(alert.peer)
            haystack = (
                f"{alert.kind} {peer} {alert.source} {alert.message} {alert.state}".casefold()
            )
            if needle and needle not in haystack:
                continue
            key = str(len(self._alert_rows))
            self._alert_rows[key] = alert
            state, state_style = STATE_CELL.get(alert.state, (alert.state, ""))
            table.add_row(
                Text(self.clock.stamp(alert.ts)),
                Content.styled(state, state_style),
                Content.styled(alert.severity, SEVERITY_STYLE.get(alert.severity, "")),
                Text(alert.kind),
                literal(clip(peer, 16)),
                *((literal(alert.source), Text(f"{alert.score:.2f}")) if wide else ()),
                literal(clip(alert.message, room)),
                key=key,
            )
            if _same_alert(alert, current):
                table.move_cursor(row=table.row_count - 1, animate=False)
        self.query_one(TabbedContent).get_tab("alerts").label = f"Alerts ({table.row_count})"

    def _set_alert_columns(self, table: DataTable[Any]) -> bool:
        """Empty the table, with its columns for this width: below 100 cells, source and
        score (both in the details, Enter) make room for the state and the message.
        Returns whether the wide set is shown."""
        # The table spans the screen, and the screen's width is known before its layout.
        wide = (table.size.width or self.app.size.width) >= 100
        columns: tuple[str, ...] = ("time", "state", "severity", "kind", "peer")
        columns += ("source", "score", "message") if wide else ("message",)
        if columns == self._alert_columns:
            table.clear()
            return wide
        table.clear(columns=True)
        for name in columns:
            # Styled `Content` cells do not widen their column: room for "false alarm".
            width = max(len(text) for text, _ in STATE_CELL.values()) if name == "state" else None
            table.add_column(name, width=width)
        self._alert_columns = columns
        return wide

    def _current_alert(self, table: DataTable[Any]) -> AlertView | None:
        if not table.row_count or not table.is_valid_row_index(table.cursor_row):
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self._alert_rows.get(str(key.value))

    def _fill_events(self) -> None:
        table = self.query_one("#event-table", DataTable)
        needle = self.query_one("#event-filter", Input).value.casefold()
        kind = self.query_one("#event-kind", Select).value
        table.clear()
        room = last_column_room(table, 60)
        for record in self.events[:1000]:
            name = str(record.get("event", "?"))
            if isinstance(kind, str) and name != kind:
                continue
            peer = record.get("peer")
            peer_text = self.peer_name(peer) if isinstance(peer, str) else "-"
            detail = detail_text(record.get("detail"))
            haystack = f"{name} {peer_text} {record.get('addr')} {detail}".casefold()
            if needle and needle not in haystack:
                continue
            ts = record.get("ts")
            table.add_row(
                Text(self.clock.stamp(ts) if isinstance(ts, (int, float)) else "?"),
                Text(name),
                literal(clip(peer_text, 16)),
                literal(str(record.get("addr") or "-")),
                Text(str(record.get("bytes", 0))),
                literal(clip(detail, room)),
            )
        self.query_one(TabbedContent).get_tab("events").label = f"Events ({table.row_count})"

    def _fill_trends(self) -> None:
        now = self.clock.now()
        mode = Content.assemble(
            ("monitor: ", "dim"),
            (printable(self.status.mode), f"bold {OK if self.status.mode == 'models' else WARN}"),
        )
        self.query_one("#monitor-mode", Static).update(mode)
        self.query_one("#alert-counts", Static).update(Text(counts_line(self.counts)))
        scores = self.status.recent_scores
        self.query_one("#score-caption", Static).update(
            Text(
                "anomaly score per scored window"
                + (
                    f" · red line: threshold {self.threshold:.2f}"
                    if self.threshold is not None
                    else ""
                ),
                style="dim",
            )
        )
        chart = self.query_one("#dash-scores", ScoreChart)
        chart.set_scores(scores, self.threshold)
        chart.display = bool(scores)
        self.query_one("#score-range", Static).update(
            Text(
                f"{len(scores)} windows · min {min(scores):.2f} · max {max(scores):.2f} · "
                f"latest {scores[-1]:.2f}"
                + (
                    f" · {sum(v > self.threshold for v in scores)} above the threshold"
                    if self.threshold is not None
                    else ""
                ),
                style="dim",
            )
            if scores
            else Text(
                "no windows scored yet (the models score each minute of traffic)", style="dim"
            )
        )
        labels, kinds = bucket_counts([(a.ts, a.kind) for a in self.alerts], now)
        _, peers = bucket_counts([(a.ts, self.peer_name(a.peer)) for a in self.alerts], now)
        empty = Text("no alerts yet", style="dim")
        self.query_one("#kind-counts", Static).update(
            counts_table("Alerts per kind", labels, kinds) if kinds else empty
        )
        self.query_one("#peer-counts", Static).update(
            counts_table("Alerts per peer", labels, peers) if peers else Text("")
        )


def _same_alert(alert: AlertView, other: AlertView | None) -> bool:
    """The same alert, perhaps in a newer state (a state change replaces the view)."""
    return alert is other or (other is not None and alert.id is not None and alert.id == other.id)

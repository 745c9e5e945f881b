"""Rotation status: the selected peer's live session keys, at a glance.

Shows, for each direction, the suite, the epoch, how many messages the
current key has protected against the limit (a bar) and a live countdown to
the time-driven rotation; then the session age, the last fresh key agreement,
a short handshake hash (to compare out of band) and the verification state.
Re-rendered on `SessionChanged` and once a second for the countdowns.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from p2pmsg.node.api import DirectionStatus, SessionStatusView
from p2pmsg.ui.safe_text import clip, literal
from p2pmsg.ui.timefmt import Clock, ago, duration


def usage_bar(used: int, limit: int, width: int) -> Text:
    """A text bar for messages-under-key; turns yellow then red near the limit."""
    fraction = min(used / limit, 1.0) if limit > 0 else 0.0
    filled = round(fraction * width)
    colour = "green" if fraction < 0.75 else "yellow" if fraction < 0.95 else "red"
    bar = Text("█" * filled, style=colour)
    bar.append("░" * (width - filled), style="dim")
    return bar


class RotationPane(Static):
    """Key-rotation status of one session (or a hint when there is none)."""

    session: reactive[SessionStatusView | None] = reactive(None, always_update=True)

    def __init__(self, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._peer_name = ""
        self._offline_reason = "Select a peer to see its session."
        self.plain = ""  # what is shown, as text (tests, screen readers)
        self.border_title = "Session keys"

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def on_resize(self) -> None:
        self._tick()

    def show(self, session: SessionStatusView | None, peer_name: str = "",
             offline_reason: str = "No live session with this peer.") -> None:
        self._peer_name = peer_name
        self._offline_reason = offline_reason
        self.session = session

    def watch_session(self, session: SessionStatusView | None) -> None:
        self.update(self._render_session(session))

    def _tick(self) -> None:
        if self.session is not None:
            self.update(self._render_session(self.session))

    def _render_session(self, session: SessionStatusView | None) -> RenderableType:
        if session is None:
            self.border_subtitle = ""
            self.plain = self._offline_reason
            return Text(self._offline_reason, style="dim italic")
        now = self._clock.now()
        width = max(self.size.width, 12) if self.size.width else 24
        bar_width = max(min(width - 2, 30), 8)
        head = literal(clip(self._peer_name, width - 12), style="bold")
        if session.verified:
            head.append("  ✔ verified", style="bold green")
        else:
            head.append("  ✘ unverified", style="bold yellow")
        parts: list[RenderableType] = [head]
        parts += self._direction("▲", session.send, now, bar_width, width)
        parts += self._direction("▼", session.recv, now, bar_width, width)
        tail = Text("age ", style="dim")
        tail.append(duration(now - session.session_started))
        tail.append(" · fresh DH ", style="dim")
        tail.append(ago(now - session.last_key_agreement))
        tail.append(" ago" if now - session.last_key_agreement >= 5 else "", style="dim")
        parts.append(tail)
        hs = Text("handshake ", style="dim")
        hs.append(session.handshake_hash[:16], style="bold")
        parts.append(hs)
        self.border_subtitle = f"epoch {session.send.epoch}/{session.recv.epoch}"
        self.plain = "\n".join(part.plain for part in parts if isinstance(part, Text))
        return Group(*parts)

    @staticmethod
    def _direction(label: str, status: DirectionStatus, now: float, bar_width: int,
                   width: int) -> list[Text]:
        title = Text(label + " ", style="bold")
        title.append(status.suite, style="cyan")
        title.append(" send" if label == "▲" else " recv", style="dim")
        counts = Text(f"  epoch {status.epoch} · ", style="dim")
        counts.append(f"{status.messages_under_key}/{status.max_messages_per_key}")
        if width >= 26:
            counts.append(" msgs", style="dim")
        bar = Text("  ")
        bar.append_text(usage_bar(status.messages_under_key, status.max_messages_per_key,
                                  bar_width))
        left = status.next_rotation - now
        countdown = Text("  rotates in ", style="dim")
        countdown.append(duration(left) if left > 0 else "due now",
                         style="bold" if left > 60 else "bold yellow")
        return [title, counts, bar, countdown]

"""Rotation status: the selected peer's live session keys, at a glance.

Shows, for each direction, the suite, the epoch, how many messages the
current key has protected against the limit (a bar) and a live countdown to
the time-driven rotation; then the session age, the last fresh key agreement,
a short handshake hash (to compare out of band) and the verification state.
Re-rendered on `SessionChanged` and once a second for the countdowns.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from p2pmsg.node.api import DirectionStatus, SessionStatusView
from p2pmsg.ui.palette import ACCENT, MUTED, OK, WARN
from p2pmsg.ui.safe_text import clip, literal_content
from p2pmsg.ui.timefmt import Clock, ago, duration


def usage_bar(used: int, limit: int, width: int) -> Content:
    """A text bar for messages-under-key; turns to warning then error near the limit."""
    fraction = min(used / limit, 1.0) if limit > 0 else 0.0
    filled = round(fraction * width)
    colour = "$success" if fraction < 0.75 else "$warning" if fraction < 0.95 else "$error"
    return Content.assemble(("█" * filled, colour), ("░" * (width - filled), MUTED))


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

    def show(
        self,
        session: SessionStatusView | None,
        peer_name: str = "",
        offline_reason: str = "No live session with this peer.",
    ) -> None:
        self._peer_name = peer_name
        self._offline_reason = offline_reason
        self.session = session

    def watch_session(self, session: SessionStatusView | None) -> None:
        self.update(self._render_session(session))

    def _tick(self) -> None:
        if self.session is not None:
            self.update(self._render_session(self.session))

    def _render_session(self, session: SessionStatusView | None) -> Content:
        if session is None:
            self.border_subtitle = ""
            self.plain = self._offline_reason
            return Content.styled(self._offline_reason, f"{MUTED} italic")
        now = self._clock.now()
        width = max(self.size.width, 12) if self.size.width else 24
        bar_width = max(min(width - 2, 30), 8)
        head = Content.assemble(
            literal_content(clip(self._peer_name, width - 12), "bold"),
            ("  ✔ verified", f"bold {OK}")
            if session.verified
            else ("  ✘ unverified", f"bold {WARN}"),
        )
        lines = [head]
        lines += self._direction("▲", session.send, now, bar_width, width)
        lines += self._direction("▼", session.recv, now, bar_width, width)
        fresh = now - session.last_key_agreement
        lines.append(
            Content.assemble(
                ("age ", MUTED),
                duration(now - session.session_started),
                (" · fresh DH ", MUTED),
                ago(fresh),
                (" ago" if fresh >= 5 else "", MUTED),
            )
        )
        lines.append(Content.assemble(("handshake ", MUTED), (session.handshake_hash[:16], "bold")))
        self.border_subtitle = f"epoch {session.send.epoch}/{session.recv.epoch}"
        self.plain = "\n".join(line.plain for line in lines)
        return Content("\n").join(lines)

    @staticmethod
    def _direction(
        label: str, status: DirectionStatus, now: float, bar_width: int, width: int
    ) -> list[Content]:
        sending = label == "▲"
        title = Content.assemble(
            (label + " ", "bold"), (status.suite, ACCENT), (" send" if sending else " recv", MUTED)
        )
        if not sending:
            # The peer decides when its sending keys rotate; we only see it happen.
            # Its limit is the peer's setting, not ours, so no bar and no countdown.
            since = now - status.last_rotation
            return [
                title,
                Content.assemble(
                    (f"  epoch {status.epoch} · ", MUTED),
                    f"{status.messages_under_key}",
                    (" msgs" if width >= 26 else "", MUTED),
                ),
                Content.assemble(
                    ("  keyed ", MUTED),
                    ago(since),
                    (" ago" if since >= 5 else "", MUTED),
                    (" · peer rotates" if width >= 34 else "", MUTED),
                ),
            ]
        counts = Content.assemble(
            (f"  epoch {status.epoch} · ", MUTED),
            f"{status.messages_under_key}/{status.max_messages_per_key}",
            (" msgs" if width >= 26 else "", MUTED),
        )
        bar = Content.assemble(
            "  ", usage_bar(status.messages_under_key, status.max_messages_per_key, bar_width)
        )
        left = status.next_rotation - now
        countdown = Content.assemble(
            ("  rotates in ", MUTED),
            (duration(left) if left > 0 else "due now", "bold" if left > 60 else f"bold {WARN}"),
        )
        return [title, counts, bar, countdown]

"""The message composer: one line of text or a slash command.

Slash commands complete as you type (a suggester); the composer itself only
reports what was submitted, the main screen decides what it means. When the
peer's key has changed, the composer is locked and says why, so nothing can be
sent to a possibly impersonated peer by accident.
"""

from __future__ import annotations

from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Input

from p2pmsg.ui.safe_text import printable
from p2pmsg.ui.slash import COMMANDS, SUITES

_SUGGESTIONS = [f"/{spec.name} " if " " in spec.usage else f"/{spec.name}" for spec in COMMANDS]
_SUGGESTIONS += [f"/cipher {suite}" for suite in SUITES] + ["/ttl off", "/ttl 5m", "/ttl 1h"]

MAX_MESSAGE_CHARS = 16_000


class Composer(Input):
    """Single-line input that posts `Composer.Submitted` and clears itself."""

    class Sent(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="Select a peer to start",
            suggester=SuggestFromList(_SUGGESTIONS, case_sensitive=False),
            max_length=MAX_MESSAGE_CHARS,
            id=id,
        )

    def set_target(self, peer_name: str | None, *, blocked_reason: str | None = None) -> None:
        """Point the composer at a conversation, or lock it with a reason."""
        if blocked_reason is not None:
            self.placeholder = blocked_reason
            self.add_class("-blocked")
        elif peer_name is None:
            self.placeholder = "Select a peer to start"
            self.remove_class("-blocked")
        else:
            # The placeholder is plain text (Input does not parse markup in it).
            self.placeholder = f"Message {printable(peer_name)} · /help for commands"
            self.remove_class("-blocked")

    async def action_submit(self) -> None:
        text = self.value
        if not text.strip():
            return
        self.value = ""
        self.post_message(self.Sent(text))

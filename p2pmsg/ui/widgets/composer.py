"""The message composer: text of one or more lines, or a slash command.

Enter sends; ctrl+j (or alt+enter, or shift+enter where the terminal tells it
apart) starts a new line, and pasted text arrives whole, newlines kept. Every
keystroke is handled in the composer's own message queue, in the order typed:
Enter is not a binding (a binding runs only after the key has bubbled up to the
app, by which time keys typed after it may already be in the text, so fast
typing merged or split messages).

Nothing typed is dropped: a text too long to send stays in the composer with a
message saying by how much, and the screen hands back a text it could not send
(`give_back`). Slash commands complete as you type (a ghost suggestion that
right arrow or Tab accepts); `/file` completes paths on Tab. The composer only
reports what was submitted; the main screen decides what it means.
"""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from p2pmsg.protocol.limits import MAX_TEXT_BYTES
from p2pmsg.ui import paths
from p2pmsg.ui.safe_text import printable
from p2pmsg.ui.slash import COMMANDS, GROUP_ACTIONS, SUITES

_SUGGESTIONS = [f"/{spec.name} " if " " in spec.usage else f"/{spec.name}" for spec in COMMANDS]
_SUGGESTIONS += [f"/cipher {suite}" for suite in SUITES] + ["/ttl off", "/ttl 5m", "/ttl 1h"]
_SUGGESTIONS += [f"/group {action}" for action in GROUP_ACTIONS]

#: Keys that start a new line instead of sending. Terminals send ctrl+j for
#: "\n"; most send Enter and shift+enter alike, so ctrl+j is the one to document.
NEWLINE_KEYS = frozenset({"ctrl+j", "alt+enter", "shift+enter", "newline"})


def too_long(text: str) -> str | None:
    """Why `text` cannot be sent as one message, or None if it can."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= MAX_TEXT_BYTES:
        return None
    over = size - MAX_TEXT_BYTES
    return (
        f"Not sent: this message is {size:,} bytes, {over:,} over the limit of "
        f"{MAX_TEXT_BYTES:,} (UTF-8). Shorten it, split it, or send it as a file (/file PATH)."
    )


class Composer(TextArea):
    """Posts `Composer.Sent` with the text on Enter and clears itself."""

    class Sent(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Refused(Message):
        """Enter on a text that cannot be sent; it stays in the composer."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            placeholder="Select a peer to start",
        )

    def set_target(self, peer_name: str | None, *, blocked_reason: str | None = None) -> None:
        """Point the composer at a conversation, or mark it locked with a reason."""
        if blocked_reason is not None:
            self.placeholder = blocked_reason
            self.add_class("-blocked")
        elif peer_name is None:
            self.placeholder = "Select a peer to start"
            self.remove_class("-blocked")
        else:
            self.placeholder = (
                f"Message {printable(peer_name)} · Enter sends, ctrl+j new line, /help"
            )
            self.remove_class("-blocked")

    def set_text(self, text: str) -> None:
        """Replace the text and put the cursor at its end (e.g. "/name ")."""
        self.text = text
        self.move_cursor(self.document.end)

    def give_back(self, text: str) -> None:
        """The screen could not send `text`: put it back, ahead of anything typed since."""
        current = self.text
        self.set_text(text if not current else f"{text}\n{current}")

    def submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        reason = too_long(text)
        if reason is not None:
            self.post_message(self.Refused(reason))
            return
        self.clear()
        self.post_message(self.Sent(text))

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key == "enter":
            event.stop()
            event.prevent_default()
            self.submit()
            return
        if key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if key == "tab" and self._complete():
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    # --- completion ------------------------------------------------------------------

    def update_suggestion(self) -> None:
        """Ghost text for a slash command typed on one line, cursor at its end."""
        text = self.text
        self.suggestion = ""
        if not text.startswith("/") or "\n" in text or self.cursor_location != self.document.end:
            return
        folded = text.casefold()
        for candidate in _SUGGESTIONS:
            if candidate.casefold().startswith(folded) and len(candidate) > len(text):
                self.suggestion = candidate[len(text) :]
                return

    def _complete(self) -> bool:
        """Tab: take the suggestion, or complete a `/file` path. True if it did something."""
        if self.suggestion:
            self.insert(self.suggestion)
            return True
        text = self.text
        if not text.casefold().startswith("/file ") or "\n" in text:
            return False
        if self.cursor_location != self.document.end:
            return False
        completed = paths.complete(text[len("/file ") :])
        if completed is None:
            return False
        self.set_text("/file " + completed)
        return True

"""The one-line search box above a conversation (ctrl+f, or /search TEXT).

Typing marks the matches; Enter or up goes to the next older match, down to the
next newer one; esc closes the search and returns to the composer. The box only
says what the user asked for; the main screen moves the log.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class SearchInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "step(-1)", "Older match", show=False),
        Binding("down", "step(1)", "Newer match", show=False),
        Binding("escape", "close", "Close search", show=False),
    ]

    class Step(Message):
        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    class Closed(Message):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="search this conversation · enter/↑ older · ↓ newer · esc close",
            compact=True,
            id=id,
        )

    def action_step(self, step: int) -> None:
        self.post_message(self.Step(step))

    def action_close(self) -> None:
        self.post_message(self.Closed())

    async def action_submit(self) -> None:
        self.post_message(self.Step(-1))

"""The p2pmsg Textual app: unlock, then the main screen, fed by the node's events.

Thin on purpose: screens and widgets do the work. The app owns the node's
lifetime and the event pump, a worker that consumes `node.subscribe()` and
posts whatever arrived since the last frame as one `NodeEvents` message.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from p2pmsg.errors import P2PMsgError
from p2pmsg.node.api import MonitorChanged, NodeAPI, NodeEvent
from p2pmsg.ui.commands import PeerCommands, main_commands
from p2pmsg.ui.launcher import Launcher
from p2pmsg.ui.messages import NodeEvents, NodeReady
from p2pmsg.ui.screens.confirm_quit import ACTIVE_STATES, ConfirmQuitScreen, describe
from p2pmsg.ui.timefmt import Clock

if TYPE_CHECKING:
    from p2pmsg.ui.screens.main import MainScreen

FRAME_S = 1 / 30  # the pump posts at most one batch per frame


def freeze_long_lived() -> None:
    """Exempt every object alive now from the cyclic garbage collector's walks.

    A full collection walks every tracked object. After start-up (and again once
    the monitor's models are loaded) most of them — modules, classes, Textual's
    and Rich's tables, scikit-learn — live as long as the process, yet each full
    collection during a message flood walked them again: 150-300 ms stalls that
    dominated the key-press p99 (`p2pmsg bench ui`). Frozen objects are still
    freed by reference counting; only reference cycles among them that die
    later are kept, a bounded cost paid once.
    """
    gc.freeze()


class P2PMsgApp(App[None]):
    CSS_PATH = "p2pmsg.tcss"
    TITLE = "p2pmsg"
    COMMANDS = App.COMMANDS | {PeerCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (70, "-narrow"), (110, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        launcher: Launcher | None = None,
        *,
        node: NodeAPI | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        if launcher is None and node is None:
            raise ValueError("P2PMsgApp needs a launcher or a started node")
        self.launcher = launcher
        self.node: NodeAPI | None = None
        self._preset_node = node
        self.clock = clock or Clock()
        self.main_screen: MainScreen | None = None
        self._models_frozen = False

    def on_mount(self) -> None:
        if self._preset_node is not None:
            self._begin(self._preset_node)
        else:
            from p2pmsg.ui.screens.unlock import UnlockScreen

            assert self.launcher is not None
            self.push_screen(UnlockScreen(self.launcher))

    def on_node_ready(self, message: NodeReady) -> None:
        self._begin(message.node)

    def _begin(self, node: NodeAPI) -> None:
        from p2pmsg.ui.screens.main import MainScreen

        self.node = node
        main = self.main_screen = MainScreen(node, self.clock)
        if len(self.screen_stack) > 1:
            self.switch_screen(main)
        else:
            self.push_screen(main)
        self.run_worker(self._pump(node), group="event-pump", exclusive=True)
        self.run_worker(self._restore_theme(node), group="theme")
        self.call_after_refresh(freeze_long_lived)

    async def _restore_theme(self, node: NodeAPI) -> None:
        """The theme last chosen for this profile (a theme since removed is ignored)."""
        try:
            theme = (await node.get_settings()).get("theme")
        except P2PMsgError:
            return
        if isinstance(theme, str) and theme in self.available_themes:
            self.theme = theme

    def watch_theme(self, theme: str) -> None:
        """Remember a theme picked in the palette, for the next start."""
        node = self.node
        if node is None:
            return

        async def save() -> None:
            with contextlib.suppress(P2PMsgError):
                await node.update_settings(theme=theme)

        self.run_worker(save(), group="theme-save", exclusive=True)

    async def _pump(self, node: NodeAPI) -> None:
        """Forward node events as batched messages; never blocks the UI."""
        pending: list[NodeEvent] = []
        arrived = asyncio.Event()

        async def read() -> None:
            async for event in node.subscribe():
                pending.append(event)
                arrived.set()

        reader = asyncio.create_task(read())
        try:
            while True:
                waiter = asyncio.create_task(arrived.wait())
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                arrived.clear()
                if pending:
                    batch = tuple(pending)
                    pending.clear()
                    self.post_message(NodeEvents(batch))
                    await asyncio.sleep(FRAME_S)
                elif reader.done():
                    break
        finally:
            reader.cancel()

    def on_node_events(self, message: NodeEvents) -> None:
        if not self._models_frozen and any(
            isinstance(e, MonitorChanged) and e.status.mode == "models" for e in message.events
        ):
            self._models_frozen = True
            freeze_long_lived()  # scikit-learn and the models are here for good
        for screen in self.screen_stack:
            apply = getattr(screen, "apply_events", None)
            if apply is not None:
                apply(message.events)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.main_screen is not None:
            yield from main_commands(self.main_screen)

    async def action_quit(self) -> None:
        """Quit; while files are moving, ask first (a second ctrl+q quits anyway)."""
        if not isinstance(self.screen, ConfirmQuitScreen):
            moving = await self._moving_transfers()
            if moving:
                self.push_screen(ConfirmQuitScreen(moving), self._quit_if_confirmed)
                return
        await self.stop_node()
        self.exit()

    async def _quit_if_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            await self.stop_node()
            self.exit()

    async def _moving_transfers(self) -> list[str]:
        if self.node is None or self.main_screen is None:
            return []
        try:
            transfers = await self.node.transfers()
        except P2PMsgError:
            return []  # cannot tell: do not stand between the user and the exit
        main = self.main_screen
        return [describe(t, main.peer_name(t.peer)) for t in transfers if t.state in ACTIVE_STATES]

    async def stop_node(self) -> None:
        node, self.node = self.node, None
        if node is not None:
            try:
                await asyncio.wait_for(node.stop(), timeout=5)
            except Exception as exc:
                self.log.error(f"node did not stop cleanly: {exc!r}")

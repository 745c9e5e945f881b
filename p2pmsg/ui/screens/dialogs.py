"""The screens the main screen opens over itself: help, the security dashboard,
settings, verify, pairing, the decision about a flagged key and an alert's detail.

`MainDialogs` belongs to `MainScreen` and sees it only through `DialogHost`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from textual.notifications import SeverityLevel
from textual.screen import Screen

from p2pmsg.node.api import AlertView, NodeAPI, PeerView
from p2pmsg.ui.timefmt import Clock
from p2pmsg.ui.widgets.peer_list import PeerList

ResultT = TypeVar("ResultT")


class DialogHost(Protocol):
    """What the dialogs need of the main screen."""

    @property
    def selected(self) -> str | None: ...

    @property
    def peer_list(self) -> PeerList: ...

    def peer(self, fingerprint: str | None) -> PeerView | None: ...

    def peer_name(self, fingerprint: str | None) -> str: ...

    def open_conversation(self, fingerprint: str) -> None: ...

    def reload_peers(self) -> None: ...

    def settings_saved(self, values: dict[str, Any] | None) -> None: ...

    def notify(self, message: str, *, severity: SeverityLevel = "information") -> None: ...

    def push_screen(
        self,
        screen: Screen[ResultT],
        callback: Callable[[ResultT | None], None] | None = None,
    ) -> None: ...


class MainDialogs:
    """Opens each screen for the selected peer (or says to pick one first), and has the
    main screen catch up with what was decided there."""

    def __init__(self, node: NodeAPI, clock: Clock, host: DialogHost) -> None:
        self._node = node
        self._clock = clock
        self._host = host
        self._key_prompted: set[str] = set()  # flagged keys already asked about

    def help(self) -> None:
        from p2pmsg.ui.screens.help import HelpScreen

        self._host.push_screen(HelpScreen())

    def dashboard(self) -> None:
        from p2pmsg.ui.screens.dashboard import DashboardScreen

        self._host.push_screen(DashboardScreen(self._node, self._clock, self._host.peer_name))

    def settings(self) -> None:
        from p2pmsg.ui.screens.settings import SettingsScreen

        self._host.push_screen(SettingsScreen(self._node), self._host.settings_saved)

    def verify(self) -> None:
        """F3: a flagged key gets the decision screen, any other key the verify screen."""
        from p2pmsg.ui.screens.verify import VerifyScreen

        peer = self._host.peer(self._host.selected)
        if peer is None:
            self._host.notify("Pick a peer to verify first.", severity="warning")
            return
        if peer.state == "flagged":
            self.prompt_key_decision(peer.fingerprint, again=True)
            return
        self._host.push_screen(VerifyScreen(self._node, peer), self._after_verify)

    def pair(self, code: str = "") -> None:
        """Pair by a short code with the selected peer: show one, or enter theirs."""
        from p2pmsg.ui.screens.pairing import PairingScreen

        peer = self._host.peer(self._host.selected)
        if peer is None:
            self._host.notify("Pick a peer to pair with first.", severity="warning")
            return
        self._host.push_screen(PairingScreen(self._node, peer, code), self._after_verify)

    def _after_verify(self, verified: bool | None) -> None:
        self._host.reload_peers()

    def ask_again(self, fingerprint: str) -> None:
        """The key was flagged (again): its next prompt shows even if one was shown."""
        self._key_prompted.discard(fingerprint)

    def prompt_key_decision(self, fingerprint: str, *, again: bool = False) -> None:
        """The decision screen for a flagged key, once per flag (`again`: on F3, or when
        the user tries to send to it)."""
        from p2pmsg.ui.screens.key_decision import KeyDecisionScreen

        if again:
            self.ask_again(fingerprint)
        if fingerprint in self._key_prompted:
            return
        peer = self._host.peer(fingerprint)
        if peer is None or peer.state != "flagged":
            return
        self._key_prompted.add(fingerprint)
        contact = self._host.peer(peer.clash_with)

        def decided(outcome: str | None) -> None:
            if outcome == "changed" and peer.clash_with is not None:
                # The contact (and its conversation) is now on this key.
                self._host.peer_list.discard(peer.clash_with)
                self._host.open_conversation(fingerprint)
            self._host.reload_peers()

        self._host.push_screen(KeyDecisionScreen(self._node, peer, contact), decided)

    def alert_detail(self, alert: AlertView) -> None:
        from p2pmsg.ui.screens.alert_detail import AlertDetailScreen

        self._host.push_screen(
            AlertDetailScreen(alert, self._host.peer_name(alert.peer), self._clock, self._node)
        )

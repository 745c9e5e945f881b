"""Command palette entries: every action, and one entry per peer.

Static actions are `SystemCommand`s (their titles are our own strings). Peer
entries need their own provider: the stock one parses titles as markup, and
peer names are untrusted, so here the title is plain `Content` and the fuzzy
match is highlighted on it by offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from p2pmsg.ui.safe_text import printable
from p2pmsg.ui.slash import SUITES

if TYPE_CHECKING:
    from p2pmsg.ui.screens.main import MainScreen


def main_commands(main: MainScreen) -> Iterator[SystemCommand]:
    """The main screen's actions, for `App.get_system_commands`."""
    entries: list[tuple[str, str, Callable[[], object]]] = [
        (
            "Security dashboard",
            "Alerts, security events, trends, model card (F2)",
            main.action_dashboard,
        ),
        (
            "Verify peer",
            "Compare safety numbers with the selected peer, or decide about a flagged key (F3)",
            main.action_verify,
        ),
        (
            "Pair by code",
            "Verify the selected peer with a short code, shown or typed (/pair)",
            main.dialogs.pair,
        ),
        ("Rename peer", "Your own name for the selected peer (ctrl+r, /name)", main.action_rename),
        (
            "Block peer",
            "Refuse the selected peer's key from now on (/block)",
            partial(main.commands.run_slash, _slash("block")),
        ),
        (
            "Unblock peer",
            "Allow a blocked key again (/unblock)",
            partial(main.commands.run_slash, _slash("unblock")),
        ),
        (
            "Settings",
            "Rotation, messages per key, cipher, downloads, disappearing timer (F4)",
            main.action_settings,
        ),
        ("Rotate keys now", "Move the selected session to a fresh key (F5)", main.action_rotate),
        (
            "Fresh key agreement",
            "Run a new X25519 exchange with the selected peer",
            partial(main.commands.run_slash, _slash("rekey")),
        ),
        (
            "Accept file offer",
            "Accept the newest file offer in this conversation",
            main.commands.accept_latest_offer,
        ),
        ("Help", "Keys, slash commands and marks (F1)", main.action_help),
        (
            "Panes",
            "Step through the panes that fit this width: peers, keys, threats (F6)",
            main.action_cycle_panes,
        ),
        ("Next peer", "Open the next conversation (ctrl+n)", partial(main.action_next_peer, 1)),
        (
            "Disappearing messages off",
            "No timer in this conversation",
            partial(main.commands.run_slash, _slash("ttl", arg="off")),
        ),
    ]
    for suite in SUITES:
        entries.append(
            (
                f"Cipher: {suite}",
                f"Send with {suite} from the next epoch",
                partial(main.commands.set_suite, suite),
            )
        )
    for ttl_label, seconds in (("5 minutes", 300.0), ("1 hour", 3600.0), ("1 day", 86400.0)):
        entries.append(
            (
                f"Disappearing messages: {ttl_label}",
                "Messages in this conversation are deleted after being read",
                partial(main.commands.run_slash, _slash("ttl", arg=ttl_label, ttl=seconds)),
            )
        )
    for title, help_text, callback in entries:
        yield SystemCommand(title, help_text, callback)


def _slash(name: str, arg: str = "", ttl: float | None = None):  # type: ignore[no-untyped-def]
    from p2pmsg.ui.slash import Slash

    return Slash(name, arg=arg, ttl=ttl)


class PeerCommands(Provider):
    """ "Chat with <peer>" for every known peer."""

    def _main(self) -> MainScreen | None:
        return getattr(self.app, "main_screen", None)

    def _entries(self) -> list[tuple[str, str]]:
        main = self._main()
        if main is None:
            return []
        from p2pmsg.ui.widgets.peer_list import PeerList

        peers = main.query_one(PeerList).peers.values()
        return [
            (f"Chat with {printable(p.name)} ({p.short_fingerprint})", p.fingerprint) for p in peers
        ]

    async def discover(self) -> Hits:
        main = self._main()
        for title, fingerprint in self._entries():
            if main is not None:
                yield DiscoveryHit(
                    Content(title),
                    partial(main.open_conversation, fingerprint),
                    text=title,
                    help="Open the conversation",
                )

    async def search(self, query: str) -> Hits:
        main = self._main()
        matcher = self.matcher(query)
        for title, fingerprint in self._entries():
            score = matcher.match(title)
            if score > 0 and main is not None:
                content = Content(title)
                _, offsets = matcher.fuzzy_search.match(query, title)
                for offset in offsets:
                    content = content.stylize("bold underline", offset, offset + 1)
                yield Hit(
                    score,
                    content,
                    partial(main.open_conversation, fingerprint),
                    text=title,
                    help="Open the conversation",
                )

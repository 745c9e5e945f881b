"""The peers column: who is there, whether they are verified, and what is waiting.

Each row is built as `Content` from plain strings (peer names are untrusted
and must never be parsed as markup) and shows, at a glance: the online dot, the name,
a verified badge, a flagged (name clash) or blocked warning, the unread count,
and the short fingerprint that tells two "alice"s apart. Retired keys (replaced
in a key change the user made) are not listed.
"""

from __future__ import annotations

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from p2pmsg.node.api import PeerView
from p2pmsg.ui.palette import DANGER, MUTED, OK
from p2pmsg.ui.safe_text import clip, literal_content


def peer_label(peer: PeerView, width: int = 18) -> Content:
    """Two lines: status, name, badges; then the short fingerprint (and, for a flagged
    key, whose name it claims).

    The name is the user's petname when there is one; the peer's own claim follows
    it when the two differ. Colours are theme variables (`p2pmsg.ui.palette`);
    every name is literal text.
    """
    parts: list[str | Content | tuple[str, str]] = [
        ("● ", OK) if peer.online else ("○ ", MUTED),
        literal_content(clip(peer.name, width), "bold"),
    ]
    if peer.state == "flagged":
        parts.append((" ⚠", f"bold {DANGER}"))
    elif peer.state == "blocked":
        parts.append((" ⛔", f"bold {DANGER}"))
    elif peer.verified:
        parts.append((" ✔", f"bold {OK}"))
    if peer.unread:
        parts.append((f" ({peer.unread})" if peer.unread < 1000 else " (999+)", "bold reverse"))
    parts += ["\n", (peer.short_fingerprint, MUTED)]
    if peer.local_name and peer.claimed_name and peer.claimed_name != peer.local_name:
        parts += ["\n", ("says ", MUTED), literal_content(clip(peer.claimed_name, width), MUTED)]
    if peer.state == "flagged":
        parts += [
            "\n",
            ("claims to be ", f"bold {DANGER}"),
            literal_content(clip(peer.clash_with_name or "a contact", width), f"bold {DANGER}"),
        ]
    elif peer.state == "blocked":
        parts.append(("\nblocked", f"bold {DANGER}"))
    return Content.assemble(*parts)


class PeerList(OptionList):
    """Selectable list of peers keyed by fingerprint."""

    class PeerChosen(Message):
        def __init__(self, fingerprint: str) -> None:
            super().__init__()
            self.fingerprint = fingerprint

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._peers: dict[str, PeerView] = {}
        self.border_title = "Peers"

    @property
    def peers(self) -> dict[str, PeerView]:
        return self._peers

    def set_peers(self, peers: list[PeerView]) -> None:
        self._peers = {}
        self.clear_options()
        for peer in sorted(peers, key=_order):
            self.upsert(peer)

    def upsert(self, peer: PeerView) -> None:
        if peer.state == "retired":  # an old key of a contact: refused, nothing to open
            self.discard(peer.fingerprint)
            return
        known = peer.fingerprint in self._peers
        self._peers[peer.fingerprint] = peer
        if known:
            self.replace_option_prompt(peer.fingerprint, peer_label(peer))
        else:
            self.add_option(Option(peer_label(peer), id=peer.fingerprint))
        self._update_title()

    def discard(self, fingerprint: str) -> None:
        if self._peers.pop(fingerprint, None) is not None:
            self.remove_option(fingerprint)
            self._update_title()

    def set_online(self, fingerprint: str, online: bool) -> None:
        peer = self._peers.get(fingerprint)
        if peer is not None and peer.online != online:
            self.upsert(PeerView(**{**peer.__dict__, "online": online}))

    def select_fingerprint(self, fingerprint: str) -> None:
        if fingerprint in self._peers:
            self.highlighted = self.get_option_index(fingerprint)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.PeerChosen(event.option.id))

    def _update_title(self) -> None:
        online = sum(1 for p in self._peers.values() if p.online)
        self.border_title = f"Peers {online}/{len(self._peers)}"


def _order(peer: PeerView) -> tuple[bool, str]:
    return (not peer.online, peer.name.casefold())

"""The peers column: who is there, whether they are verified, and what is waiting;
below them, under a "Groups" heading, the groups this profile is in.

Each row is built as `Content` from plain strings (peer names are untrusted
and must never be parsed as markup) and shows, at a glance: the online dot, the name,
a verified badge, a flagged (name clash) or blocked warning, the unread count,
and the short fingerprint that tells two "alice"s apart. Retired keys (replaced
in a key change the user made) are not listed.

A group's option id is `GROUP_PREFIX` + its id, so the list is one list of
conversations (ctrl+n steps through both); a peer's id is its fingerprint. The
groups stay after the peers: a peer that shows up after them rebuilds the list
(rare; the highlighted entry is kept). Group unread counts are this session's
(the node keeps no read state for group posts yet).
"""

from __future__ import annotations

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from p2pmsg.node.api import GroupView, PeerView
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


#: Option ids: "g:<group id>" for a group, the fingerprint for a peer.
GROUP_PREFIX = "g:"
_HEADING = "h:groups"


def group_key(group_id: str) -> str:
    return GROUP_PREFIX + group_id


def is_group_key(key: str | None) -> bool:
    return key is not None and key.startswith(GROUP_PREFIX)


def group_label(group: GroupView, unread: int = 0, width: int = 18) -> Content:
    """Two lines: the group's name (a claim by whoever named it: literal text) and its
    unread count; then how many members, or that this profile is no longer one."""
    parts: list[str | Content | tuple[str, str]] = [
        ("# ", MUTED),
        literal_content(clip(group.name, width), "bold"),
    ]
    if unread:
        parts.append((f" ({unread})" if unread < 1000 else " (999+)", "bold reverse"))
    count = len(group.members)
    detail = f"{count} member" + ("s" if count != 1 else "")
    if not group.member:
        detail = "you left or were removed"
    parts += ["\n", (detail, MUTED)]
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
        self._groups: dict[str, GroupView] = {}  # by group id
        self.group_unread: dict[str, int] = {}
        self.border_title = "Peers"

    @property
    def peers(self) -> dict[str, PeerView]:
        return self._peers

    @property
    def groups(self) -> dict[str, GroupView]:
        return self._groups

    def set_peers(self, peers: list[PeerView]) -> None:
        self._peers = {}
        self.clear_options()
        for peer in sorted(peers, key=_order):
            self.upsert(peer)
        if self._groups:
            self._rebuild()

    def conversation_ids(self) -> list[str]:
        """Peers then groups, as listed (the heading left out)."""
        return [o.id for o in self.options if o.id is not None and o.id != _HEADING]

    def first_id(self) -> str | None:
        ids = self.conversation_ids()
        return ids[0] if ids else None

    # --- groups ---------------------------------------------------------------------

    def upsert_group(self, group: GroupView) -> None:
        known = group.id in self._groups
        self._groups[group.id] = group
        if known:
            self.replace_option_prompt(group_key(group.id), self._group_prompt(group))
        else:
            self._rebuild()

    def count_group_unread(self, group_id: str) -> None:
        self.group_unread[group_id] = self.group_unread.get(group_id, 0) + 1
        group = self._groups.get(group_id)
        if group is not None:
            self.upsert_group(group)

    def clear_group_unread(self, group_id: str) -> None:
        if self.group_unread.pop(group_id, 0):
            group = self._groups.get(group_id)
            if group is not None:
                self.upsert_group(group)

    def _group_prompt(self, group: GroupView) -> Content:
        return group_label(group, self.group_unread.get(group.id, 0))

    def _rebuild(self) -> None:
        """Peers as they are listed, then the heading and the groups by name; the
        highlighted entry stays highlighted."""
        highlighted = self.highlighted_option.id if self.highlighted_option is not None else None
        peer_ids = [o.id for o in self.options if o.id in self._peers]
        peer_ids += [fp for fp in self._peers if fp not in peer_ids]
        options: list[Option] = [Option(peer_label(self._peers[fp]), id=fp) for fp in peer_ids]
        if self._groups:
            options.append(
                Option(Content.styled("── Groups ──", MUTED), id=_HEADING, disabled=True)
            )
            for group in sorted(self._groups.values(), key=lambda g: g.name.casefold()):
                options.append(Option(self._group_prompt(group), id=group_key(group.id)))
        self.clear_options()
        self.add_options(options)
        if highlighted is not None and highlighted in self.conversation_ids():
            self.highlighted = self.get_option_index(highlighted)

    def upsert(self, peer: PeerView) -> None:
        if peer.state == "retired":  # an old key of a contact: refused, nothing to open
            self.discard(peer.fingerprint)
            return
        known = peer.fingerprint in self._peers
        self._peers[peer.fingerprint] = peer
        if known:
            self.replace_option_prompt(peer.fingerprint, peer_label(peer))
        elif self._groups:
            self._rebuild()  # peers stay above the groups
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
        """Highlight a peer (fingerprint) or a group (`group_key`)."""
        if fingerprint in self._peers or (
            is_group_key(fingerprint) and fingerprint[len(GROUP_PREFIX) :] in self._groups
        ):
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

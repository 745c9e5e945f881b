"""How the app gets from a password to a running node.

The app never constructs a Node itself: it is handed a `Launcher`, whose
blocking `create`/`unlock` run in a worker thread (the KDF takes about half a
second and must not freeze the UI); `open_node` then builds the node on the
event loop (the store is asyncio-based). The real launcher (in
`p2pmsg.ui.profile_launcher`) opens the on-disk profile and builds the Node;
tests hand in one backed by an in-memory fake node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from p2pmsg.node.api import NodeAPI


@dataclass(frozen=True)
class Rule:
    """One password-policy rule and whether the current input meets it."""

    text: str
    met: bool


class Launcher(Protocol):
    @property
    def profile_name(self) -> str: ...

    @property
    def preset_password(self) -> str | None:
        """From `P2PMSG_PASSWORD` or `--password-file`: skips the prompt."""
        ...

    def profile_exists(self) -> bool: ...

    def password_rules(self, password: str, display_name: str) -> list[Rule]:
        """Every policy rule, each marked met or not, for live feedback."""
        ...

    def strength_hint(self, password: str) -> str: ...

    def create(self, display_name: str, password: str) -> Any:
        """Create the profile; returns the unlocked profile for `open_node`. Blocking."""
        ...

    def claim(self) -> None:
        """Hold the existing profile for this process before any password is asked for,
        so "in use by p2pmsg listen (pid …)" comes first. Raises `ProfileLockedError`
        naming the holder; calling it again once held does nothing."""
        ...

    def unlock(self, password: str) -> Any:
        """Open the profile (claiming it first if need be); returns the unlocked profile
        for `open_node`. Blocking.

        Raises `WrongPasswordError`, `UnlockThrottledError`, `ProfileLockedError`.
        """
        ...

    async def open_node(self, unlocked: Any) -> NodeAPI:
        """The (not yet started) node of an unlocked profile; runs on the event loop."""
        ...

    def close(self) -> None:
        """Release what the unlocked profile holds (its lock), after the node stopped."""
        ...

"""Fixtures for UI tests: a fake node with a few peers, a pinned clock, a launcher."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from p2pmsg.errors import ProfileLockedError, UnlockThrottledError, WrongPasswordError
from p2pmsg.node.api import Evidence, NodeAPI
from p2pmsg.ui.launcher import Rule
from p2pmsg.ui.timefmt import Clock
from tests.ui.fake_node import T0, FakeNode, fp_for

FIXED_CLOCK = Clock(now=lambda: T0, utc=True)


def populated_node() -> FakeNode:
    node = FakeNode("alice")
    bob = node.make_peer("bob", verified=True)
    node.make_peer("carol", online=False, session=False)
    node.make_peer("dave")
    day = 86400.0
    node.history(bob.fingerprint, "hi alice, are you there?", created=T0 - day - 600)
    node.history(bob.fingerprint, "yes, on the train", direction="out", created=T0 - day - 540)
    node.history(bob.fingerprint, "the report is ready", created=T0 - 300)
    node.history(
        bob.fingerprint,
        "send it over please",
        direction="out",
        created=T0 - 240,
        status="delivered",
    )
    node.history(bob.fingerprint, "this one disappears", created=T0 - 120, ttl=300.0)
    node.raise_alert(
        "flood",
        "high",
        fp_for("dave"),
        "dave sent 4000 frames in 10 s",
        ts=T0 - 90,
        evidence=(
            Evidence("frames from this peer in 10 s", 4000, "alert at 1000"),
            Evidence("connections from this address in 60 s", 2.5, "usually 0-1"),
        ),
    )
    node.raise_alert("replay", "medium", fp_for("dave"), "replayed record counter 17", ts=T0 - 1800)
    node.log_event("handshake_ok", fp_for("bob"))
    node.log_event("decrypt_fail", fp_for("dave"))
    return node


@pytest.fixture
def node() -> FakeNode:
    return populated_node()


RULES = ("at least 12 characters", "not your display name", "not a common password")


@dataclass
class FakeLauncher:
    """Plays the profile: one correct password, throttles after `throttle_after` misses."""

    node: FakeNode
    exists: bool = True
    password: str = "correct horse battery staple"  # noqa: S105 - test fixture
    preset: str | None = None
    throttle_after: int = 2
    retry_after: float = 2.0
    failures: int = 0
    created: list[tuple[str, str]] = field(default_factory=list)
    profile_name: str = "default"
    closed: bool = False
    held_by: str | None = None  # another process holding the profile

    def claim(self) -> None:
        if self.held_by is not None:
            raise ProfileLockedError(f"profile '{self.profile_name}' is in use by {self.held_by}")

    @property
    def preset_password(self) -> str | None:
        return self.preset

    def profile_exists(self) -> bool:
        return self.exists

    def password_rules(self, password: str, display_name: str) -> list[Rule]:
        return [
            Rule(RULES[0], len(password) >= 12),
            Rule(RULES[1], bool(password) and password.casefold() != display_name.casefold()),
            Rule(RULES[2], password not in ("password1234", "123456789012")),
        ]

    def strength_hint(self, password: str) -> str:
        return "strong" if len(password) >= 20 else "fair" if len(password) >= 12 else "weak"

    def create(self, display_name: str, password: str) -> str:
        self.created.append((display_name, password))
        self.exists = True
        return "unlocked"

    async def open_node(self, unlocked: str) -> NodeAPI:
        assert unlocked == "unlocked"
        return self.node

    def close(self) -> None:
        self.closed = True

    def unlock(self, password: str) -> str:
        self.claim()
        if self.failures >= self.throttle_after:
            self.failures = 0
            raise UnlockThrottledError(self.retry_after)
        if password != self.password:
            self.failures += 1
            raise WrongPasswordError()
        return "unlocked"


def screen_text(app: object) -> str:
    """What the terminal would show, as plain text (from the compositor)."""
    strips = app.screen._compositor.render_strips()  # type: ignore[attr-defined]
    return "\n".join(strip.text for strip in strips)


async def settle(pilot: object, seconds: float = 0.12) -> None:
    """Let workers, the event pump (one frame) and the refresh run."""
    await pilot.pause(seconds)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]

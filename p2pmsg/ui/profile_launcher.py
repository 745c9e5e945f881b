"""The real `Launcher`: the on-disk profile, the password policy, the Node.

`create` and `unlock` run in a worker thread (PBKDF2 takes ~0.5 s). The Node
module is imported in a thread too, after the first frame is on screen; the
monitor loads scikit-learn later still, in the background.
"""

from __future__ import annotations

import asyncio
import importlib
import math
from dataclasses import dataclass, field
from typing import Any

from p2pmsg.crypto import password_policy
from p2pmsg.errors import ConfigError, UnlockThrottledError
from p2pmsg.node.api import NodeAPI
from p2pmsg.profile import Profile, ProfileLock, UnlockedProfile
from p2pmsg.ui.launcher import Rule

# Every rule of the policy in the order `check_password` reports them, so the
# form can show all of them and tick each off as it is met.
POLICY_RULES: tuple[str, ...] = tuple(
    getattr(password_policy, name)
    for name in (
        "RULE_LENGTH",
        "RULE_UPPER",
        "RULE_LOWER",
        "RULE_DIGIT",
        "RULE_SYMBOL",
        "RULE_COMMON",
        "RULE_NAME",
    )
    if hasattr(password_policy, name)
)


@dataclass
class ProfileLauncher:
    profile: Profile
    preset: str | None = None
    node_options: dict[str, Any] = field(default_factory=dict)
    command: str = "p2pmsg"
    _unlocked: UnlockedProfile | None = field(default=None, repr=False)
    _lock: ProfileLock | None = field(default=None, repr=False)  # claimed, not yet unlocked

    @property
    def profile_name(self) -> str:
        return self.profile.name

    @property
    def preset_password(self) -> str | None:
        return self.preset

    def profile_exists(self) -> bool:
        return self.profile.exists()

    def password_rules(self, password: str, display_name: str) -> list[Rule]:
        failures = password_policy.check_password(password, display_name)
        rules = [Rule(text, text not in failures) for text in POLICY_RULES]
        rules += [Rule(text, False) for text in failures if text not in POLICY_RULES]
        return rules

    def strength_hint(self, password: str) -> str:
        return password_policy.strength_hint(password)

    def create(self, display_name: str, password: str) -> UnlockedProfile:
        unlocked = self.profile.create(display_name, password, command=self.command)
        unlocked.lock = self.profile.acquire_lock(self.command)
        self._unlocked = unlocked
        return unlocked

    def claim(self) -> None:
        if self._lock is None:
            self._lock = self.profile.acquire_lock(self.command)

    def unlock(self, password: str) -> UnlockedProfile:
        self.claim()
        try:
            unlocked = self.profile.unlock(password)
        except UnlockThrottledError as exc:
            raise UnlockThrottledError(float(math.ceil(exc.retry_after))) from None
        unlocked.lock, self._lock = self._lock, None  # the unlocked profile holds it now
        self._unlocked = unlocked
        return unlocked

    async def open_node(self, unlocked: UnlockedProfile) -> NodeAPI:
        # Imported off the loop: the node pulls in the protocol stack and the monitor.
        try:
            module = await asyncio.to_thread(importlib.import_module, "p2pmsg.node.node")
            config_module = importlib.import_module("p2pmsg.node.config")
            files_module = importlib.import_module("p2pmsg.node.transfers.settings")
        except ModuleNotFoundError:
            raise ConfigError("the network node is not available in this build") from None
        # The node follows the profile's unlock log, so guesses at it reach the monitor;
        # files land where the Settings screen says (by default the usual downloads folder).
        options = {
            "profile_events": unlocked.profile.events_path,
            "files": files_module.TransferSettings(from_profile=True),
            **self.node_options,
        }
        config = config_module.NodeConfig(**options)
        node: NodeAPI = await module.Node.open(
            unlocked.identity,
            unlocked.display_name,
            unlocked.profile.db_path,
            unlocked.data_key,
            config,
        )
        return node

    def close(self) -> None:
        if self._unlocked is not None:
            self._unlocked.close()
            self._unlocked = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

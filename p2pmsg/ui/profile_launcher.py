"""The real `Launcher`: the on-disk profile, the password policy, the Node.

`create` and `unlock` run in a worker thread (PBKDF2 takes ~0.5 s). The Node
module — and through it the monitor and scikit-learn — is imported there too,
after the first frame is on screen, never at app start.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any

from p2pmsg.crypto import password_policy
from p2pmsg.errors import ConfigError, UnlockThrottledError
from p2pmsg.node.api import NodeAPI
from p2pmsg.profile import Profile, UnlockedProfile
from p2pmsg.ui.launcher import Rule

# Every rule of the policy in the order `check_password` reports them, so the
# form can show all of them and tick each off as it is met.
POLICY_RULES: tuple[str, ...] = tuple(
    getattr(password_policy, name) for name in (
        "RULE_LENGTH", "RULE_UPPER", "RULE_LOWER", "RULE_DIGIT", "RULE_SYMBOL",
        "RULE_COMMON", "RULE_NAME",
    ) if hasattr(password_policy, name)
)


@dataclass
class ProfileLauncher:
    profile: Profile
    preset: str | None = None
    node_options: dict[str, Any] = field(default_factory=dict)
    command: str = "p2pmsg"

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

    def create(self, display_name: str, password: str) -> NodeAPI:
        unlocked = self.profile.create(display_name, password, command=self.command)
        unlocked.lock = self.profile.acquire_lock(self.command)
        return self._node(unlocked)

    def unlock(self, password: str) -> NodeAPI:
        try:
            unlocked = self.profile.open(password, command=self.command)
        except UnlockThrottledError as exc:
            raise UnlockThrottledError(float(math.ceil(exc.retry_after))) from None
        return self._node(unlocked)

    def _node(self, unlocked: UnlockedProfile) -> NodeAPI:
        try:
            module = importlib.import_module("p2pmsg.node.node")
        except ModuleNotFoundError:
            unlocked.close()
            raise ConfigError("the network node is not available in this build yet") from None
        try:
            factory = getattr(module, "node_for_profile", None)
            if callable(factory):
                node: NodeAPI = factory(unlocked, **self.node_options)
            else:
                node = module.Node(unlocked, **self.node_options)
        except BaseException:
            unlocked.close()
            raise
        return node

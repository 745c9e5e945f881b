"""Live password-policy checklist: every rule, ticked off as it is met."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from p2pmsg.ui.launcher import Rule
from p2pmsg.ui.palette import DANGER, OK, rich_style


class PasswordRules(Static):
    """Renders the policy rules with ✓/✗ and the strength hint below them."""

    def show(self, rules: list[Rule], hint: str) -> None:
        text = Text()
        for rule in rules:
            if text:
                text.append("\n")
            if rule.met:
                text.append("✓ ", style=rich_style(self.app, f"bold {OK}"))
                text.append(rule.text, style="dim")
            else:
                text.append("✗ ", style=rich_style(self.app, f"bold {DANGER}"))
                text.append(rule.text)
        if hint:
            text.append("\n")
            text.append("strength: ", style="dim")
            text.append(hint, style="italic")
        self.update(text)

    @property
    def all_met(self) -> bool:
        return "✗" not in str(self.render())

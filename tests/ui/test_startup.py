"""Fast first paint: the UI and the TUI command import no scikit-learn (nor the node)."""

from __future__ import annotations

import subprocess
import sys


def test_ui_imports_leave_sklearn_and_the_node_for_later() -> None:
    probe = (
        "import sys\n"
        "import p2pmsg.cli, p2pmsg.commands.tui, p2pmsg.ui.app, p2pmsg.ui.profile_launcher\n"
        "import p2pmsg.ui.screens.unlock, p2pmsg.ui.screens.main\n"
        "heavy = [m for m in ('sklearn', 'numpy', 'joblib', 'p2pmsg.node.node')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""

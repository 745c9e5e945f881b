"""Where the monitor's files live: in a source checkout, or in an installed copy.

A checkout (and an editable install of one) has the repository around the
package: `models/`, `datasets/`, `pyproject.toml`. An installed copy (a
wheel: `pip install .`, pipx) has only the package, in site-packages, where
`../datasets` or `../models` would be some other distribution's directory (a
package named `datasets` is common). So "am I in a checkout" is asked once,
here, and every path that depends on the answer is derived from it.
"""

from __future__ import annotations

import re
from pathlib import Path

MONITOR_DIR = Path(__file__).resolve().parent  # p2pmsg/monitor, in either layout
_NAME_LINE = re.compile(r'^name\s*=\s*"p2pmsg"\s*$', re.MULTILINE)


def checkout_root() -> Path | None:
    """The repository root when this package runs from a checkout, else None."""
    root = MONITOR_DIR.parent.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if _NAME_LINE.search(text) else None


def user_cache_dir() -> Path:
    """The per-user cache (`~/.cache/p2pmsg` on Linux): files p2pmsg can always remake."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("p2pmsg", appauthor=False))

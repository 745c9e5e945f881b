"""The layering of DESIGN.md, checked two ways.

The import-linter contracts in pyproject.toml read every import statement:
the layer order, the sans-I/O core, SQLite only in the store, sockets and
zeroconf only in the node, the UI only through `node.api`, no import of the
test tree. The runtime check below imports each core module in a fresh
interpreter, so an import hidden in a function or a plugin cannot slip past
either.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import p2pmsg.crypto
import p2pmsg.protocol

FORBIDDEN = ("asyncio", "socket", "sqlite3", "zeroconf", "textual", "selectors", "ssl")


def _modules(package) -> list[str]:  # type: ignore[no-untyped-def]
    names = [package.__name__]
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return names


#: The node's sans-I/O state machines (their drivers, beside them, do the I/O).
NODE_CORES = [
    "p2pmsg.node.services.delivery",
    "p2pmsg.node.services.delivery.core",
    "p2pmsg.node.services.delivery.pending",
    "p2pmsg.node.services.delivery.table",
    "p2pmsg.node.services.delivery.work",
    "p2pmsg.node.services.delivery.actions",
    "p2pmsg.node.services.delivery.views",
]


@pytest.mark.parametrize("module", _modules(p2pmsg.crypto) + _modules(p2pmsg.protocol) + NODE_CORES)
def test_core_module_imports_no_io(module: str) -> None:
    probe = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"bad = sorted(m for m in {FORBIDDEN!r} if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} pulls in I/O modules: {result.stdout.strip()}"


def test_import_contracts_hold() -> None:
    """`lint-imports` in a fresh interpreter, from the repository root (where the
    contracts live), with no cache so that a stale one cannot pass a broken tree."""
    root = Path(__file__).resolve().parent.parent
    probe = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True,"
        " no_logo=True))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr

"""The sans-I/O core must not import I/O machinery (DESIGN.md, rules of the house).

Each check runs in a fresh interpreter so modules imported by other tests
cannot hide a forbidden import.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import p2pmsg.crypto
import p2pmsg.protocol

FORBIDDEN = ("asyncio", "socket", "sqlite3", "zeroconf", "textual", "selectors", "ssl")


def _modules(package) -> list[str]:  # type: ignore[no-untyped-def]
    names = [package.__name__]
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return names


@pytest.mark.parametrize("module", _modules(p2pmsg.crypto) + _modules(p2pmsg.protocol))
def test_core_module_imports_no_io(module: str) -> None:
    probe = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"bad = sorted(m for m in {FORBIDDEN!r} if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe],  # noqa: S603 - our own interpreter
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} pulls in I/O modules: {result.stdout.strip()}"

"""Select, import and run benchmark scenarios; describe the machine they ran on."""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from p2pmsg.bench import SCENARIOS
from p2pmsg.bench.report import render_table
from p2pmsg.errors import ConfigError


def resolve(names: Sequence[str]) -> list[str]:
    """The scenarios to run, in registry order; all of them when `names` is empty."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ConfigError(
            f"unknown benchmark scenario{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; known: {', '.join(SCENARIOS)}"
        )
    if not names:
        return list(SCENARIOS)
    wanted = set(names)
    return [n for n in SCENARIOS if n in wanted]


def load(name: str) -> ModuleType:
    module = importlib.import_module(SCENARIOS[name])
    for attr in ("run", "rows"):
        if not callable(getattr(module, attr, None)):
            raise ConfigError(f"benchmark scenario {name!r} ({module.__name__}) lacks {attr}()")
    return module


def machine_info() -> dict[str, Any]:
    """Enough about the machine to judge whether two reports are comparable."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": _cpu_model(),
    }
    with contextlib.suppress(OSError):  # not on every OS; others share this machine
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def run(
    names: Sequence[str],
    quick: bool,
    on_result: Callable[[str, ModuleType, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the selected scenarios; the report maps each name to its result.

    `on_result` is called as each scenario finishes, so a long run can print
    progressively. Names are validated before anything runs.
    """
    selected = resolve(names)
    report: dict[str, Any] = {
        "machine": machine_info(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
    }
    for name in selected:
        module = load(name)
        result: dict[str, Any] = module.run(quick)
        report[name] = result
        if on_result is not None:
            on_result(name, module, result)
    return report


def render(name: str, module: ModuleType, result: dict[str, Any]) -> str:
    """One scenario's heading and table."""
    title = getattr(module, "TITLE", name)
    text = f"== {name}: {title} ==\n{render_table(module.rows(result))}"
    notes = getattr(module, "notes", None)
    if callable(notes):
        text += "".join(f"\n  {line}" for line in notes(result))
    return text

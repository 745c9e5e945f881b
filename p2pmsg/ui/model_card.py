"""The monitor's model card, read from `models/manifest.json`.

Prefers the monitor package's own manifest loader when it exists (one parser
for the format); otherwise reads the JSON directly. Called from a worker
thread: it touches the disk.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from p2pmsg.ui.safe_text import clip, printable

_CANDIDATES = (
    Path(__file__).resolve().parent.parent / "models" / "manifest.json",
    Path(__file__).resolve().parent.parent.parent / "models" / "manifest.json",
)


def load_model_card() -> tuple[dict[str, Any] | None, str]:
    """(manifest, where it came from) or (None, why not)."""
    for module_name in ("p2pmsg.monitor.manifest", "p2pmsg.monitor.models"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        loader = getattr(module, "load_manifest", None) or getattr(module, "read_manifest", None)
        if callable(loader):
            try:
                data = loader()
            except Exception as exc:
                return None, f"manifest unreadable: {exc}"
            if hasattr(data, "__dict__") and not isinstance(data, dict):
                data = dict(vars(data))
            if isinstance(data, dict):
                return data, module_name
    for path in _CANDIDATES:
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8")), str(path)
            except (OSError, ValueError) as exc:
                return None, f"{path}: {exc}"
    return None, "no models/manifest.json found: the monitor runs on rules only"


def render_model_card(manifest: dict[str, Any], source: str) -> Table:
    """Flatten the manifest (two levels) into a key/value table."""
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0), expand=True)
    table.add_column(style="bold cyan", no_wrap=True, ratio=1)
    table.add_column(ratio=3)
    for key, value in manifest.items():
        if isinstance(value, dict):
            table.add_row(Text(printable(str(key))), Text(""))
            for sub_key, sub_value in value.items():
                table.add_row(Text("  " + printable(str(sub_key))), _value(sub_value))
        else:
            table.add_row(Text(printable(str(key))), _value(value))
    table.add_row(Text("source", style="dim"), Text(printable(source), style="dim"))
    return table


def _value(value: Any) -> Text:
    if isinstance(value, float):
        return Text(f"{value:.4g}")
    if isinstance(value, (dict, list)):
        return Text(clip(printable(json.dumps(value, sort_keys=True)), 400))
    return Text(clip(printable(str(value)), 400))

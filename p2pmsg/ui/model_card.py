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

from rich.style import Style
from rich.table import Table
from rich.text import Text

from p2pmsg.ui.safe_text import clip, printable

_CANDIDATES = (
    Path(__file__).resolve().parent.parent / "models" / "manifest.json",
    Path(__file__).resolve().parent.parent.parent / "models" / "manifest.json",
)


def load_model_card() -> tuple[dict[str, Any] | None, str]:
    """(manifest, path it came from) or (None, why not)."""
    candidates = list(_CANDIDATES)
    try:
        # The monitor's own search order (P2PMSG_MODEL_DIR, packaged, checkout);
        # this module does not import scikit-learn.
        model = importlib.import_module("p2pmsg.monitor.model")
        candidates = [d / model.MANIFEST_FILE for d in model.candidate_model_dirs()]
    except (ImportError, AttributeError):
        pass
    for path in candidates:
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                return None, f"{path}: {exc}"
            if isinstance(data, dict):
                return data, str(path)
            return None, f"{path}: not a JSON object"
    return None, "no models/manifest.json found: the monitor runs on rules only"


def render_model_card(
    manifest: dict[str, Any], source: str, key_style: str | Style = "bold"
) -> Table:
    """Flatten the manifest (two levels) into a key/value table.

    `key_style` is resolved from the theme by the caller (`palette.rich_style`)."""
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0), expand=True)
    table.add_column(style=key_style, no_wrap=True, ratio=2)
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
    if isinstance(value, list) and len(value) > 8:
        shown = ", ".join(printable(str(v)) for v in value[:4])
        return Text(f"{len(value)} items: {shown}, …")
    if isinstance(value, dict) and "sha256" in value:
        return Text(
            printable(f"{value.get('bytes', '?')} bytes · sha256 {str(value['sha256'])[:16]}…")
        )
    if isinstance(value, (dict, list)):
        return Text(clip(printable(json.dumps(value, sort_keys=True)), 400))
    return Text(clip(printable(str(value)), 400))

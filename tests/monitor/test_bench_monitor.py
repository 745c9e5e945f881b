from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_monitor_quick_json() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "p2pmsg", "bench", "monitor", "--quick", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=120,
    )
    report = json.loads(result.stdout)["monitor"]
    assert report["mode"] == "models"
    assert report["load_ms"]["best"] > 0
    score = report["score_100_keys_ms"]
    assert score["best"] > 0 and score["target"] == 50.0
    stall = report["loop_stall_ms"]
    assert stall["while_scoring"]["max_ms"] >= 0 and stall["ticks"] > 0

"""`p2pmsg bench`: the real command in a subprocess, and the framework in-process.

No assertion depends on how fast this machine is: figures must be positive and
the report well-formed; the targets' verdicts are reported, not asserted.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from p2pmsg.bench import SCENARIOS, runner, trust
from p2pmsg.bench.netutil import BenchError
from p2pmsg.bench.report import fmt_rate, fmt_size, render_table
from p2pmsg.bench.timing import Budget, Measurement, measure_interleaved
from p2pmsg.cli import main
from p2pmsg.crypto.suites import SUITE_NAMES
from p2pmsg.store.trust import TrustMixin
from tests.conftest import REPO_ROOT


def _p2pmsg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2pmsg", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_bench_suites_quick_json() -> None:
    result = _p2pmsg("bench", "suites", "--quick", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    assert set(report["machine"]) >= {"cores", "python", "platform", "cpu"}
    assert report["machine"]["cores"] >= 1
    assert datetime.datetime.fromisoformat(report["date"]).tzinfo is not None
    assert report["quick"] is True

    suites = report["suites"]
    assert suites["sizes"] == [100, 4096, 65536]
    seen = {(e["suite"], e["size"]) for e in suites["results"]}
    assert seen == {(n, s) for n in SUITE_NAMES for s in suites["sizes"]}
    for e in suites["results"]:
        assert e["ops_per_s"] > 0 and e["mb_per_s"] > 0
        assert e["mb_per_s"] == pytest.approx(e["ops_per_s"] * e["size"] / 1e6, rel=0.01)
        base = e["baseline"]
        assert base["name"]
        if "skipped" in base:
            assert base["skipped"] and e["speedup"] is None
        else:
            assert base["ops_per_s"] > 0 and base["mb_per_s"] > 0 and e["speedup"] > 0
    # On 3.11 the stock wrapper imports, so the Twofish baseline must really run.
    if sys.version_info < (3, 12):
        assert all("skipped" not in e["baseline"] for e in suites["results"])

    targets = {t["suite"]: t for t in suites["targets"]}
    assert set(targets) == set(SUITE_NAMES)
    for t in targets.values():
        assert t["size"] == 4096
        assert t["met"] in (True, False, None)
        if t["met"] is not None:
            assert t["value"] > 0
    assert targets["twofish-cbc-hmac-sha256"]["measure"] == "speedup"
    assert targets["aes-256-gcm"]["measure"] == "slowdown"
    assert suites["all_targets_met"] == all(t["met"] is True for t in targets.values())

    # Which Twofish path ran is reported; on the fast path the fallback is measured beside it.
    path = suites["twofish_path"]
    assert path["active"] in ("libgcrypt", "portable") and path["describe"]
    for e in suites["results"]:
        if e["suite"] != "twofish-cbc-hmac-sha256":
            assert "path" not in e
            continue
        assert e["path"] == path["active"]
        if path["active"] == "libgcrypt":
            fallback = e["portable_path"]
            assert fallback["ops_per_s"] > 0
            assert fallback["speedup"] == pytest.approx(
                e["ops_per_s"] / fallback["ops_per_s"], rel=0.01
            )
    table = _p2pmsg("bench", "suites", "--quick")
    assert table.returncode == 0, table.stderr
    assert f"twofish-cbc-hmac-sha256 [{path['active']}]" in table.stdout
    assert "Twofish path: " + path["active"] in table.stdout


def test_unknown_scenario_lists_the_known_ones() -> None:
    result = _p2pmsg("bench", "suites", "warp-drive")
    assert result.returncode == 1
    assert "unknown benchmark scenario 'warp-drive'" in result.stderr
    assert "known: " + ", ".join(SCENARIOS) in result.stderr
    assert "Traceback" not in result.stderr


# --- the framework, with a tiny scenario defined right here -----------------------------

TITLE = "a scenario defined by the test module"


def run(quick: bool) -> dict[str, Any]:
    measured = measure_interleaved({"sum": lambda: sum(range(50))}, Budget(2, 0.001))
    return {"quick": quick, "sum": measured["sum"].as_dict()}


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    return [("what", "ops/s"), ("sum(range(50))", fmt_rate(result["sum"]["ops_per_s"]))]


def notes(result: dict[str, Any]) -> list[str]:
    return [f"quick={result['quick']}"]


@pytest.fixture
def tiny_scenario(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(SCENARIOS, "tiny", __name__)
    return "tiny"


def test_table_output_through_the_cli(
    tiny_scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", tiny_scenario, "--quick"]) == 0
    out = capsys.readouterr().out
    assert "== tiny: a scenario defined by the test module ==" in out
    assert "sum(range(50))" in out and "quick=True" in out


def test_json_output_through_the_cli(
    tiny_scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", tiny_scenario, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["quick"] is False and report["tiny"]["quick"] is False
    assert report["tiny"]["sum"]["ops_per_s"] > 0
    assert "suites" not in report  # only the selected scenario ran


def test_resolve_keeps_registry_order_and_defaults_to_all(tiny_scenario: str) -> None:
    assert runner.resolve([]) == list(SCENARIOS)
    assert runner.resolve([tiny_scenario, "suites"]) == ["suites", tiny_scenario]


def test_a_module_without_run_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SCENARIOS, "broken", "p2pmsg.bench.report")
    from p2pmsg.errors import ConfigError

    with pytest.raises(ConfigError, match="lacks run"):
        runner.run(["broken"], quick=True)


def test_measurement_arithmetic() -> None:
    m = Measurement(number=10, seconds_per_call=(0.004, 0.002, 0.003))
    assert m.best == 0.002 and m.median == 0.003
    assert m.ops_per_s == pytest.approx(500.0)
    assert m.mb_per_s(4096) == pytest.approx(500 * 4096 / 1e6)
    assert m.as_dict(100)["batches"] == 3


def test_render_table_aligns_columns() -> None:
    text = render_table([("name", "ops/s"), ("a", "1.5k"), ("longer", "12.0M")])
    lines = text.splitlines()
    assert lines[0].startswith("name  ") and lines[1].startswith("------")
    assert lines[2].endswith(" 1.5k") and lines[3].endswith("12.0M")  # numbers right-aligned
    assert fmt_size(100) == "100 B" and fmt_size(4096) == "4 KiB" and fmt_size(65536) == "64 KiB"


# --- the `trust` scenario ---------------------------------------------------------------


def test_bench_trust_quick_json() -> None:
    result = _p2pmsg("bench", "trust", "--quick", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["trust"]

    checks = report["name_check"]
    assert [c["contacts"] for c in checks] == [100, 1000]
    for c in checks:
        for what in ("new_key", "known_key", "handshake"):
            assert c[what]["ops_per_s"] > 0 and c[what]["batches"] == 3
            assert c[f"{what}_ms"] == pytest.approx(1e3 / c[what]["ops_per_s"], rel=0.01)
        # Not a speed: a new key's name is looked up, a known key's is not.
        assert c["new_vs_known"] > 1 and c["check_ms"] > 0
        assert c["new_vs_handshake"] > 0

    pairing = report["pairing"]
    assert pairing["pairing"]["ops_per_s"] > 0 and pairing["handshake"]["ops_per_s"] > 0
    assert pairing["pairing_vs_handshake"] > 0

    nodes = report["nodes"]
    for what in ("pairing", "chat"):
        assert nodes[what]["count"] >= 1 and nodes[what]["p50_ms"] > 0
    assert nodes["pairing"]["count"] == nodes["chat"]["count"]  # alternated, one each
    assert nodes["pairing_vs_chat"] > 0

    table = render_table(trust.rows(report))
    assert len(table.splitlines()) == 2 + 2 * len(checks) + 2  # header, rule, rows
    assert "SPAKE2 pairing" in table and "chat round trip" in table


def test_bench_trust_refuses_a_name_check_that_did_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken path raises rather than yield a figure: here, a check that finds nothing."""
    contacts = trust._Contacts(tmp_path, 20)
    try:
        contacts.probe()  # the real check finds the look-alike of the last contact
        monkeypatch.setattr(TrustMixin, "_clashing_contact", lambda *args: None)
        with pytest.raises(BenchError, match="missed a look-alike"):
            contacts.probe()
    finally:
        contacts.store.close()

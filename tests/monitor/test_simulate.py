from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from pathlib import Path

import pytest

from p2pmsg.cli import main
from p2pmsg.monitor.events import read_events
from p2pmsg.monitor.simulate import SimConfig, generate, write_jsonl
from p2pmsg.security_events import EVENT_NAMES, LABELS

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO / "datasets"
SHIPPED = ("synthetic_logs.jsonl", "test_logs.jsonl")


def render(config: SimConfig) -> bytes:
    out = io.StringIO()
    write_jsonl(generate(config), out)
    return out.getvalue().encode()


def test_same_config_same_bytes_other_seed_other_bytes() -> None:
    config = SimConfig(hours=12, seed=42)
    first = render(config)
    assert first == render(config)
    assert first != render(SimConfig(hours=12, seed=43))
    assert len(first.splitlines()) > 500


def test_timeline_is_sorted_and_inside_the_horizon() -> None:
    config = SimConfig(hours=24, seed=9, attack_rate=6)
    events = generate(config)
    times = [e.ts for e in events]
    assert times == sorted(times)
    assert config.start <= times[0] and times[-1] < config.end


def test_generator_parameters_change_the_world() -> None:
    base = generate(SimConfig(hours=24, seed=5))
    many_peers = generate(SimConfig(hours=24, seed=5, peers=12))
    assert len({e.peer for e in many_peers if e.peer}) > len({e.peer for e in base if e.peer})
    no_attacks = generate(SimConfig(hours=24, seed=5, attack_rate=0))
    assert {e.label for e in no_attacks} == {"normal"}


@pytest.mark.parametrize(
    "bad", [{"hours": 0}, {"peers": 0}, {"slowness": 0}, {"quiet_fraction": 2}, {"attack_rate": -1}]
)
def test_bad_parameters_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimConfig(**bad)  # type: ignore[arg-type]


def readme_recipes() -> dict[str, tuple[str, str]]:
    """file -> (command, sha256) from the table in datasets/README.md."""
    text = (DATASETS / "README.md").read_text()
    rows = re.findall(
        r"\| `([\w.]+)` \|[^|]*\| `p2pmsg (simulate [^`]+)` \| `([0-9a-f]{64})` \|", text
    )
    return {name: (command, digest) for name, command, digest in rows}


@pytest.mark.parametrize("name", SHIPPED)
def test_readme_recipe_reproduces_shipped_file_byte_for_byte(name: str, tmp_path: Path) -> None:
    command, digest = readme_recipes()[name]
    shipped = (DATASETS / name).read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == digest
    argv = command.split()
    argv[argv.index("-o") + 1] = str(tmp_path / name)
    assert main(argv) == 0
    assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_dataset_lines_are_valid_and_cover_every_label(name: str) -> None:
    path = DATASETS / name
    assert path.stat().st_size < 20_000_000
    events = read_events(path)  # raises on the first invalid line, naming it
    assert all(e.label is not None for e in events)
    labels = Counter(e.label for e in events)
    assert set(labels) == set(LABELS)
    assert labels["normal"] > max(n for label, n in labels.items() if label != "normal") / 4
    seen = {e.event for e in events}
    assert len(seen) >= len(EVENT_NAMES) - 1, set(EVENT_NAMES) - seen

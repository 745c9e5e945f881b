"""The README's command examples, run as a newcomer would type them.

Every ```sh block in README.md is preceded by a marker: `<!-- example: NAME -->`
names a scenario below, which runs the block's own lines (read from the README,
so an edit there changes what runs) in scratch home folders, on the harness's
virtual LAN where they need a network; `<!-- example: not run: WHY -->` says why
a block is not run here. A block without a marker fails the first test, so a
new example cannot drift from the code unnoticed.

`p2pmsg` in a line is this checkout's command line (a wrapper on PATH); HOME is
a scratch folder per machine, so profiles land in the default per-user place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import JsonLines
from tests.harness.cli import REPO
from tests.harness.fixtures import MakeLan

README = REPO / "README.md"
PASSWORD = "Readme-Example-Passw0rd"  # noqa: S105 - scratch profiles only
NEW_PASSWORD = "Readme-Example-Passw0rd-2"  # noqa: S105
BASH = shutil.which("bash") or "/bin/bash"
_MARKER = re.compile(r"<!-- example: (?P<what>.+?) -->")


@dataclass(frozen=True)
class Block:
    line: int  # where the ```sh fence is, 1-based
    marker: str | None
    lines: tuple[str, ...]  # the commands, as printed (comments kept)

    def commands(self) -> list[tuple[str, str]]:
        """(command without its comment, the comment) for each line that has one."""
        out = []
        for raw in self.lines:
            command, comment = _split_comment(raw)
            if command:
                out.append((command, comment))
        return out


def _split_comment(raw: str) -> tuple[str, str]:
    """A `#` that starts a word outside quotes begins the comment, as in sh."""
    for match in re.finditer(r"(?:^|\s)#", raw):
        head = raw[: match.start()]
        try:
            shlex.split(head)
        except ValueError:  # an open quote: this "#" is inside it
            continue
        return head.strip(), raw[match.end() :].strip()
    return raw.strip(), ""


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            marker_match = _MARKER.fullmatch(lines[i - 1].strip()) if i else None
            body: list[str] = []
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                body.append(lines[j])
                j += 1
            marker = marker_match.group("what") if marker_match else None
            blocks.append(Block(i + 1, marker, tuple(body)))
            i = j
        i += 1
    return blocks


def block(name: str) -> Block:
    found = [b for b in readme_blocks() if b.marker == name]
    assert len(found) == 1, f"README.md has {len(found)} blocks marked `example: {name}`"
    return found[0]


SCENARIOS = ("profiles", "monitor", "alerts", "bench", "lan-chat", "lan-files")


def test_every_sh_block_is_run_or_says_why_not() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 8
    for b in blocks:
        assert b.marker is not None, (
            f"README.md:{b.line}: a ```sh block without `<!-- example: ... -->` before it"
        )
        if b.marker.startswith("not run:"):
            assert len(b.marker) > len("not run: ") + 10, f"README.md:{b.line}: say why"
        else:
            assert b.marker in SCENARIOS, f"README.md:{b.line}: unknown scenario {b.marker!r}"
    assert sorted(b.marker for b in blocks if b.marker in SCENARIOS) == sorted(SCENARIOS)


# --- running lines --------------------------------------------------------------------


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A `p2pmsg` on PATH that is this checkout run by this interpreter."""
    folder = tmp_path / "bin"
    folder.mkdir()
    wrapper = folder / "p2pmsg"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m p2pmsg "$@"\n')
    wrapper.chmod(0o755)
    return folder


def machine_env(home: Path, bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "P2PMSG_PASSWORD"))}
    env.update(
        HOME=str(home),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(REPO),
        P2PMSG_PASSWORD=PASSWORD,
        P2PMSG_NEW_PASSWORD=NEW_PASSWORD,
    )
    return env


def sh(command: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    """Run one README line in bash; it must succeed. Returns its stdout."""
    result = subprocess.run(
        [BASH, "-c", command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"README example `{command}` exited {result.returncode}\n"
        f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    )
    return result.stdout


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "home"
    folder.mkdir()
    yield folder


# --- offline scenarios ------------------------------------------------------------------


def test_profiles_example(home: Path, bin_dir: Path) -> None:
    env = machine_env(home, bin_dir)
    for command, _ in block("profiles").commands():
        sh(command, env, home)
    # What the comments promise: the JSON keys, and a second, independent identity.
    work = json.loads(sh("p2pmsg --profile work id --json", env, home))
    env["P2PMSG_PASSWORD"] = NEW_PASSWORD  # `passwd` in the example changed it
    default = json.loads(sh("p2pmsg id --json", env, home))
    keys = {"fingerprint", "fingerprint_display", "short_fingerprint", "name", "profile"}
    assert keys <= default.keys()
    assert default["name"] == "alice" and Path(default["profile"]).name == "default"
    assert work["name"] == "alice (work)" and Path(work["profile"]).name == "work"
    assert work["fingerprint"] != default["fingerprint"]


def test_monitor_example(home: Path, bin_dir: Path) -> None:
    env = machine_env(home, bin_dir)
    # The example's "other.jsonl" is any labelled log: a copy of the shipped test log.
    (home / "other.jsonl").write_bytes((REPO / "datasets" / "test_logs.jsonl").read_bytes())
    models = REPO / "models"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in models.iterdir()}
    for command, _ in block("monitor").commands():
        if command.split()[:2] == ["p2pmsg", "train"]:
            # As written it rewrites the shipped models: here into scratch folders.
            command += f" --out {home / 'models'} --pin {home / 'pins.json'}"
        sh(command, env, home, timeout=300)
    assert (home / "shifted.jsonl").stat().st_size > 0
    assert {p.suffix for p in (home / "models").iterdir()} >= {".joblib"}
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in models.iterdir()}
    assert after == before  # the checkout's models are untouched


def test_alerts_example(home: Path, bin_dir: Path) -> None:
    """On a new profile holding two alerts (as a monitor raises them), the lines run
    and leave alert 1 dismissed and alert 2 a false alarm."""
    from p2pmsg.profile import Profile
    from p2pmsg.security_events import Alert
    from p2pmsg.store import Store

    env = machine_env(home, bin_dir)
    sh("p2pmsg init --name alice", env, home)
    unlocked = Profile(home / ".local" / "share" / "p2pmsg", "default").unlock(PASSWORD)
    with unlocked, Store.open(unlocked.profile.db_path, unlocked.data_key) as store:
        for ts, kind in ((1.0, "flood"), (2.0, "brute_force")):
            store.add_alert(Alert(ts, kind, "medium", "ab" * 32, None, "model", 0.9, kind))
    out = ""
    for command, _ in block("alerts").commands():
        out = sh(command, env, home)
    assert {a["id"]: a["state"] for a in json.loads(out)} == {1: "dismissed", 2: "false_alarm"}


def test_bench_example(home: Path, bin_dir: Path) -> None:
    env = machine_env(home, bin_dir)
    commands = block("bench").commands()
    assert commands[0][0] == "p2pmsg bench"  # every scenario: minutes, so not here
    for command, _ in commands[1:]:
        out = sh(command, env, home, timeout=300)
        assert out.strip()


# --- on the virtual LAN -----------------------------------------------------------------


def _terminal(comment: str) -> int:
    match = re.match(r"terminal (\d)", comment)
    assert match, f"a LAN example line says which terminal it runs in: {comment!r}"
    return int(match.group(1))


def _lan_machines(
    make_lan: MakeLan, tmp_path: Path, bin_dir: Path, names: tuple[str, str]
) -> list[tuple[object, dict[str, str], Path]]:
    machines = []
    for host, name in zip(make_lan(2).hosts, names, strict=True):
        home = tmp_path / f"home-{name}"
        home.mkdir()
        env = machine_env(home, bin_dir)
        host.exec(["bash", "-c", f"p2pmsg init --name {name}"], env=env, timeout=60)
        machines.append((host, env, home))
    return machines


def _run_lan_block(
    name: str,
    make_lan: MakeLan,
    tmp_path: Path,
    bin_dir: Path,
    people: tuple[str, str],
    setup: Callable[[Path, Path], None] = lambda one, two: None,
) -> tuple[JsonLines, str, list[tuple[object, dict[str, str], Path]]]:
    """Terminal 1's lines start in the background (a `listen`); terminal 2's run after
    it is ready, in one shell. Returns terminal 1's output and terminal 2's stdout."""
    machines = _lan_machines(make_lan, tmp_path, bin_dir, people)
    setup(machines[0][2], machines[1][2])
    by_terminal: dict[int, list[str]] = {1: [], 2: []}
    terminal = 0
    for command, comment in block(name).commands():
        if comment.startswith("terminal") or not terminal:  # else: the line above's
            terminal = _terminal(comment)
        by_terminal[terminal].append(command)
    assert len(by_terminal[1]) == 1 and by_terminal[2]
    host1, env1, home1 = machines[0]
    listen_line = by_terminal[1][0]
    assert listen_line.startswith("p2pmsg listen")
    json_line = listen_line if "--json" in listen_line else listen_line + " --json"
    listener = JsonLines(
        host1.run(  # type: ignore[attr-defined]
            ["bash", "-c", f"cd {shlex.quote(str(home1))} && exec {json_line}"],
            env=env1,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    listener.wait_for(lambda o: o.get("event") == "ready", 30, "terminal 1's ready line")
    host2, env2, home2 = machines[1]
    script = f"cd {shlex.quote(str(home2))}\n" + "\n".join(by_terminal[2])
    result = host2.exec(["bash", "-c", script], env=env2, timeout=90, check=False)  # type: ignore[attr-defined]
    assert result.returncode == 0, f"terminal 2 exited {result.returncode}: {result.stderr}"
    return listener, result.stdout, machines


def test_lan_chat_example(make_lan: MakeLan, tmp_path: Path, bin_dir: Path) -> None:
    listener, out, _ = _run_lan_block("lan-chat", make_lan, tmp_path, bin_dir, ("alice", "bob"))
    assert out.strip().splitlines()[-1] == "0"  # `echo $?`: delivered
    got = listener.wait_for(lambda o: o.get("event") == "message_received", 10, "the message")
    assert got["message"]["text"] == "lunch at 12?"


def test_lan_files_example(make_lan: MakeLan, tmp_path: Path, bin_dir: Path) -> None:
    payload = os.urandom(300_000)

    def setup(receiver_home: Path, sender_home: Path) -> None:
        (sender_home / "holiday.tar.zst").write_bytes(payload)
        (sender_home / "photos" / "2024").mkdir(parents=True)
        (sender_home / "photos" / "2024" / "beach.jpg").write_bytes(payload[:1000])
        (sender_home / "photos" / "empty.txt").write_bytes(b"")
        (sender_home / "notes.txt").write_text("notes")
        (sender_home / "drafts").mkdir()
        (sender_home / "drafts" / "a.md").write_text("# a")

    _, _, machines = _run_lan_block(
        "lan-files", make_lan, tmp_path, bin_dir, ("bob", "alice"), setup
    )
    downloads = machines[0][2] / "Downloads" / "p2pmsg"
    assert (downloads / "holiday.tar.zst").read_bytes() == payload
    assert (downloads / "photos" / "2024" / "beach.jpg").read_bytes() == payload[:1000]
    assert (downloads / "photos" / "empty.txt").read_bytes() == b""
    assert (downloads / "files" / "notes.txt").read_text() == "notes"
    assert (downloads / "files" / "drafts" / "a.md").read_text() == "# a"

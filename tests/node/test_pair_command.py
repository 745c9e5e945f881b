"""`p2pmsg pair` end to end: two real processes on 127.0.0.1, no mDNS.

One profile shows a code (`pair --to PEER`), the other enters it
(`pair --to PEER --code CODE`); exit statuses and `--json` are the contract.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import JsonLines
from tests.node.test_commands_loopback import ENV, free_port, make_profile, run, start_listen, stop

pytestmark = pytest.mark.timeout(120)


def show_code(data_dir: Path, profile: str, peer: str, port: int) -> tuple[JsonLines, str]:
    """`pair --to PEER --json` in the background, once it printed its code."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "p2pmsg",
            "pair",
            "--to",
            peer,
            "--json",
            "--no-discovery",
            "--data-dir",
            str(data_dir),
            "--profile",
            profile,
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = JsonLines(proc)
    shown = lines.wait_for(lambda o: "code" in o, 20, f"{profile}'s code")
    return lines, str(shown["code"])


def enter_code(data_dir: Path, profile: str, peer: str, code: str) -> tuple[int, dict[str, object]]:
    result = run(
        data_dir,
        profile,
        "pair",
        "--no-discovery",
        "--to",
        peer,
        "--code",
        code,
        "--json",
        "--timeout",
        "20",
    )
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr  # one object
    return result.returncode, json.loads(result.stdout)


def finished(lines: JsonLines) -> tuple[int, dict[str, object]]:
    outcome = lines.wait_for(lambda o: "ok" in o, 20, "the outcome")
    return lines.proc.wait(10), outcome


def verified(data_dir: Path, profile: str) -> dict[str, bool]:
    listing = run(data_dir, profile, "peers", "--no-discovery", "--json")
    assert listing.returncode == 0, listing.stderr
    return {p["name"]: p["verified"] for p in json.loads(listing.stdout)}


def test_pair_command_right_code_wrong_code_and_no_code(tmp_path: Path) -> None:
    alice_fp = make_profile(tmp_path, "alice")
    bob_fp = make_profile(tmp_path, "bob")
    port = free_port()

    # They meet once (bob knows alice's address), as anyone pairs with a known contact.
    assert run(tmp_path, "bob", "add-peer", f"127.0.0.1:{port}").returncode == 0
    alice = start_listen(tmp_path, "alice", port)
    hello = run(tmp_path, "bob", "send", "--no-discovery", "--to", "alice", "hi", "--wait", "5")
    assert hello.returncode == 0, hello.stderr

    # While `listen` holds alice's profile, `pair` says what to do instead.
    held = run(tmp_path, "alice", "pair", "--no-discovery", "--to", "bob")
    assert held.returncode == 1
    assert "listen" in held.stderr and "/pair" in held.stderr and "stop it" in held.stderr

    # A code alice never showed: refused at once by her node, exit 1.
    status, outcome = enter_code(tmp_path, "bob", "alice", "123-456")
    assert (status, outcome["ok"], outcome["reason"]) == (1, False, "no_code")
    stop(alice)
    assert verified(tmp_path, "bob") == {"alice": False}

    # A wrong code: both fail, nothing is marked.
    shower, code = show_code(tmp_path, "alice", "bob", port)
    wrong = f"{(int(code.replace('-', '')) + 1) % 10**6:06d}"
    status, outcome = enter_code(tmp_path, "bob", "alice", wrong)
    assert (status, outcome["reason"]) == (1, "wrong_code")
    status, shown = finished(shower)
    assert (status, shown["ok"], shown["reason"], shown["role"]) == (
        1,
        False,
        "wrong_code",
        "shower",
    )
    assert verified(tmp_path, "alice") == {"bob": False}
    assert verified(tmp_path, "bob") == {"alice": False}

    # The right code: both verified, exit 0 on both sides.
    shower, code = show_code(tmp_path, "alice", "bob", port)
    started = time.monotonic()
    status, outcome = enter_code(tmp_path, "bob", "alice", code.replace("-", " "))
    took = time.monotonic() - started
    assert status == 0, outcome
    assert outcome == {
        "peer": alice_fp,
        "ok": True,
        "reason": "verified",
        "role": "typer",
        "verified": True,
    }
    status, shown = finished(shower)
    assert status == 0 and shown["ok"] and shown["peer"] == bob_fp
    print(f"`p2pmsg pair --code` (process start, unlock, connect, pair, stop): {took:.2f} s")
    assert verified(tmp_path, "alice") == {"bob": True}
    assert verified(tmp_path, "bob") == {"alice": True}

    # Human output (no --json) for a bad code: exit 1 and a sentence, before any unlock.
    bad = run(tmp_path, "bob", "pair", "--to", "alice", "--code", "12-34")
    assert bad.returncode == 1 and "6 digits" in bad.stderr

"""`p2pmsg listen --accept-files` and `p2pmsg send-file`: the real CLI, two profiles, loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.harness.procs import JsonLines
from tests.transfers.conftest import sha256_of, write_random
from tests.transfers.procs import REPO, free_port

PASSWORD = "Vq7#mulberry-Kite"  # noqa: S105 - test fixture
NET = ["--no-discovery", "--interface", "127.0.0.1"]


def _env() -> dict[str, str]:
    return {**os.environ, "P2PMSG_PASSWORD": PASSWORD, "PYTHONPATH": str(REPO)}


def _p2pmsg(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2pmsg", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=_env(),
        timeout=timeout,
    )


def _listen(data: Path, port: int, *extra: str) -> tuple[subprocess.Popen[str], JsonLines]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "p2pmsg",
            "listen",
            "--json",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            *NET,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_env(),
    )
    out = JsonLines(proc)
    out.wait_for(lambda o: o.get("event") == "ready", 30, "listen ready")
    return proc, out


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_send_file_exits_0_once_the_receiver_verified_it(tmp_path: Path) -> None:
    alice, bob, dl = tmp_path / "alice", tmp_path / "bob", tmp_path / "dl"
    for data, name in ((alice, "alice"), (bob, "bob")):
        assert _p2pmsg("init", "--name", name, "--data-dir", str(data)).returncode == 0
    bob_port = free_port()
    listener, out = _listen(bob, bob_port, "--accept-files", "--downloads", str(dl))
    try:
        # Alice meets bob once (a handshake pins his key and name), then sends by name.
        added = _p2pmsg("add-peer", f"127.0.0.1:{bob_port}", "--data-dir", str(alice))
        assert added.returncode == 0, added.stderr
        meet, meet_out = _listen(alice, free_port())
        meet_out.wait_for(lambda o: o.get("event") == "peer_connected", 20, "alice meets bob")
        _stop(meet)

        src = tmp_path / "report.pdf"
        digest = write_random(src, 3 * 1024 * 1024 + 17)
        sent = _p2pmsg(
            "send-file",
            "--to",
            "bob",
            str(src),
            "--data-dir",
            str(alice),
            "--port",
            str(free_port()),
            *NET,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "SHA-256 verified" in sent.stdout
        assert sha256_of(dl / "report.pdf") == digest
        offered = out.wait_for(
            lambda o: o.get("event") == "transfer_updated" and o["transfer"]["state"] == "offered",
            10,
            "the offer event",
        )
        done = out.wait_for(
            lambda o: (
                o.get("event") == "transfer_updated" and o["transfer"]["state"] == "completed"
            ),
            10,
            "the done event",
        )
        assert offered["transfer"]["id"] == done["transfer"]["id"]
        assert done["transfer"]["path"] == str(dl / "report.pdf")
    finally:
        _stop(listener)


def test_send_file_refuses_a_missing_file(tmp_path: Path) -> None:
    result = _p2pmsg(
        "send-file", "--to", "bob", str(tmp_path / "nope"), "--data-dir", str(tmp_path)
    )
    assert result.returncode != 0 and "not a readable file" in result.stderr


def test_send_file_to_an_offline_peer_exits_3_soon_and_the_offer_resumes_later(
    tmp_path: Path,
) -> None:
    alice, bob, dl = tmp_path / "alice", tmp_path / "bob", tmp_path / "dl"
    for data, name in ((alice, "alice"), (bob, "bob")):
        assert _p2pmsg("init", "--name", name, "--data-dir", str(data)).returncode == 0
    bob_port = free_port()
    listener, _ = _listen(bob, bob_port)
    try:
        added = _p2pmsg("add-peer", f"127.0.0.1:{bob_port}", "--data-dir", str(alice))
        assert added.returncode == 0, added.stderr
        meet, meet_out = _listen(alice, free_port())
        meet_out.wait_for(lambda o: o.get("event") == "peer_connected", 20, "alice meets bob")
        _stop(meet)
    finally:
        _stop(listener)

    # Bob is gone. `send-file` once showed "0.0% 0 B of 6 B offered" for 300 s; now it
    # says within --reach that bob was not reached and what happens to the offer.
    src = tmp_path / "notes.txt"
    digest = write_random(src, 70_000)
    args = ("send-file", "--to", "bob", str(src), "--data-dir", str(alice), *NET)
    sent = _p2pmsg(*args, "--reach", "2", timeout=45)
    assert sent.returncode == 3, sent.stdout + sent.stderr
    assert sent.stdout == ""  # no progress line for an offer nobody received
    assert "bob was not reached within 2 s (offline?); the offer of notes.txt is kept" in (
        sent.stderr
    )
    assert "resumes, from where it stopped, the next time this profile meets the peer" in (
        sent.stderr
    )
    as_json = _p2pmsg(*args, "--reach", "1", "--json", timeout=45)
    assert as_json.returncode == 3
    assert as_json.stdout.splitlines()[-1].startswith('{"event":"not_finished","why":"unreached"')

    # What the message promised: the next node of alice's profile that meets bob sends it.
    listener, out = _listen(bob, bob_port, "--accept-files", "--downloads", str(dl))
    try:
        again, _ = _listen(alice, free_port())
        try:
            done = out.wait_for(
                lambda o: (
                    o.get("event") == "transfer_updated" and o["transfer"]["state"] == "completed"
                ),
                30,
                "the queued offer, completed",
            )
        finally:
            _stop(again)
        assert sha256_of(Path(done["transfer"]["path"])) == digest
    finally:
        _stop(listener)


def test_send_file_with_a_folder_and_several_paths_exits_0_once_all_verified(
    tmp_path: Path,
) -> None:
    alice, bob, dl = tmp_path / "alice", tmp_path / "bob", tmp_path / "dl"
    for data, name in ((alice, "alice"), (bob, "bob")):
        assert _p2pmsg("init", "--name", name, "--data-dir", str(data)).returncode == 0
    bob_port = free_port()
    listener, out = _listen(bob, bob_port, "--accept-files", "--downloads", str(dl))
    try:
        added = _p2pmsg("add-peer", f"127.0.0.1:{bob_port}", "--data-dir", str(alice))
        assert added.returncode == 0, added.stderr
        meet, meet_out = _listen(alice, free_port())
        meet_out.wait_for(lambda o: o.get("event") == "peer_connected", 20, "alice meets bob")
        _stop(meet)

        project = tmp_path / "project"
        (project / "src").mkdir(parents=True)
        digests = {
            "src/main.py": write_random(project / "src" / "main.py", 1234),
            "data.bin": write_random(project / "data.bin", 2 * 1024 * 1024),
        }
        (project / "link").symlink_to(tmp_path)  # skipped, never followed
        notes = tmp_path / "notes.txt"
        digests_notes = write_random(notes, 10)
        common = ("--data-dir", str(alice), "--port", str(free_port()), *NET)
        sent = _p2pmsg("send-file", "--to", "bob", str(project), *common)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "2 files" in sent.stdout and "each SHA-256 verified" in sent.stdout
        assert "skipped" in sent.stderr and "link" in sent.stderr
        assert {p: sha256_of(dl / "project" / p) for p in digests} == digests
        assert not (dl / "project" / "link").exists()
        offered = out.wait_for(
            lambda o: (
                o.get("event") == "transfer_updated"
                and o["transfer"]["files"] == 2
                and o["transfer"]["state"] == "offered"
            ),
            10,
            "the folder offer, with its count and size",
        )
        assert offered["transfer"]["size"] == 1234 + 2 * 1024 * 1024

        again = _p2pmsg(
            "send-file", "--to", "bob", str(notes), str(project / "src"), "--json", *common
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert sha256_of(dl / "files" / "notes.txt") == digests_notes
        assert sha256_of(dl / "files" / "src" / "main.py") == digests["src/main.py"]
    finally:
        _stop(listener)

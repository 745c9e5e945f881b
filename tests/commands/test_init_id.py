"""`p2pmsg init`, `id` and `passwd`: the real CLI in a subprocess, and in-process for detail.

The subprocess (and pty) tests use the real default PBKDF2 count (600,000), as
a user's run would. In-process tests go through `cli.main` with profiles built
at a low count, so the many unlocks they do stay fast on a busy CI machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pmsg.cli import main
from p2pmsg.crypto import keystore
from p2pmsg.profile import Profile, read_events
from tests.conftest import REPO_ROOT

PASSWORD = "Vq7#mulberry-Kite"  # noqa: S105 - test fixture
NEW_PASSWORD = "Otter#Lamp-2077"  # noqa: S105 - test fixture


def _p2pmsg(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("P2PMSG_PASSWORD", "P2PMSG_NEW_PASSWORD")
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "p2pmsg", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env=full_env,
        input=stdin if stdin is not None else "",
        timeout=120,
    )


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process commands build their profiles with a low KDF count (subprocesses don't)."""

    def fast_profile(data_dir: Path | None, name: str = "default") -> Profile:
        return Profile(data_dir, name, kdf_iterations=1_000)

    monkeypatch.setattr("p2pmsg.commands._password.Profile", fast_profile)


@pytest.fixture
def no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("P2PMSG_PASSWORD", raising=False)
    monkeypatch.delenv("P2PMSG_NEW_PASSWORD", raising=False)


def test_init_then_id_json_in_a_subprocess(tmp_path: Path) -> None:
    env = {"P2PMSG_PASSWORD": PASSWORD}
    init = _p2pmsg("init", "--name", "alice", "--data-dir", str(tmp_path), env=env)
    assert init.returncode == 0, init.stderr
    assert "created profile 'default'" in init.stdout

    ident = _p2pmsg("id", "--json", "--data-dir", str(tmp_path), env=env)
    assert ident.returncode == 0, ident.stderr
    info = json.loads(ident.stdout)
    assert set(info) == {
        "fingerprint",
        "fingerprint_display",
        "short_fingerprint",
        "name",
        "profile",
    }
    assert info["name"] == "alice"
    assert info["profile"] == str(tmp_path / "default")
    fp = bytes.fromhex(info["fingerprint"])
    assert len(fp) == 32
    assert info["fingerprint_display"].replace(" ", "") == info["fingerprint"]
    assert info["fingerprint_display"].startswith(info["short_fingerprint"])
    assert info["fingerprint_display"] in init.stdout

    # The file on disk is sealed with the real default iteration count.
    blob = (tmp_path / "default" / "identity.key").read_bytes()
    assert keystore.read_header_iterations(blob) >= 600_000
    # And the fingerprint is the one of the identity inside it.
    assert keystore.open_keystore(blob, PASSWORD).identity.fingerprint == fp


def test_wrong_password_in_a_subprocess(tmp_path: Path) -> None:
    _p2pmsg(
        "init", "--name", "alice", "--data-dir", str(tmp_path), env={"P2PMSG_PASSWORD": PASSWORD}
    )
    result = _p2pmsg("id", "--data-dir", str(tmp_path), env={"P2PMSG_PASSWORD": "guess"})
    assert result.returncode == 1
    assert result.stderr.strip() == "p2pmsg: error: wrong password"
    assert "Traceback" not in result.stderr


def test_weak_password_lists_every_rule_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PMSG_PASSWORD", "alice1")
    assert main(["init", "--name", "alice", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("p2pmsg: error: password rejected")
    assert "  - at least 8 characters" in err
    assert "  - an upper-case letter" in err
    assert "  - a symbol (anything that is not a letter or a digit)" in err
    assert "  - not containing your display name" in err
    assert not Profile(tmp_path).exists()


def test_password_file_first_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_password_env: None
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\nignored second line\n")
    secret.chmod(0o600)
    data = str(tmp_path / "data")
    assert main(["init", "--name", "bob", "--data-dir", data, "--password-file", str(secret)]) == 0
    assert main(["id", "--json", "--data-dir", data, "--password-file", str(secret)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out.splitlines()[-1])["name"] == "bob"
    assert "warning" not in out.err


def test_a_readable_password_file_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_password_env: None
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o644)
    assert (
        main(
            [
                "init",
                "--name",
                "bob",
                "--data-dir",
                str(tmp_path / "d"),
                "--password-file",
                str(secret),
            ]
        )
        == 0
    )
    assert "readable by other users" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read password file"),
        ("", "is empty"),
        ("\nsecond", "is empty"),
    ],
)
def test_bad_password_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_password_env: None,
    content: str | None,
    message: str,
) -> None:
    secret = tmp_path / "pw"
    if content is not None:
        secret.write_text(content)
        secret.chmod(0o600)
    assert (
        main(
            [
                "init",
                "--name",
                "bob",
                "--data-dir",
                str(tmp_path / "d"),
                "--password-file",
                str(secret),
            ]
        )
        == 1
    )
    assert message in capsys.readouterr().err


def test_no_password_and_no_terminal(tmp_path: Path) -> None:
    result = _p2pmsg("init", "--name", "alice", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "p2pmsg: error: no password: use --password-file, P2PMSG_PASSWORD or a terminal"
    )


def test_id_without_a_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PMSG_PASSWORD", PASSWORD)
    assert main(["id", "--data-dir", str(tmp_path), "--profile", "work"]) == 1
    err = capsys.readouterr().err
    assert "no profile 'work'" in err and "p2pmsg init" in err


def test_init_refuses_an_existing_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PMSG_PASSWORD", PASSWORD)
    assert main(["init", "--name", "alice", "--data-dir", str(tmp_path)]) == 0
    before = (tmp_path / "default" / "identity.key").read_bytes()
    assert main(["init", "--name", "mallory", "--data-dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "default" / "identity.key").read_bytes() == before


def test_passwd_keeps_the_fingerprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(tmp_path)
    monkeypatch.setenv("P2PMSG_PASSWORD", PASSWORD)
    assert main(["init", "--name", "alice", "--data-dir", data]) == 0
    assert main(["id", "--json", "--data-dir", data]) == 0
    before = json.loads(capsys.readouterr().out.splitlines()[-1])["fingerprint"]

    monkeypatch.setenv("P2PMSG_NEW_PASSWORD", "weak")
    assert main(["passwd", "--data-dir", data]) == 1
    assert "  - at least 8 characters" in capsys.readouterr().err

    monkeypatch.setenv("P2PMSG_NEW_PASSWORD", NEW_PASSWORD)
    assert main(["passwd", "--data-dir", data]) == 0
    assert "password changed" in capsys.readouterr().out

    assert main(["id", "--data-dir", data]) == 1  # the old password no longer opens it
    assert "wrong password" in capsys.readouterr().err
    monkeypatch.setenv("P2PMSG_PASSWORD", NEW_PASSWORD)
    assert main(["id", "--json", "--data-dir", data]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"] == before


def test_passwd_new_password_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PMSG_PASSWORD", PASSWORD)
    monkeypatch.delenv("P2PMSG_NEW_PASSWORD", raising=False)
    assert main(["init", "--name", "alice", "--data-dir", str(tmp_path)]) == 0
    new = tmp_path / "new"
    new.write_text(NEW_PASSWORD + "\n")
    new.chmod(0o600)
    assert main(["passwd", "--data-dir", str(tmp_path), "--new-password-file", str(new)]) == 0
    monkeypatch.delenv("P2PMSG_NEW_PASSWORD", raising=False)
    assert main(["passwd", "--data-dir", str(tmp_path)]) == 1  # old is now wrong
    monkeypatch.setenv("P2PMSG_PASSWORD", NEW_PASSWORD)
    assert main(["passwd", "--data-dir", str(tmp_path)]) == 1
    assert (
        "no new password: use --new-password-file, P2PMSG_NEW_PASSWORD or a terminal"
        in capsys.readouterr().err
    )


def test_throttle_message_names_the_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PMSG_PASSWORD", PASSWORD)
    assert main(["init", "--name", "alice", "--data-dir", str(tmp_path)]) == 0
    monkeypatch.setenv("P2PMSG_PASSWORD", "guess-guess")
    for _ in range(5):
        assert main(["id", "--data-dir", str(tmp_path)]) == 1
    capsys.readouterr()
    monkeypatch.setenv("P2PMSG_PASSWORD", PASSWORD)
    assert main(["id", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("p2pmsg: error: too many failed attempts: try again in ")
    assert err.endswith(("1 s", "2 s"))
    events = read_events(tmp_path / "default" / "security_events.jsonl")
    assert [e["event"] for e in events] == ["unlock_fail"] * 6


def test_passwd_refused_while_the_profile_is_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PMSG_PASSWORD", PASSWORD)
    monkeypatch.setenv("P2PMSG_NEW_PASSWORD", NEW_PASSWORD)
    assert main(["init", "--name", "alice", "--data-dir", str(tmp_path)]) == 0
    with Profile(tmp_path).lock("p2pmsg listen"):
        assert main(["passwd", "--data-dir", str(tmp_path)]) == 1
        assert main(["id", "--data-dir", str(tmp_path)]) == 0  # read-only: allowed
    assert f"is in use by process {os.getpid()} (p2pmsg listen)" in capsys.readouterr().err


def test_help_lists_the_commands() -> None:
    result = _p2pmsg("--help")
    assert result.returncode == 0
    for command in ("init", "id", "passwd"):
        assert f"    {command} " in result.stdout


class _Terminal:
    """The CLI on a real pseudo-terminal, so getpass prompts as it would for a person."""

    def __init__(self, *args: str) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("P2PMSG_PASSWORD", "P2PMSG_NEW_PASSWORD")
        }
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.chdir(REPO_ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "p2pmsg", *args], env)  # noqa: S606
        self.seen = b""
        self._cursor = 0

    def expect(self, token: bytes, timeout: float = 20.0) -> bytes:
        """Wait for `token` after everything matched so far; return the text up to it."""
        deadline = time.monotonic() + timeout
        while self.seen.find(token, self._cursor) < 0:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {token!r}; got {self.seen!r}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"process ended before {token!r}; got {self.seen!r}"
                self.seen += chunk
        end = self.seen.find(token, self._cursor) + len(token)
        before, self._cursor = self.seen[self._cursor : end], end
        return before

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def wait(self) -> int:
        with contextlib.suppress(OSError):
            while True:
                ready, _, _ = select.select([self.fd], [], [], 20)
                chunk = os.read(self.fd, 4096) if ready else b""
                if not chunk:
                    break
                self.seen += chunk
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_interactive_init_reprompts_until_the_policy_is_met(tmp_path: Path) -> None:
    term = _Terminal("init", "--name", "alice", "--data-dir", str(tmp_path))
    term.expect(b"New password: ")
    term.send("weak")
    term.expect(b"Repeat: ")
    term.send("weak")
    refusal = term.expect(b"New password: ")
    assert b"at least 8 characters" in refusal and b"an upper-case letter" in refusal
    term.send(PASSWORD)
    term.expect(b"Repeat: ")
    term.send(PASSWORD)
    term.expect(b"short:")
    assert term.wait() == 0
    assert b"created profile 'default'" in term.seen
    assert PASSWORD.encode() not in term.seen  # never echoed
    assert Profile(tmp_path).exists()


def test_interactive_confirmation_mismatch(tmp_path: Path) -> None:
    term = _Terminal("init", "--name", "alice", "--data-dir", str(tmp_path))
    term.expect(b"New password: ")
    term.send(PASSWORD)
    term.expect(b"Repeat: ")
    term.send(PASSWORD + "x")
    assert term.wait() == 1
    assert b"the two passwords do not match" in term.seen
    assert not Profile(tmp_path).exists()


def test_open_profile_helper_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from p2pmsg.cli import build_parser
    from p2pmsg.commands._password import open_profile
    from p2pmsg.errors import ProfileLockedError

    monkeypatch.setenv("P2PMSG_PASSWORD", PASSWORD)
    assert main(["init", "--name", "alice", "--data-dir", str(tmp_path)]) == 0
    args = build_parser().parse_args(["id", "--data-dir", str(tmp_path)])
    with open_profile(args, command="p2pmsg listen") as unlocked:
        assert unlocked.display_name == "alice" and unlocked.lock is not None
        with pytest.raises(ProfileLockedError, match=r"\(p2pmsg listen\)"):
            open_profile(args)
        assert open_profile(args, lock=False).identity.fingerprint == unlocked.identity.fingerprint
    open_profile(args).close()

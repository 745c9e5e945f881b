"""One process per profile: a second process is refused and told who holds the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from p2pmsg.errors import ProfileLockedError, ProfileNotFoundError
from p2pmsg.profile import Profile
from tests.profile.conftest import PASSWORD, FakeClock

REPO = Path(__file__).resolve().parents[2]


def _holder(profile: Profile) -> subprocess.Popen[str]:
    """Another process that takes the lock, says so, and keeps it until stdin closes."""
    code = textwrap.dedent(f"""
        import sys
        from p2pmsg.profile import Profile
        lock = Profile({str(profile.data_dir)!r}, {profile.name!r}).acquire_lock("p2pmsg listen")
        print("locked", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_is_told_who_holds_it(created: Profile) -> None:
    proc = _holder(created)
    try:
        with pytest.raises(ProfileLockedError) as info:
            created.acquire_lock("p2pmsg send")
        assert str(info.value) == (
            f"profile 'default' is in use by process {proc.pid} (p2pmsg listen)"
        )
        # open() = lock + unlock: refused before the password is even tried.
        with pytest.raises(ProfileLockedError):
            created.open(PASSWORD)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
    with created.acquire_lock("p2pmsg send") as lock:  # free again once it exits
        assert lock.held


def test_a_killed_holder_leaves_no_stale_lock(created: Profile) -> None:
    proc = _holder(created)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    lock = created.acquire_lock()
    lock.release()


def test_lock_is_exclusive_within_one_process_too(created: Profile) -> None:
    with (
        created.lock("p2pmsg listen"),
        pytest.raises(ProfileLockedError, match=f"process {os.getpid()} "),
    ):
        created.acquire_lock()
    created.acquire_lock().release()


def test_open_holds_the_lock_until_closed(created: Profile, clock: FakeClock) -> None:
    with created.open(PASSWORD, command="p2pmsg listen", now=clock) as unlocked:
        assert unlocked.lock is not None and unlocked.lock.held
        with pytest.raises(ProfileLockedError):
            created.acquire_lock()
    assert not unlocked.lock.held
    created.acquire_lock().release()


def test_failed_open_releases_the_lock(created: Profile, clock: FakeClock) -> None:
    from p2pmsg.errors import WrongPasswordError

    with pytest.raises(WrongPasswordError):
        created.open("Not-It-123!", now=clock)
    created.acquire_lock().release()


def test_lock_on_a_missing_profile(tmp_path: Path) -> None:
    with pytest.raises(ProfileNotFoundError):
        Profile(tmp_path, "ghost").acquire_lock()
    assert not (tmp_path / "ghost").exists()


def test_the_lock_file_names_the_holder(created: Profile) -> None:
    with created.lock("p2pmsg listen"):
        text = created.lock_path.read_text()
        assert f'"pid": {os.getpid()}' in text and "p2pmsg listen" in text
    assert created.lock_path.read_text() == ""

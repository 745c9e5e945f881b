"""Profiles on disk: create, unlock, change password, layout, modes, damage."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from p2pmsg.crypto import keystore
from p2pmsg.errors import (
    ConfigError,
    KeystoreError,
    PasswordPolicyError,
    ProfileNotFoundError,
    UnlockThrottledError,
    WrongPasswordError,
)
from p2pmsg.profile import Profile, default_data_dir, read_events
from p2pmsg.profile.throttle import load_state
from tests.profile.conftest import PASSWORD, FakeClock, make_profile


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_constructing_does_no_io(tmp_path: Path) -> None:
    profile = Profile(tmp_path / "nowhere", "work")
    assert profile.path == tmp_path / "nowhere" / "work"
    assert profile.db_path == profile.path / "p2pmsg.db"
    assert not profile.exists() and not (tmp_path / "nowhere").exists()


def test_default_data_dir_is_per_user() -> None:
    assert Profile(None).data_dir == default_data_dir()
    assert default_data_dir().name == "p2pmsg"


@pytest.mark.parametrize("name", ["", ".hidden", "../escape", "a/b", "x" * 65, "sp ace"])
def test_bad_profile_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="bad profile name"):
        Profile(None, name)


def test_create_then_unlock(tmp_path: Path, clock: FakeClock) -> None:
    profile = make_profile(tmp_path)
    made = profile.create("  alice  ", PASSWORD, now=clock)
    assert profile.exists() and made.display_name == "alice" and made.created == clock.t
    opened = make_profile(tmp_path).unlock(PASSWORD, now=clock)
    assert opened.identity.fingerprint == made.identity.fingerprint
    assert opened.data_key == made.data_key and len(opened.data_key) == 32
    assert opened.display_name == "alice" and opened.lock is None


def test_profiles_are_independent(tmp_path: Path, clock: FakeClock) -> None:
    a = make_profile(tmp_path, "a").create("alice", PASSWORD, now=clock)
    b = make_profile(tmp_path, "b").create("bob", PASSWORD, now=clock)
    assert a.identity.fingerprint != b.identity.fingerprint and a.data_key != b.data_key


def test_file_and_directory_modes(tmp_path: Path, clock: FakeClock) -> None:
    old_umask = os.umask(0o022)
    try:
        profile = make_profile(tmp_path / "data")
        profile.create("alice", PASSWORD, now=clock)
        with pytest.raises(WrongPasswordError):
            profile.unlock("nope", now=clock)
    finally:
        os.umask(old_umask)
    assert _mode(tmp_path / "data") == 0o700
    assert _mode(profile.path) == 0o700
    for name in ("identity.key", "lock", "unlock_state.json", "security_events.jsonl"):
        assert _mode(profile.path / name) == 0o600, name
    leftovers = [p.name for p in profile.path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_an_existing_data_dir_is_not_chmodded(tmp_path: Path, clock: FakeClock) -> None:
    tmp_path.chmod(0o755)
    make_profile(tmp_path).create("alice", PASSWORD, now=clock)
    assert _mode(tmp_path) == 0o755  # the user's directory, not ours


def test_create_refuses_a_weak_password_listing_every_rule(tmp_path: Path) -> None:
    profile = make_profile(tmp_path)
    with pytest.raises(PasswordPolicyError) as info:
        profile.create("alice", "alice")
    assert "at least 8 characters" in info.value.failures
    assert "not containing your display name" in info.value.failures
    assert len(info.value.failures) >= 4
    assert not profile.path.exists()


@pytest.mark.parametrize("name", ["", "   ", "a\x1b[31mred", "x" * 65])
def test_create_refuses_bad_display_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        make_profile(tmp_path).create(name, PASSWORD)


def test_create_refuses_an_existing_profile(created: Profile, clock: FakeClock) -> None:
    before = created.keystore_path.read_bytes()
    with pytest.raises(KeystoreError, match="already exists"):
        make_profile(created.data_dir).create("mallory", PASSWORD, now=clock)
    assert created.keystore_path.read_bytes() == before


def test_unlock_missing_profile(tmp_path: Path) -> None:
    with pytest.raises(ProfileNotFoundError, match="p2pmsg init"):
        make_profile(tmp_path).unlock(PASSWORD)


def test_wrong_password_says_only_that(created: Profile, clock: FakeClock) -> None:
    with pytest.raises(WrongPasswordError) as info:
        created.unlock("Vq7#mulberry-Kitf", now=clock)
    assert str(info.value) == "wrong password"


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "append", "version"])
def test_corrupt_keystore_is_named_and_never_overwritten(
    created: Profile, clock: FakeClock, damage: str
) -> None:
    blob = created.keystore_path.read_bytes()
    damaged = {
        "truncate": blob[:40],
        "empty": b"",
        "garbage": b"#!/bin/sh\necho hi\n" * 4,
        "append": blob + b"\n",
        "version": blob[:8] + b"\x09" + blob[9:],
    }[damage]
    created.keystore_path.write_bytes(damaged)
    with pytest.raises(KeystoreError) as info:
        created.unlock(PASSWORD, now=clock)
    assert not isinstance(info.value, WrongPasswordError)
    assert str(created.keystore_path) in str(info.value)
    assert "left untouched" in str(info.value)
    with pytest.raises(KeystoreError, match="already exists"):
        make_profile(created.data_dir).create("alice", PASSWORD, now=clock)
    with pytest.raises(KeystoreError):
        created.change_password(PASSWORD, "Other#Pass-2024x", now=clock)
    assert created.keystore_path.read_bytes() == damaged
    # Damage is not a guess: it does not count towards the backoff.
    assert load_state(created.unlock_state_path).failures == 0


def test_change_password_keeps_identity_and_data_key(created: Profile, clock: FakeClock) -> None:
    before = created.unlock(PASSWORD, now=clock)
    created.change_password(PASSWORD, "Other#Pass-2024x", now=clock)
    with pytest.raises(WrongPasswordError):
        created.unlock(PASSWORD, now=clock)
    after = created.unlock("Other#Pass-2024x", now=clock)
    assert after.identity.to_bytes() == before.identity.to_bytes()
    assert after.data_key == before.data_key and after.created == before.created
    assert _mode(created.keystore_path) == 0o600


def test_change_password_checks_old_and_policy(created: Profile, clock: FakeClock) -> None:
    before = created.keystore_path.read_bytes()
    with pytest.raises(WrongPasswordError):
        created.change_password("not it", "Other#Pass-2024x", now=clock)
    with pytest.raises(PasswordPolicyError) as info:
        created.change_password(PASSWORD, "short", now=clock)
    assert "at least 8 characters" in info.value.failures
    with pytest.raises(PasswordPolicyError, match="different from the current password"):
        created.change_password(PASSWORD, PASSWORD, now=clock)
    assert created.keystore_path.read_bytes() == before


def test_change_password_raises_the_iteration_count(tmp_path: Path, clock: FakeClock) -> None:
    profile = make_profile(tmp_path)
    profile.create("alice", PASSWORD, now=clock)
    stronger = Profile(tmp_path, "default", kdf_iterations=2 * 1_000)
    stronger.change_password(PASSWORD, "Other#Pass-2024x", now=clock)
    assert keystore.read_header_iterations(profile.keystore_path.read_bytes()) == 2_000


def test_every_attempt_is_logged_in_the_design_schema(created: Profile, clock: FakeClock) -> None:
    created.unlock(PASSWORD, now=clock)
    clock.advance(1.5)
    with pytest.raises(WrongPasswordError):
        created.unlock("Sekrit-Guess-42", now=clock)
    events = read_events(created.events_path)
    assert [e["event"] for e in events] == ["unlock_ok", "unlock_fail"]
    for event in events:
        assert list(event) == ["ts", "event", "peer", "addr", "bytes", "detail"]
        assert event["peer"] is None and event["addr"] is None and event["bytes"] == 0
        assert isinstance(event["ts"], float) and isinstance(event["detail"], dict)
    assert events[1]["ts"] - events[0]["ts"] == 1.5
    assert events[1]["detail"]["reason"] == "wrong_password"
    assert events[1]["detail"]["failures"] == 1
    assert "Sekrit" not in created.events_path.read_text()  # guesses are never logged


def test_an_unlock_event_names_the_program_that_unlocked(
    created: Profile, clock: FakeClock
) -> None:
    """A script polling `p2pmsg alerts` unlocks each time: its events say so, for the
    monitor; an attempt without a program says nothing (the TUI, old callers)."""
    created.unlock(PASSWORD, now=clock, program="p2pmsg alerts")
    for _ in range(5):  # five free failures, then a backoff
        clock.advance(1.0)
        with pytest.raises(WrongPasswordError):
            created.unlock("Sekrit-Guess-42", now=clock, program="p2pmsg id")
    clock.advance(0.5)
    with pytest.raises(UnlockThrottledError):
        created.unlock(PASSWORD, now=clock, program="p2pmsg alerts")
    clock.advance(600.0)
    created.unlock(PASSWORD, now=clock)
    events = read_events(created.events_path)
    assert [(e["event"], e["detail"].get("program")) for e in events] == [
        ("unlock_ok", "p2pmsg alerts"),
        *[("unlock_fail", "p2pmsg id")] * 5,
        ("unlock_fail", "p2pmsg alerts"),
        ("unlock_ok", None),
    ]
    assert events[6]["detail"]["reason"] == "throttled"

"""Brute-force backoff: the schedule, and its enforcement across restarts with a fake clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2pmsg.errors import UnlockThrottledError, WrongPasswordError
from p2pmsg.profile import Profile, UnlockState, delay_after, read_events, retry_after
from p2pmsg.profile.throttle import FREE_ATTEMPTS, MAX_DELAY, load_state
from tests.profile.conftest import PASSWORD, FakeClock, make_profile


def test_schedule_is_free_then_doubling_then_capped() -> None:
    assert [delay_after(n) for n in range(FREE_ATTEMPTS)] == [0.0] * FREE_ATTEMPTS
    assert [delay_after(n) for n in range(5, 10)] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert delay_after(12) == 256.0
    assert delay_after(13) == MAX_DELAY == 300.0
    assert delay_after(10**9) == MAX_DELAY


def test_retry_after_counts_from_the_last_failure() -> None:
    state = UnlockState(failures=6, last_failure=1000.0)
    assert retry_after(state, 1000.0) == 4.0
    assert retry_after(state, 1003.0) == 1.0
    assert retry_after(state, 1004.0) == 0.0
    # A clock set backwards neither frees the attempt nor extends the wait.
    assert retry_after(state, 900.0) == 4.0


def _fail(profile: Profile, clock: FakeClock) -> None:
    with pytest.raises(WrongPasswordError):
        profile.unlock("Not-The-Pass-1", now=clock)


def test_backoff_across_restarts(created: Profile, clock: FakeClock) -> None:
    data_dir = created.data_dir
    for _ in range(FREE_ATTEMPTS - 1):  # four failures: no waiting yet
        _fail(make_profile(data_dir), clock)
    _fail(make_profile(data_dir), clock)  # the fifth failure is allowed, and arms the delay

    # A "restarted" process (a new Profile object) is throttled too, even with
    # the right password, and the password is not even tried.
    with pytest.raises(UnlockThrottledError) as info:
        make_profile(data_dir).unlock(PASSWORD, now=clock)
    assert info.value.retry_after == 2.0
    clock.advance(1.5)
    with pytest.raises(UnlockThrottledError) as info:
        make_profile(data_dir).unlock(PASSWORD, now=clock)
    assert info.value.retry_after == pytest.approx(0.5)

    clock.advance(0.5)
    _fail(make_profile(data_dir), clock)  # sixth failure: now 4 s
    with pytest.raises(UnlockThrottledError) as info:
        make_profile(data_dir).unlock(PASSWORD, now=clock)
    assert info.value.retry_after == 4.0

    clock.advance(4.0)
    make_profile(data_dir).unlock(PASSWORD, now=clock)  # success resets the count
    assert load_state(created.unlock_state_path) == UnlockState()
    _fail(make_profile(data_dir), clock)  # a single failure after reset: no wait
    make_profile(data_dir).unlock(PASSWORD, now=clock)

    events = read_events(created.events_path)
    kinds = [(e["event"], e["detail"].get("reason")) for e in events]
    assert kinds.count(("unlock_fail", "wrong_password")) == 7
    assert kinds.count(("unlock_fail", "throttled")) == 3
    assert kinds.count(("unlock_ok", None)) == 2
    throttled = [e for e in events if e["detail"].get("reason") == "throttled"]
    assert [e["detail"]["retry_after"] for e in throttled] == [2.0, 0.5, 4.0]


def test_wait_is_capped_at_five_minutes(created: Profile, clock: FakeClock) -> None:
    for _ in range(20):
        wait = retry_after(load_state(created.unlock_state_path), clock())
        clock.advance(wait)
        _fail(created, clock)
    with pytest.raises(UnlockThrottledError) as info:
        created.unlock(PASSWORD, now=clock)
    assert info.value.retry_after == 300.0
    clock.advance(300.0)
    created.unlock(PASSWORD, now=clock)


def test_a_crash_mid_attempt_still_counts(
    created: Profile, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attempt is counted before the key derivation, so killing the process
    # while it derives the key buys no free guess. Stand in for the kill with an
    # exception raised from inside the derivation.
    def killed(blob: bytes, password: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("p2pmsg.crypto.keystore.open_keystore", killed)
    with pytest.raises(KeyboardInterrupt):
        created.unlock("Guess-Guess-1", now=clock)
    assert load_state(created.unlock_state_path).failures == 1


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"failures": -3}),
        json.dumps({"failures": "9", "last_failure": None}),
        json.dumps([1, 2]),
    ],
)
def test_unreadable_state_counts_as_at_the_threshold(
    created: Profile, clock: FakeClock, content: str
) -> None:
    created.unlock_state_path.write_text(content)
    assert load_state(created.unlock_state_path) == UnlockState(FREE_ATTEMPTS, None)
    _fail(created, clock)  # allowed (no known last failure) ...
    with pytest.raises(UnlockThrottledError):  # ... but the next one waits
        created.unlock(PASSWORD, now=clock)


def test_state_file_is_plain_json(created: Profile, clock: FakeClock) -> None:
    _fail(created, clock)
    state = json.loads(Path(created.unlock_state_path).read_text())
    assert state == {"version": 1, "failures": 1, "last_failure": clock.t}

"""Profiles: the on-disk home of one identity (the I/O side of the keystore).

A profile is a directory ``<data_dir>/<name>/`` (mode 0700), where
``data_dir`` is ``platformdirs.user_data_dir("p2pmsg")`` unless ``--data-dir``
says otherwise and ``name`` defaults to ``default``::

    identity.key           the sealed identity + data key (p2pmsg.crypto.keystore), 0600
    lock                   flock'ed by the process that has the profile open; pid + command
    unlock.lock            serialises unlock attempts across processes
    unlock_state.json      consecutive failed unlocks, for the backoff (survives restarts)
    security_events.jsonl  unlock_ok / unlock_fail events (DESIGN.md schema); a running
                           node imports and follows it (p2pmsg.node.services.unlock_events)
    p2pmsg.db              the store (created by p2pmsg.store, path from `db_path`)

Usage::

    from p2pmsg.profile import Profile

    prof = Profile(data_dir, "default")          # no I/O yet; data_dir None = per-user dir
    if not prof.exists():
        prof.create("alice", password)           # PasswordPolicyError lists every failed rule
    with prof.open(password, command="p2pmsg listen") as unlocked:   # lock + unlock
        unlocked.identity, unlocked.data_key, unlocked.display_name, prof.db_path
    # or, without the lock (read-only uses such as `p2pmsg id`):
    unlocked = prof.unlock(password)
    prof.change_password(old, new)               # caller should hold prof.lock()

Errors (all from p2pmsg.errors): `ProfileNotFoundError`, `KeystoreError` (a
corrupt file, never overwritten), `WrongPasswordError` ("wrong password" and
nothing more), `UnlockThrottledError` (`.retry_after` seconds; the password was
not tried), `PasswordPolicyError` (`.failures`), `ProfileLockedError` (names
the pid and command of the holder), `ConfigError` (bad profile/display name).

Every write is atomic (temp file, fsync, rename, fsync dir) with mode 0600.
The clock (`now`) and the randomness (`rng`) are injectable for tests, and so
is `kdf_iterations` (tests lower it; the default is the keystore's 600,000).
"""

from __future__ import annotations

from p2pmsg.profile.events import append_event, read_events
from p2pmsg.profile.lock import ProfileLock
from p2pmsg.profile.profile import (
    DEFAULT_PROFILE,
    Profile,
    UnlockedProfile,
    default_data_dir,
    validate_display_name,
    validate_profile_name,
)
from p2pmsg.profile.throttle import UnlockState, delay_after, retry_after

__all__ = [
    "DEFAULT_PROFILE",
    "Profile",
    "ProfileLock",
    "UnlockState",
    "UnlockedProfile",
    "append_event",
    "default_data_dir",
    "delay_after",
    "read_events",
    "retry_after",
    "validate_display_name",
    "validate_profile_name",
]

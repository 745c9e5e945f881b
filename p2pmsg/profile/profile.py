"""A profile on disk: where it lives, creating it, unlocking it, re-keying it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import platformdirs

from p2pmsg.crypto import keystore
from p2pmsg.crypto.identity import Identity
from p2pmsg.crypto.password_policy import check_password
from p2pmsg.errors import (
    ConfigError,
    KeystoreError,
    PasswordPolicyError,
    ProfileNotFoundError,
    UnlockThrottledError,
    WrongPasswordError,
)
from p2pmsg.profile import throttle
from p2pmsg.profile.events import append_event
from p2pmsg.profile.files import (
    PRIVATE_FILE_MODE,
    atomic_write,
    ensure_private_dir,
    read_limited,
)
from p2pmsg.profile.lock import ProfileLock
from p2pmsg.protocol.names import MAX_NAME_CHARS, name_problem
from p2pmsg.security_events import SecurityEvent

Clock = Callable[[], float]
Rng = Callable[[int], bytes]

DEFAULT_PROFILE = "default"
KEYSTORE_FILE = "identity.key"
LOCK_FILE = "lock"
UNLOCK_GUARD_FILE = "unlock.lock"
UNLOCK_STATE_FILE = "unlock_state.json"
EVENTS_FILE = "security_events.jsonl"
DB_FILE = "p2pmsg.db"
MAX_DISPLAY_NAME = MAX_NAME_CHARS
_MAX_KEYSTORE_BYTES = 128 * 1024
_PROFILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def default_data_dir() -> Path:
    """The per-user data directory, e.g. ~/.local/share/p2pmsg on Linux."""
    return Path(platformdirs.user_data_dir("p2pmsg", appauthor=False))


def validate_profile_name(name: str) -> str:
    if not _PROFILE_NAME_RE.fullmatch(name):
        raise ConfigError(
            f"bad profile name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_display_name(name: str) -> str:
    """Our own display name (typed by the user: surrounding spaces are trimmed), held
    to the rule every peer applies to it (`p2pmsg.protocol.names`)."""
    cleaned = name.strip()
    problem = name_problem(cleaned)
    if problem is not None:
        raise ConfigError(f"the display name {problem}")
    return cleaned


@dataclass
class UnlockedProfile:
    """An opened profile: the keys in memory, and the profile lock when one is held.

    Use it as a context manager to release the lock when done; a process that
    exits releases it anyway.
    """

    identity: Identity = field(repr=False)
    data_key: bytes = field(repr=False)
    display_name: str
    profile: Profile
    created: float
    lock: ProfileLock | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> UnlockedProfile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Profile:
    """One named profile under a data directory. Constructing it does no I/O."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        name: str = DEFAULT_PROFILE,
        *,
        kdf_iterations: int = keystore.DEFAULT_ITERATIONS,
        rng: Rng = os.urandom,
    ) -> None:
        self.name = validate_profile_name(name)
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.kdf_iterations = kdf_iterations
        self._rng = rng

    def __repr__(self) -> str:
        return f"Profile({str(self.data_dir)!r}, {self.name!r})"

    # -- layout ---------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.data_dir / self.name

    @property
    def keystore_path(self) -> Path:
        return self.path / KEYSTORE_FILE

    @property
    def db_path(self) -> Path:
        """The SQLite store's file (created by the store, not here)."""
        return self.path / DB_FILE

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def unlock_state_path(self) -> Path:
        return self.path / UNLOCK_STATE_FILE

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def exists(self) -> bool:
        return self.keystore_path.exists()

    # -- lock -----------------------------------------------------------------

    def acquire_lock(self, command: str | None = None) -> ProfileLock:
        """Hold this profile for this process, or raise `ProfileLockedError` naming the holder."""
        if not self.path.is_dir():
            raise self._not_found()
        return ProfileLock(self.lock_path, self.name).acquire(command)

    def lock(self, command: str | None = None) -> ProfileLock:
        """`with profile.lock("p2pmsg listen"): ...` - the same, as a context manager."""
        return self.acquire_lock(command)

    # -- create / unlock / change password -----------------------------------------

    def create(
        self,
        display_name: str,
        password: str,
        *,
        now: Clock = time.time,
        command: str | None = None,
    ) -> UnlockedProfile:
        """Make a new identity and seal it under `password`.

        Checks the password policy first (`PasswordPolicyError` lists every
        failed rule) and refuses if an identity file is already there, even a
        corrupt one. The returned profile does not hold the lock.
        """
        name = validate_display_name(display_name)
        failures = check_password(password, name)
        if failures:
            raise PasswordPolicyError(failures)
        if self.keystore_path.exists():
            raise self._already_exists()
        if not self.data_dir.exists():
            ensure_private_dir(self.data_dir)  # ours: make it private too
        ensure_private_dir(self.path)
        with ProfileLock(self.lock_path, self.name).acquire(command or "p2pmsg init"):
            if self.keystore_path.exists():
                raise self._already_exists()
            identity = Identity.generate(self._rng)
            data_key = self._rng(keystore.DATA_KEY_LEN)
            created = now()
            blob = keystore.seal_keystore(
                identity,
                data_key,
                name,
                password,
                rng=self._rng,
                created=created,
                iterations=self.kdf_iterations,
            )
            try:
                atomic_write(self.keystore_path, blob, exclusive=True)
            except FileExistsError:
                raise self._already_exists() from None
        return UnlockedProfile(identity, data_key, name, self, created)

    def unlock(
        self, password: str, *, now: Clock = time.time, program: str | None = None
    ) -> UnlockedProfile:
        """Open the identity file; throttled and logged (see `p2pmsg.profile.throttle`).

        `program` names what unlocked (e.g. "p2pmsg alerts") in the logged event, so
        the monitor can tell our own scripts' and commands' unlocks from a stranger's.

        Raises `ProfileNotFoundError`, `KeystoreError` (corrupt file),
        `UnlockThrottledError` (must wait; the password was not tried) or
        `WrongPasswordError`. Does not take the profile lock.
        """
        contents = self._attempt(password, now, program)
        return UnlockedProfile(
            contents.identity, contents.data_key, contents.name, self, contents.created
        )

    def open(
        self, password: str, *, command: str | None = None, now: Clock = time.time
    ) -> UnlockedProfile:
        """Take the profile lock, then unlock; the lock is released again if unlocking fails."""
        lock = self.acquire_lock(command)
        try:
            unlocked = self.unlock(password, now=now, program=command)
        except BaseException:
            lock.release()
            raise
        unlocked.lock = lock
        return unlocked

    def change_password(
        self, old_password: str, new_password: str, *, now: Clock = time.time
    ) -> None:
        """Re-wrap identity and data key under a new password; neither key changes.

        The old password is checked like an unlock (throttled and logged), so
        an unattended unlocked session cannot be used to change it. The caller
        should hold the profile lock.
        """
        contents = self._attempt(old_password, now)
        failures = check_password(new_password, contents.name)
        if new_password == old_password:
            failures.append("different from the current password")
        if failures:
            raise PasswordPolicyError(failures)
        iterations = max(self.kdf_iterations, contents.iterations)
        blob = keystore.reseal(contents, new_password, rng=self._rng, iterations=iterations)
        atomic_write(self.keystore_path, blob)

    # -- internals --------------------------------------------------------------

    def _attempt(
        self, password: str, now: Clock, program: str | None = None
    ) -> keystore.KeystoreContents:
        with self._unlock_guard():
            blob = self._read_keystore()
            try:
                keystore.read_header_iterations(blob)  # structural errors are not guesses
            except KeystoreError as exc:
                raise self._corrupt(exc) from None
            ts = now()
            state = throttle.load_state(self.unlock_state_path)
            wait = throttle.retry_after(state, ts)
            if wait > 0:
                self._log(
                    ts,
                    "unlock_fail",
                    {
                        "reason": "throttled",
                        "failures": state.failures,
                        "retry_after": round(wait, 3),
                    },
                    program,
                )
                raise UnlockThrottledError(wait)
            counted = state.after_failure(ts)
            throttle.save_state(self.unlock_state_path, counted)
            try:
                contents = keystore.open_keystore(blob, password)
            except WrongPasswordError:
                self._log(
                    ts,
                    "unlock_fail",
                    {"reason": "wrong_password", "failures": counted.failures},
                    program,
                )
                raise
            except KeystoreError as exc:
                throttle.save_state(self.unlock_state_path, state)  # not a guess: undo
                raise self._corrupt(exc) from None
            throttle.save_state(self.unlock_state_path, throttle.UnlockState())
            self._log(ts, "unlock_ok", {"previous_failures": state.failures}, program)
            return contents

    @contextlib.contextmanager
    def _unlock_guard(self) -> Iterator[None]:
        """Serialise attempts across processes, so parallel guesses all see the count."""
        if not self.path.is_dir():
            raise self._not_found()
        fd = os.open(
            self.path / UNLOCK_GUARD_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_keystore(self) -> bytes:
        try:
            blob = read_limited(self.keystore_path, _MAX_KEYSTORE_BYTES)
        except FileNotFoundError:
            raise self._not_found() from None
        except OSError as exc:
            raise KeystoreError(f"cannot read {self.keystore_path}: {exc.strerror}") from None
        if len(blob) > _MAX_KEYSTORE_BYTES:
            raise KeystoreError(f"{self.keystore_path} is too large to be a p2pmsg identity file")
        return blob

    def _log(
        self, ts: float, event: str, detail: dict[str, object], program: str | None = None
    ) -> None:
        if program is not None:
            detail = {**detail, "program": program}
        record = SecurityEvent(float(ts), event, detail={"profile": self.name, **detail})
        append_event(self.events_path, record.to_dict())

    def _not_found(self) -> ProfileNotFoundError:
        return ProfileNotFoundError(
            f"no profile '{self.name}' in {self.data_dir}: "
            f"create one with `p2pmsg init --name NAME`"
        )

    def _corrupt(self, exc: KeystoreError) -> KeystoreError:
        return KeystoreError(f"{exc} ({self.keystore_path}); the file was left untouched")

    def _already_exists(self) -> KeystoreError:
        return KeystoreError(
            f"profile '{self.name}' already exists ({self.keystore_path}); it was left untouched"
        )

"""One process per profile: an advisory `flock` on `<profile>/lock`.

`flock` is released by the kernel when the holder exits or dies, so a crash
never leaves a stale lock behind, and no pid-file guessing is needed to clear
one. The holder writes its pid and command into the file so that the second
process can say who has the profile open.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path
from types import TracebackType

from p2pmsg.errors import ProfileLockedError
from p2pmsg.profile.files import PRIVATE_FILE_MODE

_MAX_HOLDER_INFO = 4096


def default_command() -> str:
    """What this process is, for the message the next one shows: "p2pmsg listen"."""
    sub = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    return "p2pmsg" if sub is None else f"p2pmsg {sub}"


class ProfileLock:
    """An exclusive lock on one profile, held until `release()` or process exit."""

    def __init__(self, path: Path, profile_name: str) -> None:
        self.path = path
        self.profile_name = profile_name
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, command: str | None = None) -> ProfileLock:
        """Take the lock now or raise `ProfileLockedError` naming the holder; never waits."""
        if self._fd is not None:
            raise RuntimeError("lock already held by this object")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise ProfileLockedError(
                f"profile '{self.profile_name}' is in use by {holder}"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        info = json.dumps({"pid": os.getpid(), "command": command or default_command()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode("utf-8") + b"\n", 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> ProfileLock:
        if self._fd is None:
            self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _describe_holder(fd: int) -> str:
    """ "process 1234 (p2pmsg listen)", or a vaguer phrase if the holder has not written yet."""
    try:
        raw = os.pread(fd, _MAX_HOLDER_INFO, 0)
        info = json.loads(raw.decode("utf-8"))
        pid = int(info["pid"])
        command = str(info["command"])
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
    printable = "".join(ch for ch in command if ch.isprintable())[:80]
    return f"process {pid} ({printable})"

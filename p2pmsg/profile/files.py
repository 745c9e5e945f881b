"""Crash-safe file writes for the small files of a profile.

A profile's files are few, tiny and precious (losing the identity file loses
the identity), so every write goes through the same dance: write a temporary
file in the same directory, fsync it, rename it over the target, fsync the
directory. A crash leaves either the old file or the new one, never a torn
mix; permissions are set before any byte is written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) and make it 0700.

    Parents we create get the default mode; only the directory itself is
    tightened, since a parent such as ~/.local/share is not ours to change.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=PRIVATE_DIR_MODE)
    os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes, *, exclusive: bool = False, mode: int = PRIVATE_FILE_MODE
) -> None:
    """Replace `path` with `data` atomically and durably.

    With `exclusive=True` the target must not exist: the new file is linked
    into place (`link` fails if the name is taken) instead of renamed over it,
    so an existing file - even a corrupt one - is never overwritten.
    """
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, path)  # FileExistsError when the target exists
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def read_limited(path: Path, limit: int) -> bytes:
    """Read at most `limit` + 1 bytes, so a caller can tell "too large" without reading it all."""
    with open(path, "rb") as fh:
        return fh.read(limit + 1)

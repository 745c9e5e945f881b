"""Folders on disk for folder offers: the receiver's fresh folder and where each file
lands in it, and the sender's walk of what the user chose (blocking; worker threads).

Receiver: an accepted offer gets a NEW folder in the downloads folder
(`make_fresh_folder`: `mkdir`, which never follows a symlink nor reuses a
folder; "photos", "photos (1)" ... on collision). Each verified file is moved
into it by `place_in_folder`, which walks the safe components (manifest.py)
with directory descriptors opened `O_NOFOLLOW`: a symlink planted inside the
folder meanwhile (by anyone) stops the file instead of redirecting it, and the
final name is claimed with `O_EXCL` so nothing is overwritten.

Sender: `collect` walks files and folders without following symlinks inside a
chosen folder: symlinks (and sockets, FIFOs, devices) found there are
*skipped* and listed, never followed, so a link to `~/.ssh` inside a project
folder sends nothing of `~/.ssh`. A path the user names itself is taken as
named (a symlink given on the command line is the user's choice).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from p2pmsg.errors import TransferError
from p2pmsg.node.transfers.manifest import ManifestError, SafePath, check_manifest
from p2pmsg.node.transfers.safe_name import MAX_NUMBERED, numbered, safe_name
from p2pmsg.protocol.limits import MAX_BUNDLE_ENTRIES, MAX_FILE_SIZE

_DIR_FLAGS = (
    os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
)
FOLDER_MODE = 0o755
#: The folder name a multi-path offer proposes (one folder offered proposes its own name).
DEFAULT_BUNDLE_NAME = "files"


def make_fresh_folder(downloads: Path, offered_name: str) -> Path:
    """Create a new, empty folder for an offer: never an existing one."""
    downloads.mkdir(parents=True, exist_ok=True)
    name = safe_name(offered_name)
    for n in range(MAX_NUMBERED):
        candidate = downloads / numbered(name, n)
        try:
            os.mkdir(candidate, FOLDER_MODE)
        except FileExistsError:
            continue
        return candidate
    raise TransferError(f"no free folder name for {name!r} in the downloads folder")


def place_in_folder(folder: Path, parts: SafePath, partial: Path) -> Path:
    """Move the verified `partial` to `folder`/`parts` (made safe), creating the folders
    between; returns the final path. A name taken already gets a numbered alternative."""
    fd = os.open(folder, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, FOLDER_MODE, dir_fd=fd)
            try:
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise TransferError(
                        f"{part} inside the received folder is not a folder (a symlink?)"
                    ) from None
                raise
            os.close(fd)
            fd = sub
        leaf = parts[-1]
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        for n in range(MAX_NUMBERED):
            name = numbered(leaf, n)
            try:
                placeholder = os.open(name, flags, 0o600, dir_fd=fd)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    continue
                raise
            os.close(placeholder)
            # Replacing our own empty placeholder (claimed with O_EXCL just now).
            os.replace(partial, name, dst_dir_fd=fd)
            return folder.joinpath(*parts[:-1], name)
        raise TransferError(f"no free name for {leaf!r} in the received folder")
    finally:
        os.close(fd)


@dataclass
class Collected:
    """What `collect` found: the offer's name, its files and what it left out."""

    name: str
    #: relpath, size, source (a resolved path)
    entries: list[tuple[str, int, Path]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # relpaths of symlinks and special files

    @property
    def total_size(self) -> int:
        return sum(size for _, size, _ in self.entries)


def _walk(top: Path, prefix: str, out: Collected) -> None:
    stack = [(top, prefix)]
    while stack:
        directory, rel = stack.pop()
        try:
            with os.scandir(directory) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise TransferError(f"cannot read the folder {directory}: {exc.strerror}") from None
        for item in items:
            relpath = f"{rel}/{item.name}" if rel else item.name
            st = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                out.skipped.append(relpath)
            elif stat.S_ISDIR(st.st_mode):
                stack.append((Path(item.path), relpath))
            elif stat.S_ISREG(st.st_mode):
                out.entries.append((relpath, st.st_size, Path(item.path)))
                if len(out.entries) > MAX_BUNDLE_ENTRIES:
                    raise TransferError(
                        f"more than {MAX_BUNDLE_ENTRIES} files: send the folder in parts"
                    )
            else:
                out.skipped.append(relpath)


def collect(paths: list[Path]) -> Collected:
    """The files of `paths` (files and folders) as one offer, checked by the receiver's
    own rules, so an offer we make is never one a peer refuses (blocking)."""
    if not paths:
        raise TransferError("nothing to send")
    # Each named path is resolved once: the walk below follows no symlink, so every
    # source under a resolved folder is already its own resolved path (resolving each
    # of thousands of files again cost ~25 us apiece, on the event loop).
    if len(paths) == 1 and paths[0].is_dir():
        top = paths[0].resolve()
        out = Collected(top.name or DEFAULT_BUNDLE_NAME)
        _walk(top, "", out)
    else:
        out = Collected(DEFAULT_BUNDLE_NAME)
        for path in paths:
            if path.is_dir():
                top = path.resolve()
                _walk(top, top.name, out)
            elif path.is_file():
                out.entries.append((path.name, path.stat().st_size, path.resolve()))
            elif not path.exists():
                raise TransferError(f"{path} does not exist")
            else:
                raise TransferError(f"{path} is not a regular file or a folder")
    if not out.entries:
        raise TransferError("no files to send (empty folders and symlinks are not sent)")
    if out.total_size > MAX_FILE_SIZE:
        raise TransferError("the files are larger than an offer may carry (1 TiB)")
    # Our names are made safe the way the receiver will make them, then the whole list
    # is checked by its rules: two names that collide there are an error here.
    safe_entries = []
    for relpath, size, source in out.entries:
        safe = "/".join(safe_name(part) for part in relpath.split("/"))
        safe_entries.append((safe, size, source))
    out.entries = safe_entries
    try:
        check_manifest([(p, s) for p, s, _ in out.entries], out.total_size)
    except ManifestError as exc:
        raise TransferError(f"cannot send these files: {exc}") from None
    out.name = safe_name(out.name)
    return out
